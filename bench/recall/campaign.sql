-- A complete draft campaign :code targeting serials BC00000000 … of :hits units (a range).
\set ON_ERROR_STOP on
INSERT INTO recall_campaigns (code, title, hazard, what_to_do, sold_where, contact,
                              remedy_replace, remedy_refund, created_by)
SELECT :'code', 'Benchmark units', 'The battery can overheat and catch fire.',
       'Stop using it now.', 'Everywhere, 2025.', '0800 000 000', true, true, a.id
FROM accounts a WHERE a.email = 'admin@demo.example';
INSERT INTO recall_targets (campaign_id, kind, model_id, key_from, key_to, label)
SELECT c.id, 'range', m.id, 'BC00000000', 'BC' || lpad((:hits - 1)::text, 8, '0'), 'bench range'
FROM recall_campaigns c, product_models m
WHERE c.code = :'code' AND m.gtin = '09506000888880';
SELECT id FROM recall_campaigns WHERE code = :'code';
