-- Warranty claims and the repair workflow. The states and their allowed moves are in
-- src/domain/claims.rs; the CHECKs here only keep the values within the known set.

CREATE SEQUENCE claim_number_seq;

CREATE TABLE claims (
    id                  BIGSERIAL PRIMARY KEY,
    -- What the customer quotes: C-<year filed>-<six digits>.
    number              TEXT NOT NULL UNIQUE,
    unit_id             BIGINT NOT NULL REFERENCES units (id),
    registration_id     BIGINT REFERENCES registrations (id),
    account_id          BIGINT NOT NULL REFERENCES accounts (id),
    status              TEXT NOT NULL CHECK (status IN ('submitted', 'info_requested', 'triaged',
                            'approved', 'rejected', 'awaiting_unit', 'in_repair', 'shipped_back',
                            'replaced', 'refunded', 'closed', 'cancelled')),
    category            TEXT NOT NULL,
    description         TEXT NOT NULL CHECK (length(description) BETWEEN 1 AND 4000),
    noticed_on          DATE NOT NULL,
    contact_preference  TEXT NOT NULL CHECK (contact_preference IN ('email', 'phone')),
    contact_phone       TEXT CHECK (contact_phone IS NULL OR length(contact_phone) BETWEEN 5 AND 40),
    -- Flags as they stood when the claim was filed (the staff page also shows them live).
    flag_never_sold     BOOLEAN NOT NULL DEFAULT FALSE,
    flag_not_owner      BOOLEAN NOT NULL DEFAULT FALSE,
    flag_out_of_warranty BOOLEAN NOT NULL DEFAULT FALSE,
    flag_open_recall    BOOLEAN NOT NULL DEFAULT FALSE,
    -- The honest estimate the customer sees.
    eta                 DATE,
    assignee_id         BIGINT REFERENCES accounts (id),
    rma_number          TEXT CHECK (rma_number IS NULL OR length(rma_number) BETWEEN 1 AND 40),
    return_instructions TEXT CHECK (return_instructions IS NULL OR length(return_instructions) <= 2000),
    -- Work and parts (repaired), the reason (rejected), the refund (refunded): the customer reads it.
    outcome_note        TEXT CHECK (outcome_note IS NULL OR length(outcome_note) <= 2000),
    replacement_unit_id BIGINT REFERENCES units (id),
    filed_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    status_since        TIMESTAMPTZ NOT NULL DEFAULT now(),
    closed_at           TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX claims_account ON claims (account_id, filed_at DESC);
-- One claim waiting for an outcome per unit and customer: a second report adds to the first.
CREATE UNIQUE INDEX claims_one_open ON claims (unit_id, account_id)
    WHERE status IN ('submitted', 'info_requested', 'triaged', 'approved', 'awaiting_unit', 'in_repair');
CREATE INDEX claims_queue ON claims (status, status_since);
CREATE INDEX claims_unit ON claims (unit_id);
CREATE INDEX claims_assignee ON claims (assignee_id, status) WHERE assignee_id IS NOT NULL;
CREATE INDEX claims_filed ON claims (filed_at);

-- Everything that happened to a claim. Public entries are the customer's timeline; internal
-- ones are for staff only.
CREATE TABLE claim_events (
    id          BIGSERIAL PRIMARY KEY,
    claim_id    BIGINT NOT NULL REFERENCES claims (id),
    at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor_id    BIGINT REFERENCES accounts (id),
    actor_role  TEXT NOT NULL CHECK (actor_role IN ('customer', 'staff', 'system')),
    kind        TEXT NOT NULL CHECK (kind IN ('filed', 'status', 'update', 'note', 'eta',
                    'assigned', 'rma', 'info_added', 'photo')),
    public      BOOLEAN NOT NULL,
    from_status TEXT,
    to_status   TEXT,
    note        TEXT CHECK (note IS NULL OR length(note) <= 4000),
    eta         DATE
);
CREATE INDEX claim_events_claim ON claim_events (claim_id, at, id);

CREATE TABLE claim_photos (
    id          BIGSERIAL PRIMARY KEY,
    claim_id    BIGINT NOT NULL REFERENCES claims (id),
    file        TEXT NOT NULL,
    media_type  TEXT NOT NULL CHECK (media_type IN ('image/jpeg', 'image/png')),
    bytes       INTEGER NOT NULL,
    added_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX claim_photos_claim ON claim_photos (claim_id);
CREATE INDEX claim_photos_file ON claim_photos (file);

-- Target days per status, set by admins; a claim longer than that in its status is overdue.
CREATE TABLE claim_service_levels (
    status      TEXT PRIMARY KEY,
    target_days INTEGER NOT NULL CHECK (target_days BETWEEN 1 AND 365)
);
INSERT INTO claim_service_levels (status, target_days) VALUES
    ('submitted', 2), ('info_requested', 7), ('triaged', 2), ('approved', 3),
    ('awaiting_unit', 14), ('in_repair', 7), ('shipped_back', 7), ('replaced', 7),
    ('refunded', 7), ('rejected', 7);
