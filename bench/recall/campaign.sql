-- A complete draft campaign :code targeting :models product models of the benchmark data set
-- from BM-0020 on, as whole models (none of them has twin units, and bench/import adds units to
-- the last models only, so the campaign hits the same units in every run). Prints its id.
\set ON_ERROR_STOP on
INSERT INTO recall_campaigns (code, title, hazard, what_to_do, sold_where, contact,
                              remedy_replace, remedy_refund, created_by)
SELECT :'code', 'Benchmark products', 'The battery can overheat and catch fire.',
       'Stop using it now.', 'Everywhere, 2025.', '0800 000 000', true, true, a.id
FROM accounts a WHERE a.email = 'admin@demo.example';
INSERT INTO recall_targets (campaign_id, kind, model_id, label)
SELECT c.id, 'model', m.id, m.name
FROM recall_campaigns c, product_models m
WHERE c.code = :'code' AND m.sku BETWEEN 'BM-0020' AND 'BM-' || lpad((20 + :models - 1)::text, 4, '0');
SELECT id FROM recall_campaigns WHERE code = :'code';
