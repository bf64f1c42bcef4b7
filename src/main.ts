// Wiring: builds the concrete drivers and domain services from Config, once. Nothing else
// constructs a database, a key custody or a service; everything receives them from here.
import { join } from 'node:path';
import { parseAwsKmsUri } from './config/awskms-uri.js';
import type { Config } from './config/config.js';
import { parsePkcs11Uri } from './config/pkcs11-uri.js';
import { type Clock, systemClock } from './core/clock.js';
import { OrthIdError } from './core/errors.js';
import { createLogger, type Logger } from './core/logger.js';
import type { ByokCustody } from './crypto/custody/byok-custody.js';
import { openCustody } from './crypto/custody/open-custody.js';
import type { KeyCustody } from './crypto/key-custody.js';
import { ManagedKeystore } from './crypto/managed-keystore.js';
import { resolveMasterSecret } from './crypto/master-secret.js';
import { createTenantKeys, type TenantKeys } from './crypto/tenant-keys.js';
import { type AvatarLimits, type Avatars, createAvatars } from './identity/avatars.js';
import {
  type PasswordSignInInput,
  type SignInResult,
  signInWithPassword,
} from './identity/password-sign-in.js';
import { createSignInThrottle, type SignInThrottle } from './identity/sign-in-throttle.js';
import { createUsers, type Users } from './identity/users.js';
import { type Clients, createClients } from './oidc/clients.js';
import { createOidcProviders, type OidcProviders } from './oidc/providers.js';
import type { Database } from './storage/db/database.js';
import { requireSupportedServer } from './storage/db/database-errors.js';
import { acquireEmbeddedLock } from './storage/db/embedded-lock.js';
import { migrate, migrationStatus } from './storage/db/migrate.js';
import { openPglite } from './storage/db/pglite-driver.js';
import { describeDatabaseUrl, openPostgres } from './storage/db/postgres-driver.js';
import type { ObjectStore } from './storage/objects/object-store.js';
import { openObjectStore } from './storage/objects/open-object-store.js';
import { createApiResourcesQueries } from './tenancy/api-resources.queries.js';
import { resolveGrants } from './tenancy/permissions.js';
import { createRbac, type Rbac } from './tenancy/rbac.js';
import { createTenants, type Tenants } from './tenancy/tenants.js';
import { PAGE_HEADERS } from './web/layout.js';
import { deviceCodeConfirmPage, deviceCodeEntryPage, deviceSignedInPage } from './web/pages/device.js';
import { errorPage, signedOutPage, signOutPage } from './web/pages/messages.js';

export interface OrthId {
  config: Config;
  /** Blobs: profile media, audit archives, document bundles, the backup canary. */
  objects: ObjectStore;
  clock: Clock;
  log: Logger;
  db: Database;
  /** The keystore file: deployment id, small secrets and, under managed custody, the root keys. */
  keystore: ManagedKeystore;
  /** Where the deployment's root keys live: the keystore itself, a PKCS#11 token or a KMS. */
  custody: KeyCustody;
  /** The custody of a tenant that brings its own key (a custody URI), opened once and kept. */
  custodyFor(uri: string | undefined): Promise<KeyCustody>;
  tenantKeys: TenantKeys;
  tenants: Tenants;
  users: Users;
  /** Profile media: one per process, so its bound on concurrent image decodes holds per process. */
  avatars: Avatars;
  /** Email-and-password sign-in with throttling, lockout and audit (src/identity/password-sign-in.ts). */
  signInWithPassword(input: PasswordSignInInput): Promise<SignInResult>;
  /** The sign-in throttling policy and its counters (housekeeping deletes the stale ones). */
  signInThrottle: SignInThrottle;
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
    const url = purpose === 'migrations' ? config.database.migrationUrl : config.database.url;
    const db = await openPostgres(url, { max: purpose === 'migrations' ? 1 : 10 });
    try {
      await requireSupportedServer(db, describeDatabaseUrl(url));
    } catch (error) {
      await db.close();
      throw error;
    }
    return db;
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

/**
 * Opens (or on request creates) the keystore file; says whether a master secret was generated.
 * Under BYOK the file holds no root keys, only where they are.
 */
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
  const external =
    config.custody.kind === 'managed'
      ? undefined
      : { kind: config.custody.kind, reference: config.custody.uri };
  const { keystore, created } = await ManagedKeystore.init(config.keystorePath, master.value, external);
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
  try {
    const objects = await openObjectStore(config.objectStore);
    const custody = await openExternalCustody(config);
    return composeOrthId({ config, clock, log, db, keystore, objects, ...(custody ? { custody } : {}) });
  } catch (error) {
    await db.close();
    throw error;
  }
}

