// Operator operations: one function per CLI verb that needs the database. The CLI runs them
// in-process, or, when a running embedded server holds the database, through its control socket.
import { readAudit, verifyAuditChain } from '../audit/audit-log.js';
import { OrthIdError } from '../core/errors.js';
import type { OrthId } from '../main.js';
import { withTenant } from '../storage/db/database.js';
import { issuerFor } from '../tenancy/tenants.js';

type Args = Record<string, unknown>;

function text(args: Args, name: string): string {
  const value = args[name];
  if (typeof value !== 'string' || value === '') {
    throw new OrthIdError('request.invalid', `Missing required argument "${name}".`);
  }
  return value;
}

function optionalText(args: Args, name: string): string | undefined {
  const value = args[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

export const operations = {
  async 'tenant.create'(app: OrthId, args: Args) {
    const tenant = await app.tenants.create({
      slug: text(args, 'slug'),
      displayName: optionalText(args, 'displayName'),
      actor: 'cli',
    });
    return { ...tenant, issuer: issuerFor(app.config.publicUrl, tenant.slug) };
  },

  async 'tenant.list'(app: OrthId) {
    return (await app.tenants.list()).map((t) => ({ ...t, issuer: issuerFor(app.config.publicUrl, t.slug) }));
  },

  async 'user.create'(app: OrthId, args: Args) {
    const tenant = await app.tenants.get(text(args, 'tenant'));
    return withTenant(app.db, tenant.id, (tx) =>
      app.users.create(
        tx,
        tenant.id,
        { email: text(args, 'email'), name: optionalText(args, 'name') },
        'cli',
      ),
    );
  },

  async 'audit.verify'(app: OrthId, args: Args) {
    const tenant = await app.tenants.get(text(args, 'tenant'));
    const report = await withTenant(app.db, tenant.id, (tx) => verifyAuditChain(tx));
    return { tenant: tenant.slug, ...report };
  },

  async 'audit.tail'(app: OrthId, args: Args) {
    const tenant = await app.tenants.get(text(args, 'tenant'));
    const limit = Number(args.limit ?? 20);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new OrthIdError('request.invalid', '--limit must be a whole number from 1 to 1000.');
    }
    return withTenant(app.db, tenant.id, async (tx) =>
      readAudit(tx, await app.tenantKeys.forTenant(tx, tenant.id), { limit }),
    );
  },
} satisfies Record<string, (app: OrthId, args: Args) => Promise<unknown>>;

export type OperationName = keyof typeof operations;

export function isOperation(name: string): name is OperationName {
  return Object.hasOwn(operations, name);
}

export async function runOperation(app: OrthId, name: string, args: Args): Promise<unknown> {
  if (!isOperation(name)) {
    throw new OrthIdError('control.unknown_operation', `Unknown operation "${name}".`);
  }
  return operations[name](app, args);
}
