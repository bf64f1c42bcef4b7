// Operator operations: one typed entry per CLI verb that needs the database (src/ops/operation.ts).
// The CLI runs them in this process or, when a running embedded server holds the database, through
// its control socket; the schedules run the same entries. Inputs are checked against the entry's
// schema wherever they come from.

import { type Static, Type } from '@sinclair/typebox';
import { verifyAnchored, writeCheckpoint } from '../audit/audit-checkpoints.js';
import { appendAudit, readAudit } from '../audit/audit-log.js';
import type { ManifestAuditCheckpoint } from '../backup/manifest.js';
import { logDumpEvent, runBackupDump } from '../backup/run-dump.js';
import { archiveDate, exportAuditArchive, listAuditArchives } from '../bundles/audit-archive.js';
import { exportUserData } from '../bundles/user-export.js';
import { isOrthIdError, OrthIdError } from '../core/errors.js';
import { isSupportedLocale, SUPPORTED_LOCALES } from '../core/locales.js';
import {
  rotateSigningKey,
  rotateSigningKeys,
  SIGNING_ALGS,
  type SigningAlg,
} from '../crypto/signing-keys.js';
import { signUpSettingsOf } from '../identity/sign-up.js';
import { formatSender, parseSender } from '../mail/address.js';
import type { ClientPatch, GrantType, NewClient, ResponseType, SecretAuthMethod } from '../oidc/clients.js';
import { DEFAULT_LIFETIMES } from '../oidc/provider-configuration.js';
import { maxTokenSeconds, signingAlgOf } from '../oidc/providers.js';
import { announceTenantChange } from '../oidc/tenant-changes.js';
import { withTenant } from '../storage/db/database.js';
import { SYSTEM_TENANT_SLUG } from '../tenancy/admin-resource.js';
import { auditedSettings, brandingChange } from '../tenancy/branding.js';
import { issuerFor, type Tenant } from '../tenancy/tenants.js';
import { registerAccountClient } from './bootstrap.js';
import { tenantLogoRemove, tenantLogoSet } from './brand-logo.js';
import { grantAdministrator, setUpConsoleClient } from './console-access.js';
import { rotateDataKey, rotateRootKey, rotationStatus, shredTenant } from './key-rotation.js';
import { configureMfaPolicy } from './mfa-policy.js';
import {
  type AnyOperation,
  actorOf,
  checkInput,
  defineOperation,
  nonEmpty,
  type OperationContext,
} from './operation.js';
import {
  AuditArchiveOutput,
  AuditEventOutput,
  AuditVerifyOutput,
  CheckOutput,
  ClientOutput,
  DumpOutput,
  FactorOutput,
  InvitationEntryOutput,
  InvitationOutput,
  InvitationPageOutput,
  KeyRotationOutput,
  KeystoreAuditOutput,
  RecordedOutput,
  ReenrolmentOutput,
  RegisteredClientOutput,
  RotatedClientOutput,
  RotationProgressOutput,
  ShredOutput,
  SigningRotationOutput,
  StoredAuditArchiveOutput,
  TenantOutput,
  TenantSettingsOutput,
  UserExportOutput,
  UserFactorsOutput,
  UserOutput,
} from './operation-outputs.js';
import type { OrthId } from './orthid.js';
import { checkDeployment } from './verification-checks.js';

/** A required text argument: present and not empty. */
const Text = Type.String({ minLength: 1 });
const Strings = Type.Array(Type.String());
const TenantInput = Type.Object({ tenant: Text });

/** `--request-object-jwks` is JSON text (a JWK Set or an array of JWKs); the registration checks its keys. */
function requestObjectKeys(
  text: string | undefined,
  alg: string | undefined,
): Pick<NewClient, 'requestObjectJwks' | 'requestObjectSigningAlg'> {
  const signingAlg = alg as NewClient['requestObjectSigningAlg'];
  if (text === undefined) return signingAlg === undefined ? {} : { requestObjectSigningAlg: signingAlg };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new OrthIdError(
      'request.invalid',
      '--request-object-jwks must be JSON: a JWK Set {"keys": [...]}.',
      {
        details: { field: 'requestObjectJwks' },
      },
    );
  }
  const keys = Array.isArray(parsed) ? parsed : (parsed as { keys?: unknown } | null)?.keys;
  return { requestObjectJwks: keys as NewClient['requestObjectJwks'], requestObjectSigningAlg: signingAlg };
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

