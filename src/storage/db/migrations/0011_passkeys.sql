-- Passkeys (WebAuthn credentials) as a kind of second factor: each is a user_factors row (its
-- name, when it was made and last used; removing the factor removes the credential) with its
-- public key, sign counter and backup flags here; the random user handle authenticators store
-- for discoverable sign-in; and single-use ceremony challenges kept in the database so every
-- replica sees (and consumes) the same one.

ALTER TABLE user_factors DROP CONSTRAINT user_factors_kind;
ALTER TABLE user_factors ADD CONSTRAINT user_factors_kind CHECK (kind IN ('totp', 'passkey'));

-- The handle is random, never the user id: an authenticator shows it to any page of this RP
-- that asks for discoverable credentials, so it must say nothing about the account.
CREATE TABLE passkey_user_handles (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  user_id uuid NOT NULL,
  handle text NOT NULL,
  PRIMARY KEY (tenant_id, user_id),
  UNIQUE (tenant_id, handle),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- A public key is not a secret. backup_eligible (BE) cannot change over a credential's life;
-- backed_up (BS) may, when the user turns sync on or off.
CREATE TABLE passkey_credentials (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  factor_id uuid NOT NULL,
  user_id uuid NOT NULL,
  credential_id text NOT NULL,
  public_key bytea NOT NULL,
  sign_count bigint NOT NULL DEFAULT 0 CHECK (sign_count >= 0),
  transports text[] NOT NULL DEFAULT '{}',
  backup_eligible boolean NOT NULL,
  backed_up boolean NOT NULL,
  aaguid text,
  PRIMARY KEY (tenant_id, factor_id),
  UNIQUE (tenant_id, credential_id),
  FOREIGN KEY (tenant_id, factor_id) REFERENCES user_factors (tenant_id, id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX passkey_credentials_user ON passkey_credentials (tenant_id, user_id);

-- One outstanding challenge per binding (an interaction) and purpose; taking it deletes it, so
-- a response is checked against it once. user_id: the user a second factor or a registration
-- is for (NULL for a passwordless sign-in).
CREATE TABLE passkey_challenges (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  binding text NOT NULL,
  purpose text NOT NULL CHECK (purpose IN ('register', 'authenticate')),
  challenge text NOT NULL,
  user_id uuid,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, binding, purpose)
);
CREATE INDEX passkey_challenges_expiry ON passkey_challenges (expires_at);

SELECT orthid_protect_tenant_table(t)
  FROM unnest(ARRAY['passkey_user_handles', 'passkey_credentials', 'passkey_challenges']::regclass[]) AS t;
