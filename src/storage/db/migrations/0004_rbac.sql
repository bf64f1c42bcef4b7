-- RBAC for machine clients: roles a client holds tenant-wide (a client belongs to no
-- organisation), plus indexes for resolving a user's grants and for cascading role deletes.

CREATE TABLE client_roles (
  tenant_id uuid NOT NULL,
  client_id text NOT NULL,
  role_id uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, client_id, role_id),
  FOREIGN KEY (tenant_id, client_id) REFERENCES oidc_clients (tenant_id, client_id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX client_roles_role ON client_roles (tenant_id, role_id);

-- resolveGrants starts from a user's memberships; role deletes cascade through these.
CREATE INDEX memberships_user ON memberships (tenant_id, user_id);
CREATE INDEX membership_roles_role ON membership_roles (tenant_id, role_id);
CREATE INDEX role_permissions_permission ON role_permissions (tenant_id, permission_id);

SELECT orthid_protect_tenant_table('client_roles');

GRANT SELECT, INSERT, UPDATE, DELETE ON client_roles TO orthid_app;
