-- Shaped for bulk loads of millions of units (measured: foreign-key checks were 60% of the
-- time of a 300,000-unit import, and the first history event per unit doubled the writes).
--
-- 1. units and unit_events drop their foreign keys. Every code path that writes them takes its
--    references from rows it has just read (the import validates every GTIN, lot and location
--    against the catalogue before COPY), and catalogue rows are never deleted.
ALTER TABLE units
    DROP CONSTRAINT units_model_id_fkey,
    DROP CONSTRAINT units_lot_id_fkey,
    DROP CONSTRAINT units_location_id_fkey,
    DROP CONSTRAINT units_replaced_by_fkey;
ALTER TABLE unit_events
    DROP CONSTRAINT unit_events_unit_id_fkey,
    DROP CONSTRAINT unit_events_location_id_fkey;

-- 2. One index serves both lookups by serial alone (its prefix) and uniqueness per model.
DROP INDEX units_serial_key;
DROP INDEX units_model_serial_key;
CREATE UNIQUE INDEX units_serial_key_model ON units (serial_key, model_id);

-- 3. A unit's creation is recorded on its row (who, when, where it was made or received); the
--    history page shows it as the first event. unit_events holds every change after that.
ALTER TABLE units ADD COLUMN created_by TEXT NOT NULL DEFAULT 'system';
