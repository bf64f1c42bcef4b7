// Wiring: builds the concrete drivers and domain services from Config, once. Nothing else
// constructs a database, a key custody or a service; everything receives them from here.
import { join } from 'node:path';
import type { Config } from './config/config.js';
import { type Clock, systemClock } from './core/clock.js';
import { OrthIdError } from './core/errors.js';
import { createLogger, type Logger } from './core/logger.js';
import { ManagedKeystore } from './crypto/managed-keystore.js';
import { resolveMasterSecret } from './crypto/master-secret.js';
import { createTenantKeys, type TenantKeys } from './crypto/tenant-keys.js';
import {
  type PasswordSignInInput,
  type SignInResult,
  signInWithPassword,
} from './identity/password-sign-in.js';
import { createSignInThrottle } from './identity/sign-in-throttle.js';
import { createUsers, type Users } from './identity/users.js';
import { type Clients, createClients } from './oidc/clients.js';
import { createOidcProviders, type OidcProviders } from './oidc/providers.js';
import type { Database } from './storage/db/database.js';
import { acquireEmbeddedLock } from './storage/db/embedded-lock.js';
import { migrate, migrationStatus } from './storage/db/migrate.js';
import { openPglite } from './storage/db/pglite-driver.js';
import { openPostgres } from './storage/db/postgres-driver.js';
import type { ObjectStore } from './storage/objects/object-store.js';
import { openObjectStore } from './storage/objects/open-object-store.js';
import { createApiResourcesQueries } from './tenancy/api-resources.queries.js';
import { resolveGrants } from './tenancy/permissions.js';
import { createRbac, type Rbac } from './tenancy/rbac.js';
import { createTenants, type Tenants } from './tenancy/tenants.js';
import { PAGE_HEADERS } from './web/layout.js';
import { errorPage, signedOutPage, signOutPage } from './web/pages/messages.js';

export interface OrthId {
  config: Config;
  /** Blobs: profile media, audit archives, document bundles, the backup canary. */
  objects: ObjectStore;
  clock: Clock;
  log: Logger;
  db: Database;
  keystore: ManagedKeystore;
  tenantKeys: TenantKeys;
  tenants: Tenants;
  users: Users;
  /** Email-and-password sign-in with throttling, lockout and audit (src/identity/password-sign-in.ts). */
  signInWithPassword(input: PasswordSignInInput): Promise<SignInResult>;
  /** Organisations, memberships, API resources, permissions, roles, client roles, user sessions. */
  rbac: Rbac;
  clients: Clients;
  /** One OpenID Connect provider per tenant. */
  oidc: OidcProviders;
  close(): Promise<void>;
}

export interface OpenOptions {
  /**
   * Create the keystore when absent. Only `orthid start` on the embedded default and
   * `orthid keystore init` do; every other command needs an existing keystore.
   */
  initKeystore?: boolean;
  /** Apply pending migrations (the embedded default always does; real Postgres via `orthid migrate`). */
  migrate?: boolean;
  clock?: Clock;
  log?: Logger;
  /** Use this PostgreSQL database instead of the configured one (e.g. to check a restored copy). */
  databaseUrl?: string;
}

/** Opens the configured database. On the embedded default this takes the data directory's lock. */
export async function openDatabase(config: Config, purpose: 'app' | 'migrations' = 'app'): Promise<Database> {
  if (config.database.kind === 'postgres') {
    return openPostgres(purpose === 'migrations' ? config.database.migrationUrl : config.database.url, {
      max: purpose === 'migrations' ? 1 : 10,
    });
  }
  const lock = await acquireEmbeddedLock(join(config.dataDir, 'pgdata.lock'));
  try {
    const db = await openPglite(config.database.dir);
    return {
      ...db,
      async close() {
        await db.close();
        await lock.release();
      },
    };
  } catch (error) {
    await lock.release();
    throw error;
  }
}

/** Opens (or on request creates) the managed keystore; says whether a master secret was generated. */
export async function openKeystore(
  config: Config,
  create: boolean,
): Promise<{ keystore: ManagedKeystore; created: boolean; masterGenerated: boolean }> {
  const master = await resolveMasterSecret(config.masterKey);
  if (!create) {
    return {
      keystore: await ManagedKeystore.open(config.keystorePath, master.value),
      created: false,
      masterGenerated: false,
    };
  }
  const { keystore, created } = await ManagedKeystore.init(config.keystorePath, master.value);
  return { keystore, created, masterGenerated: master.generated };
}

/** Builds a whole OrthID from configuration. The caller closes it. */
export async function openOrthId(configured: Config, options: OpenOptions = {}): Promise<OrthId> {
  const config: Config = options.databaseUrl
    ? {
        ...configured,
        database: { kind: 'postgres', url: options.databaseUrl, migrationUrl: options.databaseUrl },
      }
    : configured;
  const clock = options.clock ?? systemClock;
  const log = options.log ?? createLogger(config.logLevel);
  const { keystore, masterGenerated } = await openKeystore(config, options.initKeystore ?? false);
  if (masterGenerated) {
    log.warn(
      { path: config.masterKey.kind === 'generated' ? config.masterKey.path : undefined },
      'Generated a master secret for the embedded keystore. Back it up with the keystore: without it, the data cannot be decrypted.',
    );
  }
  const db = await openDatabase(config);
  try {
    const shouldMigrate = options.migrate ?? config.database.kind === 'embedded';
    if (shouldMigrate) {
      for (const version of await migrate(db)) log.info({ version }, 'applied migration');
    } else {
      const status = await migrationStatus(db);
      if (status.pending.length > 0) {
        throw new OrthIdError(
          'db.migrations_pending',
          `The database is at schema ${status.current}; this OrthID needs ${status.latest}. Run: orthid migrate`,
        );
      }
    }
  } catch (error) {
    await db.close();
    throw error;
  }
  const objects = await openObjectStore(config.objectStore).catch(async (error) => {
    await db.close();
    throw error;
  });
  return composeOrthId({ config, clock, log, db, keystore, objects });
}

/** Builds the domain services over an opened database and keystore (tests inject their own). */
export function composeOrthId(
  parts: Pick<OrthId, 'config' | 'clock' | 'log' | 'db' | 'keystore' | 'objects'>,
): OrthId {
  const { db, clock, keystore } = parts;
  const tenantKeys = createTenantKeys({ custody: keystore, clock });
  const tenants = createTenants({ db, tenantKeys, clock, publicUrl: parts.config.publicUrl });
  const users = createUsers({ tenantKeys, clock });
  const signInDeps = { db, tenantKeys, clock, passwords: users.passwords, throttle: createSignInThrottle() };
  const clients = createClients({ tenantKeys, clock });
  const oidc = createOidcProviders({
    db,
    publicUrl: parts.config.publicUrl,
    trustProxy: parts.config.trustProxy !== false,
    pages: { headers: PAGE_HEADERS, signOut: signOutPage, signedOut: signedOutPage, error: errorPage },
    tenants,
    tenantKeys,
    users,
    clients,
    clock,
    log: parts.log,
    grantsFor: (tx, subject, indicator) => resolveGrants(tx, subject, indicator),
    resourceExists: (tx, indicator) => createApiResourcesQueries(tx).byIndicator(indicator),
  });
  return {
    ...parts,
    tenantKeys,
    tenants,
    users,
    signInWithPassword: (input) => signInWithPassword(signInDeps, input),
    rbac: createRbac({ tenantKeys, clock, publicUrl: parts.config.publicUrl }),
    clients,
    oidc,
    close: () => db.close(),
  };
}