/** Opens the deployment's BYOK custody, or undefined when the keystore itself holds the root keys. */
export async function openExternalCustody(config: Config): Promise<ByokCustody | undefined> {
  return config.custody.kind === 'managed' ? undefined : openCustody(config.custody);
}

/**
 * A tenant's own custody: an AWS KMS key of its own, or another key object in the deployment's
 * PKCS#11 token (logged in with the deployment's PIN).
 */
async function openTenantCustody(config: Config, uri: string): Promise<KeyCustody> {
  const kms = /^awskms:/i.test(uri) ? parseAwsKmsUri(uri) : undefined;
  if (kms?.ok) return openCustody({ kind: 'awskms', ...kms.value });
  const p11 = /^pkcs11:/i.test(uri) ? parsePkcs11Uri(uri) : undefined;
  if (p11?.ok && config.custody.kind === 'pkcs11') {
    return openCustody({ kind: 'pkcs11', ...p11.value, pin: config.custody.pin });
  }
  throw new OrthIdError(
    'keystore.custody_unavailable',
    `The tenant's key custody ${uri} cannot be opened: use an awskms: URI, or a pkcs11: URI when ORTHID_KEYSTORE is a PKCS#11 token.`,
  );
}

/** Builds the domain services over an opened database and keystore (tests inject their own). */
export function composeOrthId(
  parts: Pick<OrthId, 'config' | 'clock' | 'log' | 'db' | 'keystore' | 'objects'> & {
    custody?: KeyCustody;
    /** Upload limits other than the defaults (tests). */
    media?: AvatarLimits;
  },
): OrthId {
  const { db, clock, keystore, media, ...rest } = parts;
  const custody = parts.custody ?? keystore;
  const opened = new Map<string, Promise<KeyCustody>>();
  const custodyFor = (uri: string | undefined): Promise<KeyCustody> => {
    if (!uri) return Promise.resolve(custody);
    const known = opened.get(uri);
    if (known) return known;
    const open = openTenantCustody(parts.config, uri);
    // A custody that failed to open (token absent) is tried again on the next request.
    open.catch(() => opened.delete(uri));
    opened.set(uri, open);
    return open;
  };
  const tenantKeys = createTenantKeys({ custody: custodyFor, clock });
  const tenants = createTenants({ db, tenantKeys, clock, publicUrl: parts.config.publicUrl });
  const users = createUsers({ tenantKeys, clock });
  const signInThrottle = createSignInThrottle();
  const signInDeps = { db, tenantKeys, clock, passwords: users.passwords, throttle: signInThrottle };
  const clients = createClients({ tenantKeys, clock });
  const oidc = createOidcProviders({
    db,
    publicUrl: parts.config.publicUrl,
    pages: {
      headers: PAGE_HEADERS,
      signOut: signOutPage,
      signedOut: signedOutPage,
      error: errorPage,
      deviceCodeEntry: deviceCodeEntryPage,
      deviceCodeConfirm: deviceCodeConfirmPage,
      deviceSignedIn: deviceSignedInPage,
    },
    tenants,
    tenantKeys,
    users,
    clients,
    clock,
    log: parts.log,
    signInThrottle,
    grantsFor: (tx, subject, indicator) => resolveGrants(tx, subject, indicator),
    resourceExists: (tx, indicator) => createApiResourcesQueries(tx).byIndicator(indicator),
  });
  return {
    ...rest,
    db,
    clock,
    keystore,
    custody,
    custodyFor,
    tenantKeys,
    tenants,
    users,
    avatars: createAvatars({ objects: parts.objects, tenantKeys, clock }, media),
    signInWithPassword: (input) => signInWithPassword(signInDeps, input),
    signInThrottle,
    rbac: createRbac({ tenantKeys, clock, publicUrl: parts.config.publicUrl }),
    clients,
    oidc,
    close: async () => {
      await db.close();
      await Promise.all([...opened.values()].map(async (c) => (await c).close()));
      await custody.close();
    },
  };
}
