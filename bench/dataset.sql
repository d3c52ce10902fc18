-- The benchmark data set, set-based and deterministic: the same variables give the same rows
-- (every value is arithmetic on the row number and :seed; nothing calls random()).
--
--   psql "$URL" -v seed=1 -f bench/dataset.sql            # the full size below
--   psql "$URL" -v seed=1 -v units=100000 -v sales=10000 -v regs=20000 -v at_a=20000 \
--        -v at_b=10000 -f bench/dataset.sql                # a small one
--
-- Full size (the defaults):
--   200 product models   GTIN 09506001nnnnn + check digit (model i = 00000 … 00199), 12, 24 or
--                        36 months of warranty, every tenth one from manufacture;
--   20,000 lots          100 per model, L0000 … L0099, made 2024-01-01 … 2025-05;
--   20 component models  GTIN 09506002nnnnn + check digit, 5,000 component lots each (C00000 …):
--                        100,000 component lots;
--   10,000,000 units     serial BC00000000 … BC09999999 (unit g), of model g mod 200, in lot
--                        (g div 200) div 500 of its model, made on that lot's date, and built
--                        with one component lot (100 consecutive units share one): 10,000,000
--                        genealogy links;
--                        units [0, at_a)                in stock at BENCH-A (2,000,000)
--                        units [at_a, at_a + at_b)      in stock at BENCH-B (1,000,000)
--                        the next 2 × sales units       sold, two per sale (2,000,000), the first
--                                                       regs of them registered
--                        the rest                       shipped to retailers
--   1,000 twin units     of model 1, with serials of model 0's units BC00000000, BC00000200, …
--                        (a serial looked up without a GTIN finds two products);
--   1,000,000 sales      SO-0000000 …, five channels, sold 2025-06-01 … 2026-05-31, each unit
--                        linked (2,000,000 sale lines);
--   1,000,000 owners     owner<k>@bench.example, each with the two units of sale k;
--   2,000,000 registrations;
--   1 launched recall     BENCH-RECALL, of models 0 … 9 (500,000 units), a quarter remedied.
--
-- Unit histories (unit_events) are not generated: no hot path reads them.
\set ON_ERROR_STOP on
\if :{?seed}        \else \set seed 1 \endif
\if :{?units}       \else \set units 10000000 \endif
\if :{?models}      \else \set models 200 \endif
\if :{?lots}        \else \set lots 100 \endif
\if :{?comp_models} \else \set comp_models 20 \endif
\if :{?comp_lots}   \else \set comp_lots 5000 \endif
\if :{?at_a}        \else \set at_a 2000000 \endif
\if :{?at_b}        \else \set at_b 1000000 \endif
\if :{?sales}       \else \set sales 1000000 \endif
\if :{?regs}        \else \set regs 2000000 \endif
\if :{?twins}       \else \set twins 1000 \endif
\if :{?recalled_models} \else \set recalled_models 10 \endif

-- The rows are consistent by construction; checking each foreign key of 25,000,000 rows one by
-- one would double the load time.
SET session_replication_role = replica;
SET work_mem = '256MB';
SET maintenance_work_mem = '1GB';
SET max_parallel_workers_per_gather = 0;