const tenantCreate = defineOperation({
  name: 'tenant.create',
  input: Type.Object({
    slug: Text,
    displayName: Type.Optional(Type.String()),
    custody: Type.Optional(Type.String()),
  }),
  output: TenantOutput,
  async run(app, input, context) {
    const actor = actorOf(context);
    const tenant = await app.tenants.create(
      {
        slug: input.slug,
        displayName: nonEmpty(input.displayName),
        keyCustody: nonEmpty(input.custody),
        actor,
      },
      // The account pages' client comes with the tenant (src/oidc/account-client.ts).
      async (tx, created) => {
        await registerAccountClient(app, tx, created, actor);
        await setUpConsoleClient(app, actor)(tx, created);
      },
    );
    return { ...tenant, issuer: issuerFor(app.config.publicUrl, tenant.slug) };
  },
});

const tenantList = defineOperation({
  name: 'tenant.list',
  input: Type.Object({}),
  output: Type.Array(TenantOutput),
  async run(app) {
    return (await app.tenants.list()).map((t) => ({ ...t, issuer: issuerFor(app.config.publicUrl, t.slug) }));
  },
});

/** Changes a tenant's OpenID Connect policy; every replica's provider picks it up at once. */
const tenantConfigure = defineOperation({
  name: 'tenant.configure',
  input: Type.Object({
    slug: Text,
    idTokenClaims: Type.Optional(Type.String({ errorMessage: '--id-token-claims must be on or off.' })),
    mfa: Type.Optional(Type.String()),
    mfaOrganisations: Type.Optional(Strings),
    mfaRoles: Type.Optional(Strings),
    defaultLocale: Type.Optional(
      Type.String({ errorMessage: `--default-locale must be one of ${SUPPORTED_LOCALES.join(', ')}.` }),
    ),
    mailFrom: Type.Optional(Type.String({ errorMessage: '--mail-from must be text.' })),
    signUp: Type.Optional(Type.String({ errorMessage: '--sign-up must be on or off.' })),
    signUpDomains: Type.Optional(Strings),
    displayName: Type.Optional(Type.String()),
    brandColour: Type.Optional(Type.String()),
    supportContact: Type.Optional(Type.String()),
    selfDelete: Type.Optional(Type.String({ errorMessage: '--self-delete must be on or off.' })),
  }),
  output: TenantSettingsOutput,
  async run(app, input, context) {
    const actor = actorOf(context);
    let tenant = await app.tenants.get(input.slug);
    const branding = brandingChange(input);
    const idTokenClaims = nonEmpty(input.idTokenClaims);
    if (idTokenClaims !== undefined && idTokenClaims !== 'on' && idTokenClaims !== 'off') {
      throw new OrthIdError('request.invalid', '--id-token-claims must be on or off.', {
        details: { field: 'idTokenClaims' },
      });
    }
    const selfDelete = nonEmpty(input.selfDelete);
    if (selfDelete !== undefined && selfDelete !== 'on' && selfDelete !== 'off') {
      throw new OrthIdError('request.invalid', '--self-delete must be on or off.', {
        details: { field: 'selfDelete' },
      });
    }
    const defaultLocale = nonEmpty(input.defaultLocale)?.toLowerCase();
    if (defaultLocale !== undefined && !isSupportedLocale(defaultLocale)) {
      throw new OrthIdError(
        'request.invalid',
        `--default-locale must be one of ${SUPPORTED_LOCALES.join(', ')}: the languages the hosted pages are translated into.`,
        { details: { field: 'defaultLocale' } },
      );
    }
    const mailFrom = nonEmpty(input.mailFrom);
    const sender = mailFrom === undefined || mailFrom === 'default' ? undefined : parseSender(mailFrom);
    if (mailFrom !== undefined && mailFrom !== 'default' && !sender) {
      throw new OrthIdError(
        'mail.address_invalid',
        '--mail-from must be "Name <address>", an address, or default.',
        {
          details: { field: 'mailFrom' },
        },
      );
    }
    const settings: Record<string, unknown> = {
      ...branding.settings,
      ...(idTokenClaims === undefined ? {} : { claimsInIdToken: idTokenClaims === 'on' }),
      ...(defaultLocale === undefined ? {} : { defaultLocale }),
      ...(selfDelete === undefined ? {} : { selfDelete: selfDelete === 'on' }),
      // null removes the tenant's own sender: its mail then comes from ORTHID_MAIL_FROM.
      ...(mailFrom === undefined ? {} : { mailFrom: sender ? formatSender(sender) : null }),
      ...signUpChange(input),
    };
    // Every other setting is checked above, before the MFA policy (a transaction of its own)
    // commits: a refused value changes nothing.
    if (input.mfa !== undefined || input.mfaOrganisations !== undefined || input.mfaRoles !== undefined) {
      await configureMfaPolicy(
        app,
        tenant,
        { mode: nonEmpty(input.mfa), organisations: input.mfaOrganisations, roles: input.mfaRoles },
        actor,
      );
      tenant = await app.tenants.get(input.slug);
    }
    await withTenant(app.db, tenant.id, async (tx) => {
      if (branding.displayName !== undefined)
        await app.tenants.setDisplayName(tx, tenant.id, branding.displayName);
      if (Object.keys(settings).length === 0 && branding.displayName === undefined) return;
      await app.tenants.setSettings(tx, tenant.id, settings);
      await appendAudit(
        tx,
        await app.tenantKeys.forTenant(tx, tenant.id),
        {
          actor,
          action: 'tenant.configured',
          target: `tenant:${tenant.id}`,
          outcome: 'success',
          details: {
            ...auditedSettings(settings),
            ...(branding.displayName === undefined ? {} : { displayName: branding.displayName }),
          },
        },
        app.clock,
      );
      await announceTenantChange(tx, tenant.id);
    });
    const current = await app.tenants.get(tenant.slug);
    return {
      tenant: tenant.slug,
      idTokenClaims: current.settings.claimsInIdToken === false ? ('off' as const) : ('on' as const),
      defaultLocale: isSupportedLocale(current.settings.defaultLocale)
        ? current.settings.defaultLocale
        : 'en',
      mailFrom:
        typeof current.settings.mailFrom === 'string' ? current.settings.mailFrom : app.mail.defaultFrom,
      mfa: app.mfa.policyOf(current),
      ...signUpSettingsOutput(current),
      displayName: current.displayName,
      brandColour:
        typeof current.settings.brandColour === 'string' ? current.settings.brandColour : 'default',
      supportContact:
        typeof current.settings.supportContact === 'string' ? current.settings.supportContact : 'none',
      selfDelete: current.settings.selfDelete === true ? ('on' as const) : ('off' as const),
    };
  },
});

