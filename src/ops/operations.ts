// Operator operations: one function per CLI verb that needs the database. The CLI runs them
// in-process, or, when a running embedded server holds the database, through its control socket.

import { verifyAnchored, writeCheckpoint } from '../audit/audit-checkpoints.js';
import { appendAudit, readAudit } from '../audit/audit-log.js';
import type { ManifestAuditCheckpoint } from '../backup/manifest.js';
import { dumpOptionsFromArgs, logDumpEvent, runBackupDump } from '../backup/run-dump.js';
import { archiveDate, exportAuditArchive, listAuditArchives } from '../bundles/audit-archive.js';
import { exportUserData } from '../bundles/user-export.js';
import { isOrthIdError, OrthIdError } from '../core/errors.js';
import {
  rotateEverySigningKey,
  rotateSigningKey,
  SIGNING_ALGS,
  type SigningAlg,
} from '../crypto/signing-keys.js';
import type { OrthId } from '../main.js';
import type { GrantType, ResponseType, SecretAuthMethod } from '../oidc/clients.js';
import { DEFAULT_LIFETIMES } from '../oidc/provider-configuration.js';
import { maxTokenSeconds, signingAlgOf } from '../oidc/providers.js';
import { announceTenantChange } from '../oidc/tenant-changes.js';
import { withTenant } from '../storage/db/database.js';
import { SYSTEM_TENANT_SLUG } from '../tenancy/admin-resource.js';
import { issuerFor } from '../tenancy/tenants.js';
import { rotateDataKey, rotateRootKey, rotationStatus, shredTenant } from './key-rotation.js';
import { checkDeployment } from './verification-checks.js';

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

function list(args: Args, name: string): string[] {
  const value = args[name];
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    throw new OrthIdError('request.invalid', `"${name}" must be a list of strings.`);
  }
  return value as string[];
}

/**
 * Writes a checkpoint of every live tenant's audit chain head (a backup manifest names them). A
 * tenant that cannot be checkpointed (its newest event does not hold, its custody is down) is left
 * out and logged: the backup itself needs no tenant key, so it goes on.
 */
export async function checkpointTenants(app: OrthId): Promise<ManifestAuditCheckpoint[]> {
  const out: ManifestAuditCheckpoint[] = [];
  for (const tenant of await app.tenants.list()) {
    if (tenant.status === 'shredded') continue;
    try {
      const ref = await withTenant(app.db, tenant.id, async (tx) =>
        writeCheckpoint(tx, await app.tenantKeys.forTenant(tx, tenant.id), app.objects, app.clock),
      );
      out.push({ tenantId: tenant.id, tenant: tenant.slug, ...ref });
    } catch (error) {
      if (!isOrthIdError(error)) throw error;
      app.log.warn(
        { tenant: tenant.slug, code: error.code },
        `The audit chain was not checkpointed for this backup: ${error.message}`,
      );
    }
  }
  return out;
}

