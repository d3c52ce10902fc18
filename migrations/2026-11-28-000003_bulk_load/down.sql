ALTER TABLE units DROP COLUMN created_by;
DROP INDEX units_serial_key_model;
CREATE UNIQUE INDEX units_model_serial_key ON units (model_id, serial_key);
CREATE INDEX units_serial_key ON units (serial_key);
ALTER TABLE unit_events
    ADD CONSTRAINT unit_events_unit_id_fkey FOREIGN KEY (unit_id) REFERENCES units (id),
    ADD CONSTRAINT unit_events_location_id_fkey FOREIGN KEY (location_id) REFERENCES locations (id);
ALTER TABLE units
    ADD CONSTRAINT units_model_id_fkey FOREIGN KEY (model_id) REFERENCES product_models (id),
    ADD CONSTRAINT units_lot_id_fkey FOREIGN KEY (lot_id) REFERENCES lots (id),
    ADD CONSTRAINT units_location_id_fkey FOREIGN KEY (location_id) REFERENCES locations (id),
    ADD CONSTRAINT units_replaced_by_fkey FOREIGN KEY (replaced_by) REFERENCES units (id);
