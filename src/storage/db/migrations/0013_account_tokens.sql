-- Single-use, expiring proofs sent to a person by mail: password reset, e-mail verification,
-- e-mail change and invitation links. Only a SHA-256 hash of the link's secret (and of the short
-- code read on another device) is stored, so a dump cannot be turned into working links. The
-- address and whatever else the link carries are sealed under the tenant's data key; the blind
-- index of the address lets throttles and lookups find tokens without opening them.
CREATE TABLE account_tokens (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id uuid NOT NULL,
  purpose text NOT NULL CHECK (purpose IN ('password_reset', 'email_verification', 'email_change', 'invitation')),
  secret_hash bytea NOT NULL CHECK (octet_length(secret_hash) = 32),
  code_hash bytea CHECK (octet_length(code_hash) = 32),
  -- Wrong codes entered against this token; past the limit it stops accepting any.
  code_attempts integer NOT NULL DEFAULT 0,
  user_id uuid,
  email_index text,
  -- Sealed JSON: the address and the purpose's own fields (e.g. an invitation's organisation).
  payload text NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  used_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, secret_hash),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX account_tokens_user ON account_tokens (tenant_id, user_id, purpose) WHERE used_at IS NULL;
CREATE INDEX account_tokens_email ON account_tokens (tenant_id, email_index, purpose, created_at);
CREATE INDEX account_tokens_expiry ON account_tokens (expires_at);
SELECT orthid_protect_tenant_table('account_tokens');
