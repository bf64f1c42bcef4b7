-- Self sign-up: an account created from the hosted sign-up page waits for its address to be
-- verified before it can sign in. Accounts an administrator creates (or an invitation creates,
-- the invitation link having proved the address) never wait, so the flag is separate from
-- email_verified, which an administrator's user may lack without being locked out.
ALTER TABLE users ADD COLUMN awaiting_verification boolean NOT NULL DEFAULT false;
