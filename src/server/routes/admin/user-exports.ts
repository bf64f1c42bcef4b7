// Admin API: a user's signed data-export bundle for access and portability requests: create one
// (stored in object storage), then download it by the id the creation returned.
import { Type } from '@sinclair/typebox';
import type { UserExportDeps } from '../../../bundles/bundle-deps.js';
import { exportUserData, openUserExport } from '../../../bundles/user-export.js';
import { adminContextOf } from '../../plugins/admin-auth.js';
import type { AdminApi } from './context.js';
import { Params, PROBLEMS, Timestamp, Uuid } from './schemas.js';

const tags = ['users'];
const ExportId = Type.String({
  pattern: '^[0-9]{8}T[0-9]{6}\\.[0-9]{3}Z$',
  description: 'The `id` the export was created with (its time, e.g. 20250131T235959.123Z).',
});

const UserExport = Type.Object({
  id: ExportId,
  key: Type.String({ description: 'Object-store key of the bundle.' }),
  size: Type.Integer(),
  sha256: Type.String({ description: 'SHA-256 of the whole bundle file.' }),
  createdAt: Timestamp,
  userId: Uuid,
  files: Type.Array(Type.String(), {
    description: 'Files in the bundle besides manifest.json and manifest.jws.',
  }),
  download: Type.String({ description: 'Path to GET the bundle from (same authentication).' }),
});

/** The bundles' dependencies (src/bundles/bundle-deps.ts), with the deployment's public URL. */
export function registerUserExportRoutes(api: AdminApi, deps: UserExportDeps): void {
  api.post(
    '/users/:userId/export',
    {
      schema: {
        tags,
        summary: "Create a signed export of a user's data",
        description:
          'Writes a signed bundle (manifest.json, manifest.jws, profile.json, memberships.json, sessions.json, audit-events.ndjson and avatar.webp when set) to object storage and answers where it is; GET `download` fetches it. Verify it offline with `orthid bundle verify FILE --jwks <issuer>/jwks`. The bundle holds personal data in clear.',
        params: Params({ userId: Uuid }),
        response: { 201: UserExport, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      const { tenant, actor } = adminContextOf(request);
      const made = await exportUserData(deps, tenant, request.params.userId, actor);
      return reply.code(201).send({
        ...made,
        download: `/api/v1/tenants/${tenant.slug}/users/${made.userId}/exports/${made.id}`,
      });
    },
  );

  api.get(
    '/users/:userId/exports/:exportId',
    {
      schema: {
        tags,
        summary: "Download a user's data export",
        description:
          'The bundle as a POSIX tar (application/x-tar), as an attachment. Each download is audited.',
        params: Params({ userId: Uuid, exportId: ExportId }),
        response: {
          200: {
            description: 'The bundle file.',
            content: { 'application/x-tar': { schema: { type: 'string', format: 'binary' } } },
          },
          ...PROBLEMS,
        },
      },
    },
    async (request, reply) => {
      const { tenant, actor } = adminContextOf(request);
      const { userId, exportId } = request.params;
      const { info, body } = await openUserExport(deps, tenant, userId, exportId, actor);
      return reply
        .code(200)
        .headers({
          'content-type': 'application/x-tar',
          'content-length': String(info.size),
          'content-disposition': `attachment; filename="user-export-${userId}-${exportId}.bundle"`,
          'cache-control': 'no-store',
          'x-content-type-options': 'nosniff',
        })
        .send(body);
    },
  );
}