const DOMAIN = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/;

/** `--sign-up on|off` and `--sign-up-domains a.com,b.org` as settings (an empty list: any domain). */
function signUpChange(input: { signUp?: string; signUpDomains?: string[] }): Record<string, unknown> {
  const mode = nonEmpty(input.signUp);
  if (mode !== undefined && mode !== 'on' && mode !== 'off') {
    throw new OrthIdError('request.invalid', '--sign-up must be on or off.', {
      details: { field: 'signUp' },
    });
  }
  const domains = input.signUpDomains?.map((d) => d.trim().toLowerCase().replace(/^@/, ''));
  const bad = domains?.find((d) => !DOMAIN.test(d));
  if (bad !== undefined) {
    throw new OrthIdError('request.invalid', `--sign-up-domains: "${bad}" is not a domain name.`, {
      details: { field: 'signUpDomains' },
    });
  }
  return {
    ...(mode === undefined ? {} : { signUp: mode === 'on' }),
    ...(domains === undefined ? {} : { signUpDomains: [...new Set(domains)].sort() }),
  };
}

function signUpSettingsOutput(tenant: Tenant) {
  const settings = signUpSettingsOf(tenant);
  return { signUp: settings.enabled ? ('on' as const) : ('off' as const), signUpDomains: settings.domains };
}

