import { z } from 'zod';

// Request and response schemas. The route table in routes.ts pairs them with paths; openapi.ts
// turns the table into the OpenAPI document, so docs and validation cannot drift apart.

const amountString = z.string().regex(/^\d{1,78}$/, 'a non-negative integer string (base units)');
const duration = z.string().regex(/^\d+(s|m|h|d)$/, 'a duration like 90s, 15m, 1h, 7d');

export const ErrorSchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    hints: z.array(z.string()).optional(),
    violations: z.array(z.object({ rule: z.string(), code: z.string(), message: z.string(), limit: z.string().optional(), used: z.string().optional(), requested: z.string().optional(), asset: z.string().optional() })).optional(),
  }),
}).meta({ id: 'Error' });

export const SignTransactionRequest = z
  .object({
    chainId: z.union([z.number().int(), z.string()]).optional(),
    transaction: z.record(z.string(), z.unknown()).optional(),
    serializedTransaction: z.string().optional(),
  })
  .meta({ id: 'SignTransactionRequest', description: 'An unsigned EVM transaction (EIP-1559 or legacy) as fields or serialized.' });

export const SignTypedDataRequest = z
  .object({
    chainId: z.union([z.number().int(), z.string()]).optional(),
    typedData: z.object({ domain: z.record(z.string(), z.unknown()), types: z.record(z.string(), z.unknown()), primaryType: z.string(), message: z.record(z.string(), z.unknown()) }),
  })
  .meta({ id: 'SignTypedDataRequest' });

export const SignMessageRequest = z
  .object({ chainId: z.union([z.number().int(), z.string()]), message: z.union([z.string(), z.object({ raw: z.string() })]) })
  .meta({ id: 'SignMessageRequest', description: 'EIP-191 personal message: utf8 text or {raw: hex}.' });

export const SignResponse = z
  .object({
    decision: z.literal('allow'),
    signature: z.string(),
    signedTransaction: z.string().optional(),
    transactionHash: z.string().optional(),
    auditSeq: z.number(),
    policyVersion: z.string().optional(),
    allowedBy: z.array(z.string()).optional(),
    intent: z.unknown(),
    replayed: z.boolean().optional(),
  })
  .meta({ id: 'SignResponse' });

export const PendingApprovalResponse = z
  .object({ decision: z.literal('require_approval'), approvalId: z.string(), expiresAt: z.string(), violations: z.array(z.unknown()), auditSeq: z.number() })
  .meta({ id: 'PendingApproval' });

export const DryRunRequest = z.object({ action: z.enum(['evm.transaction', 'evm.typed_data', 'evm.message']), payload: z.unknown() }).meta({ id: 'DryRunRequest' });
export const AdminDryRunRequest = DryRunRequest.extend({ agent: z.string() }).meta({ id: 'AdminDryRunRequest' });
export const DryRunResponse = z
  .object({ decision: z.object({ decision: z.string(), violations: z.array(z.unknown()), allowedBy: z.array(z.string()), policyVersion: z.string() }), intent: z.unknown(), digest: z.string() })
  .meta({ id: 'DryRunResponse' });

export const CreateAgentsRequest = z
  .object({
    names: z.array(z.string()).max(10_000).optional(),
    count: z.number().int().min(1).max(10_000).optional(),
    prefix: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,40}$/).optional(),
    labels: z.record(z.string(), z.string()).optional(),
  })
  .strict()
  .meta({ id: 'CreateAgentsRequest' });

export const AgentSchema = z
  .object({ id: z.string(), name: z.string(), accountIndex: z.number(), keyIndex: z.number(), address: z.string(), status: z.enum(['active', 'frozen', 'retired']), labels: z.record(z.string(), z.string()), createdAt: z.string(), updatedAt: z.string() })
  .meta({ id: 'Agent' });

export const SetPolicyRequest = z
  .object({ source: z.string().max(2_000_000).optional(), document: z.unknown().optional() })
  .strict()
  .refine((b) => (b.source === undefined) !== (b.document === undefined), 'give exactly one of source (YAML/JSON text) or document')
  .meta({ id: 'SetPolicyRequest' });

export const IssueSessionRequest = z
  .object({
    ttl: duration,
    actions: z.array(z.enum(['evm.transaction', 'evm.typed_data', 'evm.message'])).min(1),
    chains: z.array(z.string().regex(/^eip155:\d{1,12}$/, 'a CAIP-2 chain id like eip155:8453')).optional(),
    budgets: z.array(z.object({ asset: z.string().min(3), max: amountString, window: duration }).strict()).optional(),
    label: z.string().max(200).optional(),
  })
  .strict()
  .meta({ id: 'IssueSessionRequest' });

export const SessionSchema = z
  .object({ id: z.string(), agentId: z.string(), scope: z.unknown(), label: z.string().optional(), createdAt: z.string(), expiresAt: z.string(), revokedAt: z.string().optional() })
  .meta({ id: 'Session' });

export const IssuedSessionResponse = z.object({ session: SessionSchema, token: z.string().describe('Shown once. Only its hash is stored.') }).meta({ id: 'IssuedSession' });

export const AuditEntrySchema = z
  .object({ seq: z.number(), at: z.string(), type: z.string(), actor: z.string(), agentId: z.string().optional(), sessionId: z.string().optional(), action: z.string().optional(), decision: z.string().optional(), data: z.unknown(), prevHash: z.string(), hash: z.string() })
  .meta({ id: 'AuditEntry' });

export const AuditQueryParams = z.object({
  agent: z.string().optional(),
  decision: z.enum(['allow', 'deny', 'require_approval', 'error']).optional(),
  type: z.string().optional(),
  from: z.string().optional().describe('ISO time or ms since epoch'),
  to: z.string().optional(),
  after: z.coerce.number().int().min(0).optional().describe('only entries with seq greater than this'),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

export const ApprovalSchema = z
  .object({ id: z.string(), agentId: z.string(), sessionId: z.string(), action: z.string(), state: z.string(), digest: z.string(), summary: z.unknown(), createdAt: z.string(), expiresAt: z.string(), decidedAt: z.string().optional(), decidedBy: z.string().optional(), result: z.unknown().optional() })
  .meta({ id: 'Approval' });

export const DenyApprovalRequest = z.object({ reason: z.string().max(500).optional() }).strict();
export const UnsealRequest = z.object({ passphrase: z.string().min(1) }).strict();

export const ListAgentsParams = z.object({ status: z.enum(['active', 'frozen', 'retired']).optional(), limit: z.coerce.number().int().min(1).max(10_000).optional(), after: z.string().optional() });
export const ListSessionsParams = z.object({ agent: z.string().optional(), all: z.enum(['true', 'false']).optional() });
export const ListApprovalsParams = z.object({ state: z.enum(['pending', 'approved', 'denied', 'expired', 'all']).optional(), agent: z.string().optional() });
export const PolicyVersionParams = z.object({ version: z.coerce.number().int().min(1).optional() });
export const PolicyDiffParams = z.object({ from: z.coerce.number().int().min(1).optional(), to: z.coerce.number().int().min(1).optional() });

export type CreateAgentsInput = z.infer<typeof CreateAgentsRequest>;
export type IssueSessionInput = z.infer<typeof IssueSessionRequest>;
