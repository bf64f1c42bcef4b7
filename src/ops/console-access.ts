// Who can open the admin console: its OIDC client in each tenant (registered with the tenant,
// repaired on start) and the administrator role a user gets through `orthid user create --admin`.
import type { Queryable } from '../core/sql.js';
import { CONSOLE_CLIENT_ID, consoleRedirectUri, ensureConsoleClient } from '../oidc/console-client.js';
import { withTenant } from '../storage/db/database.js';
import { ADMIN_PERMISSION, adminResourceIndicator, SYSTEM_TENANT_SLUG } from '../tenancy/admin-resource.js';
import { createApiResourcesQueries } from '../tenancy/api-resources.queries.js';
import type { OrthId } from './orthid.js';

export type ConsoleAccessDeps = Pick<OrthId, 'db' | 'config' | 'tenants' | 'clients' | 'rbac'>;

/** The role and organisation through which `user create --admin` makes an administrator. */
export const ADMINISTRATOR_ROLE = 'administrator';
export const ADMINISTRATORS_ORGANISATION = 'Administrators';

/** Registers the console's client in a new tenant, in the transaction that creates it, as `actor`. */
export function setUpConsoleClient(app: Pick<ConsoleAccessDeps, 'clients' | 'config'>, actor = 'system') {
  return async (tx: Queryable, tenant: { id: string }): Promise<void> => {
    await ensureConsoleClient(app.clients, tx, tenant.id, app.config.publicUrl, actor);
  };
}

/**
 * Every start: gives each tenant the console's client at the current public URL. The system
 * tenant goes last and a start whose system tenant is current does nothing more, so a deployment
 * that moved (or predates the console) is repaired once, and a pass cut short is finished next time.
 */
export async function repairConsoleClients(app: ConsoleAccessDeps): Promise<number> {
  const tenants = (await app.tenants.list()).filter((t) => t.status !== 'shredded');
  const system = tenants.find((t) => t.slug === SYSTEM_TENANT_SLUG);
  if (!system) return 0;
  const expected = consoleRedirectUri(app.config.publicUrl);
  const current = await withTenant(app.db, system.id, async (tx) =>
    app.clients.get(tx, CONSOLE_CLIENT_ID).then(
      (c) => c.redirectUris.length === 1 && c.redirectUris[0] === expected,
      () => false,
    ),
  );
  if (current) return 0;
  let changed = 0;
  for (const tenant of [...tenants.filter((t) => t !== system), system]) {
    const outcome = await withTenant(app.db, tenant.id, (tx) =>
      ensureConsoleClient(app.clients, tx, tenant.id, app.config.publicUrl),
    );
    if (outcome !== 'unchanged') changed += 1;
  }
  return changed;
}

async function findAll<T>(
  list: (page: { limit: number; after?: string }) => Promise<{ items: T[]; next: string | null }>,
  match: (item: T) => boolean,
): Promise<T | undefined> {
  let after: string | undefined;
  for (;;) {
    const page = await list({ limit: 200, ...(after ? { after } : {}) });
    const found = page.items.find(match);
    if (found || !page.next) return found;
    after = page.next;
  }
}

/**
 * Makes a user an administrator of their tenant (of every tenant, in the system tenant): a
 * membership of the "Administrators" organisation holding the "administrator" role with
 * orthid:admin, each created when missing. Audited as the actor.
 */
export async function grantAdministrator(
  app: Pick<ConsoleAccessDeps, 'rbac' | 'config'>,
  tx: Queryable,
  tenantId: string,
  userId: string,
  actor: string,
): Promise<void> {
  const { roles, organisations, memberships, permissions } = app.rbac;
  let role = await findAll(
    (page) => roles.list(tx, page),
    (r) => r.name === ADMINISTRATOR_ROLE,
  );
  if (!role) {
    role = await roles.create(
      tx,
      tenantId,
      { name: ADMINISTRATOR_ROLE, description: 'Manages the tenant through the admin API and console.' },
      actor,
    );
  }
  const held = await findAll(
    (page) => roles.listPermissions(tx, role.id, page),
    (p) => p.name === ADMIN_PERMISSION,
  );
  if (!held) {
    const api = (await createApiResourcesQueries(tx).byIndicator(
      adminResourceIndicator(app.config.publicUrl),
    ))!;
    const permission = (await findAll(
      (page) => permissions.list(tx, api.id, page),
      (p) => p.name === ADMIN_PERMISSION,
    ))!;
    await roles.addPermission(tx, tenantId, role.id, permission.id, actor);
  }
  const organisation =
    (await findAll(
      (page) => organisations.list(tx, page),
      (o) => o.name === ADMINISTRATORS_ORGANISATION,
    )) ?? (await organisations.create(tx, tenantId, { name: ADMINISTRATORS_ORGANISATION }, actor));
  const membership = await memberships.add(tx, tenantId, organisation.id, userId, actor);
  await memberships.grantRole(tx, tenantId, membership.id, role.id, actor);
}
