ALTER TABLE unit_events DROP CONSTRAINT unit_events_kind_check;
ALTER TABLE unit_events ADD CONSTRAINT unit_events_kind_check CHECK (kind IN
    ('manufactured', 'received', 'moved', 'shipped', 'sold', 'unsold', 'registered', 'returned',
     'replaced', 'scrapped', 'adjusted', 'installed', 'removed', 'claimed', 'recalled', 'remedied')) NOT VALID;
DROP INDEX registrations_proof_file;
ALTER TABLE registrations DROP COLUMN proof_bytes;
DROP TABLE registration_drafts;
