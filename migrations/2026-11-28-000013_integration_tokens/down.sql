DROP TABLE api_idempotency_keys;
DROP TABLE api_token_reveals;
DROP TABLE api_tokens;
