-- Stock operations: sales linkage, background import jobs, scanner stations, genealogy and
-- stock counts.

-- A unit's current sale date, kept on the row beside sale_units (the record) because every
-- lookup needs it for the warranty start and a join per lookup would cost more than the column.
ALTER TABLE units ADD COLUMN sold_on DATE;
-- The wider checks are added NOT VALID and then validated: validation scans the table under a
-- lock that lets reads and writes go on (on 10,000,000 units a plain ADD CONSTRAINT would
-- block both for the whole scan).
ALTER TABLE units DROP CONSTRAINT units_status_check;
ALTER TABLE units ADD CONSTRAINT units_status_check CHECK (status IN
    ('manufactured', 'in_stock', 'shipped', 'sold', 'registered', 'returned', 'replaced', 'scrapped', 'missing')) NOT VALID;
ALTER TABLE units VALIDATE CONSTRAINT units_status_check;

ALTER TABLE unit_events DROP CONSTRAINT unit_events_kind_check;
ALTER TABLE unit_events ADD CONSTRAINT unit_events_kind_check CHECK (kind IN
    ('manufactured', 'received', 'moved', 'shipped', 'sold', 'unsold', 'registered', 'returned',
     'replaced', 'scrapped', 'adjusted', 'installed', 'removed', 'claimed', 'recalled', 'remedied')) NOT VALID;
ALTER TABLE unit_events VALIDATE CONSTRAINT unit_events_kind_check;

CREATE TABLE sales (
    id             BIGSERIAL PRIMARY KEY,
    -- The order, invoice or receipt number, unique per channel.
    order_ref      TEXT NOT NULL CHECK (length(order_ref) BETWEEN 1 AND 64),
    -- The channel or retailer that sold it ("web shop", "Retailer Ltd").
    channel        TEXT NOT NULL CHECK (length(channel) BETWEEN 1 AND 100),
    sold_on        DATE NOT NULL,
    customer_email TEXT CHECK (customer_email IS NULL OR length(customer_email) BETWEEN 3 AND 254),
    created_by     TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (channel, order_ref)
);

-- Which units a sale covers. Unlinking keeps the row (with who, when and why).
CREATE TABLE sale_units (
    id            BIGSERIAL PRIMARY KEY,
    sale_id       BIGINT NOT NULL REFERENCES sales (id),
    unit_id       BIGINT NOT NULL,
    linked_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    linked_by     TEXT NOT NULL,
    unlinked_at   TIMESTAMPTZ,
    unlinked_by   TEXT,
    unlink_reason TEXT,
    CHECK ((unlinked_at IS NULL) = (unlink_reason IS NULL))
);
-- A unit is in at most one current sale.
CREATE UNIQUE INDEX sale_units_current ON sale_units (unit_id) WHERE unlinked_at IS NULL;
CREATE INDEX sale_units_sale ON sale_units (sale_id);

-- Imports uploaded in the browser run in the background; the page follows this row.
CREATE TABLE import_jobs (
    id           BIGSERIAL PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('units', 'sales', 'components', 'count_scans')),
    -- count_scans: the stock count the scans are for.
    count_id     BIGINT,
    filename     TEXT NOT NULL CHECK (length(filename) <= 255),
    status       TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
    total_bytes  BIGINT NOT NULL DEFAULT 0,
    bytes_read   BIGINT NOT NULL DEFAULT 0,
    rows_read    BIGINT NOT NULL DEFAULT 0,
    inserted     BIGINT NOT NULL DEFAULT 0,
    error_count  BIGINT NOT NULL DEFAULT 0,
    -- The rejected rows as CSV (line, column, reason), at most 10,000 of them.
    report       TEXT,
    message      TEXT,
    created_by   BIGINT NOT NULL REFERENCES accounts (id),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Moved forward while the job runs; a running job without a recent heartbeat was
    -- interrupted (its transaction rolled back, so nothing was written).
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at  TIMESTAMPTZ
);
CREATE INDEX import_jobs_recent ON import_jobs (created_at DESC);

