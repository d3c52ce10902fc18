DROP TABLE session_second_factor;
DROP TABLE account_totp;
