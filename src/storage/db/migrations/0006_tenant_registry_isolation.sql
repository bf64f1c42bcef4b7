-- The tenant registry has no tenant_id, so the shared isolation policy does not fit it; without a
-- policy of its own, any tenant's transaction could rewrite another tenant's settings, status or
-- key custody. A transaction that has entered no tenant reads the whole registry (a tenant is
-- resolved by slug before it is entered) and is the only one that may register a tenant; a
-- tenant's transaction sees and changes only its own row.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY registry_read ON tenants FOR SELECT
  USING (orthid_current_tenant() IS NULL OR id = orthid_current_tenant());
CREATE POLICY registry_register ON tenants FOR INSERT WITH CHECK (orthid_current_tenant() IS NULL);
CREATE POLICY registry_own_row ON tenants FOR UPDATE
  USING (id = orthid_current_tenant()) WITH CHECK (id = orthid_current_tenant());
CREATE POLICY registry_own_row_delete ON tenants FOR DELETE USING (id = orthid_current_tenant());