/** Invites an address (optionally into an organisation, by name or id): the link goes by mail. */
const userInvite = defineOperation({
  name: 'user.invite',
  input: Type.Object({ tenant: Text, email: Text, organisation: Type.Optional(Type.String()) }),
  output: InvitationOutput,
  async run(app, input, context) {
    const tenant = await app.tenants.get(input.tenant);
    return app.signUp.invite(tenant, {
      email: input.email,
      organisation: nonEmpty(input.organisation),
      actor: actorOf(context),
    });
  },
});

/** Lists invitations with their state, newest first, `limit` at a time. */
const userInvitations = defineOperation({
  name: 'user.invitations',
  input: Type.Object({
    tenant: Text,
    limit: Type.Optional(Type.Integer({ errorMessage: '--limit must be a whole number from 1 to 200.' })),
    after: Type.Optional(Type.String()),
  }),
  output: InvitationPageOutput,
  async run(app, input) {
    const tenant = await app.tenants.get(input.tenant);
    return withTenant(app.db, tenant.id, (tx) =>
      app.invitations.list(tx, tenant.id, {
        limit: input.limit ?? 50,
        after: nonEmpty(input.after),
        sort: '-created',
      }),
    );
  },
});

/** Revokes an invitation: its link is refused from now on. Audited. */
const userRevokeInvitation = defineOperation({
  name: 'user.revoke-invitation',
  input: Type.Object({ tenant: Text, id: Text }),
  output: InvitationEntryOutput,
  async run(app, input) {
    const tenant = await app.tenants.get(input.tenant);
    return withTenant(app.db, tenant.id, (tx) => app.invitations.revoke(tx, tenant.id, input.id, 'cli'));
  },
});

/** `password` (optional) is checked against the policy and stored only as a hash; it is never echoed. */
const userCreate = defineOperation({
  name: 'user.create',
  input: Type.Object({
    tenant: Text,
    email: Text,
    name: Type.Optional(Type.String()),
    password: Type.Optional(Type.String({ errorMessage: 'The password must be text.' })),
    /** Also an administrator (of every tenant, in the system tenant): the admin API and console. */
    admin: Type.Optional(Type.Boolean()),
  }),
  output: UserOutput,
  async run(app, input, context) {
    const tenant = await app.tenants.get(input.tenant);
    const actor = actorOf(context);
    return withTenant(app.db, tenant.id, async (tx) => {
      const user = await app.users.create(
        tx,
        tenant.id,
        { email: input.email, name: nonEmpty(input.name), password: input.password },
        actor,
        // A new user belongs to no organisation yet: only a tenant-wide requirement counts.
        { mfaEnforced: await app.mfa.enforcedFor(tx, tenant.id) },
      );
      if (input.admin) await grantAdministrator(app, tx, tenant.id, user.id, actor);
      return user;
    });
  },
});

/** A user's second factors (never secrets), recovery codes left and whether they must re-enrol. */
const userFactors = defineOperation({
  name: 'user.factors',
  input: Type.Object({ tenant: Text, id: Text }),
  output: UserFactorsOutput,
  async run(app, input) {
    const tenant = await app.tenants.get(input.tenant);
    return withTenant(app.db, tenant.id, (tx) => app.mfa.listFactors(tx, input.id));
  },
});

/** Removes a user's (lost) factor; the last one takes the recovery codes along. Audited. */
const userRemoveFactor = defineOperation({
  name: 'user.remove-factor',
  input: Type.Object({ tenant: Text, id: Text, factor: Text }),
  output: FactorOutput,
  async run(app, input, context) {
    const tenant = await app.tenants.get(input.tenant);
    return withTenant(app.db, tenant.id, (tx) =>
      app.mfa.removeFactor(tx, tenant.id, input.id, input.factor, actorOf(context)),
    );
  },
});

