DROP TABLE stock_count_lines;
CREATE TABLE stock_count_lines (
    count_id BIGINT NOT NULL,
    category TEXT NOT NULL CHECK (category IN ('matched', 'missing', 'unexpected', 'wrong_location', 'not_in_stock', 'ambiguous')),
    unit_id  BIGINT,
    serial   TEXT NOT NULL,
    detail   TEXT
);
CREATE INDEX stock_count_lines_count ON stock_count_lines (count_id, category);
DROP INDEX stock_count_scans_count;
CREATE INDEX stock_count_scans_count ON stock_count_scans (count_id);
ALTER TABLE stock_counts DROP COLUMN scan_count;
DROP INDEX stock_counts_recent;
DROP INDEX stock_counts_one_open;
