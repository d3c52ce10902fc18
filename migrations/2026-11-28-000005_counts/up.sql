-- Stock counts: what the admin pages and the reconciliation need on top of 000004.

-- One count per location at a time that is not finished (open or reconciled): two counts of
-- one shelf applied one after the other would each undo the other's adjustments.
CREATE UNIQUE INDEX stock_counts_one_open ON stock_counts (location_id)
    WHERE status IN ('open', 'reconciled');
CREATE INDEX stock_counts_recent ON stock_counts (opened_at DESC);

-- The number of scans, kept on the count row: the list shows it for every count, and counting
-- a million scan rows per count per page view would not do.
ALTER TABLE stock_counts ADD COLUMN scan_count BIGINT NOT NULL DEFAULT 0 CHECK (scan_count >= 0);

-- Lines are shown a category at a time in serial order, a page at a time.
DROP INDEX stock_count_lines_count;
CREATE INDEX stock_count_lines_page ON stock_count_lines (count_id, category, serial);

-- The product of each line (the unit's, or the one an unexpected scan named by its GTIN), so
-- pages and the CSV show it without a join through units.
ALTER TABLE stock_count_lines ADD COLUMN model_id BIGINT;
