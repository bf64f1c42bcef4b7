// Admin API: a tenant's keys, read-only: custody, root and data key versions, rotation progress
// and signing keys with their ages (src/ops/key-status.ts). Rotating stays with the CLI.

import type { KeyRotationDeps } from '../../../ops/key-rotation.js';
import { keyStatus } from '../../../ops/key-status.js';
import { type AdminApi, inTenant } from './context.js';
import { KeyStatus } from './key-schemas.js';
import { Params, PROBLEMS } from './schemas.js';

export function registerKeyRoutes(api: AdminApi, deps: KeyRotationDeps): void {
  api.get(
    '/keys',
    {
      schema: {
        tags: ['keys'],
        summary: "The tenant's key custody, data key versions, newest rotations and signing keys (read-only)",
        params: Params({}),
        response: { 200: KeyStatus, ...PROBLEMS },
      },
    },
    (request) => inTenant(deps, request, (tx, { tenant }) => keyStatus(deps, tx, tenant)),
  );
}
