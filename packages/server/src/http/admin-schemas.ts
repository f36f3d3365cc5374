// The operator's own credential (docs/api.md, docs/operations.md "Rotate the admin token").
import { z } from 'zod';
import { apiSchema } from './api-schemas.ts';
import { iso } from './schemas.ts';

export const AdminTokenRotationResponse = apiSchema(
  'AdminTokenRotation',
  z.object({
    token: z.string().describe('The new admin token `adm_…`, shown only here (only its hash is stored)'),
    rotatedAt: iso,
    auditSeq: z.number().describe('The `admin.token_rotated` audit entry'),
    otherInstancesWithinSeconds: z.number().describe('The old token is refused at once by this instance, and by every other instance on the same store within this many seconds'),
  }),
);
