DROP TABLE claim_service_levels;
DROP TABLE claim_photos;
DROP TABLE claim_events;
DROP TABLE claims;
DROP SEQUENCE claim_number_seq;
