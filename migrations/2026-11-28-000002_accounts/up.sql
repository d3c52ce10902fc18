-- Accounts, server-side sessions, one-time tokens (email verification, password reset,
-- invitations, email change), the mail outbox and the security audit log.

CREATE TABLE accounts (
    id                BIGSERIAL PRIMARY KEY,
    -- Stored lower-cased and trimmed; unique among accounts that are not deleted.
    email             TEXT NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    email_verified_at TIMESTAMPTZ,
    -- argon2id PHC string; NULL until an invited user sets a password, and after erasure.
    password_hash     TEXT,
    role              TEXT NOT NULL DEFAULT 'customer' CHECK (role IN ('customer', 'staff', 'admin')),
    display_name      TEXT NOT NULL DEFAULT '' CHECK (length(display_name) <= 100),
    -- Failed sign-ins since the last success; a lockout is a time, so it expires by itself
    -- and holds across portal processes.
    failed_logins     INTEGER NOT NULL DEFAULT 0,
    locked_until      TIMESTAMPTZ,
    -- Deleted accounts keep their row (id) so safety-notice records can still point at it;
    -- personal data is erased at deletion (PRODUCT.md §3).
    deleted_at        TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX accounts_email_live ON accounts (email) WHERE deleted_at IS NULL;

CREATE TABLE sessions (
    -- SHA-256 of the cookie token: a leaked table does not yield usable sessions.
    token_hash   BYTEA PRIMARY KEY,
    -- NULL for an anonymous session (it still carries a CSRF token for sign-in forms).
    account_id   BIGINT REFERENCES accounts (id),
    csrf_token   TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Absolute end, whatever the activity.
    expires_at   TIMESTAMPTZ NOT NULL,
    ip           TEXT,
    user_agent   TEXT
);
CREATE INDEX sessions_account ON sessions (account_id) WHERE account_id IS NOT NULL;
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE account_tokens (
    token_hash BYTEA PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password', 'invite', 'change_email')),
    -- For change_email: the address being confirmed.
    new_email  TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX account_tokens_account ON account_tokens (account_id, purpose);

CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    kind            TEXT NOT NULL,
    to_address      TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body_text       TEXT NOT NULL,
    body_html       TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- When a worker may (re)try it; a worker that claims it moves this forward as a lease, so
    -- a worker that dies mid-send releases it by itself.
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'queued';
CREATE INDEX outbox_status ON outbox (status, id);

CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    event       TEXT NOT NULL,
    -- Who acted (NULL: anonymous), and whom it concerns.
    actor_id    BIGINT REFERENCES accounts (id),
    subject_id  BIGINT REFERENCES accounts (id),
    -- The email as typed, for failed sign-ins of unknown addresses.
    email       TEXT,
    ip          TEXT,
    detail      TEXT
);
CREATE INDEX audit_log_time ON audit_log (occurred_at DESC);
CREATE INDEX audit_log_event ON audit_log (event, occurred_at DESC);
CREATE INDEX audit_log_subject ON audit_log (subject_id, occurred_at DESC);
