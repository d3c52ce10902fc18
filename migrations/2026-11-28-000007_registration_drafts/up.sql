-- A registration typed by someone not yet signed in. It waits here, named by a secret token
-- that travels in the return address through sign-in, sign-up and the confirmation mail, so
-- nothing typed is lost; it becomes a registration when a signed-in customer confirms it.
CREATE TABLE registration_drafts (
    id                BIGSERIAL PRIMARY KEY,
    token_hash        BYTEA NOT NULL UNIQUE,
    unit_id           BIGINT NOT NULL REFERENCES units (id),
    purchased_on      DATE NOT NULL,
    place_of_purchase TEXT NOT NULL CHECK (length(place_of_purchase) BETWEEN 1 AND 200),
    marketing_consent BOOLEAN NOT NULL DEFAULT FALSE,
    reminder_wanted   BOOLEAN NOT NULL DEFAULT FALSE,
    proof_file        TEXT,
    proof_type        TEXT CHECK (proof_type IS NULL OR proof_type IN ('application/pdf', 'image/jpeg', 'image/png')),
    proof_bytes       INTEGER,
    -- Who may finish it besides someone holding the token: the browser that typed it (the hash
    -- of a secret in its cookie) and the account signed up (or already existing) for the address
    -- the confirmation mail went to. A stranger who only has the address cannot.
    browser_hash      BYTEA NOT NULL,
    account_id        BIGINT REFERENCES accounts (id),
    -- Finished: by whom, and what it did (so a second click on "Confirm" is not an error).
    completed_by      BIGINT REFERENCES accounts (id),
    outcome           TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX registration_drafts_expiry ON registration_drafts (expires_at);
-- The proof's size, for the pages that offer it.
ALTER TABLE registrations ADD COLUMN proof_bytes INTEGER;

-- An owner ending their registration ("I no longer have this product") is part of the history.
ALTER TABLE unit_events DROP CONSTRAINT unit_events_kind_check;
ALTER TABLE unit_events ADD CONSTRAINT unit_events_kind_check CHECK (kind IN
    ('manufactured', 'received', 'moved', 'shipped', 'sold', 'unsold', 'registered', 'unregistered',
     'returned', 'replaced', 'scrapped', 'adjusted', 'installed', 'removed', 'claimed', 'recalled',
     'remedied')) NOT VALID;
ALTER TABLE unit_events VALIDATE CONSTRAINT unit_events_kind_check;

-- The sweep for files a crash left without a row looks files up by name.
CREATE INDEX registrations_proof_file ON registrations (proof_file) WHERE proof_file IS NOT NULL;
CREATE INDEX registration_drafts_proof_file ON registration_drafts (proof_file) WHERE proof_file IS NOT NULL;
