// Admin API: tenants, for the system tenant's administrators only: list, create, get, settings
// (what `orthid tenant configure` sets), custody and crypto-shredding, through the operations the
// CLI runs (src/ops/operations.ts), with the caller as their audit actor.
import { type Static, Type } from '@sinclair/typebox';
import { SUPPORTED_LOCALES } from '../../../core/locales.js';
import type { KeyRotationDeps } from '../../../ops/key-rotation.js';
import { custodyInfo } from '../../../ops/key-status.js';
import { ShredOutput, TenantOutput, TenantSettingsOutput } from '../../../ops/operation-outputs.js';
import { withTenant } from '../../../storage/db/database.js';
import { issuerFor, type Tenants } from '../../../tenancy/tenants.js';
import { adminContextOf } from '../../plugins/admin-auth.js';
import { type AdminApi, requireSystemAdmin } from './context.js';
import { CustodyInfo } from './key-schemas.js';
import { PageOf, PageQuery, Params, PROBLEMS, Text } from './schemas.js';

const tags = ['tenants'];

const TenantListQuery = Type.Object({
  ...PageQuery(
    Type.String({
      maxLength: 63,
      pattern: '^[a-z0-9-]*$',
      description: 'The `next` of the previous page (a slug).',
    }),
  ).properties,
  status: Type.Optional(
    Type.Union([Type.Literal('active'), Type.Literal('disabled'), Type.Literal('shredded')], {
      description: 'Only tenants with this status.',
    }),
  ),
});

const TenantInput = Type.Object(
  {
    slug: Text({
      minLength: 1,
      maxLength: 63,
      description: '1-63 lowercase letters, digits and dashes (tenant.slug_invalid otherwise).',
    }),
    displayName: Type.Optional(Text({ minLength: 1, maxLength: 200 })),
    custody: Type.Optional(
      Text({
        minLength: 1,
        maxLength: 2000,
        description:
          "Bring your own key: an awskms: key or a pkcs11: object whose root keys wrap the tenant's keys.",
      }),
    ),
  },
  { additionalProperties: false },
);

const Names = Type.Array(Text({ minLength: 1, maxLength: 200 }), { maxItems: 100 });
const SettingsPatch = Type.Object(
  {
    idTokenClaims: Type.Optional(
      Type.Boolean({ description: 'Claims of granted scopes in ID tokens as well as userinfo.' }),
    ),
    defaultLocale: Type.Optional(Type.Union(SUPPORTED_LOCALES.map((l) => Type.Literal(l)))),
    mailFrom: Type.Optional(
      Type.Union([Text({ minLength: 1, maxLength: 400 }), Type.Null()], {
        description: '"Name <address>" or an address; null sends as the deployment\'s ORTHID_MAIL_FROM.',
      }),
    ),
    mfa: Type.Optional(
      Type.Object(
        {
          mode: Type.Union([Type.Literal('off'), Type.Literal('optional'), Type.Literal('required')]),
          organisations: Type.Optional(Names),
          roles: Type.Optional(Names),
        },
        { additionalProperties: false },
      ),
    ),
    signUp: Type.Optional(Type.Boolean({ description: 'Self sign-up on the hosted pages.' })),
    signUpDomains: Type.Optional(
      Type.Array(Text({ minLength: 1, maxLength: 253 }), {
        maxItems: 100,
        description: 'The e-mail domains sign-up is open to; empty for any.',
      }),
    ),
    selfDelete: Type.Optional(
      Type.Boolean({ description: 'Users may delete their own account on the account pages.' }),
    ),
    displayName: Type.Optional(Text({ minLength: 1, maxLength: 200 })),
    brandColour: Type.Optional(
      Type.Union([Text({ minLength: 1, maxLength: 7 }), Type.Null()], {
        description: "#rgb or #rrggbb, at least 4.5:1 against white; null for OrthID's own.",
      }),
    ),
    supportContact: Type.Optional(
      Type.Union([Text({ minLength: 1, maxLength: 400 }), Type.Null()], {
        description: 'An e-mail address or https URL shown in pages and mails; null for none.',
      }),
    ),
  },
  { additionalProperties: false, minProperties: 1 },
);

const ShredInput = Type.Object(
  { confirm: Text({ maxLength: 63, description: "The tenant's slug, typed again to confirm." }) },
  { additionalProperties: false },
);

/** What `orthid tenant configure` takes (src/ops/operations.ts), as the CLI's flags spell it. */
export interface ConfigureInput {
  slug: string;
  idTokenClaims?: 'on' | 'off';
  defaultLocale?: string;
  mailFrom?: string;
  mfa?: string;
  mfaOrganisations?: string[];
  mfaRoles?: string[];
}

/** The tenant operations the CLI runs, run with the caller as audit actor (wired in index.ts). */
export interface TenantOperations {
  create(
    input: { slug: string; displayName?: string; custody?: string },
    actor: string,
  ): Promise<Static<typeof TenantOutput>>;
  configure(input: ConfigureInput, actor: string): Promise<Static<typeof TenantSettingsOutput>>;
  shred(input: { tenant: string; confirm: string }, actor: string): Promise<Static<typeof ShredOutput>>;
}

/** What the routes use. */
export interface TenantRoutesDeps extends KeyRotationDeps {
  tenants: Tenants;
  publicUrl: string;
  operations: TenantOperations;
}

