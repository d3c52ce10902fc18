-- The baseline's two queries computed but not stored (how many rows each would write): the
-- floor for finding the differences at all. Usage as baseline.sql.
\set ON_ERROR_STOP on
BEGIN;
SET LOCAL work_mem = '256MB';
SET LOCAL jit = off;
SELECT count(*) AS missing
FROM units u
WHERE u.location_id = :loc AND u.status = 'in_stock'
  AND NOT EXISTS (SELECT 1 FROM stock_count_scans s
                  WHERE s.count_id = :count AND s.model_id = u.model_id AND s.serial_key = u.serial_key);
SELECT count(*) FILTER (WHERE u.id IS NULL) AS unexpected, count(u.id) AS wrong_location
FROM stock_count_scans s
LEFT JOIN units u ON u.model_id = s.model_id AND u.serial_key = s.serial_key
WHERE s.count_id = :count AND (u.id IS NULL OR u.location_id IS DISTINCT FROM :loc);
COMMIT;
