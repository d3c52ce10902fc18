-- Stock counts: what the admin pages and the reconciliation need on top of 000004.

-- One count per location at a time that is not finished (open or reconciled): two counts of
-- one shelf applied one after the other would each undo the other's adjustments.
CREATE UNIQUE INDEX stock_counts_one_open ON stock_counts (location_id)
    WHERE status IN ('open', 'reconciled');
CREATE INDEX stock_counts_recent ON stock_counts (opened_at DESC);

-- The number of scans, kept on the count row: the list shows it for every count, and counting
-- a million scan rows per count per page view would not do.
ALTER TABLE stock_counts ADD COLUMN scan_count BIGINT NOT NULL DEFAULT 0 CHECK (scan_count >= 0);

-- Scans are looked up by count, and by count, model and key (a serial scanned without its GTIN
-- is checked against the scans with one): one index serves both.
DROP INDEX stock_count_scans_count;
CREATE INDEX stock_count_scans_count ON stock_count_scans (count_id, model_id, serial_key);

-- The lines of a reconciliation are written a count at a time, two million at once for a
-- count of a million scans, and replaced whole when the count is reconciled again. So each
-- count gets a partition of its own: loaded without an index and indexed once loaded
-- (building the index costs a fraction of maintaining it row by row), and dropped whole on
-- the next reconciliation instead of deleted row by row. The partitions are made by
-- db::counts::reconcile. 000004's table holds nothing yet (no code wrote to it); refuse to
-- run rather than lose rows if it does.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM stock_count_lines) THEN
        RAISE EXCEPTION 'stock_count_lines has rows; move them aside before this migration';
    END IF;
END $$;
DROP TABLE stock_count_lines;
CREATE TABLE stock_count_lines (
    count_id BIGINT NOT NULL,
    category TEXT NOT NULL CHECK (category IN ('matched', 'missing', 'unexpected', 'wrong_location', 'not_in_stock', 'ambiguous')),
    unit_id  BIGINT,
    serial   TEXT NOT NULL,
    -- wrong_location: where the records had it; not_in_stock: its status; ambiguous: the
    -- products the serial exists on.
    detail   TEXT,
    -- The product: the unit's, or the one an unexpected scan named by its GTIN.
    model_id BIGINT
) PARTITION BY LIST (count_id);
-- Lines are shown a category at a time in serial order, a page at a time.
CREATE INDEX stock_count_lines_page ON stock_count_lines (count_id, category, serial);
