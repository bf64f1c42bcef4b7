-- Key custody per tenant (bring your own key), crypto-shredded tenants, and the progress of key
-- rotations, which run online in batches and resume where they stopped.

-- A custody URI (pkcs11:..., awskms:...) whose root keys wrap this tenant's data keys; NULL is the
-- deployment's custody.
ALTER TABLE tenants ADD COLUMN key_custody text;

ALTER TABLE tenants DROP CONSTRAINT tenants_status_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_check CHECK (status IN ('active', 'disabled', 'shredded'));

-- One row per rotation: root (re-wrap every data key under a new root key version) or data
-- (re-encrypt every sealed value under a new data key version). Tenant-owned, like every table
-- with a tenant_id: a tenant's rotations are read and written inside that tenant.
CREATE TABLE key_rotations (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('root', 'data')),
  status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done')),
  target_key_id text NOT NULL,
  total integer NOT NULL DEFAULT 0,
  done integer NOT NULL DEFAULT 0,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  actor text NOT NULL
);
CREATE UNIQUE INDEX key_rotations_one_running ON key_rotations (tenant_id, kind) WHERE status = 'running';

SELECT orthid_protect_tenant_table('key_rotations');
GRANT SELECT, INSERT, UPDATE ON key_rotations TO orthid_app;
