-- Registrations (an owner's claim to a unit) and the warranty beyond a model's terms.

CREATE TABLE registrations (
    id                BIGSERIAL PRIMARY KEY,
    unit_id           BIGINT NOT NULL REFERENCES units (id),
    account_id        BIGINT NOT NULL REFERENCES accounts (id),
    -- active: the unit's owner; pending_transfer: another account already owns it, staff decide;
    -- rejected: staff refused the transfer; ended: the owner gave it up or it was transferred.
    status            TEXT NOT NULL CHECK (status IN ('active', 'pending_transfer', 'rejected', 'ended')),
    purchased_on      DATE NOT NULL,
    place_of_purchase TEXT NOT NULL CHECK (length(place_of_purchase) BETWEEN 1 AND 200),
    -- Contact data is for safety and recall notices; marketing only with this separate consent.
    marketing_consent BOOLEAN NOT NULL DEFAULT FALSE,
    -- A mail 30 days before the warranty ends, sent once.
    reminder_wanted   BOOLEAN NOT NULL DEFAULT FALSE,
    reminder_sent_at  TIMESTAMPTZ,
    -- The unit was not recorded as sold when it was registered: staff check it.
    not_sold_flag     BOOLEAN NOT NULL DEFAULT FALSE,
    -- The safety contact. When the account is deleted it is kept, flagged, until retained_until
    -- (at least 6 years after manufacture, 16 CFR 1130.9); everything else is erased.
    contact_email     TEXT NOT NULL,
    contact_retained  BOOLEAN NOT NULL DEFAULT FALSE,
    retained_until    DATE,
    -- Proof of purchase: a file under <data dir>/proofs, its type judged from its content.
    proof_file        TEXT,
    proof_type        TEXT CHECK (proof_type IS NULL OR proof_type IN ('application/pdf', 'image/jpeg', 'image/png')),
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    decided_at        TIMESTAMPTZ,
    decided_by        BIGINT REFERENCES accounts (id),
    decision_note     TEXT,
    ended_at          TIMESTAMPTZ
);
-- One owner per unit; one pending request per unit and account.
CREATE UNIQUE INDEX registrations_one_owner ON registrations (unit_id) WHERE status = 'active';
CREATE UNIQUE INDEX registrations_one_request ON registrations (unit_id, account_id) WHERE status = 'pending_transfer';
CREATE INDEX registrations_account ON registrations (account_id, created_at DESC);
CREATE INDEX registrations_unit ON registrations (unit_id);
CREATE INDEX registrations_pending ON registrations (created_at) WHERE status = 'pending_transfer';
CREATE INDEX registrations_reminders ON registrations (unit_id)
    WHERE status = 'active' AND reminder_wanted AND reminder_sent_at IS NULL;

-- Extensions granted by an admin, per unit or per lot: extra months or an absolute end date.
CREATE TABLE warranty_extensions (
    id           BIGSERIAL PRIMARY KEY,
    unit_id      BIGINT REFERENCES units (id),
    lot_id       BIGINT REFERENCES lots (id),
    extra_months INTEGER CHECK (extra_months BETWEEN 1 AND 120),
    ends_on      DATE,
    reason       TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 200),
    created_by   BIGINT NOT NULL REFERENCES accounts (id),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((unit_id IS NULL) <> (lot_id IS NULL)),
    CHECK ((extra_months IS NULL) <> (ends_on IS NULL))
);
CREATE INDEX warranty_extensions_unit ON warranty_extensions (unit_id) WHERE unit_id IS NOT NULL;
CREATE INDEX warranty_extensions_lot ON warranty_extensions (lot_id) WHERE lot_id IS NOT NULL;

-- What every lookup needs, on the rows it already reads (measured: two more joins, even by
-- primary key, cost a third of the lookup throughput): the registered purchase date, extensions
-- summed up, inheritance on the unit; a lot's extensions on the lot.
ALTER TABLE units
    ADD COLUMN purchased_on DATE,
    ADD COLUMN warranty_extra_months INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN warranty_extended_to DATE,
    -- A replacement: the day it replaced the old unit, and the old unit's warranty end.
    ADD COLUMN inherited_from DATE,
    ADD COLUMN inherited_end DATE;
ALTER TABLE lots
    ADD COLUMN warranty_extra_months INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN warranty_extended_to DATE;
