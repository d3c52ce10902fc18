-- A new token's secret waiting for its one display is now sealed with ChaCha20-Poly1305
-- (tokens::seal): a 12-byte nonce and a 16-byte tag. Secrets sealed the old way cannot be
-- opened any more; they expire within minutes anyway, so they are forgotten now.
DELETE FROM api_token_reveals;
ALTER TABLE api_token_reveals
    DROP CONSTRAINT api_token_reveals_nonce_check,
    ADD CONSTRAINT api_token_reveals_nonce_check CHECK (length(nonce) = 12),
    ADD CONSTRAINT api_token_reveals_sealed_check CHECK (length(sealed) > 16);
