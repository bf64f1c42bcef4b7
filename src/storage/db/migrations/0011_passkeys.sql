-- Passkeys (WebAuthn credentials): public keys, sign counters and backup flags per user, the
-- random user handle authenticators store for discoverable sign-in, and single-use ceremony
-- challenges kept in the database so every replica sees (and consumes) the same one.

-- The handle is random, never the user id: an authenticator shows it to any site that asks for
-- discoverable credentials of this RP, so it must say nothing about the account.
CREATE TABLE passkey_user_handles (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  user_id uuid NOT NULL,
  handle text NOT NULL,
  PRIMARY KEY (tenant_id, user_id),
  UNIQUE (tenant_id, handle),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- A public key is not a secret; the name is the user's own label ("laptop", "phone").
-- backup_eligible cannot change over a credential's life; backed_up may (sync turned on).
CREATE TABLE passkey_credentials (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id uuid NOT NULL,
  user_id uuid NOT NULL,
  credential_id text NOT NULL,
  public_key bytea NOT NULL,
  sign_count bigint NOT NULL DEFAULT 0 CHECK (sign_count >= 0),
  transports text[] NOT NULL DEFAULT '{}',
  backup_eligible boolean NOT NULL,
  backed_up boolean NOT NULL,
  aaguid text,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, credential_id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX passkey_credentials_user ON passkey_credentials (tenant_id, user_id);

-- One outstanding challenge per binding (an interaction, or a signed-in account page) and
-- purpose; taking it deletes it, so a response can be checked against it once.
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
