DROP INDEX recall_units_campaign;
ALTER TABLE recall_units RESET (fillfactor);
ALTER TABLE recall_units DROP CONSTRAINT recall_units_pkey;
ALTER TABLE recall_units ADD PRIMARY KEY (campaign_id, unit_id);
CREATE INDEX recall_units_unit ON recall_units (unit_id);
DROP TRIGGER units_never_deleted ON units;
DROP TRIGGER accounts_never_deleted ON accounts;
DROP TRIGGER recall_campaigns_never_deleted ON recall_campaigns;
DROP TRIGGER recall_notices_never_deleted ON recall_notices;
DROP TRIGGER outbox_never_deleted ON outbox;
DROP TRIGGER mail_templates_never_deleted ON mail_templates;
ALTER TABLE recall_campaigns DROP COLUMN notice_template_id, DROP COLUMN second_template_id;
DELETE FROM outbox WHERE template_id IS NOT NULL;
ALTER TABLE outbox DROP CONSTRAINT outbox_body_or_template, DROP COLUMN template_id,
    DROP COLUMN fill, ALTER COLUMN body_text SET NOT NULL, ALTER COLUMN body_html SET NOT NULL;
DROP TABLE mail_templates;
DROP FUNCTION refuse_delete();
ALTER TABLE recall_units
    ADD FOREIGN KEY (campaign_id) REFERENCES recall_campaigns (id),
    ADD FOREIGN KEY (unit_id) REFERENCES units (id),
    ADD FOREIGN KEY (notice_id) REFERENCES recall_notices (id);
ALTER TABLE recall_notices
    ADD FOREIGN KEY (campaign_id) REFERENCES recall_campaigns (id),
    ADD FOREIGN KEY (account_id) REFERENCES accounts (id),
    ADD FOREIGN KEY (outbox_id) REFERENCES outbox (id),
    ADD FOREIGN KEY (second_outbox_id) REFERENCES outbox (id);
