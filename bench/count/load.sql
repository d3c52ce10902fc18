-- Loads the stock-count benchmark data set, set-based: :units units of the benchmark model
-- (serials BC00000000, BC00000001, …) and 1,000 units of a second model that reuse the first
-- 1,000 serials (so those serials scanned without a GTIN are ambiguous).
--
--   units [0, :at_a)                    in stock at BENCH-A (the counted location)
--   units [:at_a, :at_a + :at_b)        in stock at BENCH-B
--   the rest                            shipped or sold, no location
--
-- Usage: psql "$URL" -v units=10000000 -v at_a=2000000 -v at_b=1000000 -f bench/count/load.sql
\set ON_ERROR_STOP on
INSERT INTO product_models (gtin, sku, name, brand, model_number, warranty_months, serial_hint)
VALUES ('09506000888880', 'BENCH-1', 'Benchmark unit', 'Bench', 'B-1', 24, 'on the label'),
       ('09506000888897', 'BENCH-2', 'Benchmark twin', 'Bench', 'B-2', 24, 'on the label')
ON CONFLICT (gtin) DO NOTHING;
INSERT INTO locations (code, name) VALUES ('BENCH-A', 'Counted warehouse'), ('BENCH-B', 'Other warehouse')
ON CONFLICT (code) DO NOTHING;

INSERT INTO units (model_id, serial, serial_key, status, manufactured_on, location_id, created_by)
SELECT m.id, s, s,
       CASE WHEN g < :at_a + :at_b THEN 'in_stock' WHEN g % 2 = 0 THEN 'shipped' ELSE 'sold' END,
       date '2025-06-01',
       CASE WHEN g < :at_a THEN a.id WHEN g < :at_a + :at_b THEN b.id END,
       'bench'
FROM product_models m
CROSS JOIN locations a
CROSS JOIN locations b
CROSS JOIN generate_series(0, :units - 1) AS g
CROSS JOIN LATERAL (SELECT 'BC' || lpad(g::text, 8, '0') AS s) k
WHERE m.gtin = '09506000888880' AND a.code = 'BENCH-A' AND b.code = 'BENCH-B';

INSERT INTO units (model_id, serial, serial_key, status, manufactured_on, created_by)
SELECT m.id, 'BC' || lpad(g::text, 8, '0'), 'BC' || lpad(g::text, 8, '0'), 'shipped', date '2025-06-01', 'bench'
FROM product_models m CROSS JOIN generate_series(0, 999) AS g
WHERE m.gtin = '09506000888897';

VACUUM ANALYZE units;
