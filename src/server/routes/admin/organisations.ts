// Admin API: organisations of a tenant (list, create, get, rename, delete).
import { Type } from '@sinclair/typebox';
import { ORGANISATION_SORTS } from '../../../tenancy/organisations.js';
import type { Rbac } from '../../../tenancy/rbac.js';
import { type AdminApi, inTenant, type TenantScope } from './context.js';
import {
  NoContent,
  Organisation,
  OrganisationInput,
  PageOf,
  PageQuery,
  Params,
  PROBLEMS,
  Text,
  Uuid,
} from './schemas.js';

const tags = ['organisations'];
const ById = Params({ organisationId: Uuid });

/** What the routes use: the database for the tenant's transaction, and their services. */
export interface OrganisationRoutesDeps extends TenantScope {
  organisations: Rbac['organisations'];
}

const OrganisationsQuery = Type.Object({
  ...PageQuery(
    Text({
      minLength: 1,
      maxLength: 4096,
      description: 'The `next` of the previous page, read with the same sort.',
    }),
  ).properties,
  sort: Type.Optional(
    Type.Union(
      ORGANISATION_SORTS.map((s) => Type.Literal(s)),
      { default: 'created', description: 'Order of the list: created or name, "-" for descending.' },
    ),
  ),
});

export function registerOrganisationRoutes(api: AdminApi, deps: OrganisationRoutesDeps): void {
  const organisations = deps.organisations;

  api.get(
    '/organisations',
    {
      schema: {
        tags,
        summary: 'List organisations',
        params: Params({}),
        querystring: OrganisationsQuery,
        response: { 200: PageOf(Organisation), ...PROBLEMS },
      },
    },
    (request) => inTenant(deps, request, (tx) => organisations.list(tx, request.query)),
  );

  api.post(
    '/organisations',
    {
      schema: {
        tags,
        summary: 'Create an organisation',
        params: Params({}),
        body: OrganisationInput,
        response: { 201: Organisation, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      const created = await inTenant(deps, request, (tx, { tenant, actor }) =>
        organisations.create(tx, tenant.id, request.body, actor),
      );
      return reply.code(201).send(created);
    },
  );

  api.get(
    '/organisations/:organisationId',
    {
      schema: {
        tags,
        summary: 'Get an organisation',
        params: ById,
        response: { 200: Organisation, ...PROBLEMS },
      },
    },
    (request) => inTenant(deps, request, (tx) => organisations.get(tx, request.params.organisationId)),
  );

  api.patch(
    '/organisations/:organisationId',
    {
      schema: {
        tags,
        summary: 'Rename an organisation',
        params: ById,
        body: OrganisationInput,
        response: { 200: Organisation, ...PROBLEMS },
      },
    },
    (request) =>
      inTenant(deps, request, (tx, { tenant, actor }) =>
        organisations.rename(tx, tenant.id, request.params.organisationId, request.body.name, actor),
      ),
  );

  api.delete(
    '/organisations/:organisationId',
    {
      schema: {
        tags,
        summary: 'Delete an organisation and its memberships',
        params: ById,
        response: { 204: NoContent, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      await inTenant(deps, request, (tx, { tenant, actor }) =>
        organisations.delete(tx, tenant.id, request.params.organisationId, actor),
      );
      return reply.code(204).send(null);
    },
  );
}
