// Admin API: OIDC clients of a tenant (list, register, get, delete). A new client's secret is
// in the creation response only; afterwards it exists only as a keyed hash.
import { Type } from '@sinclair/typebox';
import type { Clients } from '../../../oidc/clients.js';
import {
  GRANT_TYPES,
  REQUEST_OBJECT_ALGS,
  RESPONSE_TYPES,
  SECRET_AUTH_METHODS,
} from '../../../oidc/clients.js';
import { type AdminApi, inTenant, type TenantScope } from './context.js';
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
  disabled: Type.Boolean(),
  createdAt: Timestamp,
});

const CreatedClient = Type.Intersect([
  Client,
  Type.Object({ clientSecret: Type.Optional(Type.String({ description: 'Shown once; store it now.' })) }),
]);

const ClientInput = Type.Object(
  {
    name: Text({ minLength: 1, maxLength: 200 }),
    grantTypes: Type.Array(Type.Union(GRANT_TYPES.map((g) => Type.Literal(g))), {
      minItems: 1,
      uniqueItems: true,
    }),
    redirectUris: Type.Optional(Type.Array(Uri, { maxItems: 20 })),
    postLogoutRedirectUris: Type.Optional(Type.Array(Uri, { maxItems: 20 })),
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
        querystring: PageQuery(ClientId),
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
    { schema: { tags, summary: 'Get a client', params: ById, response: { 200: Client, ...PROBLEMS } } },
    (request) => inTenant(deps, request, (tx) => clients.get(tx, request.params.clientId)),
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
