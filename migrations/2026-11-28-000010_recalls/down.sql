ALTER TABLE claims DROP COLUMN recall_campaign_id;
DROP TABLE recall_units;
DROP TABLE recall_notices;
DROP TABLE recall_targets;
DROP TABLE recall_campaigns;
