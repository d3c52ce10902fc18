-- The models a launched campaign affects and how many of their units, written at launch from
-- the affected set, so a model's page says which recalls concern it without reading the
-- campaign's units.
CREATE TABLE recall_campaign_models (
    campaign_id BIGINT NOT NULL REFERENCES recall_campaigns (id),
    model_id    BIGINT NOT NULL REFERENCES product_models (id),
    units       BIGINT NOT NULL,
    PRIMARY KEY (model_id, campaign_id)
);
-- Campaigns launched before this migration.
INSERT INTO recall_campaign_models (campaign_id, model_id, units)
SELECT ru.campaign_id, u.model_id, count(*)
FROM recall_units ru JOIN units u ON u.id = ru.unit_id
GROUP BY ru.campaign_id, u.model_id;
