// An agent's Nostr key bound to a threshold cluster (FROST), as operators set and read it (docs/custody.md,
// "Threshold cluster (FROST)").
import { z } from 'zod';
import { apiSchema } from './api-schemas.ts';
import { hex32, iso } from './schemas.ts';

export const BindNostrThresholdRequest = apiSchema(
  'BindNostrThresholdRequest',
  z.strictObject({
    cluster: z
      .strictObject({
        threshold: z.number().int().min(2),
        nodes: z.array(z.strictObject({ name: z.string(), identifier: z.number().int().min(1).max(255), identityKey: hex32 })).min(2).max(255),
      })
      .describe('The cluster definition every node holds (`airlock frost init` printed each identity key)'),
    nodes: z
      .array(z.strictObject({ name: z.string(), url: z.string().describe('scheme, host and port only'), token: z.string().min(16).max(1024).describe("the node's bearer token; stored sealed under a key derived from the vault, never returned or audited") }))
      .min(2)
      .max(255)
      .describe('Where the daemon reaches each node of the cluster'),
    groupKey: hex32.optional().describe('The group key expected (`airlock frost dkg` printed it); refused if the nodes hold another'),
  }),
);

export const NostrThresholdBindingSchema = apiSchema(
  'NostrThresholdBinding',
  z.object({
    agentId: z.string(),
    groupKey: hex32.describe("x-only group key: the agent's Nostr pubkey while bound"),
    npub: z.string(),
    threshold: z.number().int().describe('How many nodes must sign'),
    nodes: z.array(z.object({ name: z.string(), url: z.string() })).describe('The nodes (never their tokens)'),
    createdAt: iso,
    auditSeq: z.number().int().optional().describe('The `agent.threshold_bound` / `agent.threshold_unbound` entry, when this call changed the binding'),
    replacedGroupKey: hex32.optional().describe('The group key of the binding this one replaced'),
  }),
);
