ALTER TABLE stock_count_lines DROP COLUMN model_id;
DROP INDEX stock_count_lines_page;
CREATE INDEX stock_count_lines_count ON stock_count_lines (count_id, category);
ALTER TABLE stock_counts DROP COLUMN scan_count;
DROP INDEX stock_counts_recent;
DROP INDEX stock_counts_one_open;
