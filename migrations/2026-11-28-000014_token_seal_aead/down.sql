DELETE FROM api_token_reveals;
ALTER TABLE api_token_reveals
    DROP CONSTRAINT api_token_reveals_sealed_check,
    DROP CONSTRAINT api_token_reveals_nonce_check,
    ADD CONSTRAINT api_token_reveals_nonce_check CHECK (length(nonce) = 16);