/** Removes every factor and recovery code; the user enrols again at their next sign-in. Audited. */
const userReenrol = defineOperation({
  name: 'user.reenrol',
  input: Type.Object({ tenant: Text, id: Text }),
  output: ReenrolmentOutput,
  async run(app, input, context) {
    const tenant = await app.tenants.get(input.tenant);
    return withTenant(app.db, tenant.id, (tx) =>
      app.mfa.requireReenrolment(tx, tenant.id, input.id, actorOf(context)),
    );
  },
});

const clientCreate = defineOperation({
  name: 'client.create',
  input: Type.Object({
    tenant: Text,
    name: Text,
    grantTypes: Type.Optional(Strings),
    redirectUris: Type.Optional(Strings),
    postLogoutRedirectUris: Type.Optional(Strings),
    scope: Type.Optional(Type.String()),
    resources: Type.Optional(Strings),
    public: Type.Optional(Type.Boolean()),
    responseTypes: Type.Optional(Strings),
    idTokenSignedResponseAlg: Type.Optional(Type.String()),
    tokenEndpointAuthMethod: Type.Optional(Type.String()),
    firstParty: Type.Optional(Type.Boolean()),
    introspects: Type.Optional(Strings),
    requirePushedAuthorizationRequests: Type.Optional(Type.Boolean()),
    dpopBoundAccessTokens: Type.Optional(Type.Boolean()),
    backchannelLogoutUri: Type.Optional(Type.String()),
    requestObjectJwks: Type.Optional(Type.String()),
    requestObjectSigningAlg: Type.Optional(Type.String()),
  }),
  output: RegisteredClientOutput,
  async run(app, input, context) {
    const tenant = await app.tenants.get(input.tenant);
    return withTenant(app.db, tenant.id, (tx) =>
      app.clients.create(
        tx,
        tenant.id,
        {
          name: input.name,
          // The grant types are checked by the client registry, with the same message as the API's.
          grantTypes: (input.grantTypes ?? []) as GrantType[],
          redirectUris: input.redirectUris ?? [],
          postLogoutRedirectUris: input.postLogoutRedirectUris ?? [],
          scope: nonEmpty(input.scope),
          resources: input.resources ?? [],
          public: input.public === true,
          // Response types, algorithm and auth method are checked by the client registry too.
          responseTypes: input.responseTypes as ResponseType[] | undefined,
          idTokenSignedResponseAlg: nonEmpty(input.idTokenSignedResponseAlg) as SigningAlg | undefined,
          tokenEndpointAuthMethod: nonEmpty(input.tokenEndpointAuthMethod) as SecretAuthMethod | undefined,
          firstParty: input.firstParty === true,
          introspects: input.introspects ?? [],
          // Opt-in flows.
          requirePushedAuthorizationRequests: input.requirePushedAuthorizationRequests === true,
          dpopBoundAccessTokens: input.dpopBoundAccessTokens === true,
          backchannelLogoutUri: nonEmpty(input.backchannelLogoutUri),
          ...requestObjectKeys(nonEmpty(input.requestObjectJwks), nonEmpty(input.requestObjectSigningAlg)),
        },
        actorOf(context),
      ),
    );
  },
});

const clientList = defineOperation({
  name: 'client.list',
  input: TenantInput,
  output: Type.Array(ClientOutput),
  async run(app, input) {
    const tenant = await app.tenants.get(input.tenant);
    return withTenant(app.db, tenant.id, async (tx) => (await app.clients.list(tx, { limit: 200 })).items);
  },
});

/** Changes a client's name, grant types or redirect URIs, checked as at registration. Audited. */
const clientUpdate = defineOperation({
  name: 'client.update',
  input: Type.Object({
    tenant: Text,
    clientId: Text,
    name: Type.Optional(Type.String()),
    grantTypes: Type.Optional(Strings),
    redirectUris: Type.Optional(Strings),
    postLogoutRedirectUris: Type.Optional(Strings),
  }),
  output: ClientOutput,
  async run(app, input) {
    const { tenant: slug, clientId, ...patch } = input;
    if (Object.values(patch).every((v) => v === undefined)) {
      throw new OrthIdError(
        'request.invalid',
        'Name what to change: --name, --grant, --redirect-uri or --post-logout-redirect-uri.',
      );
    }
    const tenant = await app.tenants.get(slug);
    return withTenant(app.db, tenant.id, (tx) =>
      // The grant types are checked by the client registry, with the same message as the API's.
      app.clients.update(tx, tenant.id, clientId, patch as ClientPatch, 'cli'),
    );
  },
});

