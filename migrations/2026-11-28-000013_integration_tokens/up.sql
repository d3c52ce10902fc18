-- Integration tokens (issue 8, part 3): scoped bearer tokens that admins give the
-- manufacturer's systems, retailers and repair shops, the one-time display of a new token's
-- secret, and the Idempotency-Key records of the writes made with them.

CREATE TABLE api_tokens (
    id           BIGSERIAL PRIMARY KEY,
    -- SHA-256 of the secret. The secret itself is shown once, at creation, and never stored:
    -- a copy of the database does not yield a usable token. Unique: it is the lookup key.
    token_hash   BYTEA NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- One or more of what the token may do.
    scopes       TEXT[] NOT NULL CHECK (
                     cardinality(scopes) BETWEEN 1 AND 3
                     AND scopes <@ ARRAY['read', 'stock:write', 'sales:write']::text[]),
    created_by   BIGINT NOT NULL REFERENCES accounts (id),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Written at most once a minute per token, not on every request.
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    revoked_by   BIGINT REFERENCES accounts (id),
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);

-- The secret of a token just created, kept only until the creating admin's next page shows it:
-- sealed with a key derived from that admin's session cookie (which the database never holds),
-- deleted when shown, and worthless after a few minutes (the housekeeping deletes it then).
CREATE TABLE api_token_reveals (
    token_id     BIGINT PRIMARY KEY REFERENCES api_tokens (id),
    -- SHA-256 of the session cookie, like sessions.token_hash: only that session may see it.
    session_hash BYTEA NOT NULL,
    nonce        BYTEA NOT NULL CHECK (length(nonce) = 16),
    sealed       BYTEA NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL
);

-- Idempotency-Key: the first answer to a token's write with a given key, replayed when the
-- same key comes again with the same request; kept 24 hours. The row is inserted at the start
-- of the write's own transaction and filled in before its commit, so a second request with the
-- same key waits on the unique key until the first commits (then replays its answer) or rolls
-- back (then runs itself): never two writes for one key.
CREATE TABLE api_idempotency_keys (
    token_id     BIGINT NOT NULL REFERENCES api_tokens (id),
    key          TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- SHA-256 of the method, path and body (as canonical JSON).
    request_hash BYTEA NOT NULL,
    -- The answer; NULL only inside the transaction that is still making it.
    status       SMALLINT CHECK (status BETWEEN 100 AND 599),
    body         TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (token_id, key)
);
CREATE INDEX api_idempotency_keys_created ON api_idempotency_keys (created_at);
