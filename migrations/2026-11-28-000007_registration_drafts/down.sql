ALTER TABLE registrations DROP COLUMN proof_bytes;
DROP TABLE registration_drafts;
