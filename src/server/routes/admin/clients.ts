// Admin API: OIDC clients of a tenant (list, register, get, edit, rotate the secret, delete). A
// secret is in the response that made it only; afterwards it exists only as a keyed hash.
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Queryable } from '../../../core/sql.js';
import type { Clients } from '../../../oidc/clients.js';
import {
  CLIENT_SORTS,
  GRANT_TYPES,
  MAX_SECRET_GRACE_SECONDS,
  REQUEST_OBJECT_ALGS,
  RESPONSE_TYPES,
  SECRET_AUTH_METHODS,
} from '../../../oidc/clients.js';
import type { AdminRequestContext } from '../../plugins/admin-auth.js';
import { type AdminApi, inTenant, type TenantScope } from './context.js';
import { IfMatchHeader, requireIfMatch, sendVersion } from './preconditions.js';
import {
  NoContent,
  PageOf,
  PageQuery,
  Params,
  PROBLEMS,
  SigningAlgorithm,
  Text,
  Timestamp,
} from './schemas.js';

const tags = ['clients'];
const ClientId = Text({ minLength: 1, maxLength: 64 });
const ById = Params({ clientId: ClientId });
const Uri = Type.String({ format: 'uri', maxLength: 2048 });

const Client = Type.Object({
  clientId: Type.String(),
  name: Type.String(),
  grantTypes: Type.Array(Type.String()),
  redirectUris: Type.Array(Type.String()),
  postLogoutRedirectUris: Type.Array(Type.String()),
  scope: Type.String(),
  resources: Type.Array(Type.String()),
  public: Type.Boolean(),
  responseTypes: Type.Array(Type.String()),
  idTokenSignedResponseAlg: Type.String(),
  tokenEndpointAuthMethod: Type.String(),
  firstParty: Type.Boolean(),
  introspects: Type.Array(Type.String()),
  // Opt-in flows.
  requirePushedAuthorizationRequests: Type.Boolean(),
  dpopBoundAccessTokens: Type.Boolean(),
  backchannelLogoutUri: Type.Optional(Type.String()),
  requestObjectSigningAlg: Type.Optional(Type.String()),
  previousSecretExpiresAt: Type.Optional(
    Type.String({
      format: 'date-time',
      description: 'Until when the secret replaced by the last rotation works.',
    }),
  ),
  disabled: Type.Boolean(),
  createdAt: Timestamp,
});

const CreatedClient = Type.Intersect([
  Client,
  Type.Object({ clientSecret: Type.Optional(Type.String({ description: 'Shown once; store it now.' })) }),
]);

// The pieces a registration and an edit share, so both are checked alike.
const ClientName = Text({ minLength: 1, maxLength: 200 });
const GrantTypes = Type.Array(Type.Union(GRANT_TYPES.map((g) => Type.Literal(g))), {
  minItems: 1,
  uniqueItems: true,
});
const RedirectUris = Type.Array(Uri, { maxItems: 20 });

const ClientInput = Type.Object(
  {
    name: ClientName,
    grantTypes: GrantTypes,
    redirectUris: Type.Optional(RedirectUris),
    postLogoutRedirectUris: Type.Optional(RedirectUris),
    scope: Type.Optional(Text({ maxLength: 1000 })),
    resources: Type.Optional(Type.Array(Uri, { maxItems: 20 })),
    public: Type.Optional(Type.Boolean()),
    responseTypes: Type.Optional(
      Type.Array(Type.Union(RESPONSE_TYPES.map((t) => Type.Literal(t))), { minItems: 1, uniqueItems: true }),
    ),
    idTokenSignedResponseAlg: Type.Optional(SigningAlgorithm),
    tokenEndpointAuthMethod: Type.Optional(Type.Union(SECRET_AUTH_METHODS.map((m) => Type.Literal(m)))),
    firstParty: Type.Optional(Type.Boolean()),
    introspects: Type.Optional(
      Type.Array(Uri, {
        maxItems: 20,
        description: 'API resource indicators whose tokens this (confidential) client may introspect.',
      }),
    ),
    // Opt-in flows (checked further at registration, see clients.ts).
    requirePushedAuthorizationRequests: Type.Optional(Type.Boolean()),
    dpopBoundAccessTokens: Type.Optional(Type.Boolean()),
    backchannelLogoutUri: Type.Optional(Uri),
    requestObjectJwks: Type.Optional(
      Type.Array(Type.Object({ kty: Type.String() }, { additionalProperties: true }), {
        minItems: 1,
        maxItems: 10,
      }),
    ),
    requestObjectSigningAlg: Type.Optional(Type.Union(REQUEST_OBJECT_ALGS.map((a) => Type.Literal(a)))),
  },
  { additionalProperties: false },
);

const ClientPatch = Type.Object(
  {
    name: Type.Optional(ClientName),
    grantTypes: Type.Optional(GrantTypes),
    redirectUris: Type.Optional(RedirectUris),
    postLogoutRedirectUris: Type.Optional(RedirectUris),
  },
  { additionalProperties: false, minProperties: 1 },
);

