-- OpenID Connect: registered clients, the provider's stored models (grants, codes, tokens,
-- sessions, interactions), sign-in throttling counters and password state on users.

ALTER TABLE users
  ADD COLUMN failed_sign_ins integer NOT NULL DEFAULT 0,
  ADD COLUMN locked_at timestamptz,
  ADD COLUMN password_changed_at timestamptz,
  ADD COLUMN last_sign_in_at timestamptz;

-- Sessions are the provider's Session model (oidc_payloads below), indexed by account.
DROP TABLE sessions;

-- Client secrets are stored as a keyed HMAC (never plaintext, never a slow password hash),
-- so the token endpoint is not CPU-bound on them.
CREATE TABLE oidc_clients (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  client_id text NOT NULL,
  name text NOT NULL,
  secret_hash text,
  metadata jsonb NOT NULL,
  disabled boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, client_id)
);

-- Storage behind oidc-provider's adapter contract (upsert, find, findByUid, findByUserCode,
-- consume, destroy, revokeByGrantId).
CREATE TABLE oidc_payloads (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  model text NOT NULL,
  id text NOT NULL,
  payload jsonb NOT NULL,
  grant_id text,
  uid text,
  user_code text,
  account_id text,
  expires_at timestamptz,
  consumed_at timestamptz,
  PRIMARY KEY (tenant_id, model, id)
);
CREATE INDEX oidc_payloads_grant ON oidc_payloads (tenant_id, grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX oidc_payloads_uid ON oidc_payloads (tenant_id, model, uid) WHERE uid IS NOT NULL;
CREATE INDEX oidc_payloads_user_code ON oidc_payloads (tenant_id, model, user_code) WHERE user_code IS NOT NULL;
CREATE INDEX oidc_payloads_account ON oidc_payloads (tenant_id, model, account_id) WHERE account_id IS NOT NULL;
CREATE INDEX oidc_payloads_expiry ON oidc_payloads (expires_at);

-- Failed sign-in counters per account and per client address (an HMAC of it), shared by
-- every replica so throttling holds across a load balancer.
CREATE TABLE sign_in_throttle (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  key text NOT NULL,
  failures integer NOT NULL DEFAULT 0,
  last_failure_at timestamptz NOT NULL DEFAULT now(),
  blocked_until timestamptz,
  PRIMARY KEY (tenant_id, key)
);

SELECT orthid_protect_tenant_table(t)
  FROM unnest(ARRAY['oidc_clients', 'oidc_payloads', 'sign_in_throttle']::regclass[]) AS t;

GRANT SELECT, INSERT, UPDATE, DELETE ON oidc_clients, oidc_payloads, sign_in_throttle TO orthid_app;