export function registerTenantCollectionRoutes(api: AdminApi, deps: TenantRoutesDeps): void {
  api.get(
    '/tenants',
    {
      schema: {
        tags,
        summary: 'List tenants in slug order (system administrators)',
        querystring: TenantListQuery,
        response: { 200: PageOf(TenantOutput), ...PROBLEMS },
      },
    },
    async (request) => {
      requireSystemAdmin(request, 'Listing tenants');
      const { limit, after, status } = request.query;
      const page = await deps.tenants.page({
        limit,
        ...(after ? { after } : {}),
        ...(status ? { status } : {}),
      });
      return {
        items: page.items.map((t) => ({ ...t, issuer: issuerFor(deps.publicUrl, t.slug) })),
        next: page.next,
      };
    },
  );

  api.post(
    '/tenants',
    {
      schema: {
        tags,
        summary: 'Create a tenant with its own keys and audit log (system administrators)',
        body: TenantInput,
        response: { 201: TenantOutput, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      requireSystemAdmin(request, 'Creating a tenant');
      // The new tenant's log names the caller as a principal of the system tenant.
      const { actor, principal } = adminContextOf(request);
      const created = await deps.operations.create(request.body, `${actor}@${principal.issuer.slug}`);
      return reply.code(201).send(created);
    },
  );
}

export function registerTenantRoutes(api: AdminApi, deps: TenantRoutesDeps): void {
  api.get(
    '',
    {
      schema: {
        tags,
        summary: 'Get a tenant (system administrators)',
        params: Params({}),
        response: { 200: TenantOutput, ...PROBLEMS },
      },
    },
    async (request) => {
      requireSystemAdmin(request, 'Reading a tenant');
      const { tenant } = adminContextOf(request);
      return { ...tenant, issuer: issuerFor(deps.publicUrl, tenant.slug) };
    },
  );

  api.get(
    '/settings',
    {
      schema: {
        tags,
        summary: "A tenant's settings: what `orthid tenant configure` sets (system administrators)",
        params: Params({}),
        response: { 200: TenantSettingsOutput, ...PROBLEMS },
      },
    },
    async (request) => {
      requireSystemAdmin(request, "Reading a tenant's settings");
      const { tenant, actor } = adminContextOf(request);
      // Given nothing to change, configure changes and audits nothing and answers the settings.
      return deps.operations.configure({ slug: tenant.slug }, actor);
    },
  );

  api.patch(
    '/settings',
    {
      schema: {
        tags,
        summary: "Change a tenant's settings (system administrators); answers them all",
        params: Params({}),
        body: SettingsPatch,
        response: { 200: TenantSettingsOutput, ...PROBLEMS },
      },
    },
    async (request) => {
      requireSystemAdmin(request, "Changing a tenant's settings");
      const { tenant, actor } = adminContextOf(request);
      const body = request.body;
      const input: ConfigureInput = {
        slug: tenant.slug,
        ...(body.idTokenClaims === undefined ? {} : { idTokenClaims: body.idTokenClaims ? 'on' : 'off' }),
        ...(body.defaultLocale === undefined ? {} : { defaultLocale: body.defaultLocale }),
        ...(body.mailFrom === undefined ? {} : { mailFrom: body.mailFrom ?? 'default' }),
        ...(body.mfa === undefined
          ? {}
          : {
              mfa: body.mfa.mode,
              ...(body.mfa.organisations ? { mfaOrganisations: body.mfa.organisations } : {}),
              ...(body.mfa.roles ? { mfaRoles: body.mfa.roles } : {}),
            }),
        ...(body.signUp === undefined ? {} : { signUp: body.signUp ? 'on' : 'off' }),
        ...(body.signUpDomains === undefined ? {} : { signUpDomains: body.signUpDomains }),
        ...(body.selfDelete === undefined ? {} : { selfDelete: body.selfDelete ? 'on' : 'off' }),
        ...(body.displayName === undefined ? {} : { displayName: body.displayName }),
        ...(body.brandColour === undefined ? {} : { brandColour: body.brandColour ?? 'default' }),
        ...(body.supportContact === undefined ? {} : { supportContact: body.supportContact ?? 'none' }),
      };
      return deps.operations.configure(input, actor);
    },
  );

  api.get(
    '/custody',
    {
      schema: {
        tags,
        summary: "The custody of a tenant's root keys and their versions (system administrators)",
        params: Params({}),
        response: { 200: CustodyInfo, ...PROBLEMS },
      },
    },
    async (request) => {
      requireSystemAdmin(request, "Reading a tenant's key custody");
      const { tenant } = adminContextOf(request);
      return withTenant(deps.db, tenant.id, (tx) => custodyInfo(deps, tx, tenant));
    },
  );

  api.post(
    '/shred',
    {
      schema: {
        tags,
        summary:
          'Crypto-shred a tenant: destroy its keys for good, in every backup too, and delete its stored objects (avatars, logo, data exports, audit archives); repeating it finishes one that stopped part-way (system administrators; repeat the slug as confirm)',
        params: Params({}),
        body: ShredInput,
        response: { 200: ShredOutput, ...PROBLEMS },
      },
    },
    async (request) => {
      requireSystemAdmin(request, 'Shredding a tenant');
      const { tenant, actor } = adminContextOf(request);
      return deps.operations.shred({ tenant: tenant.slug, confirm: request.body.confirm }, actor);
    },
  );
}
