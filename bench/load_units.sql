-- Loads the benchmark model and :units units (serials BN000000, BN000001, …), set-based.
-- Usage: psql "$URL" -v units=1000000 -f bench/load_units.sql
\set ON_ERROR_STOP on
INSERT INTO product_models (gtin, sku, name, brand, model_number, warranty_months, serial_hint)
VALUES ('09506000888880', 'BENCH-1', 'Benchmark unit', 'Bench', 'B-1', 24, 'on the label')
ON CONFLICT (gtin) DO NOTHING;

INSERT INTO lots (model_id, code, production_date)
SELECT id, 'BENCH-LOT', date '2025-06-01' FROM product_models WHERE gtin = '09506000888880'
ON CONFLICT (model_id, code) DO NOTHING;

INSERT INTO units (model_id, serial, serial_key, lot_id, status, manufactured_on)
SELECT m.id, 'BN' || lpad(g::text, 6, '0'), 'BN' || lpad(g::text, 6, '0'), l.id, 'shipped', date '2025-06-01'
FROM product_models m
JOIN lots l ON l.model_id = m.id AND l.code = 'BENCH-LOT'
CROSS JOIN generate_series(0, :units - 1) AS g
WHERE m.gtin = '09506000888880'
ON CONFLICT (serial_key, model_id) DO NOTHING;

VACUUM ANALYZE units;
SELECT count(*) AS bench_units FROM units u JOIN product_models m ON m.id = u.model_id WHERE m.gtin = '09506000888880';
