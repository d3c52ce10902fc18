-- Foundation: the catalogue (product models, lots), locations, serialized units and their
-- append-only event history. Sized for 10,000,000 units: every lookup path has an index.

CREATE TABLE product_models (
    id                     BIGSERIAL PRIMARY KEY,
    gtin                   TEXT NOT NULL UNIQUE CHECK (gtin ~ '^[0-9]{14}$'),
    sku                    TEXT NOT NULL UNIQUE CHECK (length(sku) BETWEEN 1 AND 64),
    name                   TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    brand                  TEXT NOT NULL CHECK (length(brand) BETWEEN 1 AND 100),
    model_number           TEXT NOT NULL CHECK (length(model_number) BETWEEN 1 AND 100),
    description            TEXT NOT NULL DEFAULT '',
    warranty_months        INTEGER NOT NULL CHECK (warranty_months BETWEEN 0 AND 600),
    warranty_start_rule    TEXT NOT NULL DEFAULT 'sale' CHECK (warranty_start_rule IN ('sale', 'manufacture')),
    warranty_grace_days    INTEGER NOT NULL DEFAULT 90 CHECK (warranty_grace_days BETWEEN 0 AND 3650),
    serials_case_sensitive BOOLEAN NOT NULL DEFAULT FALSE,
    -- Optional pattern (see domain::serial_format): '#' a digit, '@' a check digit.
    serial_format          TEXT CHECK (serial_format IS NULL OR length(serial_format) BETWEEN 1 AND 20),
    -- Where the serial is printed on the product, shown when a lookup fails.
    serial_hint            TEXT NOT NULL DEFAULT '',
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE lots (
    id              BIGSERIAL PRIMARY KEY,
    model_id        BIGINT NOT NULL REFERENCES product_models (id),
    code            TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 20),
    production_date DATE NOT NULL,
    expiry_date     DATE CHECK (expiry_date IS NULL OR expiry_date >= production_date),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (model_id, code)
);

CREATE TABLE locations (
    id         BIGSERIAL PRIMARY KEY,
    code       TEXT NOT NULL UNIQUE CHECK (length(code) BETWEEN 1 AND 32),
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind       TEXT NOT NULL DEFAULT 'warehouse' CHECK (kind IN ('factory', 'warehouse', 'store', 'service_centre')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE units (
    id              BIGSERIAL PRIMARY KEY,
    model_id        BIGINT NOT NULL REFERENCES product_models (id),
    -- The serial exactly as printed.
    serial          TEXT NOT NULL CHECK (length(serial) BETWEEN 1 AND 20),
    -- What lookups match on: upper(serial) for case-insensitive models, else serial. Kept as a
    -- column (not an expression index) because the rule lives on the model row.
    serial_key      TEXT NOT NULL,
    lot_id          BIGINT REFERENCES lots (id),
    status          TEXT NOT NULL DEFAULT 'manufactured' CHECK (status IN
                        ('manufactured', 'in_stock', 'shipped', 'sold', 'registered', 'returned', 'replaced', 'scrapped')),
    manufactured_on DATE,
    location_id     BIGINT REFERENCES locations (id),
    replaced_by     BIGINT REFERENCES units (id),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- A serial is unique per model (GTIN), not globally; this index also serves lookups with a GTIN.
CREATE UNIQUE INDEX units_model_serial_key ON units (model_id, serial_key);
-- Lookups by serial alone (the common case: the customer types just the S/N).
CREATE INDEX units_serial_key ON units (serial_key);
CREATE INDEX units_lot ON units (lot_id);
CREATE INDEX units_location ON units (location_id) WHERE location_id IS NOT NULL;

CREATE TABLE unit_events (
    id          BIGSERIAL PRIMARY KEY,
    unit_id     BIGINT NOT NULL REFERENCES units (id),
    kind        TEXT NOT NULL CHECK (kind IN
                    ('manufactured', 'received', 'moved', 'shipped', 'sold', 'registered', 'returned',
                     'replaced', 'scrapped', 'adjusted')),
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Who did it: an account reference, a system job or an integration name.
    actor       TEXT NOT NULL,
    location_id BIGINT REFERENCES locations (id),
    reference   TEXT,
    note        TEXT
);
CREATE INDEX unit_events_unit ON unit_events (unit_id, occurred_at);

-- The history is append-only: corrections are new events, never edits.
CREATE FUNCTION unit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'unit_events is append-only';
END $$;
CREATE TRIGGER unit_events_no_update BEFORE UPDATE OR DELETE ON unit_events
    FOR EACH ROW EXECUTE FUNCTION unit_events_append_only();
