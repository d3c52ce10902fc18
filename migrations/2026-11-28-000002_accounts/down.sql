DROP TABLE audit_log;
DROP TABLE outbox;
DROP TABLE account_tokens;
DROP TABLE sessions;
DROP TABLE accounts;
