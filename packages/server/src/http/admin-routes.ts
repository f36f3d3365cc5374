// The operator's own credential: rotating the admin token (docs/operations.md, "Rotate the admin token").
import { AirlockError } from '@airlock/core';
import { ADMIN_TOKEN_STALENESS_MS } from '../admin-credential.ts';
import { clientAddress } from './client-address.ts';
import type { AirlockHolder } from './holder.ts';
import type { RouteSpec } from './route-table.ts';
import { AdminTokenRotationResponse } from './admin-schemas.ts';

export function buildAdminRoutes(holder: AirlockHolder): RouteSpec[] {
  return [
    {
      method: 'post', path: '/v1/admin/token/rotate', operationId: 'rotateAdminToken',
      summary: 'Replace the admin token presented as the bearer token by a new one, shown once (audited `admin.token_rotated`); console sessions opened with the old one end',
      tag: 'system', auth: 'admin',
      responses: { 200: AdminTokenRotationResponse },
      handler: async (c) => {
        // The token itself, not a console cookie that stands for it: the rotation replaces exactly what was presented.
        const header = c.req.header('authorization') ?? '';
        if (!header.startsWith('Bearer ')) {
          throw new AirlockError('forbidden', 'Rotating the admin token takes the admin token (Authorization: Bearer adm_…), not a console session.');
        }
        const airlock = holder.get();
        const rotation = await airlock.admin.rotate(header.slice(7).trim(), airlock.deps.clock.now(), clientAddress(c));
        c.header('cache-control', 'no-store');
        return c.json({
          token: rotation.token,
          rotatedAt: new Date(rotation.rotatedAt).toISOString(),
          auditSeq: rotation.auditSeq,
          otherInstancesWithinSeconds: Math.ceil(ADMIN_TOKEN_STALENESS_MS / 1000),
        });
      },
    },
  ];
}
