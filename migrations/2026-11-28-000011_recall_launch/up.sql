-- A launch writes 1,000,000 recall_units rows and 100,000 notices and mails in one
-- transaction. Three changes keep it within seconds (bench/recall/run, BENCHMARKS.md).

-- 1. No per-row foreign-key checks on the rows a launch writes. A check is a key-share lock on
--    the referenced row, one at a time: for 1,000,000 units it was 17.5 of the launch's 34 s.
--    The launch writes these rows only from rows it has just read in the same transaction, and
--    the rows they point at are never deleted: the trigger below refuses it.
ALTER TABLE recall_units
    DROP CONSTRAINT recall_units_campaign_id_fkey,
    DROP CONSTRAINT recall_units_unit_id_fkey,
    DROP CONSTRAINT recall_units_notice_id_fkey;
ALTER TABLE recall_notices
    DROP CONSTRAINT recall_notices_campaign_id_fkey,
    DROP CONSTRAINT recall_notices_account_id_fkey,
    DROP CONSTRAINT recall_notices_outbox_id_fkey,
    DROP CONSTRAINT recall_notices_second_outbox_id_fkey;

CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rows of % are never deleted (recall records point at them)', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;

-- 2. Mail bodies shared by many mails: a recall notice is rendered once per campaign, and each
--    owner's mail is the template with their values filled in when it is sent (the launch used
--    to write 100,000 bodies of about 3 KB each).
CREATE TABLE mail_templates (
    id         BIGSERIAL PRIMARY KEY,
    -- Plain text and HTML bodies with %%NAME%% placeholders; the outbox row's `fill` holds the
    -- values (plain text: escaped for the HTML body when sent).
    body_text  TEXT NOT NULL,
    body_html  TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
ALTER TABLE outbox
    ADD COLUMN template_id BIGINT,
    ADD COLUMN fill JSONB,
    ALTER COLUMN body_text DROP NOT NULL,
    ALTER COLUMN body_html DROP NOT NULL,
    ADD CONSTRAINT outbox_body_or_template CHECK (
        (template_id IS NULL AND body_text IS NOT NULL AND body_html IS NOT NULL)
        OR (template_id IS NOT NULL AND body_text IS NULL AND body_html IS NULL));
-- The notice and the second notice of a campaign, rendered at launch.
ALTER TABLE recall_campaigns
    ADD COLUMN notice_template_id BIGINT REFERENCES mail_templates (id),
    ADD COLUMN second_template_id BIGINT REFERENCES mail_templates (id);

CREATE TRIGGER units_never_deleted BEFORE DELETE OR TRUNCATE ON units
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_delete();
CREATE TRIGGER accounts_never_deleted BEFORE DELETE OR TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_delete();
CREATE TRIGGER recall_campaigns_never_deleted BEFORE DELETE OR TRUNCATE ON recall_campaigns
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_delete();
CREATE TRIGGER recall_notices_never_deleted BEFORE DELETE OR TRUNCATE ON recall_notices
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_delete();
CREATE TRIGGER outbox_never_deleted BEFORE DELETE OR TRUNCATE ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_delete();
CREATE TRIGGER mail_templates_never_deleted BEFORE DELETE OR TRUNCATE ON mail_templates
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_delete();

-- 3. Two B-trees on recall_units instead of three: the key leads with the unit (the lookup asks
--    "is this unit recalled?"), and a campaign's rows, written together at its launch, are
--    found through a BRIN index a few pages big. Room on each page keeps state changes (HOT
--    updates) on their page, so the BRIN ranges stay tight.
ALTER TABLE recall_units DROP CONSTRAINT recall_units_pkey;
DROP INDEX recall_units_unit;
ALTER TABLE recall_units ADD PRIMARY KEY (unit_id, campaign_id);
CREATE INDEX recall_units_campaign ON recall_units USING brin (campaign_id);
ALTER TABLE recall_units SET (fillfactor = 90);
