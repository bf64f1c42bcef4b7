-- A passkey can be the first thing an account is made with (an invitation accepted with a
-- passkey): the account, its random user handle and the credential are stored together only once
-- the registration is verified, so nothing is left behind by a ceremony that fails. Until then
-- the handle the authenticator was given waits with the challenge (user_id stays NULL).
ALTER TABLE passkey_challenges ADD COLUMN user_handle text;
ALTER TABLE passkey_challenges ADD CONSTRAINT passkey_challenges_new_account
  CHECK (user_handle IS NULL OR (purpose = 'register' AND user_id IS NULL));
