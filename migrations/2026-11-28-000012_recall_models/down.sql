DROP TABLE recall_campaign_models;
