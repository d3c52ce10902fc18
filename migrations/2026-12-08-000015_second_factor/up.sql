-- Two-step sign-in (TOTP, RFC 6238): an account's secret once its owner has confirmed a code
-- made from it, and the last time step a code was accepted for (each code works once).
CREATE TABLE account_totp (
    account_id  BIGINT PRIMARY KEY REFERENCES accounts (id),
    secret      BYTEA NOT NULL CHECK (length(secret) = 20),
    last_step   BIGINT NOT NULL DEFAULT 0,
    enabled_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- What a session is part-way through: a secret being set up (`enrol`), or a password checked
-- whose code is still awaited (`sign_in`). Gone with its session.
CREATE TABLE session_second_factor (
    token_hash  BYTEA PRIMARY KEY REFERENCES sessions (token_hash) ON DELETE CASCADE,
    account_id  BIGINT NOT NULL REFERENCES accounts (id),
    purpose     TEXT NOT NULL CHECK (purpose IN ('enrol', 'sign_in')),
    secret      BYTEA CHECK (secret IS NULL OR length(secret) = 20),
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
