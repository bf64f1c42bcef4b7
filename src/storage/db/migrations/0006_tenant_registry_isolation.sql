-- The tenant registry has no tenant_id, so the shared isolation policy does not fit it; without a
-- policy of its own, any tenant's transaction could rewrite another tenant's settings, status or
-- key custody. Everyone may read it (a tenant is resolved by slug before it is entered), a tenant
-- is registered only by a transaction that has entered none, and a tenant's transaction changes
-- only its own row.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY registry_read ON tenants FOR SELECT USING (true);
CREATE POLICY registry_register ON tenants FOR INSERT WITH CHECK (orthid_current_tenant() IS NULL);
CREATE POLICY registry_own_row ON tenants FOR UPDATE
  USING (id = orthid_current_tenant()) WITH CHECK (id = orthid_current_tenant());
CREATE POLICY registry_own_row_delete ON tenants FOR DELETE USING (id = orthid_current_tenant());
