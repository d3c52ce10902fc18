DROP TABLE model_pictures;
DROP TABLE stock_count_lines;
DROP TABLE stock_count_scans;
DROP TABLE stock_counts;
DROP TABLE unit_components;
DROP TABLE scan_batch_items;
DROP TABLE scan_batches;
DROP TABLE import_jobs;
DROP TABLE sale_units;
DROP TABLE sales;
ALTER TABLE unit_events DROP CONSTRAINT unit_events_kind_check;
ALTER TABLE unit_events ADD CONSTRAINT unit_events_kind_check CHECK (kind IN
    ('manufactured', 'received', 'moved', 'shipped', 'sold', 'registered', 'returned',
     'replaced', 'scrapped', 'adjusted'));
ALTER TABLE units DROP CONSTRAINT units_status_check;
ALTER TABLE units ADD CONSTRAINT units_status_check CHECK (status IN
    ('manufactured', 'in_stock', 'shipped', 'sold', 'registered', 'returned', 'replaced', 'scrapped'));
ALTER TABLE units DROP COLUMN sold_on;