/** A confidential client's new secret, shown once; the old one works for the grace period (default none). */
const clientRotateSecret = defineOperation({
  name: 'client.rotateSecret',
  input: Type.Object({ tenant: Text, clientId: Text, gracePeriodSeconds: Type.Optional(Type.Number()) }),
  output: RotatedClientOutput,
  async run(app, input) {
    const tenant = await app.tenants.get(input.tenant);
    return withTenant(app.db, tenant.id, (tx) =>
      app.clients.rotateSecret(
        tx,
        tenant.id,
        input.clientId,
        { gracePeriodSeconds: input.gracePeriodSeconds ?? 0 },
        'cli',
      ),
    );
  },
});

/**
 * With an algorithm: a new key of it, which becomes the tenant's default. Without: a new key
 * for every algorithm the tenant signs with.
 */
const keystoreRotateSigning = defineOperation({
  name: 'keystore.rotateSigning',
  input: Type.Object({ tenant: Text, alg: Type.Optional(Type.String()) }),
  output: SigningRotationOutput,
  async run(app, input, context) {
    const tenant = await app.tenants.get(input.tenant);
    const alg = nonEmpty(input.alg);
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
        : await rotateSigningKeys(tx, keyring, now, overlap);
      if (alg) await app.tenants.setSettings(tx, tenant.id, { signingAlg: alg });
      for (const key of rotated) {
        await appendAudit(
          tx,
          keyring,
          {
            actor: actorOf(context),
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
});

/** Records a drill's outcome in the live deployment's audit log (system tenant). */
const backupRecordDrill = defineOperation({
  name: 'backup.recordDrill',
  input: Type.Object({
    report: Type.Object({
      ok: Type.Boolean(),
      set: Type.String(),
      restore_seconds: Type.Number(),
      checks: Type.Array(Type.Object({ name: Type.String(), ok: Type.Boolean() })),
    }),
  }),
  output: RecordedOutput,
  async run(app, { report }, context) {
    const tenant = await app.tenants.get(SYSTEM_TENANT_SLUG);
    await withTenant(app.db, tenant.id, async (tx) =>
      appendAudit(
        tx,
        await app.tenantKeys.forTenant(tx, tenant.id),
        {
          actor: actorOf(context),
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
    return { recorded: true as const };
  },
});

const backupCheck = defineOperation({
  name: 'backup.check',
  input: Type.Object({}),
  output: Type.Array(CheckOutput),
  run: (app) => checkDeployment(app),
});

const auditVerify = defineOperation({
  name: 'audit.verify',
  input: TenantInput,
  output: AuditVerifyOutput,
  async run(app, input) {
    const tenant = await app.tenants.get(input.tenant);
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
});

const LIMIT_MESSAGE = '--limit must be a whole number from 1 to 1000.';

const auditTail = defineOperation({
  name: 'audit.tail',
  input: Type.Object({
    tenant: Text,
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, errorMessage: LIMIT_MESSAGE })),
  }),
  output: Type.Array(AuditEventOutput),
  async run(app, input) {
    const tenant = await app.tenants.get(input.tenant);
    const limit = input.limit ?? 20;
    return withTenant(app.db, tenant.id, async (tx) =>
      readAudit(tx, await app.tenantKeys.forTenant(tx, tenant.id), { limit }),
    );
  },
});

/** What a dump is asked for (src/backup/dump.ts DumpOptions), as it crosses the control socket. */
export const DumpInput = Type.Object({
  encrypt: Type.Optional(Type.Boolean()),
  upload: Type.Optional(Type.Boolean()),
  recipients: Strings,
  dest: Text,
  destConfigured: Type.Optional(Type.Boolean()),
  keystoreDest: Type.Optional(Text),
  sse: Type.Optional(
    Type.Object(
      { type: Type.String(), kmsKeyId: Type.Optional(Type.String()) },
      { errorMessage: '"sse" must be {type, kmsKeyId?}.' },
    ),
  ),
  allowPlaintextUpload: Type.Optional(Type.Boolean()),
});

/** Runs inside a running embedded server, which holds the database; writes straight to the destinations. */
const backupDump = defineOperation({
  name: 'backup.dump',
  input: DumpInput,
  output: DumpOutput,
  run: (app, input) =>
    runBackupDump(
      {
        config: app.config,
        db: app.db,
        objects: app.objects,
        keystore: app.keystore,
        clock: app.clock,
        auditCheckpoints: () => checkpointTenants(app),
      },
      {
        encrypt: input.encrypt === true,
        upload: input.upload === true,
        recipients: input.recipients,
        dest: input.dest,
        destConfigured: input.destConfigured === true,
        keystoreDest: input.keystoreDest,
        sse: input.sse,
        allowPlaintextUpload: input.allowPlaintextUpload === true,
      },
      (event) => logDumpEvent(app.log, event),
    ),
});

/** Writes a signed audit archive of `from`..`to` (ISO dates, optional) to object storage. */
const auditExport = defineOperation({
  name: 'audit.export',
  input: Type.Object({ tenant: Text, from: Type.Optional(Type.String()), to: Type.Optional(Type.String()) }),
  output: AuditArchiveOutput,
  async run(app, input, context) {
    const tenant = await app.tenants.get(input.tenant);
    const range = {
      from: archiveDate(nonEmpty(input.from), 'from'),
      to: archiveDate(nonEmpty(input.to), 'to'),
    };
    return exportAuditArchive({ ...app, publicUrl: app.config.publicUrl }, tenant, range, actorOf(context));
  },
});

const auditExports = defineOperation({
  name: 'audit.exports',
  input: TenantInput,
  output: Type.Array(StoredAuditArchiveOutput),
  async run(app, input) {
    return listAuditArchives(app, await app.tenants.get(input.tenant));
  },
});

/**
 * `root`: a new root key version for every tenant (or `tenant`), data keys re-wrapped under it.
 * Otherwise a new data key version for `tenant` and the re-encryption pass, run to the end.
 */
const keystoreRotate = defineOperation({
  name: 'keystore.rotate',
  input: Type.Object({ root: Type.Optional(Type.Boolean()), tenant: Type.Optional(Type.String()) }),
  output: KeyRotationOutput,
  async run(app, input, context) {
    const slug = nonEmpty(input.tenant);
    if (input.root === true) {
      const tenants = slug ? [await app.tenants.get(slug)] : await app.tenants.list();
      const live = tenants.filter((t) => t.status !== 'shredded');
      const rotated = [];
      for (const tenant of live) rotated.push(await rotateRootKey(app, tenant, actorOf(context)));
      return { kind: 'root' as const, tenants: rotated };
    }
    if (!slug)
      throw new OrthIdError('request.invalid', 'Pass --root, or --tenant SLUG to rotate its data key.');
    return rotateDataKey(app, await app.tenants.get(slug), actorOf(context));
  },
});

/** Progress of the newest root and data key rotation of every tenant. */
const keystoreRotations = defineOperation({
  name: 'keystore.rotations',
  input: Type.Object({}),
  output: Type.Array(RotationProgressOutput),
  run: (app) => rotationStatus(app),
});

/** Records a keystore export or import (by the CLI, which holds the keystore) in the system log. */
const keystoreAudit = defineOperation({
  name: 'keystore.audit',
  input: Type.Object({
    action: Type.String(),
    details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  }),
  output: KeystoreAuditOutput,
  async run(app, input, context) {
    const { action } = input;
    if (action !== 'keystore.exported' && action !== 'keystore.imported') {
      throw new OrthIdError('request.invalid', `"${action}" is not a keystore event.`);
    }
    const system = await app.tenants.get(SYSTEM_TENANT_SLUG);
    await withTenant(app.db, system.id, async (tx) =>
      appendAudit(
        tx,
        await app.tenantKeys.forTenant(tx, system.id),
        { actor: actorOf(context), action, outcome: 'success', details: input.details ?? {} },
        app.clock,
      ),
    );
    const recorded: Static<typeof KeystoreAuditOutput>['recorded'] = action;
    return { recorded };
  },
});

/** Crypto-shreds a tenant; `confirm` must repeat its slug. */
const tenantShred = defineOperation({
  name: 'tenant.shred',
  input: Type.Object({ tenant: Text, confirm: Type.Optional(Type.String()) }),
  output: ShredOutput,
  async run(app, input, context) {
    const slug = input.tenant;
    if (input.confirm !== slug) {
      throw new OrthIdError(
        'tenant.confirmation_required',
        `Shredding destroys tenant ${slug}'s keys for good, in every backup too. Confirm with: --confirm ${slug}`,
      );
    }
    return shredTenant(app, await app.tenants.get(slug), actorOf(context));
  },
});

/** Writes a user's signed data-export bundle to object storage. */
const userExport = defineOperation({
  name: 'user.export',
  input: Type.Object({ tenant: Text, id: Text }),
  output: UserExportOutput,
  async run(app, input, context) {
    const tenant = await app.tenants.get(input.tenant);
    return exportUserData({ ...app, publicUrl: app.config.publicUrl }, tenant, input.id, actorOf(context));
  },
});

/** Every operation, by name: what the control socket serves and the CLI and schedules call. */
export const operations = {
  [tenantCreate.name]: tenantCreate,
  [tenantList.name]: tenantList,
  [tenantConfigure.name]: tenantConfigure,
  [tenantShred.name]: tenantShred,
  [tenantLogoSet.name]: tenantLogoSet,
  [tenantLogoRemove.name]: tenantLogoRemove,
  [userCreate.name]: userCreate,
  [userExport.name]: userExport,
  [userFactors.name]: userFactors,
  [userRemoveFactor.name]: userRemoveFactor,
  [userReenrol.name]: userReenrol,
  [userInvite.name]: userInvite,
  [userInvitations.name]: userInvitations,
  [userRevokeInvitation.name]: userRevokeInvitation,
  [clientCreate.name]: clientCreate,
  [clientList.name]: clientList,
  [clientUpdate.name]: clientUpdate,
  [clientRotateSecret.name]: clientRotateSecret,
  [keystoreRotateSigning.name]: keystoreRotateSigning,
  [keystoreRotate.name]: keystoreRotate,
  [keystoreRotations.name]: keystoreRotations,
  [keystoreAudit.name]: keystoreAudit,
  [backupDump.name]: backupDump,
  [backupCheck.name]: backupCheck,
  [backupRecordDrill.name]: backupRecordDrill,
  [auditVerify.name]: auditVerify,
  [auditTail.name]: auditTail,
  [auditExport.name]: auditExport,
  [auditExports.name]: auditExports,
} as const;

type Operations = typeof operations;
export type OperationName = keyof Operations;
/** What an operation takes, as its caller writes it (the schema's static type). */
export type OperationInput<N extends OperationName> = Static<Operations[N]['input']>;
/** What an operation returns (the output schema's static type; over the control socket, the same as JSON). */
export type OperationOutput<N extends OperationName> = Static<Operations[N]['output']>;

export function isOperation(name: string): name is OperationName {
  return Object.hasOwn(operations, name);
}

/** The entry named `name`; `control.unknown_operation` when there is none. */
export function operationNamed(name: string): AnyOperation {
  if (!isOperation(name)) {
    throw new OrthIdError('control.unknown_operation', `Unknown operation "${name}".`);
  }
  return operations[name];
}

/**
 * Runs `name` with `input`, checked against its schema first (input from the CLI, the socket, a
 * schedule, the admin API); `context` names who runs it (default: the CLI).
 */
export async function runOperation<N extends OperationName>(
  app: OrthId,
  name: N,
  input: OperationInput<N>,
  context?: OperationContext,
): Promise<OperationOutput<N>> {
  const operation = operationNamed(name);
  return operation.run(app, checkInput(operation, input), context) as Promise<OperationOutput<N>>;
}
