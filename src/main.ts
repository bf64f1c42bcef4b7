// Wiring: builds the concrete drivers and domain services from Config, once. Nothing else
// constructs a database, a key custody or a service; everything receives them from here.
import type { DumpEvent, DumpOptions } from './backup/dump-set.js';
import type { Manifest } from './backup/manifest.js';
import { runBackupDump } from './backup/run-dump.js';
import type { Config } from './config/config.js';
import { type Clock, systemClock } from './core/clock.js';
import { isOrthIdError, OrthIdError } from './core/errors.js';
import { createLogger, type Logger } from './core/logger.js';
import {
  createCustodies,
  openExternalCustody,
  openTenantCustody,
} from './crypto/custody/deployment-custody.js';
import { openKeystore } from './crypto/open-keystore.js';
import { createTenantKeys } from './crypto/tenant-keys.js';
import { createAccountTokens } from './identity/account-tokens.js';
import { createAvatars } from './identity/avatars.js';
import { createInvitations } from './identity/invitations.js';
import { createMfa } from './identity/mfa.js';
import { createPasskeys } from './identity/passkeys.js';
import { createPasswordPool } from './identity/password-pool.js';
import { createPasswordReset } from './identity/password-reset.js';
import { signInWithPassword } from './identity/password-sign-in.js';
import { createPasswordHasher, OWASP_PASSWORD_HASHING } from './identity/passwords.js';
import { createSelfService } from './identity/self-service.js';
import { createSignInThrottle } from './identity/sign-in-throttle.js';
import { createSignUp } from './identity/sign-up.js';
import { createUsers } from './identity/users.js';
import { createDeliveryWorker } from './mail/delivery-worker.js';
import { createMail } from './mail/mail.js';
import { createOutboxTransport, createSmtpTransport, type MailTransport } from './mail/transport.js';
import { createClients } from './oidc/clients.js';
import { createOidcProviders } from './oidc/providers.js';
import { checkpointTenants } from './ops/operations.js';
import type { OrthId, OrthIdParts } from './ops/orthid.js';
import { assertActsAsAppRole } from './storage/db/app-role-probe.js';
import { assertDeploymentBinding } from './storage/db/deployment-binding.js';
import { migrate, migrationStatus } from './storage/db/migrate.js';
import { openDatabase } from './storage/db/open-database.js';
import { openObjectStore } from './storage/objects/open-object-store.js';
import { createApiResourcesQueries } from './tenancy/api-resources.queries.js';
import { createBrandLogos } from './tenancy/branding.js';
import { createMailLogoImages } from './tenancy/mail-logo-images.js';
import { resolveGrants } from './tenancy/permissions.js';
import { createRbac } from './tenancy/rbac.js';
import { createTenants, issuerFor } from './tenancy/tenants.js';
import { brandOf } from './web/brand.js';
import { chooseLocale } from './web/i18n.js';
import { PAGE_HEADERS } from './web/layout.js';
import { composeAccountMail } from './web/mails/account-mails.js';
import { deviceCodeConfirmPage, deviceCodeEntryPage, deviceSignedInPage } from './web/pages/device.js';
import { protocolErrorPage, signedOutPage, signOutPage } from './web/pages/messages.js';

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
  const { keystore, masterGenerated } = await openKeystore(config, options.initKeystore ?? false, clock);
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
      const applied = await migrate(db, undefined, {
        deploymentId: keystore.deploymentId,
        rootKeyIds: [...keystore.rootKeyIds(), ...keystore.destroyedKeys().map((k) => k.id)],
        onBind: (binding) =>
          log.info({ deploymentId: binding.id }, "recorded the keystore's deployment id in the database"),
      });
      for (const version of applied) log.info({ version }, 'applied migration');
    } else {
      const status = await migrationStatus(db);
      if (status.pending.length > 0) {
        throw new OrthIdError(
          'db.migrations_pending',
          `The database is at schema ${status.current}; this OrthID needs ${status.latest}. Run: orthid migrate`,
        );
      }
    }
    // A restored copy opened to be checked: a login that cannot act as orthid_app is told the
    // GRANT that fixes it, before the binding check below would fail on the same missing grant.
    if (options.databaseUrl) await assertActsAsAppRole(db);
    // The keystore must be this database's before anything is served (deployment-binding.ts).
    await assertDeploymentBinding(db, keystore.deploymentId, 'Nothing was served or changed.');
  } catch (error) {
    await db.close();
    throw error;
  }
  try {
    const objects = await openObjectStore(config.objectStore, clock);
    const custody = await openExternalCustody(config, { clock });
    return composeOrthId({ config, clock, log, db, keystore, objects, ...(custody ? { custody } : {}) });
  } catch (error) {
    await db.close();
    throw error;
  }
}