const SecretRotation = Type.Object(
  {
    gracePeriodSeconds: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: MAX_SECRET_GRACE_SECONDS,
        default: 0,
        description:
          'How long the old secret keeps working, so deployments can be updated first; 0 (the default) ends it at once. At most a week.',
      }),
    ),
  },
  { additionalProperties: false },
);

const RotatedClient = Type.Intersect([
  Client,
  Type.Object({ clientSecret: Type.String({ description: 'The new secret, shown once; store it now.' }) }),
]);

const ClientsQuery = Type.Object({
  ...PageQuery(
    Text({
      minLength: 1,
      maxLength: 512,
      description: 'The `next` of the previous page, read with the same sort.',
    }),
  ).properties,
  sort: Type.Optional(
    Type.Union(
      CLIENT_SORTS.map((s) => Type.Literal(s)),
      { default: 'client_id', description: 'Order of the list: client_id or created, "-" for descending.' },
    ),
  ),
});

/** What the routes use: the database for the tenant's transaction, and their services. */
export interface ClientRoutesDeps extends TenantScope {
  clients: Clients;
}

export function registerClientRoutes(api: AdminApi, deps: ClientRoutesDeps): void {
  const { clients } = deps;

  api.get(
    '/clients',
    {
      schema: {
        tags,
        summary: 'List clients (never their secrets)',
        params: Params({}),
        querystring: ClientsQuery,
        response: { 200: PageOf(Client), ...PROBLEMS },
      },
    },
    (request) => inTenant(deps, request, (tx) => clients.list(tx, request.query)),
  );

  api.post(
    '/clients',
    {
      schema: {
        tags,
        summary: 'Register a client; the response carries its secret, once',
        params: Params({}),
        body: ClientInput,
        response: { 201: CreatedClient, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      const created = await inTenant(deps, request, (tx, { tenant, actor }) =>
        clients.create(tx, tenant.id, request.body, actor),
      );
      return reply.code(201).send(created);
    },
  );

  api.get(
    '/clients/:clientId',
    {
      schema: {
        tags,
        summary: 'Get a client; its ETag header is the version to send as If-Match when changing it',
        params: ById,
        response: { 200: Client, ...PROBLEMS },
      },
    },
    (request, reply) =>
      inTenant(deps, request, async (tx) => {
        const client = await clients.get(tx, request.params.clientId);
        sendVersion(reply, await clients.version(tx, client.clientId));
        return client;
      }),
  );

  /**
   * Runs one change of a client against the version its If-Match names, the client row locked
   * from the check to the commit, and answers with the new version's ETag.
   */
  function changeClient<T>(
    request: FastifyRequest & { params: { clientId: string } },
    reply: FastifyReply,
    apply: (tx: Queryable, context: AdminRequestContext) => Promise<T>,
  ): Promise<T> {
    return inTenant(deps, request, async (tx, context) => {
      const clientId = request.params.clientId;
      requireIfMatch(request, await clients.version(tx, clientId, { lock: true }), 'client');
      const result = await apply(tx, context);
      sendVersion(reply, await clients.version(tx, clientId));
      return result;
    });
  }

  api.patch(
    '/clients/:clientId',
    {
      schema: {
        tags,
        summary:
          "Change a client's name, grant types or (post-logout) redirect URIs, checked as at registration (If-Match required)",
        params: ById,
        headers: IfMatchHeader,
        body: ClientPatch,
        response: { 200: Client, ...PROBLEMS },
      },
    },
    (request, reply) =>
      changeClient(request, reply, (tx, { tenant, actor }) =>
        clients.update(tx, tenant.id, request.params.clientId, request.body, actor),
      ),
  );

  api.post(
    '/clients/:clientId/secret',
    {
      schema: {
        tags,
        summary:
          "Rotate a confidential client's secret; the response carries the new one, once. The old one works for gracePeriodSeconds (default 0: stops at once)",
        params: ById,
        body: Type.Optional(SecretRotation),
        response: { 200: RotatedClient, ...PROBLEMS },
      },
    },
    (request, reply) =>
      inTenant(deps, request, async (tx, { tenant, actor }) => {
        const rotated = await clients.rotateSecret(
          tx,
          tenant.id,
          request.params.clientId,
          { gracePeriodSeconds: request.body?.gracePeriodSeconds ?? 0 },
          actor,
        );
        // The secret is in this body only: no cache may keep it.
        void reply.header('cache-control', 'no-store');
        return rotated;
      }),
  );

  api.delete(
    '/clients/:clientId',
    {
      schema: {
        tags,
        summary: 'Delete a client; its tokens stop working',
        params: ById,
        response: { 204: NoContent, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      await inTenant(deps, request, (tx, { tenant, actor }) =>
        clients.delete(tx, tenant.id, request.params.clientId, actor),
      );
      return reply.code(204).send(null);
    },
  );
}
