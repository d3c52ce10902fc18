-- The hand-written baseline of bench/count: the minimal SQL an expert would write to find
-- what is missing, unexpected and at the wrong location in a count, materialised into a table
-- shaped and indexed like stock_count_lines (bench_count_lines, made by bench/count/run). Scans
-- of every model are matched on (model, key), the key of `units`' unique index: it does not
-- dedupe, resolve serials scanned without a GTIN, or tell "not in stock" from "wrong
-- location". Same planner settings as the portal's reconciliation (RECONCILE_SETTINGS).
--
-- Usage: psql "$URL" -v count=ID -v loc=LOCATION_ID -f bench/count/baseline.sql
\set ON_ERROR_STOP on
BEGIN;
SET LOCAL work_mem = '256MB';
SET LOCAL maintenance_work_mem = '256MB';
SET LOCAL jit = off;
-- Missing: recorded in stock here, and no scan names it (by its model and key).
INSERT INTO bench_count_lines (count_id, category, unit_id, model_id, serial)
SELECT :count, 'missing', u.id, u.model_id, u.serial
FROM units u
WHERE u.location_id = :loc AND u.status = 'in_stock'
  AND NOT EXISTS (SELECT 1 FROM stock_count_scans s
                  WHERE s.count_id = :count AND s.model_id = u.model_id AND s.serial_key = u.serial_key);
-- Unexpected (no unit of that model and key) and wrong location (a unit recorded elsewhere, or
-- nowhere).
INSERT INTO bench_count_lines (count_id, category, unit_id, model_id, serial)
SELECT :count, CASE WHEN u.id IS NULL THEN 'unexpected' ELSE 'wrong_location' END, u.id,
       s.model_id, s.serial
FROM stock_count_scans s
LEFT JOIN units u ON u.model_id = s.model_id AND u.serial_key = s.serial_key
WHERE s.count_id = :count AND (u.id IS NULL OR u.location_id IS DISTINCT FROM :loc);
COMMIT;