-- A GTIN-14 from its first 13 digits.
CREATE FUNCTION pg_temp.gtin(body text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT body || ((10 - sum(substr(body, p, 1)::int * CASE WHEN p % 2 = 1 THEN 3 ELSE 1 END) % 10) % 10)::text
  FROM generate_series(1, 13) AS p
$$;

CREATE TEMP TABLE bench_models AS
SELECT i, pg_temp.gtin('09506001' || lpad(i::text, 5, '0')) AS gtin FROM generate_series(0, :models - 1) AS i
UNION ALL
SELECT :models + i, pg_temp.gtin('09506002' || lpad(i::text, 5, '0')) FROM generate_series(0, :comp_models - 1) AS i;

INSERT INTO product_models (gtin, sku, name, brand, model_number, description, warranty_months,
                            warranty_start_rule, serials_case_sensitive, serial_hint, created_at, updated_at)
SELECT b.gtin,
       CASE WHEN b.i < :models THEN 'BM-' ELSE 'BCELL-' END || lpad(b.i::text, 4, '0'),
       CASE WHEN b.i < :models THEN 'Bench product ' || b.i ELSE 'Bench cell pack ' || (b.i - :models) END,
       (ARRAY['Arden Tools', 'Bolt & Co', 'Cobalt Home', 'Drift Outdoor'])[b.i % 4 + 1],
       'B-' || b.i,
       'A product of the benchmark data set.',
       (ARRAY[12, 24, 36])[b.i % 3 + 1],
       CASE WHEN b.i % 10 = 9 THEN 'manufacture' ELSE 'sale' END,
       b.i % 20 = 7,
       'On the label under the battery.',
       timestamptz '2024-01-01', timestamptz '2024-01-01'
FROM bench_models b;

CREATE TEMP TABLE bench_lots AS
SELECT b.i AS model_i, m.id AS model_id, k, 'L' || lpad(k::text, 4, '0') AS code,
       date '2024-01-01' + k * 5 + b.i % 5 AS made
FROM bench_models b JOIN product_models m ON m.gtin = b.gtin
CROSS JOIN generate_series(0, :lots - 1) AS k
WHERE b.i < :models
UNION ALL
SELECT b.i, m.id, k, 'C' || lpad(k::text, 5, '0'), date '2023-06-01' + k % 300
FROM bench_models b JOIN product_models m ON m.gtin = b.gtin
CROSS JOIN generate_series(0, :comp_lots - 1) AS k
WHERE b.i >= :models;

INSERT INTO lots (model_id, code, production_date, created_at)
SELECT model_id, code, made, timestamptz '2024-01-01' FROM bench_lots ORDER BY model_i, k;
ALTER TABLE bench_lots ADD COLUMN lot_id bigint;
UPDATE bench_lots b SET lot_id = l.id FROM lots l WHERE l.model_id = b.model_id AND l.code = b.code;
CREATE INDEX ON bench_lots (model_i, k);
ANALYZE bench_lots;

INSERT INTO locations (code, name) VALUES ('BENCH-A', 'Counted warehouse'), ('BENCH-B', 'Other warehouse')
ON CONFLICT (code) DO NOTHING;

-- Sale k: units sold_from + 2k and + 1, on one day.
SELECT :at_a + :at_b AS sold_from \gset
INSERT INTO units (model_id, serial, serial_key, lot_id, status, manufactured_on, location_id,
                   sold_on, purchased_on, created_by, created_at, updated_at)
SELECT l.model_id, s, s, l.lot_id,
       CASE WHEN g < :at_a + :at_b THEN 'in_stock'
            WHEN g < :sold_from + :regs AND g < :sold_from + 2 * :sales THEN 'registered'
            WHEN g < :sold_from + 2 * :sales THEN 'sold'
            ELSE 'shipped' END,
       l.made,
       CASE WHEN g < :at_a THEN a.id WHEN g < :at_a + :at_b THEN b.id END,
       sale_day,
       CASE WHEN g < :sold_from + :regs AND g < :sold_from + 2 * :sales THEN sale_day END,
       'bench', timestamptz '2025-01-01', timestamptz '2025-01-01'
FROM generate_series(0::bigint, :units - 1) AS g
CROSS JOIN LATERAL (SELECT 'BC' || lpad(g::text, 8, '0') AS s,
                           CASE WHEN g >= :sold_from AND g < :sold_from + 2 * :sales
                                THEN date '2025-06-01' + ((((g - :sold_from) / 2) * 7919 + :seed) % 365)::int END AS sale_day) k
JOIN bench_lots l ON l.model_i = g % :models
 AND l.k = least((g / :models) / greatest(ceil(:units::numeric / :models / :lots)::bigint, 1), :lots - 1)
CROSS JOIN (SELECT id FROM locations WHERE code = 'BENCH-A') a
CROSS JOIN (SELECT id FROM locations WHERE code = 'BENCH-B') b;

INSERT INTO units (model_id, serial, serial_key, lot_id, status, manufactured_on, created_by, created_at, updated_at)
SELECT l.model_id, 'BC' || lpad((j * :models)::text, 8, '0'), 'BC' || lpad((j * :models)::text, 8, '0'),
       l.lot_id, 'shipped', l.made, 'bench', timestamptz '2025-01-01', timestamptz '2025-01-01'
FROM generate_series(0, :twins - 1) AS j
JOIN bench_lots l ON l.model_i = 1 AND l.k = 0;

-- Genealogy: unit g holds component lot ((g div 100) × 7919 + seed) mod (component lots), a
-- permutation, so every component lot is in 100 consecutive units.
CREATE TEMP TABLE bench_comp AS
SELECT row_number() OVER (ORDER BY model_i, k) - 1 AS c, lot_id FROM bench_lots WHERE model_i >= :models;
CREATE INDEX ON bench_comp (c);
ANALYZE bench_comp;
INSERT INTO unit_components (parent_unit_id, component_lot_id, installed_at, installed_by)
SELECT u.id, c.lot_id, timestamptz '2025-01-01', 'bench'
FROM units u
JOIN bench_comp c ON c.c = ((substr(u.serial, 3)::bigint / 100) * 7919 + :seed) % (:comp_models * :comp_lots)
WHERE u.created_by = 'bench';

INSERT INTO sales (order_ref, channel, sold_on, created_by, created_at)
SELECT 'SO-' || lpad(k::text, 7, '0'),
       (ARRAY['Web shop', 'Retailer North', 'Retailer South', 'Marketplace', 'Trade counter'])[k % 5 + 1],
       date '2025-06-01' + ((k * 7919 + :seed) % 365)::int, 'bench', timestamptz '2025-06-01'
FROM generate_series(0::bigint, :sales - 1) AS k;

INSERT INTO sale_units (sale_id, unit_id, linked_at, linked_by)
SELECT s.id, u.id, timestamptz '2025-06-01', 'bench'
FROM sales s
CROSS JOIN generate_series(0, 1) AS j
CROSS JOIN LATERAL (SELECT :sold_from + 2 * substr(s.order_ref, 4)::bigint + j AS g) o
JOIN bench_lots l ON l.model_i = o.g % :models AND l.k = 0
JOIN units u ON u.serial_key = 'BC' || lpad(o.g::text, 8, '0') AND u.model_id = l.model_id
WHERE s.created_by = 'bench';

INSERT INTO accounts (email, role, email_verified_at, created_at, updated_at)
SELECT 'owner' || k || '@bench.example', 'customer', timestamptz '2025-06-01', timestamptz '2025-06-01', timestamptz '2025-06-01'
FROM generate_series(0, (:regs + 1) / 2 - 1) AS k;

INSERT INTO registrations (unit_id, account_id, status, purchased_on, place_of_purchase, contact_email, created_at)
SELECT u.id, a.id, 'active', u.purchased_on, 'Bench shop', a.email, timestamptz '2025-06-02'
FROM units u
CROSS JOIN LATERAL (SELECT substr(u.serial, 3)::bigint - :sold_from AS r) k
JOIN accounts a ON a.email = 'owner' || (k.r / 2) || '@bench.example' AND a.deleted_at IS NULL
WHERE u.status = 'registered' AND u.created_by = 'bench';

-- One launched recall, BENCH-RECALL, of whole models 0 … :recalled_models - 1 (at full size 10 of
-- 200: 500,000 units, 5 % of lookups), none of them notified (no notices, so no second notice
-- falls due); every fourth of its units already remedied. Lookups read it as they would on the
-- day of a recall.
INSERT INTO recall_campaigns (code, status, title, hazard, what_to_do, sold_where, contact,
                              remedy_replace, launched_at, created_by, created_at, updated_at)
SELECT 'BENCH-RECALL', 'launched', 'Bench products 0 to ' || (:recalled_models - 1) || ': battery overheating',
       'The battery can overheat and catch fire.', 'Stop using it and ask for a replacement.',
       'Everywhere, 2024.', '0800 000 000', true, timestamptz '2026-06-01', a.id,
       timestamptz '2026-05-01', timestamptz '2026-06-01'
FROM accounts a WHERE a.email = 'admin@demo.example';
INSERT INTO recall_targets (campaign_id, kind, model_id, label)
SELECT c.id, 'model', m.id, m.name
FROM recall_campaigns c JOIN product_models m ON m.sku < 'BM-' || lpad(:recalled_models::text, 4, '0') AND m.sku LIKE 'BM-%'
WHERE c.code = 'BENCH-RECALL';
INSERT INTO recall_campaign_models (campaign_id, model_id, units)
SELECT t.campaign_id, t.model_id, (SELECT count(*) FROM units u WHERE u.model_id = t.model_id)
FROM recall_targets t JOIN recall_campaigns c ON c.id = t.campaign_id WHERE c.code = 'BENCH-RECALL';
INSERT INTO recall_units (campaign_id, unit_id, lot_id, state, remedied_on, remedied_by, updated_at)
SELECT t.campaign_id, u.id, u.lot_id,
       CASE WHEN u.id % 4 = 0 THEN 'remedied' ELSE 'unreachable' END,
       CASE WHEN u.id % 4 = 0 THEN date '2026-07-01' END,
       CASE WHEN u.id % 4 = 0 THEN 'bench' END,
       timestamptz '2026-06-01'
FROM recall_targets t JOIN recall_campaigns c ON c.id = t.campaign_id AND c.code = 'BENCH-RECALL'
JOIN units u ON u.model_id = t.model_id;

RESET session_replication_role;
VACUUM ANALYZE product_models, lots, units, unit_components, sales, sale_units, accounts, registrations,
               recall_campaigns, recall_targets, recall_campaign_models, recall_units;
CHECKPOINT;
SELECT (SELECT count(*) FROM units WHERE created_by = 'bench') AS units,
       (SELECT count(*) FROM unit_components WHERE installed_by = 'bench') AS genealogy_links,
       (SELECT count(*) FROM sales WHERE created_by = 'bench') AS sales,
       (SELECT count(*) FROM registrations r JOIN accounts a ON a.id = r.account_id
         WHERE a.email LIKE '%@bench.example') AS registrations;
