// An agent's EVM keys as operators see them: rotation and attribution (docs/api.md, docs/operations.md
// "Rotating an agent key").
import { z } from 'zod';
import { apiSchema } from './api-schemas.ts';
import { AgentSchema, iso } from './schemas.ts';
import { LifecycleJobSchema, SweepSkipSchema } from './lifecycle-schemas.ts';

const KeyRefSchema = apiSchema(
  'AgentKeyRef',
  z.object({
    keyIndex: z.number().describe("The last component of m/44'/60'/{accountIndex}'/0/{keyIndex}"),
    address: z.string().describe('Lowercase EVM address of the key'),
  }),
);

export const AgentKeySchema = apiSchema(
  'AgentKey',
  KeyRefSchema.extend({
    state: z.enum(['active', 'rotated', 'retired']).describe('`active`: the signing key; `rotated`: replaced, requests naming it are refused `key_rotated`; `retired`: declared empty'),
    createdAt: iso,
    rotatedAt: iso.optional(),
    retiredAt: iso.optional(),
  }),
);

export const AgentKeyListResponse = apiSchema(
  'AgentKeyList',
  z.object({
    agent: z.object({ id: z.string(), name: z.string() }),
    keys: z.array(AgentKeySchema).describe('Every key the agent ever had, oldest first'),
  }),
);

export const AgentKeyRotationResponse = apiSchema(
  'AgentKeyRotation',
  z.object({
    agent: AgentSchema,
    previous: KeyRefSchema.describe('The key it signed with until now (state `rotated`)'),
    current: KeyRefSchema.describe('The key it signs with from the next request'),
    deniedApprovals: z.array(z.string()).describe('Its pending EVM approvals, denied by the rotation (reason `key_rotated`)'),
    sweep: z
      .union([
        z.object({ jobs: z.array(LifecycleJobSchema), skipped: z.array(SweepSkipSchema) }),
        z.object({ error: z.object({ code: z.string(), message: z.string() }) }),
      ])
      .describe("The sweep of the old address's balances to the new one through the lifecycle path (jobs tracked until mined), or why it was not built (the rotation stands; retry with POST /v1/agents/{id}/sweep {keyIndex, to: current})"),
  }),
);