-- A scanner station's batch: scans are checked as they arrive and committed together.
CREATE TABLE scan_batches (
    id           BIGSERIAL PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('receive', 'move', 'ship')),
    -- receive/move: where the units go; ship: where they leave from.
    location_id  BIGINT NOT NULL REFERENCES locations (id),
    -- ship: the shipment or delivery note reference.
    reference    TEXT CHECK (reference IS NULL OR length(reference) <= 64),
    status       TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'committed', 'cancelled')),
    account_id   BIGINT NOT NULL REFERENCES accounts (id),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    committed_at TIMESTAMPTZ
);
CREATE TABLE scan_batch_items (
    id         BIGSERIAL PRIMARY KEY,
    batch_id   BIGINT NOT NULL REFERENCES scan_batches (id),
    -- What the scanner sent (shortened), and the unit it named if it named one.
    raw        TEXT NOT NULL,
    unit_id    BIGINT REFERENCES units (id),
    -- Why this scan cannot be committed (NULL: fine).
    problem    TEXT,
    scanned_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX scan_batch_items_batch ON scan_batch_items (batch_id, id);

-- Genealogy: a unit contains component units or component lots (lots of a component model).
CREATE TABLE unit_components (
    id                BIGSERIAL PRIMARY KEY,
    -- Foreign keys here (unlike units and unit_events, which bulk loads fill): links are few,
    -- and a link to a unit that does not exist could never be seen or removed.
    parent_unit_id    BIGINT NOT NULL REFERENCES units (id),
    component_unit_id BIGINT REFERENCES units (id),
    component_lot_id  BIGINT REFERENCES lots (id),
    installed_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    installed_by      TEXT NOT NULL,
    removed_at        TIMESTAMPTZ,
    removed_by        TEXT,
    remove_reason     TEXT,
    CHECK ((component_unit_id IS NULL) <> (component_lot_id IS NULL)),
    CHECK (component_unit_id IS DISTINCT FROM parent_unit_id)
);
-- A component unit sits in at most one unit at a time.
CREATE UNIQUE INDEX unit_components_unit_current ON unit_components (component_unit_id)
    WHERE removed_at IS NULL AND component_unit_id IS NOT NULL;
CREATE INDEX unit_components_parent ON unit_components (parent_unit_id);
CREATE INDEX unit_components_lot ON unit_components (component_lot_id) WHERE component_lot_id IS NOT NULL;

-- Physical stock counts of a location: scans, then a reconciliation, then explicit adjustments.
CREATE TABLE stock_counts (
    id          BIGSERIAL PRIMARY KEY,
    location_id BIGINT NOT NULL REFERENCES locations (id),
    status      TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'reconciled', 'applied', 'cancelled')),
    opened_by   BIGINT NOT NULL REFERENCES accounts (id),
    opened_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    reconciled_at TIMESTAMPTZ,
    applied_at  TIMESTAMPTZ,
    applied_by  BIGINT REFERENCES accounts (id)
);
-- Every scan of a count (bulk uploads COPY straight in).
CREATE TABLE stock_count_scans (
    count_id   BIGINT NOT NULL,
    -- NULL when the scan carried no GTIN (a bare serial).
    model_id   BIGINT,
    serial_key TEXT NOT NULL,
    serial     TEXT NOT NULL
);
CREATE INDEX stock_count_scans_count ON stock_count_scans (count_id);
-- The reconciliation, materialised: one row per unit or scan that needs attention.
CREATE TABLE stock_count_lines (
    count_id BIGINT NOT NULL,
    category TEXT NOT NULL CHECK (category IN ('matched', 'missing', 'unexpected', 'wrong_location', 'not_in_stock', 'ambiguous')),
    unit_id  BIGINT,
    serial   TEXT NOT NULL,
    -- For wrong_location: where the records had it; for not_in_stock: its status.
    detail   TEXT
);
CREATE INDEX stock_count_lines_count ON stock_count_lines (count_id, category);

-- Model pictures (shown on the model page and in recall notices), type checked by content.
CREATE TABLE model_pictures (
    model_id     BIGINT PRIMARY KEY REFERENCES product_models (id),
    content_type TEXT NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg', 'image/webp')),
    bytes        BYTEA NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
