DROP INDEX registrations_retained;
