-- The deployment a database belongs to: the keystore's deployment id, recorded in the one-row
-- deployment table by the first `orthid migrate` (or embedded start) that runs with the keystore,
-- and compared with the keystore at every start, dump and restore, so a keystore of another
-- deployment is refused instead of serving tenants whose keys it does not hold. Recorded once and
-- never changed: a database that changed deployment would orphan every wrapped data key.
CREATE FUNCTION orthid_deployment_immutable() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
BEGIN
  RAISE EXCEPTION 'the deployment id is recorded once and never changed; restore the database into a new one instead'
    USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER deployment_immutable
  BEFORE UPDATE OR DELETE ON deployment
  FOR EACH ROW EXECUTE FUNCTION orthid_deployment_immutable();
CREATE TRIGGER deployment_not_truncated
  BEFORE TRUNCATE ON deployment
  FOR EACH STATEMENT EXECUTE FUNCTION orthid_deployment_immutable();

-- Not tenant-owned, so no row-level security: every tenant's transaction may read which deployment
-- it runs in. The server only reads it (the owner records it, in migrate); nobody else sees it.
REVOKE ALL ON deployment FROM PUBLIC;
GRANT SELECT ON deployment TO orthid_app;
