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

// Strict: an unknown key is refused here, never silently dropped before the decoder could refuse it (fail closed).
export const SignTransactionRequest = z
  .strictObject({
    chainId: z.union([z.number().int(), z.string()]).optional(),
    transaction: z.record(z.string(), z.unknown()).optional(),
    serializedTransaction: z.string().optional(),
  })
  .meta({ id: 'SignTransactionRequest', description: 'An unsigned EVM transaction (EIP-1559 or legacy) as fields or serialized.' });

export const SignTypedDataRequest = z
  .strictObject({
    chainId: z.union([z.number().int(), z.string()]).optional(),
    typedData: z.strictObject({ domain: z.record(z.string(), z.unknown()), types: z.record(z.string(), z.unknown()), primaryType: z.string(), message: z.record(z.string(), z.unknown()) }),
    x402: z
      .strictObject({ resource: z.string().min(1).max(2048).describe('The paid resource URL (the one that answered 402).') })
      .optional()
      .describe('x402 context: the SDK signer sends it so resource rules apply on this path too. Only valid for payment authorizations.'),
  })
  .meta({ id: 'SignTypedDataRequest' });

export const SignMessageRequest = z
  .strictObject({ chainId: z.union([z.number().int(), z.string()]), message: z.union([z.string(), z.strictObject({ raw: z.string() })]) })
  .meta({ id: 'SignMessageRequest', description: 'EIP-191 personal message: utf8 text or {raw: hex}.' });

