// A user's data-export bundle for access and portability requests: the profile with its fields
// decrypted, organisation memberships with their roles, active sign-in sessions and the audit
// events by or about the user, and their avatar, signed and written to object storage.
import type { Readable } from 'node:stream';
import { appendAudit } from '../audit/audit-log.js';
import { OrthIdError } from '../core/errors.js';
import { AVATAR_CONTENT_TYPE, readAvatar } from '../identity/avatars.js';
import type { Queryable } from '../storage/db/database.js';
import { withTenant } from '../storage/db/database.js';
import type { ObjectInfo } from '../storage/objects/object-store.js';
import type { Page, PageRequest } from '../tenancy/page.js';
import { issuerFor, type Tenant } from '../tenancy/tenants.js';
import { auditEventsInRange } from './audit-archive.js';
import { keyTime, type UserExportDeps } from './bundle-deps.js';
import { activeBundleKey } from './tenant-bundle-keys.js';
import { type BundleFile, writeBundle } from './write-bundle.js';

export interface UserExportInfo {
  key: string;
  /** The export's name among the user's exports (its time), for `openUserExport`. */
  id: string;
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

/** Where a tenant's user exports are kept: `user-exports/<slug>/`. */
export function tenantUserExportsPrefix(tenant: Pick<Tenant, 'slug'>): string {
  return `user-exports/${tenant.slug}/`;
}

/** Where a user's exports are kept: `user-exports/<slug>/<user id>/`. */
export function userExportPrefix(tenant: Pick<Tenant, 'slug'>, userId: string): string {
  return `${tenantUserExportsPrefix(tenant)}${userId}/`;
}

/** An export's id is the time it was made, as in its key (see keyTime). */
const EXPORT_ID = /^[0-9]{8}T[0-9]{6}\.[0-9]{3}Z$/;

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
    const files: BundleFile[] = [
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
    const avatar = await readAvatar(deps.objects, tenant.id, profile.id);
    if (avatar) files.push({ path: 'avatar.webp', bytes: avatar.bytes, contentType: AVATAR_CONTENT_TYPE });
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
    const id = keyTime(now);
    const objectKey = `${userExportPrefix(tenant, profile.id)}${id}.bundle`;
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
      id,
      size: info.size,
      sha256: info.sha256,
      createdAt: now.toISOString(),
      userId: profile.id,
      files: files.map((f) => f.path),
    };
  });
}

/**
 * Opens one of a user's exports for download and records a `user.export_downloaded` event: the
 * bundle holds the user's personal data in clear, so who fetched it is worth knowing.
 */
export async function openUserExport(
  deps: UserExportDeps,
  tenant: Tenant,
  userId: string,
  exportId: string,
  actor: string,
): Promise<{ info: ObjectInfo; body: Readable }> {
  const missing = () =>
    new OrthIdError(
      'request.not_found',
      `No export ${exportId} of user ${userId}; create one with POST …/export.`,
    );
  if (!EXPORT_ID.test(exportId)) throw missing();
  return withTenant(deps.db, tenant.id, async (tx) => {
    await deps.users.get(tx, tenant.id, userId);
    const key = `${userExportPrefix(tenant, userId)}${exportId}.bundle`;
    if (!(await deps.objects.head(key))) throw missing();
    await appendAudit(
      tx,
      await deps.tenantKeys.forTenant(tx, tenant.id),
      {
        actor,
        action: 'user.export_downloaded',
        target: `user:${userId}`,
        outcome: 'success',
        details: { object: key },
      },
      deps.clock,
    );
    return deps.objects.get(key);
  });
}

/** Deletes every export of a user (after the user is deleted: an export is their data in clear). */
export async function deleteUserExports(
  deps: Pick<UserExportDeps, 'objects'>,
  tenant: Pick<Tenant, 'slug'>,
  userId: string,
): Promise<number> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await deps.objects.list(
      userExportPrefix(tenant, userId),
      cursor === undefined ? {} : { cursor },
    );
    keys.push(...page.items.map((item) => item.key));
    cursor = page.cursor;
  } while (cursor !== undefined);
  for (const key of keys) await deps.objects.delete(key);
  return keys.length;
}
