-- The same work as a launch, hand-written: the affected units of campaign :id stored, one notice
-- per owner address queued in the outbox (a shared template, each owner's units and link filled
-- in) and recorded, units marked notified or unreachable, in one transaction. Straight from
-- `units` each time (no temporary affected set): the owners first, then every unit once. For
-- campaigns of whole models (bench/recall/campaign.sql).
\set ON_ERROR_STOP on
BEGIN;
SET LOCAL work_mem = '256MB';
CREATE TEMP TABLE owners ON COMMIT DROP AS
SELECT nextval('recall_notices_id_seq') AS notice_id, nextval('outbox_id_seq') AS outbox_id,
       r.contact_email AS email, min(r.account_id) AS account_id,
       md5(random()::text) || md5(random()::text) AS token,
       string_agg(u.serial, E'\n' ORDER BY u.serial_key) AS units
FROM recall_targets t JOIN units u ON u.model_id = t.model_id
JOIN registrations r ON r.unit_id = u.id AND r.status = 'active'
WHERE t.campaign_id = :id GROUP BY r.contact_email;
WITH tpl AS (INSERT INTO mail_templates (body_text, body_html)
             VALUES ('Units: %%UNITS%% %%LINK%%', '<p>Units: %%UNITS%% %%LINK%%</p>') RETURNING id)
INSERT INTO outbox (id, kind, to_address, subject, template_id, fill)
SELECT o.outbox_id, 'recall_notice', o.email, 'Product safety recall', tpl.id,
       jsonb_build_object('UNITS', o.units, 'LINK', 'https://x.example/ack?t=' || o.token)
FROM owners o, tpl;
INSERT INTO recall_notices (id, campaign_id, account_id, contact_email, token_hash, outbox_id)
SELECT notice_id, :id, account_id, email, sha256(convert_to(token, 'UTF8')), outbox_id FROM owners;
INSERT INTO recall_units (campaign_id, unit_id, lot_id, state, notice_id)
SELECT :id, u.id, u.lot_id, CASE WHEN o.notice_id IS NULL THEN 'unreachable' ELSE 'notified' END,
       o.notice_id
FROM recall_targets t JOIN units u ON u.model_id = t.model_id
LEFT JOIN registrations r ON r.unit_id = u.id AND r.status = 'active'
LEFT JOIN owners o ON o.email = r.contact_email
WHERE t.campaign_id = :id;
UPDATE recall_campaigns SET status = 'launched', launched_at = now() WHERE id = :id;
COMMIT;
