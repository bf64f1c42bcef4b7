-- Verify and drill jobs started from the admin API, kept in the database so every replica, and a
-- restarted server, sees them. Deployment-wide: a job concerns the backup sets, not one tenant.
-- The steps, report and error are what the API shows (no secrets: set ids, check names, codes).
CREATE TABLE backup_jobs (
  id uuid PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('verify', 'drill')),
  set_id text NOT NULL CHECK (set_id ~ '^[A-Za-z0-9._:-]{1,200}$'),
  status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
  started_by text NOT NULL,
  started_at timestamptz NOT NULL,
  finished_at timestamptz,
  steps jsonb NOT NULL DEFAULT '[]',
  result jsonb,
  error jsonb,
  -- The server process running the job (host/pid/instance), and until when it has it: the owner
  -- renews the lease while it works, so a running job whose lease ran out belongs to a process
  -- that died (or lost the database) and is shown as interrupted.
  owner text NOT NULL,
  lease_until timestamptz NOT NULL,
  CHECK ((status = 'running') = (finished_at IS NULL))
);
-- One verify and one drill at a time across every replica: a second running job of a kind
-- conflicts here, whichever process inserts it.
CREATE UNIQUE INDEX backup_jobs_one_running ON backup_jobs (kind) WHERE status = 'running';
CREATE INDEX backup_jobs_newest ON backup_jobs (started_at DESC, id DESC);

-- Not tenant-owned, so not the tenant isolation policy; but no tenant's transaction may see or
-- change it either: only a transaction that has entered no tenant (the deployment routes' own).
ALTER TABLE backup_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE backup_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY deployment_only ON backup_jobs
  USING (orthid_current_tenant() IS NULL) WITH CHECK (orthid_current_tenant() IS NULL);

REVOKE ALL ON backup_jobs FROM PUBLIC;
-- The server records and follows jobs (DELETE: the oldest finished ones are forgotten); migrate
-- keeps exactly these (src/storage/db/app-role.queries.ts).
GRANT SELECT, INSERT, UPDATE, DELETE ON backup_jobs TO orthid_app;
