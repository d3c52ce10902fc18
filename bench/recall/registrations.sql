-- 2,000,000 registrations (every fifth benchmark unit) by 1,000,000 owners (two units each),
-- set-based. Usage: psql "$URL" -v regs=2000000 -f bench/recall/registrations.sql
\set ON_ERROR_STOP on
INSERT INTO accounts (email, role, email_verified_at)
SELECT 'owner' || g || '@bench.example', 'customer', now()
FROM generate_series(0, :regs / 2 - 1) AS g;

INSERT INTO registrations (unit_id, account_id, status, purchased_on, place_of_purchase, contact_email)
SELECT u.id, a.id, 'active', date '2025-07-01', 'Bench shop', a.email
FROM generate_series(0, :regs - 1) AS g
JOIN units u ON u.serial_key = 'BC' || lpad((g * 5)::text, 8, '0')
  AND u.model_id = (SELECT id FROM product_models WHERE gtin = '09506000888880')
JOIN accounts a ON a.email = 'owner' || (g / 2) || '@bench.example';

VACUUM ANALYZE accounts;
VACUUM ANALYZE registrations;
