// A user's data-export bundle for access and portability requests: the profile with its fields
// decrypted, organisation memberships with their roles, active sign-in sessions and the audit
// events by or about the user, signed and written to object storage.
import { appendAudit } from '../audit/audit-log.js';
import type { Queryable } from '../storage/db/database.js';
import { withTenant } from '../storage/db/database.js';
import type { Page, PageRequest } from '../tenancy/page.js';
import { issuerFor, type Tenant } from '../tenancy/tenants.js';
import { auditEventsInRange } from './audit-archive.js';
import { keyTime, type UserExportDeps } from './bundle-deps.js';
import { activeBundleKey } from './tenant-bundle-keys.js';
import { writeBundle } from './write-bundle.js';

export interface UserExportInfo {
  key: string;
  size: number;
  sha256: string;
  createdAt: string;
  userId: string;
  files: string[];
}

async function all<T>(fetch: (page: PageRequest) => Promise<Page<T>>): Promise<T[]> {
  const items: T[] = [];
  let after: string | undefined;
  do {
    const page = await fetch({ limit: 200, ...(after === undefined ? {} : { after }) });
    items.push(...page.items);
    after = page.next ?? undefined;
  } while (after !== undefined);
  return items;
}

async function membershipsOf(deps: UserExportDeps, tx: Queryable, userId: string) {
  const memberships = await all((page) => deps.rbac.memberships.listOfUser(tx, userId, page));
  const out = [];
  for (const m of memberships) {
    const organisation = await deps.rbac.organisations.get(tx, m.organisationId);
    const roles = await all((page) => deps.rbac.memberships.listRoles(tx, m.id, page));
    out.push({
      membershipId: m.id,
      organisation: { id: organisation.id, name: organisation.name },
      roles: roles.map((r) => ({ id: r.id, name: r.name, description: r.description })),
      since: m.createdAt,
    });
  }
  return out;
}

const json = (value: unknown) => Buffer.from(`${JSON.stringify(value, null, 2)}\n`);

/** Writes `user-exports/<slug>/<user id>/<time>.bundle` and records a `user.exported` event. */
export async function exportUserData(
  deps: UserExportDeps,
  tenant: Tenant,
  userId: string,
  actor: string,
): Promise<UserExportInfo> {
  const now = deps.clock.now();
  return withTenant(deps.db, tenant.id, async (tx) => {
    const keyring = await deps.tenantKeys.forTenant(tx, tenant.id);
    const profile = await deps.users.get(tx, tenant.id, userId);
    const key = await activeBundleKey(tx, keyring, now);
    const subject = `user:${profile.id}`;
    const events = await auditEventsInRange(
      tx,
      keyring,
      undefined,
      now,
      (e) => e.target === subject || e.actor === subject,
    );
    const files = [
      { path: 'profile.json', bytes: json(profile), contentType: 'application/json' },
      {
        path: 'memberships.json',
        bytes: json(await membershipsOf(deps, tx, profile.id)),
        contentType: 'application/json',
      },
      {
        path: 'sessions.json',
        bytes: json(await all((page) => deps.rbac.sessions.list(tx, profile.id, page))),
        contentType: 'application/json',
      },
      {
        path: 'audit-events.ndjson',
        bytes: Buffer.from(events.map((e) => `${JSON.stringify(e)}\n`).join('')),
        contentType: 'application/x-ndjson',
      },
    ];
    const { bytes } = await writeBundle(
      {
        kind: 'user-export',
        tenant,
        issuer: issuerFor(deps.publicUrl, tenant.slug),
        createdAt: now,
        subject: { userId: profile.id },
        files,
      },
      key,
    );
    const objectKey = `user-exports/${tenant.slug}/${profile.id}/${keyTime(now)}.bundle`;
    const info = await deps.objects.put(objectKey, bytes, { contentType: 'application/x-tar' });
    await appendAudit(
      tx,
      keyring,
      {
        actor,
        action: 'user.exported',
        target: subject,
        outcome: 'success',
        details: { object: objectKey, sha256: info.sha256 },
      },
      deps.clock,
    );
    return {
      key: objectKey,
      size: info.size,
      sha256: info.sha256,
      createdAt: now.toISOString(),
      userId: profile.id,
      files: files.map((f) => f.path),
    };
  });
}
