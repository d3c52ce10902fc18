-- Removes campaign :id and everything its launch wrote (affected units, notices, their mails and
-- templates), so that the benchmark data set stays as bench/dataset.sql made it: every run then
-- measures the same data. Launched campaigns cannot be deleted (triggers refuse it); the
-- benchmark's own may, with triggers off.
\set ON_ERROR_STOP on
BEGIN;
SET LOCAL session_replication_role = replica;
CREATE TEMP TABLE forget_templates ON COMMIT DROP AS
SELECT notice_template_id AS id FROM recall_campaigns WHERE id = :id AND notice_template_id IS NOT NULL
UNION SELECT second_template_id FROM recall_campaigns WHERE id = :id AND second_template_id IS NOT NULL
UNION SELECT o.template_id FROM outbox o JOIN recall_notices n ON o.id IN (n.outbox_id, n.second_outbox_id)
      WHERE n.campaign_id = :id AND o.template_id IS NOT NULL;
DELETE FROM recall_units WHERE campaign_id = :id;
DELETE FROM outbox o USING recall_notices n WHERE n.campaign_id = :id AND o.id IN (n.outbox_id, n.second_outbox_id);
DELETE FROM recall_notices WHERE campaign_id = :id;
DELETE FROM recall_campaign_models WHERE campaign_id = :id;
DELETE FROM recall_targets WHERE campaign_id = :id;
DELETE FROM recall_campaigns WHERE id = :id;
DELETE FROM mail_templates WHERE id IN (SELECT id FROM forget_templates);
COMMIT;
