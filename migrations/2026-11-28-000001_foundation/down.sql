DROP TRIGGER unit_events_no_update ON unit_events;
DROP FUNCTION unit_events_append_only();
DROP TABLE unit_events;
DROP TABLE units;
DROP TABLE locations;
DROP TABLE lots;
DROP TABLE product_models;