/** Builds the domain services over an opened database and keystore (tests inject their own). */
export function composeOrthId(parts: OrthIdParts): OrthId {
  const { db, clock, keystore, media, ...rest } = parts;
  const custody = parts.custody ?? keystore;
  const custodies = createCustodies(custody, (uri) => openTenantCustody(parts.config, uri, { clock }));
  const { custodyFor } = custodies;
  const tenantKeys = createTenantKeys({ custody: custodyFor, clock });
  const tenants = createTenants({ db, tenantKeys, clock, publicUrl: parts.config.publicUrl });
  // One pool of hashing threads per deployment, closed with it.
  const passwordPool = createPasswordPool();
  const users = createUsers({
    tenantKeys,
    clock,
    passwords: createPasswordHasher(OWASP_PASSWORD_HASHING, passwordPool),
  });
  const signInThrottle = createSignInThrottle();
  const signInDeps = { db, tenantKeys, clock, passwords: users.passwords, throttle: signInThrottle };
  const clients = createClients({ tenantKeys, clock });
  const oidc = createOidcProviders({
    db,
    publicUrl: parts.config.publicUrl,
    pages: {
      headers: PAGE_HEADERS,
      locale: chooseLocale,
      brand: (tenant) => brandOf(tenant, issuerFor(parts.config.publicUrl, tenant.slug)),
      signOut: signOutPage,
      signedOut: signedOutPage,
      error: protocolErrorPage,
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
  const mailConfig = parts.config.mail;
  const mailTransport: MailTransport | undefined = mailConfig.smtp
    ? createSmtpTransport(mailConfig.smtp)
    : mailConfig.outboxDir !== undefined
      ? createOutboxTransport(mailConfig.outboxDir)
      : undefined;
  const mail = createMail({
    db,
    tenantKeys,
    clock,
    defaultFrom: mailConfig.from,
    retentionMs: mailConfig.retentionMs,
    inlineImages: createMailLogoImages(createBrandLogos({ objects: parts.objects, tenantKeys, clock })),
    log: parts.log,
  });
  const accountTokens = createAccountTokens({ tenantKeys, clock });
  const mfa = createMfa({ db, tenantKeys, clock, throttle: signInThrottle });
  const rbac = createRbac({ tenantKeys, clock, publicUrl: parts.config.publicUrl });
  const passwordReset = createPasswordReset({
    db,
    tenantKeys,
    clock,
    users,
    accountTokens,
    mail,
    sessions: rbac.sessions,
    throttle: signInThrottle,
    mfaEnforcedFor: (tx, tenantId, userId) => mfa.enforcedFor(tx, tenantId, userId),
  });
  const mailWorker = createDeliveryWorker({
    db,
    tenantKeys,
    clock,
    log: parts.log,
    transport: mailTransport,
  });
  const signUp = createSignUp({
    db,
    tenantKeys,
    clock,
    users,
    tokens: accountTokens,
    mail,
    throttle: signInThrottle,
    memberships: rbac.memberships,
    mfaEnforced: (tx, tenantId) => mfa.enforcedFor(tx, tenantId),
    compose: composeAccountMail,
    publicUrl: parts.config.publicUrl,
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
    mfa,
    passkeys: createPasskeys({ db, tenantKeys, clock, publicUrl: parts.config.publicUrl }),
    accountTokens,
    passwordReset,
    signUp,
    invitations: createInvitations({ tenantKeys, clock }),
    selfService: createSelfService({
      users,
      tenantKeys,
      clock,
      accountTokens,
      mfa,
      throttle: signInThrottle,
      mail,
    }),
    rbac,
    clients,
    oidc,
    mail,
    mailTransport,
    mailWorker,
    close: async () => {
      await mailWorker.stop();
      await custodies.close();
      await custody.close();
      await passwordPool.close();
      // Last: work still finishing (a request cut by the shutdown's grace period) may need it.
      await db.close();
    },
  };
}

/**
 * Takes a backup set in this process. On PostgreSQL the app login and the tenants' keys write each
 * tenant's audit checkpoint for the manifest; the dump itself needs neither, so without them it
 * goes on, warned. On the embedded default it opens the data directory (`db.locked` while a
 * running server holds it: the CLI then asks that server).
 */
export async function dumpHere(
  config: Config,
  options: DumpOptions,
  onEvent: (event: DumpEvent) => void,
  log: Logger,
): Promise<Manifest> {
  const { keystore } = await openKeystore(config, false);
  if (config.database.kind === 'postgres') {
    const objects = await openObjectStore(config.objectStore);
    const app = await openOrthId(config, { log }).catch((error: unknown) => {
      if (!isOrthIdError(error)) throw error;
      // Another deployment's keystore: the dump's own check refuses it before writing anything.
      if (error.code === 'keystore.deployment_mismatch') return undefined;
      onEvent({
        step: 'warning',
        message: `No audit checkpoints are written for this set (${error.code}): ${error.message}`,
      });
      return undefined;
    });
    try {
      const auditCheckpoints = app ? () => checkpointTenants(app) : undefined;
      return await runBackupDump(
        { config, objects, keystore, clock: systemClock, auditCheckpoints },
        options,
        onEvent,
      );
    } finally {
      await app?.close();
    }
  }
  const db = await openDatabase(config);
  try {
    const objects = await openObjectStore(config.objectStore);
    const custody = await openExternalCustody(config);
    const app = composeOrthId({
      config,
      clock: systemClock,
      log,
      db,
      keystore,
      objects,
      ...(custody ? { custody } : {}),
    });
    try {
      return await runBackupDump(
        { config, db, objects, keystore, clock: systemClock, auditCheckpoints: () => checkpointTenants(app) },
        options,
        onEvent,
      );
    } finally {
      await custody?.close();
    }
  } finally {
    await db.close();
  }
}
