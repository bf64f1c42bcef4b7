-- Second factors. A user's factors (one row each, whatever their kind) with the kind's sealed
-- secret, its replay state and when it was last used; recovery codes stored only as keyed
-- hashes; and the flag that walks a user through enrolment at their next sign-in. The tenant's
-- MFA policy lives in tenants.settings (key "mfa"), with the rest of its sign-in policy.

-- kind: what verifies the factor. Another kind is added by replacing user_factors_kind.
-- status: 'pending' from the start of an enrolment until its first correct code; a pending
--   factor counts for nothing at sign-in and can only be confirmed from the interaction that
--   began it (binding: a keyed hash of that interaction's id).
-- secret: sealed (tenant data key, bound to this table, column and row), e.g. a TOTP key.
-- last_step: the newest TOTP time step accepted, so a code is never accepted twice.
CREATE TABLE user_factors (
  tenant_id uuid NOT NULL,
  id uuid NOT NULL,
  user_id uuid NOT NULL,
  kind text NOT NULL CONSTRAINT user_factors_kind CHECK (kind IN ('totp')),
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active')),
  name text,
  secret text,
  last_step bigint,
  binding text,
  created_at timestamptz NOT NULL DEFAULT now(),
  confirmed_at timestamptz,
  last_used_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
  CHECK ((status = 'active') = (confirmed_at IS NOT NULL))
);
CREATE INDEX user_factors_user ON user_factors (tenant_id, user_id);

-- code_hash: HMAC of the normalised code under the tenant's index key; used_at: spent.
CREATE TABLE user_recovery_codes (
  tenant_id uuid NOT NULL,
  user_id uuid NOT NULL,
  code_hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  used_at timestamptz,
  PRIMARY KEY (tenant_id, user_id, code_hash),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- Set by an administrator (whose request also removed the user's factors); cleared when the user
-- completes a new enrolment.
ALTER TABLE users ADD COLUMN IF NOT EXISTS mfa_reenrol boolean NOT NULL DEFAULT false;

SELECT orthid_protect_tenant_table('user_factors');
SELECT orthid_protect_tenant_table('user_recovery_codes');