export const SignResponse = z
  .object({
    decision: z.literal('allow'),
    signature: z.string(),
    signedTransaction: z.string().optional(),
    transactionHash: z.string().optional(),
    auditSeq: z.number(),
    receipt: z.lazy(() => AuditReceiptSchema),
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
  .object({
    seq: z.number(), leafIndex: z.number().int().optional().describe('Position in the Merkle tree (0-based)'), at: z.string(), type: z.string(), actor: z.string(), agentId: z.string().optional(), sessionId: z.string().optional(), action: z.string().optional(), decision: z.string().optional(), data: z.unknown(),
    prevHash: z.string().optional().describe('Hash versions 1 and 2 only: the previous entry\'s chain hash'),
    hash: z.string().describe('Version 3: the RFC 9162 leaf hash of `leaf`; versions 1 and 2: the chain hash'),
    hashVersion: z.number().int().optional().describe('3 = Merkle leaf over the stored canonical bytes (every new entry); 2 = RFC 8785 hash chain; 1 or absent = the chain form before it (docs/audit-format.md)'),
    leaf: z.string().optional().describe('Version 3: the exact canonical JSON that was hashed'),
  })
  .meta({ id: 'AuditEntry' });

export const AuditReceiptSchema = z
  .object({ auditSeq: z.number(), leafIndex: z.number(), leafHash: z.string().describe('RFC 9162 leaf hash (hex)') })
  .meta({ id: 'AuditReceipt', description: 'Where a signature\'s audit entry sits in the audit Merkle tree; fetch its inclusion proof from GET /v1/audit/receipts/{seq}.' });

export const SignedTreeHeadSchema = z
  .object({ treeSize: z.number(), rootHash: z.string(), at: z.number().describe('ms since epoch'), publicKey: z.string().describe('x-only BIP-340 key (hex)'), signature: z.string().describe('BIP-340 over the tree head digest (docs/audit-format.md)') })
  .meta({ id: 'SignedTreeHead' });

export const AuditHeadResponse = z.object({ seq: z.number(), hash: z.string(), treeSize: z.number() }).meta({ id: 'AuditHead' });

export const AuditSignedHeadsResponse = z
  .object({ publicKey: z.string(), treeHeads: z.array(SignedTreeHeadSchema), checkpoints: z.array(z.object({ seq: z.number(), headHash: z.string(), at: z.number(), publicKey: z.string(), signature: z.string() })).describe('Signed hash-chain heads written before tree heads (still verified)') })
  .meta({ id: 'AuditSignedHeads' });

export const AuditReceiptResponse = z
  .object({ receipt: AuditReceiptSchema, entry: AuditEntrySchema, treeHead: SignedTreeHeadSchema, proof: z.array(z.string()).describe('RFC 9162 inclusion proof (hex node hashes, leaf to root)') })
  .meta({ id: 'AuditInclusion' });

export const AuditConsistencyParams = z.object({
  from: z.coerce.number().int().min(0).describe('tree size of a signed head'),
  to: z.coerce.number().int().min(0).optional().describe('tree size of a later signed head (default: the latest)'),
});

export const AuditConsistencyResponse = z
  .object({ from: SignedTreeHeadSchema, to: SignedTreeHeadSchema, proof: z.array(z.string()).describe('RFC 9162 consistency proof (hex)') })
  .meta({ id: 'AuditConsistency' });

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

// ---- x402 ----

const requirementObject = z.record(z.string(), z.unknown());

export const X402PayRequest = z
  .object({
    resource: z.string().min(1).max(2048).describe('The URL that answered 402.'),
    paymentRequired: z.string().min(1).max(64 * 1024).optional().describe('v2: the PAYMENT-REQUIRED header value (base64 JSON).'),
    body: z.record(z.string(), z.unknown()).optional().describe('v1: the 402 JSON body `{x402Version: 1, accepts: [...]}`.'),
    accepts: z.array(requirementObject).min(1).max(32).optional().describe('Already-decoded requirements (with x402Version).'),
    x402Version: z.union([z.literal(1), z.literal(2)]).optional(),
    resourceInfo: z.record(z.string(), z.unknown()).optional().describe('With accepts (v2): the PaymentRequired `resource` object to echo back.'),
    extensions: z.record(z.string(), z.unknown()).optional().describe('With accepts (v2): the PaymentRequired `extensions` to echo back.'),
  })
  .strict()
  .refine((b) => [b.paymentRequired, b.body, b.accepts].filter((v) => v !== undefined).length === 1, 'give exactly one of paymentRequired, body or accepts')
  .refine((b) => b.accepts === undefined || b.x402Version !== undefined, 'accepts needs x402Version')
  .meta({ id: 'X402PayRequest' });

export const X402PayResponse = z
  .object({
    decision: z.literal('allow'),
    paymentId: z.string().optional().describe('Absent for Permit2 payments (charged to the ledger at once).'),
    x402Version: z.union([z.literal(1), z.literal(2)]),
    header: z.object({ name: z.enum(['PAYMENT-SIGNATURE', 'X-PAYMENT']), value: z.string() }),
    payload: z.record(z.string(), z.unknown()).describe('The PaymentPayload the header encodes.'),
    requirementIndex: z.number(),
    requirement: z.record(z.string(), z.unknown()),
    authorization: z.record(z.string(), z.unknown()).optional(),
    permit2Authorization: z.record(z.string(), z.unknown()).optional(),
    signature: z.string(),
    auditSeq: z.number(),
    receipt: z.lazy(() => AuditReceiptSchema),
    intent: z.unknown(),
    replayed: z.boolean().optional(),
  })
  .meta({ id: 'X402PayResponse' });

export const X402DeniedResponse = z
  .object({
    decision: z.literal('deny'),
    error: z.object({
      code: z.literal('policy_denied'),
      message: z.string(),
      violations: z.array(z.unknown()),
      requirements: z.array(z.object({ index: z.number(), scheme: z.unknown(), network: z.unknown(), asset: z.unknown(), amount: z.unknown(), payTo: z.unknown(), violations: z.array(z.unknown()).optional(), skipped: z.string().optional() })).optional(),
    }),
    auditSeq: z.number(),
  })
  .meta({ id: 'X402Denied' });

export const X402SettlementRequest = z
  .object({
    paymentId: z.string().max(64).optional(),
    nonce: z.string().regex(/^0x[0-9a-fA-F]{64}$/, 'a bytes32 hex nonce').optional(),
    paymentResponse: z.string().min(1).max(16 * 1024).describe('The PAYMENT-RESPONSE (v2) or X-PAYMENT-RESPONSE (v1) header value (base64 JSON).'),
  })
  .strict()
  .refine((b) => b.paymentId !== undefined || b.nonce !== undefined, 'give paymentId or nonce')
  .meta({ id: 'X402SettlementRequest' });

export const X402SettlementResponse = z
  .object({ paymentId: z.string(), state: z.enum(['reserved', 'settled', 'expired']), transaction: z.string().nullable() })
  .meta({ id: 'X402SettlementResponse' });

export const PaymentSchema = z
  .object({
    id: z.string(), agentId: z.string(), sessionId: z.string(), auditSeq: z.number(), protocol: z.literal('x402'), x402Version: z.number().optional(),
    network: z.string(), asset: z.string().describe('CAIP-19'), token: z.string(), from: z.string(), to: z.string(), value: z.string(), nonce: z.string(),
    validAfter: z.number(), validBefore: z.number(), resource: z.string().optional(), origin: z.string().optional(),
    state: z.enum(['reserved', 'settled', 'expired']), settlementTx: z.string().optional(), reportedTx: z.string().optional(), createdAt: z.string(), updatedAt: z.string(),
    settledValue: z.string().optional().describe('what the Transfer that used the nonce moved; the ledger is charged max(value, settledValue)'),
    settledTo: z.string().optional().describe('recipient of that Transfer'),
  })
  .meta({ id: 'Payment' });

export const ListPaymentsParams = z.object({
  agent: z.string().optional(),
  state: z.enum(['reserved', 'settled', 'expired']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

export const PaymentSummaryParams = z.object({ agent: z.string().optional() });

export const PaymentSummaryResponse = z
  .object({
    rows: z.array(z.object({ agentId: z.string(), agentName: z.string().optional(), origin: z.string().describe('"" when the payment named no resource'), asset: z.string(), reserved: z.string(), settled: z.string(), released: z.string(), count: z.number() })),
    agents: z.array(z.object({ agentId: z.string(), agentName: z.string().optional(), asset: z.string(), reserved: z.string(), settled: z.string(), released: z.string(), count: z.number() })),
  })
  .meta({ id: 'PaymentSummary' });

export const ReconcileResponse = z
  .object({ checked: z.number(), settled: z.number(), expired: z.number(), assumedSettled: z.number(), errors: z.number(), alerts: z.number().describe('alert.reconciler / alert.settlement_mismatch entries written') })
  .meta({ id: 'ReconcileResult' });

export type X402PayInput = z.infer<typeof X402PayRequest>;
