// The dependency map of an agent as operators read it (docs/api.md "Dependency map", issue 14).
import { z } from 'zod';
import { GRANT_KINDS } from '@airlock/core';
import { apiSchema } from './api-schemas.ts';
import { iso } from './schemas.ts';

export const DependencyMapParams = z.object({
  reconcile: z.enum(['true', 'false']).optional().describe('`true`: ask the chain (configured RPC) which grants are still live'),
});

const Liveness = z.union([z.boolean(), z.literal('unknown')]).describe('`true` live on chain, `false` provably not, `unknown` when the chain could not be asked (never read as not live)');

export const LiveEvidenceSchema = apiSchema(
  'LiveEvidence',
  z.object({
    reason: z.string().describe('allowance_nonzero, allowance_zero, allowance_expired, permit_unused, permit_used, permit_expired, authorization_unused, authorization_used, authorization_expired, no_rpc, rpc_failed, read_failed, unsupported_reader'),
    message: z.string(),
    allowance: z.string().optional().describe('The allowance read (ERC-20, or Permit2 amount), base units'),
    expiration: z.number().optional().describe('Permit2 allowance expiration (unix s)'),
    chainNonce: z.string().optional().describe('The next nonce on chain (EIP-2612 nonces, Permit2 allowance nonce)'),
    chainTime: z.number().optional().describe('Latest block timestamp the deadlines were compared with'),
  }),
);

export const GrantSchema = apiSchema(
  'Grant',
  z.object({
    kind: z.enum(GRANT_KINDS).describe('`eip3009.authorization`: an EIP-3009 authorization over a chainless domain (valid on every chain); `nonce` is its bytes32, `spender` the payee, `deadline` its validBefore'),
    auditSeq: z.number().describe('The audit entry that released the signature (`sign.request` or `approval.granted`)'),
    index: z.number().describe('Position among the grants of that entry (a Permit2 batch has one per token)'),
    chain: z.string(),
    token: z.string(),
    contract: z.string().describe('Where the grant lives: the token, or Permit2'),
    owner: z.string(),
    spender: z.string(),
    amount: z.string().describe('Base units (the increment for increase_allowance)'),
    unlimited: z.boolean(),
    expiresAt: z.number().optional().describe('Unix s the allowance lapses (Permit2 expiration)'),
    deadline: z.number().optional().describe('Unix s after which the signature can no longer be submitted'),
    nonce: z.string().optional(),
    createdAt: iso,
    live: Liveness.optional(),
    evidence: LiveEvidenceSchema.optional(),
  }),
);

export const OutstandingAuthorizationSchema = apiSchema(
  'OutstandingAuthorization',
  z.object({
    paymentId: z.string(),
    auditSeq: z.number(),
    chain: z.string(),
    token: z.string(),
    owner: z.string(),
    to: z.string(),
    value: z.string(),
    nonce: z.string(),
    validAfter: z.number(),
    validBefore: z.number(),
    resource: z.string().optional(),
    live: Liveness.optional(),
    evidence: LiveEvidenceSchema.optional(),
  }),
);

export const DependencyMapResponse = apiSchema(
  'DependencyMap',
  z.object({
    agent: z.object({ id: z.string(), name: z.string(), address: z.string(), status: z.string() }),
    generatedAt: iso,
    reconciled: z.boolean(),
    grants: z.array(GrantSchema),
    authorizations: z.array(OutstandingAuthorizationSchema).describe('EIP-3009 authorizations bound to a chain, signed and not settled or expired (reserved payments); a chainless one is a grant of kind `eip3009.authorization`'),
    sessions: z.array(z.object({ id: z.string(), parentId: z.string().optional(), label: z.string().optional(), actions: z.array(z.string()), chains: z.array(z.string()), createdAt: iso, expiresAt: iso })).describe('Open sessions and child sessions'),
    approvals: z.array(z.object({ id: z.string(), sessionId: z.string(), auditSeq: z.number(), action: z.string(), summary: z.string().optional(), createdAt: iso, expiresAt: iso })).describe('Pending approvals'),
    lightningPayments: z.array(z.object({ id: z.string(), sessionId: z.string(), auditSeq: z.number(), paymentHash: z.string(), amountMsat: z.string(), createdAt: iso })).describe('Lightning payments in flight'),
    nwcConnections: z.array(z.object({ sessionId: z.string(), auditSeq: z.number(), clientPubkey: z.string(), walletPubkey: z.string(), open: z.boolean() })),
    notes: z.array(z.string()),
  }),
);

export const GrantRefSchema = apiSchema(
  'GrantRef',
  z.object({
    kind: z.string().describe('The grant kind (`erc20.approve`, `eip2612.permit`, …) or `eip3009.authorization`'),
    auditSeq: z.number().describe('The audit entry that released the signature'),
    index: z.number().optional().describe('Position among the grants of that entry (grants)'),
    paymentId: z.string().optional().describe('The payment record (EIP-3009 authorizations)'),
  }),
);

export const RevokeAllResponse = apiSchema(
  'RevokeAllReport',
  z.object({
    agent: z.object({ id: z.string(), name: z.string(), status: z.enum(['active', 'frozen', 'retired']) }),
    frozen: z.boolean().describe('Whether this call froze the agent (false: it was frozen already)'),
    revokedSessions: z.array(z.string()).describe('Sessions revoked, child sessions included (NWC connections end with them)'),
    deniedApprovals: z.array(z.string()).describe('Pending approvals denied (reason `revoke_all`), their holds released'),
    auditSeq: z.number().describe('The `agent.revoke_all` audit entry'),
    steps: z.array(z.object({
      purpose: z.string(),
      keyIndex: z.number().describe('The key that signs it: the one that granted (an old key after a rotation)'),
      chain: z.string(),
      grants: z.array(GrantRefSchema),
      status: z.enum(['submitted', 'failed']),
      jobId: z.string().optional().describe('The lifecycle job (`GET /v1/lifecycle/jobs/{id}`): mined or failed later'),
      error: z.object({ code: z.string(), message: z.string() }).optional().describe('Why the step failed (`lifecycle_rpc_unavailable`, `lifecycle_no_rpc`, …); nothing was signed for it'),
    })).describe('The on-chain revocations, one transaction each'),
    unplanned: z.array(z.object({ purpose: z.string(), reason: z.string().describe('`not_evm`, `domain_unknown`, `domain_unsupported` (a salted or otherwise shaped EIP-712 domain: no revocation signed under it would verify), `nonce_range_too_large`, `nonce_unknown`, `owner_unknown`, `chainless_other_chains`'), message: z.string(), grants: z.array(GrantRefSchema), keyIndex: z.number().optional() })).describe('Grants that could not be planned: still possibly live'),
    alreadyDead: z.array(GrantRefSchema).describe('Grants the chain showed dead already'),
    notes: z.array(z.string()).describe('What cannot be revoked (Lightning payments in flight), grants read as unknown, failures'),
  }),
);
