-- Recall campaigns: the notice, its targets, the affected units (materialised once at launch)
-- and one direct notice per reachable owner. Rules are in src/domain/recall.rs.

CREATE TABLE recall_campaigns (
    id                 BIGSERIAL PRIMARY KEY,
    code               TEXT NOT NULL UNIQUE CHECK (code ~ '^[A-Z0-9][A-Z0-9-]{2,31}$'),
    status             TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'launched', 'closed')),
    title              TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    hazard             TEXT NOT NULL DEFAULT '' CHECK (length(hazard) <= 4000),
    what_to_do         TEXT NOT NULL DEFAULT '' CHECK (length(what_to_do) <= 4000),
    sold_where         TEXT NOT NULL DEFAULT '' CHECK (length(sold_where) <= 2000),
    contact            TEXT NOT NULL DEFAULT '' CHECK (length(contact) <= 2000),
    remedy_repair      BOOLEAN NOT NULL DEFAULT FALSE,
    remedy_replace     BOOLEAN NOT NULL DEFAULT FALSE,
    remedy_refund      BOOLEAN NOT NULL DEFAULT FALSE,
    remedy_reason      TEXT NOT NULL DEFAULT '' CHECK (length(remedy_reason) <= 2000),
    -- "Recall open: remedy not yet available" until staff say the remedy is ready.
    remedy_available   BOOLEAN NOT NULL DEFAULT TRUE,
    -- Owners who have not acknowledged get a second notice after this many days.
    second_notice_days INTEGER NOT NULL DEFAULT 14 CHECK (second_notice_days BETWEEN 1 AND 365),
    created_by         BIGINT NOT NULL REFERENCES accounts (id),
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    launched_at        TIMESTAMPTZ,
    launched_by        BIGINT REFERENCES accounts (id),
    closed_at          TIMESTAMPTZ
);

-- The union of these selects the affected units.
CREATE TABLE recall_targets (
    id               BIGSERIAL PRIMARY KEY,
    campaign_id      BIGINT NOT NULL REFERENCES recall_campaigns (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL CHECK (kind IN ('serials', 'range', 'lot', 'model', 'made', 'component_lot')),
    model_id         BIGINT REFERENCES product_models (id),
    lot_id           BIGINT REFERENCES lots (id),
    -- serials: the list (keys as the model folds them); range: first and last key.
    serial_keys      TEXT[],
    key_from         TEXT,
    key_to           TEXT,
    made_from        DATE,
    made_to          DATE,
    -- What the editor shows for it.
    label            TEXT NOT NULL,
    CHECK (kind <> 'serials' OR (model_id IS NOT NULL AND serial_keys IS NOT NULL)),
    CHECK (kind <> 'range' OR (model_id IS NOT NULL AND key_from IS NOT NULL AND key_to IS NOT NULL)),
    CHECK (kind NOT IN ('lot', 'component_lot') OR lot_id IS NOT NULL),
    CHECK (kind <> 'model' OR model_id IS NOT NULL),
    CHECK (kind <> 'made' OR (made_from IS NOT NULL AND made_to IS NOT NULL))
);
CREATE INDEX recall_targets_campaign ON recall_targets (campaign_id);

-- One notice per reachable owner (an owner of three affected units gets one mail naming them).
CREATE TABLE recall_notices (
    id               BIGSERIAL PRIMARY KEY,
    campaign_id      BIGINT NOT NULL REFERENCES recall_campaigns (id),
    account_id       BIGINT REFERENCES accounts (id),
    contact_email    TEXT NOT NULL,
    -- The link in the mail acknowledges without signing in: only its SHA-256 is kept here.
    token_hash       BYTEA NOT NULL UNIQUE,
    outbox_id        BIGINT REFERENCES outbox (id),
    second_outbox_id BIGINT REFERENCES outbox (id),
    acknowledged_at  TIMESTAMPTZ,
    remedy_choice    TEXT CHECK (remedy_choice IS NULL OR remedy_choice IN ('repair', 'replace', 'refund')),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (campaign_id, contact_email)
);
CREATE INDEX recall_notices_second ON recall_notices (campaign_id, created_at)
    WHERE acknowledged_at IS NULL AND second_outbox_id IS NULL;

-- Every affected unit of a launched campaign and where it stands.
CREATE TABLE recall_units (
    campaign_id      BIGINT NOT NULL REFERENCES recall_campaigns (id),
    unit_id          BIGINT NOT NULL REFERENCES units (id),
    lot_id           BIGINT,
    state            TEXT NOT NULL CHECK (state IN ('affected', 'notified', 'acknowledged', 'remedied', 'unreachable')),
    notice_id        BIGINT REFERENCES recall_notices (id),
    acknowledged_at  TIMESTAMPTZ,
    remedied_on      DATE,
    remedied_by      TEXT,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, unit_id)
);
-- The lookup asks "is this unit under an open recall?" by unit.
CREATE INDEX recall_units_unit ON recall_units (unit_id);
CREATE INDEX recall_units_notice ON recall_units (notice_id) WHERE notice_id IS NOT NULL;

-- Claims closed as a recall remedy name the campaign.
ALTER TABLE claims ADD COLUMN recall_campaign_id BIGINT REFERENCES recall_campaigns (id);
