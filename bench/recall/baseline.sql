-- The same work as a launch, hand-written: the affected units of campaign :id stored, one notice
-- per owner address queued in the outbox and recorded, units marked notified or unreachable,
-- in one transaction.
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO recall_units (campaign_id, unit_id, lot_id, state)
SELECT :id, u.id, u.lot_id, 'affected'
FROM recall_targets t JOIN units u ON u.model_id = t.model_id
 AND u.serial_key BETWEEN t.key_from AND t.key_to
WHERE t.campaign_id = :id;
CREATE TEMP TABLE owners ON COMMIT DROP AS
SELECT r.contact_email AS email, min(r.account_id) AS account_id,
       md5(random()::text) || md5(random()::text) AS token, string_agg(u.serial, ', ') AS units
FROM recall_units ru JOIN registrations r ON r.unit_id = ru.unit_id AND r.status = 'active'
JOIN units u ON u.id = ru.unit_id
WHERE ru.campaign_id = :id GROUP BY r.contact_email;
WITH sent AS (
  INSERT INTO outbox (kind, to_address, subject, body_text, body_html)
  SELECT 'recall_notice', email, 'Product safety recall', 'Units: ' || units || ' ' || token,
         '<p>Units: ' || units || ' ' || token || '</p>'
  FROM owners RETURNING id, to_address)
INSERT INTO recall_notices (campaign_id, account_id, contact_email, token_hash, outbox_id)
SELECT :id, o.account_id, o.email, sha256(convert_to(o.token, 'UTF8')), s.id
FROM sent s JOIN owners o ON o.email = s.to_address;
UPDATE recall_units ru SET state = 'notified', notice_id = n.id
FROM registrations r, recall_notices n
WHERE ru.campaign_id = :id AND r.unit_id = ru.unit_id AND r.status = 'active'
  AND n.campaign_id = :id AND n.contact_email = r.contact_email;
UPDATE recall_units SET state = 'unreachable' WHERE campaign_id = :id AND state = 'affected';
UPDATE recall_campaigns SET status = 'launched', launched_at = now() WHERE id = :id;
COMMIT;
