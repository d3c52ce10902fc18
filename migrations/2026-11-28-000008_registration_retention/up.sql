-- The retention purge looks up the safety contacts kept after an account was deleted, by the day
-- their retention ends; only those rows are in the index (a small fraction of registrations).
CREATE INDEX registrations_retained ON registrations (retained_until) WHERE contact_retained;
