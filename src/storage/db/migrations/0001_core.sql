-- Core schema: the tenant registry, tenant-owned tables for identity and RBAC, wrapped tenant
-- keys, signing keys and the hash-chained audit log. Every tenant-owned table is protected by
-- orthid_protect_tenant_table(), so none can forget its row-level-security policy.

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orthid_app') THEN
    CREATE ROLE orthid_app NOLOGIN NOBYPASSRLS NOSUPERUSER NOCREATEDB NOCREATEROLE;
  END IF;
END
$$;

CREATE FUNCTION orthid_current_tenant() RETURNS uuid
  LANGUAGE sql STABLE
  AS $$ SELECT nullif(current_setting('orthid.tenant_id', true), '')::uuid $$;

-- Enables and forces RLS on a tenant-owned table and installs the one isolation policy.
CREATE FUNCTION orthid_protect_tenant_table(tbl regclass) RETURNS void
  LANGUAGE plpgsql
  AS $$
BEGIN
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
  EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
  EXECUTE format(
    'CREATE POLICY tenant_isolation ON %s USING (tenant_id = orthid_current_tenant()) WITH CHECK (tenant_id = orthid_current_tenant())',
    tbl);
END
$$;

CREATE TABLE deployment (
  id uuid PRIMARY KEY,
  singleton boolean NOT NULL DEFAULT true UNIQUE CHECK (singleton),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenants (
  id uuid PRIMARY KEY,
  slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$'),
  display_name text NOT NULL,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  settings jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Data and blind-index keys per tenant, each wrapped by a root key held by the key custody.
CREATE TABLE tenant_keys (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id uuid NOT NULL,
  purpose text NOT NULL CHECK (purpose IN ('data', 'index')),
  version integer NOT NULL,
  custody text NOT NULL,
  root_key_id text NOT NULL,
  wrapped text NOT NULL,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'decrypt_only', 'destroyed')),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, purpose, version)
);

CREATE TABLE signing_keys (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  kid text NOT NULL,
  alg text NOT NULL CHECK (alg IN ('EdDSA', 'ES256', 'RS256')),
  public_jwk jsonb NOT NULL,
  private_jwk text NOT NULL,
  status text NOT NULL CHECK (status IN ('active', 'retiring', 'retired')),
  created_at timestamptz NOT NULL DEFAULT now(),
  retire_after timestamptz,
  PRIMARY KEY (tenant_id, kid)
);

-- Personal fields (email, name, phone, profile) are AES-256-GCM ciphertext; email look-ups use
-- the keyed blind index in email_index.
CREATE TABLE users (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id uuid NOT NULL,
  email_index text NOT NULL,
  email text NOT NULL,
  email_verified boolean NOT NULL DEFAULT false,
  name text,
  phone text,
  profile text,
  password_hash text,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, email_index)
);

CREATE TABLE organisations (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id uuid NOT NULL,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, name)
);

CREATE TABLE memberships (
  tenant_id uuid NOT NULL,
  id uuid NOT NULL,
  organisation_id uuid NOT NULL,
  user_id uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, organisation_id, user_id),
  FOREIGN KEY (tenant_id, organisation_id) REFERENCES organisations (tenant_id, id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- An API resource is an audience (resource indicator); its permissions are the scopes it accepts.
CREATE TABLE api_resources (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id uuid NOT NULL,
  indicator text NOT NULL,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, indicator)
);

CREATE TABLE permissions (
  tenant_id uuid NOT NULL,
  id uuid NOT NULL,
  resource_id uuid NOT NULL,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, resource_id, name),
  FOREIGN KEY (tenant_id, resource_id) REFERENCES api_resources (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE roles (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id uuid NOT NULL,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, name)
);

CREATE TABLE role_permissions (
  tenant_id uuid NOT NULL,
  role_id uuid NOT NULL,
  permission_id uuid NOT NULL,
  PRIMARY KEY (tenant_id, role_id, permission_id),
  FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, permission_id) REFERENCES permissions (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE membership_roles (
  tenant_id uuid NOT NULL,
  membership_id uuid NOT NULL,
  role_id uuid NOT NULL,
  PRIMARY KEY (tenant_id, membership_id, role_id),
  FOREIGN KEY (tenant_id, membership_id) REFERENCES memberships (tenant_id, id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE sessions (
  tenant_id uuid NOT NULL,
  id uuid NOT NULL,
  user_id uuid NOT NULL,
  token_hash text NOT NULL,
  ip text,
  user_agent text,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  idle_expires_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, token_hash),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- Append-only and hash-chained per tenant: hash = SHA-256(canonical(event) || prev_hash).
CREATE TABLE audit_events (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  seq bigint NOT NULL CHECK (seq > 0),
  id uuid NOT NULL,
  occurred_at timestamptz NOT NULL,
  actor text NOT NULL,
  action text NOT NULL,
  target text,
  ip text,
  user_agent text,
  outcome text NOT NULL CHECK (outcome IN ('success', 'failure')),
  details text,
  prev_hash text NOT NULL,
  hash text NOT NULL,
  PRIMARY KEY (tenant_id, seq),
  UNIQUE (tenant_id, id)
);

CREATE FUNCTION orthid_audit_immutable() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_events_immutable
  BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION orthid_audit_immutable();

SELECT orthid_protect_tenant_table(t)
  FROM unnest(ARRAY[
    'tenant_keys', 'signing_keys', 'users', 'organisations', 'memberships', 'api_resources',
    'permissions', 'roles', 'role_permissions', 'membership_roles', 'sessions', 'audit_events'
  ]::regclass[]) AS t;

GRANT SELECT ON deployment TO orthid_app;
GRANT SELECT, INSERT, UPDATE ON tenants TO orthid_app;
GRANT SELECT, INSERT, UPDATE ON tenant_keys, signing_keys TO orthid_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON users, organisations, memberships, api_resources, permissions,
  roles, role_permissions, membership_roles, sessions TO orthid_app;
GRANT SELECT, INSERT ON audit_events TO orthid_app;