export const operations = {
  async 'tenant.create'(app: OrthId, args: Args) {
    const tenant = await app.tenants.create({
      slug: text(args, 'slug'),
      displayName: optionalText(args, 'displayName'),
      keyCustody: optionalText(args, 'custody'),
      actor: 'cli',
    });
    return { ...tenant, issuer: issuerFor(app.config.publicUrl, tenant.slug) };
  },

  async 'tenant.list'(app: OrthId) {
    return (await app.tenants.list()).map((t) => ({ ...t, issuer: issuerFor(app.config.publicUrl, t.slug) }));
  },

  /** Changes a tenant's OpenID Connect policy; every replica's provider picks it up at once. */
  async 'tenant.configure'(app: OrthId, args: Args) {
    const tenant = await app.tenants.get(text(args, 'slug'));
    const idTokenClaims = optionalText(args, 'idTokenClaims');
    if (idTokenClaims !== undefined && idTokenClaims !== 'on' && idTokenClaims !== 'off') {
      throw new OrthIdError('request.invalid', '--id-token-claims must be on or off.', {
        details: { field: 'idTokenClaims' },
      });
    }
    const settings = idTokenClaims === undefined ? {} : { claimsInIdToken: idTokenClaims === 'on' };
    await withTenant(app.db, tenant.id, async (tx) => {
      if (Object.keys(settings).length === 0) return;
      await app.tenants.setSettings(tx, tenant.id, settings);
      await appendAudit(
        tx,
        await app.tenantKeys.forTenant(tx, tenant.id),
        {
          actor: 'cli',
          action: 'tenant.configured',
          target: `tenant:${tenant.id}`,
          outcome: 'success',
          details: settings,
        },
        app.clock,
      );
      await announceTenantChange(tx, tenant.id);
    });
    const current = await app.tenants.get(tenant.slug);
    return { tenant: tenant.slug, idTokenClaims: current.settings.claimsInIdToken === false ? 'off' : 'on' };
  },

  /** `password` (optional) is checked against the policy and stored only as a hash; it is never echoed. */
  async 'user.create'(app: OrthId, args: Args) {
    const tenant = await app.tenants.get(text(args, 'tenant'));
    const password = args.password;
    if (password !== undefined && typeof password !== 'string') {
      throw new OrthIdError('request.invalid', 'The password must be text.', {
        details: { field: 'password' },
      });
    }
    return withTenant(app.db, tenant.id, (tx) =>
      app.users.create(
        tx,
        tenant.id,
        { email: text(args, 'email'), name: optionalText(args, 'name'), password },
        'cli',
        // No tenant enforces MFA yet, so the single-factor minimum (15) applies.
        { mfaEnforced: false },
      ),
    );
  },

  async 'client.create'(app: OrthId, args: Args) {
    const tenant = await app.tenants.get(text(args, 'tenant'));
    return withTenant(app.db, tenant.id, (tx) =>
      app.clients.create(
        tx,
        tenant.id,
        {
          name: text(args, 'name'),
          grantTypes: list(args, 'grantTypes') as GrantType[],
          redirectUris: list(args, 'redirectUris'),
          postLogoutRedirectUris: list(args, 'postLogoutRedirectUris'),
          scope: optionalText(args, 'scope'),
          resources: list(args, 'resources'),
          public: args.public === true,
          responseTypes:
            args.responseTypes === undefined ? undefined : (list(args, 'responseTypes') as ResponseType[]),
          idTokenSignedResponseAlg: optionalText(args, 'idTokenSignedResponseAlg') as SigningAlg | undefined,
          tokenEndpointAuthMethod: optionalText(args, 'tokenEndpointAuthMethod') as
            | SecretAuthMethod
            | undefined,
          firstParty: args.firstParty === true,
        },
        'cli',
      ),
    );
  },

  async 'client.list'(app: OrthId, args: Args) {
    const tenant = await app.tenants.get(text(args, 'tenant'));
    return withTenant(app.db, tenant.id, async (tx) => (await app.clients.list(tx, { limit: 200 })).items);
  },

  /**
   * With an algorithm: a new key of it, which becomes the tenant's default. Without: a new key
   * for every algorithm the tenant signs with.
   */
  async 'keystore.rotateSigning'(app: OrthId, args: Args) {
    const tenant = await app.tenants.get(text(args, 'tenant'));
    const alg = optionalText(args, 'alg');
    if (alg !== undefined && !SIGNING_ALGS.includes(alg as SigningAlg)) {
      throw new OrthIdError('request.invalid', `--alg must be one of ${SIGNING_ALGS.join(', ')}.`);
    }
    const keys = await withTenant(app.db, tenant.id, async (tx) => {
      const keyring = await app.tenantKeys.forTenant(tx, tenant.id);
      const now = app.clock.now();
      const overlap = maxTokenSeconds(DEFAULT_LIFETIMES);
      const rotated = alg
        ? [
            {
              alg: alg as SigningAlg,
              kid: await rotateSigningKey(tx, keyring, alg as SigningAlg, now, overlap),
            },
          ]
        : await rotateEverySigningKey(tx, keyring, now, overlap);
      if (alg) await app.tenants.setSettings(tx, tenant.id, { signingAlg: alg });
      for (const key of rotated) {
        await appendAudit(
          tx,
          keyring,
          {
            actor: 'cli',
            action: 'signing_key.rotated',
            target: `key:${key.kid}`,
            outcome: 'success',
            details: { alg: key.alg },
          },
          app.clock,
        );
      }
      await announceTenantChange(tx, tenant.id);
      return rotated;
    });
    const defaultAlg = (alg as SigningAlg | undefined) ?? signingAlgOf(tenant);
    const main = keys.find((k) => k.alg === defaultAlg) ?? keys[0]!;
    return { tenant: tenant.slug, kid: main.kid, alg: main.alg, keys };
  },

  /** Records a drill's outcome in the live deployment's audit log (system tenant). */
  async 'backup.recordDrill'(app: OrthId, args: Args) {
    const report = args.report as {
      ok: boolean;
      set: string;
      restore_seconds: number;
      checks: { name: string; ok: boolean }[];
    };
    const tenant = await app.tenants.get(SYSTEM_TENANT_SLUG);
    await withTenant(app.db, tenant.id, async (tx) =>
      appendAudit(
        tx,
        await app.tenantKeys.forTenant(tx, tenant.id),
        {
          actor: 'cli',
          action: 'backup.drill',
          target: `backup-set:${report.set}`,
          outcome: report.ok ? 'success' : 'failure',
          details: {
            restoreSeconds: report.restore_seconds,
            failed: report.checks.filter((c) => !c.ok).map((c) => c.name),
          },
        },
        app.clock,
      ),
    );
    return { recorded: true };
  },

  async 'backup.check'(app: OrthId) {
    return checkDeployment(app);
  },

  async 'audit.verify'(app: OrthId, args: Args) {
    const tenant = await app.tenants.get(text(args, 'tenant'));
    return withTenant(app.db, tenant.id, async (tx) => {
      const keyring = await app.tenantKeys.forTenant(tx, tenant.id);
      const report = await verifyAnchored(tx, keyring, app.objects);
      // An intact chain is anchored again, so a later cut or rewrite shows against this head.
      const written =
        report.ok && !keyring.shredded
          ? await writeCheckpoint(tx, keyring, app.objects, app.clock)
          : undefined;
      return { tenant: tenant.slug, ...report, ...(written ? { written } : {}) };
    });
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

  /** Runs inside a running embedded server, which holds the database; writes straight to the destinations. */
  async 'backup.dump'(app: OrthId, args: Args) {
    return runBackupDump(
      {
        config: app.config,
        db: app.db,
        objects: app.objects,
        keystore: app.keystore,
        clock: app.clock,
        auditCheckpoints: () => checkpointTenants(app),
      },
      dumpOptionsFromArgs(args),
      (event) => logDumpEvent(app.log, event),
    );
  },

  /** Writes a signed audit archive of `from`..`to` (ISO dates, optional) to object storage. */
  async 'audit.export'(app: OrthId, args: Args) {
    const tenant = await app.tenants.get(text(args, 'tenant'));
    const range = {
      from: archiveDate(optionalText(args, 'from'), 'from'),
      to: archiveDate(optionalText(args, 'to'), 'to'),
    };
    return exportAuditArchive({ ...app, publicUrl: app.config.publicUrl }, tenant, range, 'cli');
  },

  async 'audit.exports'(app: OrthId, args: Args) {
    const tenant = await app.tenants.get(text(args, 'tenant'));
    return listAuditArchives(app, tenant);
  },

  /**
   * `root`: a new root key version for every tenant (or `tenant`), data keys re-wrapped under it.
   * Otherwise a new data key version for `tenant` and the re-encryption pass, run to the end.
   */
  async 'keystore.rotate'(app: OrthId, args: Args) {
    const slug = optionalText(args, 'tenant');
    if (args.root === true) {
      const tenants = slug ? [await app.tenants.get(slug)] : await app.tenants.list();
      const live = tenants.filter((t) => t.status !== 'shredded');
      const rotated = [];
      for (const tenant of live) rotated.push(await rotateRootKey(app, tenant, 'cli'));
      return { kind: 'root', tenants: rotated };
    }
    if (!slug)
      throw new OrthIdError('request.invalid', 'Pass --root, or --tenant SLUG to rotate its data key.');
    return rotateDataKey(app, await app.tenants.get(slug), 'cli');
  },

  /** Progress of the newest root and data key rotation of every tenant. */
  async 'keystore.rotations'(app: OrthId) {
    return rotationStatus(app);
  },

  /** Records a keystore export or import (by the CLI, which holds the keystore) in the system log. */
  async 'keystore.audit'(app: OrthId, args: Args) {
    const action = text(args, 'action');
    if (action !== 'keystore.exported' && action !== 'keystore.imported') {
      throw new OrthIdError('request.invalid', `"${action}" is not a keystore event.`);
    }
    const system = await app.tenants.get(SYSTEM_TENANT_SLUG);
    const details = (args.details ?? {}) as Record<string, unknown>;
    await withTenant(app.db, system.id, async (tx) =>
      appendAudit(
        tx,
        await app.tenantKeys.forTenant(tx, system.id),
        { actor: 'cli', action, outcome: 'success', details },
        app.clock,
      ),
    );
    return { recorded: action };
  },

  /** Crypto-shreds a tenant; `confirm` must repeat its slug. */
  async 'tenant.shred'(app: OrthId, args: Args) {
    const slug = text(args, 'tenant');
    if (args.confirm !== slug) {
      throw new OrthIdError(
        'tenant.confirmation_required',
        `Shredding destroys tenant ${slug}'s keys for good, in every backup too. Confirm with: --confirm ${slug}`,
      );
    }
    return shredTenant(app, await app.tenants.get(slug), 'cli');
  },

  /** Writes a user's signed data-export bundle to object storage. */
  async 'user.export'(app: OrthId, args: Args) {
    const tenant = await app.tenants.get(text(args, 'tenant'));
    return exportUserData({ ...app, publicUrl: app.config.publicUrl }, tenant, text(args, 'id'), 'cli');
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
