import { z } from 'zod';
import { ACTIONS, ERROR_CODES, POLICY_WARNING_CODES, SHADOW_OUTCOMES, VIOLATION_CODES } from '@airlock/core';
import { apiSchema } from './api-schemas.ts';

// Request and response schemas. The route table in routes.ts pairs them with paths; openapi.ts turns the
// table into the OpenAPI document, so docs and validation cannot drift apart. Every body is a named
// component (`apiSchema`). Response objects are plain `z.object`s: in the document they allow no other
// keys, so the live-response test (openapi-client.http.test.ts) fails when a handler returns a field the
// document does not name.

const amountString = z.string().regex(/^\d{1,78}$/, 'a non-negative integer string (base units)');
const duration = z.string().regex(/^\d+(s|m|h|d)$/, 'a duration like 90s, 15m, 1h, 7d');
const keys = <T extends Record<string, unknown>>(o: T) => Object.keys(o) as [keyof T & string, ...(keyof T & string)[]];
export const iso = z.string().describe('ISO 8601 time');
/** JSON as stored or decoded (an intent, a policy document, an audit entry's data): described elsewhere. */
export const jsonObject = z.record(z.string(), z.unknown());
const partial = <T extends Record<string, z.ZodType>>(shape: T) => Object.fromEntries(Object.entries(shape).map(([k, v]) => [k, v.optional()])) as { [K in keyof T]: z.ZodOptional<T[K]> };

/** Sent on the signing routes (and x402 pay) to make retries safe; checked by `idempotencyKeyOf`. */
export const IdempotencyKey = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,128}$/, '1-128 chars of A-Z a-z 0-9 _ . : -')
  .describe('Makes a retry safe: the same key and payload return the original result (`replayed: true`); the same key with another payload is 409 `idempotency_conflict`.');

export const ViolationSchema = apiSchema(
  'Violation',
  z
    .object({
      rule: z.string().describe('`<layer>/<rule name>`, e.g. `agent/usdc-daily`'),
      code: z.enum(keys(VIOLATION_CODES)),
      message: z.string(),
      limit: z.string().optional(),
      used: z.string().optional(),
      requested: z.string().optional(),
      asset: z.string().optional().describe('CAIP-19 asset the amounts are in'),
      quorum: z.object({ min: z.number(), groups: z.array(z.string()) }).optional().describe('approval_required from a tier with a quorum: `min` approvers of these groups must sign'),
    })
    .describe('Why a rule refused (or, for require_approval, which threshold was crossed).'),
);

export const ErrorSchema = apiSchema(
  'Error',
  z
    .object({
      error: z.object({
        code: z.enum(keys(ERROR_CODES)),
        message: z.string(),
        hints: z.array(z.string()).optional(),
        violations: z.array(ViolationSchema).optional(),
        details: jsonObject.optional().describe('e.g. `issues` of a schema failure, `retryAfterSeconds` of a 429 (also sent as Retry-After)'),
      }),
    })
    .describe('Every error: a stable `code` (components.x-error-codes), a short message, and for policy refusals the violations.'),
);

// Strict: an unknown key is refused here, never silently dropped before the decoder could refuse it (fail closed).
export const SignTransactionRequest = apiSchema(
  'SignTransactionRequest',
  z
    .strictObject({
      chainId: z.union([z.number().int(), z.string()]).optional(),
      transaction: z.record(z.string(), z.unknown()).optional(),
      serializedTransaction: z.string().optional(),
    })
    .describe('An unsigned EVM transaction (EIP-1559 or legacy) as fields or serialized.'),
);

/** The paid resource of an x402 payment signed as typed data: request context, not part of what is signed. */
const x402Context = z.strictObject({ resource: z.string().min(1).max(2048).describe('The paid resource URL (the one that answered 402).') });

export const SignTypedDataRequest = apiSchema(
  'SignTypedDataRequest',
  z.strictObject({
    chainId: z.union([z.number().int(), z.string()]).optional(),
    typedData: z.strictObject({ domain: z.record(z.string(), z.unknown()), types: z.record(z.string(), z.unknown()), primaryType: z.string(), message: z.record(z.string(), z.unknown()) }),
    x402: x402Context.optional().describe('x402 context: the SDK signer sends it so resource rules apply on this path too. Only valid for payment authorizations.'),
  }),
);

export const SignMessageRequest = apiSchema(
  'SignMessageRequest',
  z
    .strictObject({ chainId: z.union([z.number().int(), z.string()]), message: z.union([z.string(), z.strictObject({ raw: z.string() })]) })
    .describe('EIP-191 personal message: utf8 text or {raw: hex}.'),
);

export const SignUserOperationRequest = apiSchema(
  'SignUserOperationRequest',
  z
    .strictObject({
      chainId: z.union([z.number().int(), z.string()]),
      entryPoint: z.string().describe('The EntryPoint contract the operation is for'),
      entryPointVersion: z.enum(['0.6', '0.7', '0.8']),
      userOperation: z.record(z.string(), z.unknown()).describe("The whole operation, never a bare hash: viem's UserOperation fields (v0.6, or v0.7/v0.8 unpacked), or the v0.7/v0.8 PackedUserOperation fields. `signature` is not hashed and is ignored."),
      signing: z
        .enum(['raw', 'eip191'])
        .optional()
        .describe('How the account verifies its owner: `raw` signs the userOpHash itself (Coinbase Smart Wallet, Simple7702Account, every v0.8 account), `eip191` a personal message over it (SimpleAccount v0.7, Solady). Default raw.'),
    })
    .describe('An ERC-4337 user operation. Airlock recomputes its userOpHash, decodes the calls the account executes and applies policy to each of them and to their sum.'),
);

export const SignAuthorizationRequest = apiSchema(
  'SignAuthorizationRequest',
  z
    .strictObject({
      chainId: z.union([z.number().int(), z.string()]).optional().describe('Required when authorization.chainId is 0 (the chain the agent means)'),
      authorization: z.strictObject({
        address: z.string().optional().describe('The delegate contract'),
        contractAddress: z.string().optional().describe("viem's name for address"),
        chainId: z.union([z.number().int(), z.string()]).describe('0: valid on every chain (refused unless a delegations rule allows_any_chain)'),
        nonce: z.union([z.number().int(), z.string()]),
      }),
    })
    .describe('An EIP-7702 authorization: the agent\'s account will run the delegate\'s code. Signed only for delegates a `delegations` rule lists.'),
);

export const AuditReceiptSchema = apiSchema(
  'AuditReceipt',
  z
    .object({ auditSeq: z.number(), leafIndex: z.number(), leafHash: z.string().describe('RFC 9162 leaf hash (hex)') })
    .describe("Where a signature's audit entry sits in the audit Merkle tree; fetch its inclusion proof from GET /v1/audit/receipts/{seq}."),
);

const replay = {
  replayed: z.literal(true).optional().describe('This answer is a replay of an earlier request (same Idempotency-Key or the same authorization nonce).'),
  replayAuditSeq: z.number().optional().describe("The replay's own audit entry."),
};

export const hex32 = z.string().regex(/^[0-9a-f]{64}$/, '32 bytes as 64 lowercase hex digits');
export const SignedNostrEventSchema = apiSchema(
  'SignedNostrEvent',
  z.object({ id: hex32, pubkey: hex32, created_at: z.number(), kind: z.number(), tags: z.array(z.array(z.string())), content: z.string(), sig: z.string().regex(/^[0-9a-f]{128}$/) }),
);

export const SignResponse = apiSchema(
  'SignResponse',
  z.object({
    decision: z.literal('allow'),
    signature: z.string().describe('EVM: 65-byte r||s||v (0x-hex); v = 27/28 for messages, typed data, user operations and EIP-7702 authorizations, yParity for transactions. Nostr: the 64-byte BIP-340 signature (hex, no 0x)'),
    signedTransaction: z.string().optional().describe('evm.transaction: the serialized signed transaction'),
    transactionHash: z.string().optional(),
    event: SignedNostrEventSchema.optional().describe('nostr.event / nostr.http_auth: the signed event, ready to publish'),
    auditSeq: z.number(),
    paymentId: z.string().optional().describe('A held EIP-3009 payment: the payment record it reserved'),
    receipt: AuditReceiptSchema,
    policyVersion: z.string().optional(),
    allowedBy: z.array(z.string()).optional(),
    intent: jsonObject.describe('What the request decoded to (the thing policy judged)'),
    ...replay,
  }),
);

export const PendingApprovalResponse = apiSchema(
  'PendingApproval',
  z
    .object({
      decision: z.literal('require_approval'),
      approvalId: z.string(),
      expiresAt: iso.optional().describe('Absent on a replay: read it from GET /v1/approvals/{id}'),
      violations: z.array(ViolationSchema).optional(),
      policyVersion: z.string().optional(),
      auditSeq: z.number(),
      intent: jsonObject,
      ...replay,
    })
    .describe('Held for a human: poll GET /v1/approvals/{id} for the result.'),
);

export const PolicyDeniedResponse = apiSchema(
  'PolicyDenied',
  z
    .object({
      decision: z.literal('deny'),
      error: z.object({ code: z.literal('policy_denied'), message: z.string(), violations: z.array(ViolationSchema) }),
      policyVersion: z.string(),
      auditSeq: z.number(),
      ...replay,
    })
    .describe('Policy refused the request: every violation names its rule. The shape of Error, with the decision and its audit entry.'),
);

export const DryRunRequest = apiSchema(
  'DryRunRequest',
  z.object({
    action: z.enum(ACTIONS),
    payload: z.unknown(),
    // Without it a resource rule cannot match, so the dry-run of a payment the sign grants by resource would deny it.
    x402: x402Context
      .optional()
      .describe('x402 context, as on POST /v1/sign/typed-data: the paid resource, so resource rules and per-origin budgets judge the dry-run as they judge the sign. Only valid for an evm.typed_data payment authorization.'),
  }),
);
export const AdminDryRunRequest = apiSchema('AdminDryRunRequest', DryRunRequest.extend({ agent: z.string().describe('agent id or name') }));
export const DecisionSchema = apiSchema(
  'Decision',
  z.object({ decision: z.enum(['allow', 'deny', 'require_approval']), violations: z.array(ViolationSchema), allowedBy: z.array(z.string()), policyVersion: z.string() }),
);
const shadowOutcomeKind = z.enum(SHADOW_OUTCOMES).describe('same; rules_differ (same decision, other rules); would_allow; would_deny; would_require_approval; error (the candidate could not be evaluated)');
export const ShadowComparisonSchema = apiSchema(
  'ShadowComparison',
  z.object({ shadowId: z.string(), scope: z.string(), kind: shadowOutcomeKind, candidate: DecisionSchema.optional(), error: z.string().optional() }).describe('What a staged candidate policy would decide (it decides nothing).'),
);
export const DryRunResponse = apiSchema(
  'DryRunResponse',
  z.object({
    decision: DecisionSchema,
    intent: jsonObject,
    digest: z.string().describe('hex digest that would be signed'),
    shadow: z.array(ShadowComparisonSchema).optional().describe('Only on the operator\'s dry-run (POST /v1/policies/dry-run), and only when a candidate policy is staged for the agent or the fleet (docs/policy.md, shadow policies)'),
  }),
);

export const CreateAgentsRequest = apiSchema(
  'CreateAgentsRequest',
  z
    .object({
      names: z.array(z.string()).max(10_000).optional(),
      count: z.number().int().min(1).max(10_000).optional(),
      prefix: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,40}$/).optional(),
      labels: z.record(z.string(), z.string()).optional(),
    })
    .strict(),
);

const agentStatus = z.enum(['active', 'frozen', 'retired']);
export const AgentSchema = apiSchema(
  'Agent',
  z.object({ id: z.string(), name: z.string(), accountIndex: z.number(), keyIndex: z.number(), address: z.string(), status: agentStatus, labels: z.record(z.string(), z.string()), createdAt: iso, updatedAt: iso }),
);
export const AgentListResponse = apiSchema('AgentList', z.object({ agents: z.array(AgentSchema) }));

/** An agent's Nostr identity as shown beside the agent (the same key as GET /v1/nostr/identity). */
const AgentNostrSchema = apiSchema(
  'AgentNostr',
  z.object({ pubkey: hex32.describe("x-only public key (NIP-01) of the agent's NIP-06 key"), npub: z.string().describe('NIP-19 bech32 encoding of pubkey') }),
);
export const AgentDetailSchema = apiSchema(
  'AgentDetail',
  AgentSchema.extend({
    nostr: AgentNostrSchema,
    lifecycle: z
      .object({ keyState: z.enum(['active', 'sweeping', 'sweep_failed', 'retired']), openJobs: z.array(z.string()), failedJobs: z.array(z.string()) })
      .describe("The key's lifecycle: a retired agent's key is `sweeping` until its sweeps are mined, then `retired` (GET /v1/lifecycle/jobs?agent=)"),
  }),
);

export const SetPolicyRequest = apiSchema(
  'SetPolicyRequest',
  z
    .object({ source: z.string().max(2_000_000).optional(), document: z.unknown().optional() })
    .strict()
    .refine((b) => (b.source === undefined) !== (b.document === undefined), 'give exactly one of source (YAML/JSON text) or document')
    .describe('Exactly one of `source` (YAML/JSON text) or `document` (parsed JSON).'),
);

export const PolicyWarningSchema = apiSchema(
  'PolicyWarning',
  z.object({ code: z.enum(keys(POLICY_WARNING_CODES)), rule: z.string(), path: z.string().describe('e.g. `rules[0].match.assets[1]`'), message: z.string() }),
);

export const PolicyValidationResponse = apiSchema(
  'PolicyValidation',
  z.union([
    z.object({ valid: z.literal(true), warnings: z.array(PolicyWarningSchema) }),
    z.object({ valid: z.literal(false), error: z.object({ code: z.literal('invalid_policy'), message: z.string(), details: jsonObject.optional() }) }),
  ]),
);

const policyVersionFields = {
  scope: z.string().describe('`fleet` or `agent:<agentId>`'),
  version: z.number(),
  hash: z.string().describe('sha256 of the canonical JSON of the document'),
  author: z.string(),
  createdAt: z.number().describe('ms since epoch'),
};
export const PolicyVersionSchema = apiSchema('PolicyVersion', z.object(policyVersionFields));
export const PolicyRecordSchema = apiSchema('PolicyRecord', z.object({ ...policyVersionFields, document: z.unknown().describe('The policy document (docs/policy.schema.json)') }));
export const SetPolicyResponse = apiSchema(
  'PolicySet',
  z.object({ record: PolicyVersionSchema, changed: z.boolean().describe('false: identical to the current version, nothing stored'), warnings: z.array(PolicyWarningSchema) }),
);
export const PolicyVersionsResponse = apiSchema('PolicyVersions', z.object({ versions: z.array(PolicyVersionSchema) }));
export const PolicyDiffResponse = apiSchema('PolicyDiff', z.object({ from: z.number(), to: z.number(), diff: z.string() }));

const shadowCandidate = z.object({
  id: z.string().describe('`shd_` + 16 hex: new each time a candidate is staged'),
  scope: z.string().describe('`fleet` or `agent:<agentId>`'),
  hash: z.string().describe('sha256 of the canonical JSON of the document'),
  author: z.string(),
  createdAt: z.number().describe('ms since epoch'),
});
export const ShadowCandidateSchema = apiSchema('ShadowCandidate', shadowCandidate);
export const ShadowSummarySchema = apiSchema(
  'ShadowSummary',
  z.object({
    evaluated: z.number().describe('requests evaluated under the candidate since it was staged'),
    outcomes: z.object(Object.fromEntries(SHADOW_OUTCOMES.map((k) => [k, z.number()])) as Record<(typeof SHADOW_OUTCOMES)[number], z.ZodNumber>),
  }),
);
export const ShadowStagedResponse = apiSchema(
  'ShadowStaged',
  z.object({ candidate: ShadowCandidateSchema, changed: z.boolean().describe('false: this candidate was already staged, nothing changed'), warnings: z.array(PolicyWarningSchema) }),
);
export const ShadowPolicyResponse = apiSchema(
  'ShadowPolicy',
  z.object({
    candidate: ShadowCandidateSchema,
    document: z.unknown().describe('The candidate document (docs/policy.schema.json)'),
    source: z.string().optional().describe('The text as staged (YAML or JSON)'),
    active: z.object({ version: z.number(), hash: z.string() }).optional().describe('The active policy it would replace; absent when the scope has none'),
    summary: ShadowSummarySchema,
  }),
);
const shadowSide = z.object({ decision: z.enum(['allow', 'deny', 'require_approval']), violations: z.array(ViolationSchema), allowedBy: z.array(z.string()), policyVersion: z.string() });
export const ShadowDifferenceSchema = apiSchema(
  'ShadowDifference',
  z.object({
    auditSeq: z.number().describe('the audit entry of the request (and of the active decision)'),
    agentId: z.string(),
    at: z.number().describe('ms since epoch'),
    kind: shadowOutcomeKind,
    action: z.string().optional(),
    summary: z.string().optional().describe("the request's intent in one line"),
    active: shadowSide,
    candidate: shadowSide.optional().describe('absent when the candidate could not be evaluated (kind error)'),
    error: z.string().optional(),
  }),
);
export const ShadowDifferencesResponse = apiSchema(
  'ShadowDifferences',
  z.object({ shadowId: z.string(), differences: z.array(ShadowDifferenceSchema), next: z.number().optional().describe('pass as `after` for the next page') }),
);
export const ShadowClearedResponse = apiSchema('ShadowCleared', z.object({ candidate: ShadowCandidateSchema, summary: ShadowSummarySchema }));
export const ShadowPromotedResponse = apiSchema(
  'ShadowPromoted',
  z.object({
    record: z.object({ scope: z.string(), version: z.number(), hash: z.string() }).describe('the active policy now'),
    changed: z.boolean().describe('false: the candidate was identical to the active version (no new version; the candidate is unstaged)'),
    warnings: z.array(PolicyWarningSchema),
    summary: ShadowSummarySchema.describe('how the candidate fared until promoted'),
  }),
);
export const sessionChainId = z.string().regex(/^(eip155:\d{1,12}|nostr:mainnet)$/, 'a CAIP-2 chain id like eip155:8453 (Nostr requests: nostr:mainnet)');
export const sessionBudget = z.object({ asset: z.string().min(3), max: amountString, window: duration }).strict();

export const IssueSessionRequest = apiSchema(
  'IssueSessionRequest',
  z
    .object({
      ttl: duration,
      actions: z.array(z.enum(ACTIONS)).min(1),
      chains: z.array(sessionChainId).optional(),
      budgets: z.array(sessionBudget).optional(),
      label: z.string().max(200).optional(),
    })
    .strict(),
);

export const SessionSchema = apiSchema(
  'Session',
  z.object({
    id: z.string(),
    agentId: z.string(),
    scope: z.object({
      actions: z.array(z.string()),
      chains: z.array(z.string()).describe('empty: the agent\'s policy decides'),
      budgets: z.array(z.object({ asset: z.string(), max: z.string(), window: z.string() })),
    }),
    label: z.string().optional(),
    parentId: z.string().optional().describe('The session this one was derived from (POST /v1/session/children); absent for operator-issued sessions'),
    createdAt: iso,
    expiresAt: iso,
    revokedAt: iso.optional(),
  }),
);
export const SessionListResponse = apiSchema('SessionList', z.object({ sessions: z.array(SessionSchema) }));
export const IssuedSessionResponse = apiSchema('IssuedSession', z.object({ session: SessionSchema, token: z.string().describe('Shown once. Only its hash is stored.') }));
export const WhoAmIResponse = apiSchema(
  'WhoAmI',
  z.object({ agent: z.object({ id: z.string(), name: z.string(), address: z.string(), status: agentStatus, nostr: AgentNostrSchema }), session: SessionSchema }),
);

export const AuditEntrySchema = apiSchema(
  'AuditEntry',
  z.object({
    seq: z.number(),
    leafIndex: z.number().int().optional().describe('Position in the Merkle tree (0-based)'),
    at: iso,
    type: z.string(),
    actor: z.enum(['agent', 'operator', 'system']),
    agentId: z.string().optional(),
    sessionId: z.string().optional(),
    action: z.string().optional(),
    decision: z.enum(['allow', 'deny', 'require_approval', 'error']).optional(),
    data: jsonObject,
    prevHash: z.string().optional().describe("Hash versions 1 and 2 only: the previous entry's chain hash"),
    hash: z.string().describe('Version 3: the RFC 9162 leaf hash of `leaf`; versions 1 and 2: the chain hash'),
    hashVersion: z.number().int().optional().describe('3 = Merkle leaf over the stored canonical bytes (every new entry); 2 = RFC 8785 hash chain; 1 or absent = the chain form before it (docs/audit-format.md)'),
    leaf: z.string().optional().describe('Version 3: the exact canonical JSON that was hashed'),
  }),
);
export const AuditEntriesResponse = apiSchema('AuditEntries', z.object({ entries: z.array(AuditEntrySchema) }));

export const SignedTreeHeadSchema = apiSchema(
  'SignedTreeHead',
  z.object({ treeSize: z.number(), rootHash: z.string(), at: z.number().describe('ms since epoch'), publicKey: z.string().describe('x-only BIP-340 key (hex)'), signature: z.string().describe('BIP-340 over the tree head digest (docs/audit-format.md)') }),
);

export const AuditHeadResponse = apiSchema('AuditHead', z.object({ seq: z.number(), hash: z.string(), treeSize: z.number() }));

export const AuditSignedHeadsResponse = apiSchema(
  'AuditSignedHeads',
  z.object({
    publicKey: z.string(),
    treeHeads: z.array(SignedTreeHeadSchema),
    checkpoints: z.array(z.object({ seq: z.number(), headHash: z.string(), at: z.number(), publicKey: z.string(), signature: z.string() })).describe('Signed hash-chain heads written before tree heads (still verified)'),
  }),
);

export const AuditReceiptResponse = apiSchema(
  'AuditInclusion',
  z.object({ receipt: AuditReceiptSchema, entry: AuditEntrySchema, treeHead: SignedTreeHeadSchema, proof: z.array(z.string()).describe('RFC 9162 inclusion proof (hex node hashes, leaf to root)') }),
);

export const AuditConsistencyParams = z.object({
  from: z.coerce.number().int().min(0).describe('tree size of a signed head'),
  to: z.coerce.number().int().min(0).optional().describe('tree size of a later signed head (default: the latest)'),
});

export const AuditConsistencyResponse = apiSchema(
  'AuditConsistency',
  z.object({ from: SignedTreeHeadSchema, to: SignedTreeHeadSchema, proof: z.array(z.string()).describe('RFC 9162 consistency proof (hex)') }),
);

export const AuditVerifyResponse = apiSchema(
  'AuditVerification',
  z.object({
    ok: z.boolean(),
    entries: z.number().describe('leaves verified (the tree size)'),
    checkpoints: z.number().describe('legacy signed checkpoints checked'),
    treeHeads: z.number().describe('signed tree heads checked'),
    rootHash: z.string(),
    firstBad: z.object({ seq: z.number(), reason: z.string() }).optional().describe('the first problem found'),
    unanchored: z.number().describe('entries after the last signed head'),
  }),
);

export const AuditAcknowledgeResponse = apiSchema(
  'AuditAcknowledgement',
  z.object({
    anchor: z.object({ generation: z.number(), treeSize: z.number(), rootHash: z.string() }),
    previous: z.object({ generation: z.number(), treeSize: z.number(), rootHash: z.string().optional() }).optional(),
    failure: z.object({ seq: z.number(), reason: z.string() }).optional(),
  }),
);

export const AuditQueryParams = z.object({
  agent: z.string().optional(),
  decision: z.enum(['allow', 'deny', 'require_approval', 'error']).optional(),
  type: z.string().optional(),
  from: z.string().optional().describe('ISO time or ms since epoch'),
  to: z.string().optional(),
  after: z.coerce.number().int().min(0).optional().describe('only entries with seq greater than this'),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  order: z.enum(['oldest', 'newest']).optional().describe('`newest`: the newest `limit` matching entries, newest first (default `oldest`: oldest first, paged with `after`)'),
});

export const QuorumRequirementSchema = apiSchema(
  'QuorumRequirement',
  z.object({
    rule: z.string().describe('the approval tier that asked, `<layer>/<name>` (for the operator\'s requirement, the first tier or tripped breaker, `detector/<layer>/<name>`, that asked for it)'),
    min: z.number(),
    groups: z.array(z.string()),
    operator: z
      .object({ approvedBy: z.string().optional().describe('who gave the operator\'s approval (`admin`), once given') })
      .optional()
      .describe('Set on the operator\'s requirement (`min` 1, no `groups`; no vote counts for it): a tier without a quorum that no quorum of its own or a more trusted layer stands in for, or a tripped require_approval breaker. Met by the admin token\'s approve, recorded here (docs/api.md "Approvals by quorum")'),
  }).describe('`min` distinct approvers who belong to any of `groups`, or the operator\'s approval (`operator`)'),
);
export const ApprovalVoteSchema = apiSchema(
  'ApprovalVote',
  z.object({
    approver: z.string(),
    decision: z.enum(['approve', 'reject']),
    at: iso.describe('the signed time'),
    signature: z.string().describe('hex Ed25519 signature over the canonical vote (docs/api.md)'),
    comment: z.string().optional(),
    auditSeq: z.number().describe('the approval.vote audit entry'),
  }),
);
export const ApprovalSchema = apiSchema(
  'Approval',
  z.object({
    id: z.string(),
    agentId: z.string(),
    sessionId: z.string(),
    action: z.string(),
    state: z.enum(['pending', 'approved', 'denied', 'expired']),
    digest: z.string(),
    summary: jsonObject.describe('intent, violations and policyVersion of the held request'),
    request: z.unknown().describe('The request exactly as the agent sent it (a transaction, typed data, a PSBT, an invoice, a Nostr event with its content and tags): what is signed once granted, decoded again to the digest above. Read it before approving: the summary names only what policy judges.'),
    auditSeq: z.number(),
    createdAt: iso,
    expiresAt: iso,
    decidedAt: iso.optional(),
    decidedBy: z.string().optional().describe('`admin`, `system`, or `approvers:<names>` when votes decided it (`approvers` to the agent\'s session)'),
    result: jsonObject.optional().describe('Once approved: the signing result (and `x402` for a payment: the header to send)'),
    quorum: z.array(QuorumRequirementSchema).optional().describe('Set when a tier with a quorum held the request (fixed then): every requirement must be met by signed approver votes; the admin token cannot approve it, except by giving the operator\'s requirement where one is listed (`operator`)'),
    voteCounts: z.object({ approve: z.number(), reject: z.number() }).optional().describe('The counted votes for and against (quorum approvals only)'),
    votes: z.array(ApprovalVoteSchema).optional().describe('The counted votes, in the order cast (quorum approvals only; not to the agent\'s session)'),
    approvers: z.array(z.string()).optional().describe('Once a quorum approval is decided: the names of the approvers whose votes decided it (not to the agent\'s session)'),
  }),
);
export const ApprovalListResponse = apiSchema('ApprovalList', z.object({ approvals: z.array(ApprovalSchema) }));

export const GetApprovalParams = z.object({
  wait: z.coerce.number().int().min(0).max(60).optional().describe('Long poll: answer when the approval is decided (and signed), or after this many seconds (at most 60)'),
});
const hex = (bytes: number) => z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`), `${bytes} bytes of lowercase hex`);
const approverName = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, '1-64 chars of a-z, 0-9, _ . - starting with a letter or digit');
const signedAt = z.string().max(40).describe('ISO 8601 UTC time of signing; within 5 minutes of the server\'s clock');
export const VoteRequest = apiSchema(
  'VoteRequest',
  z
    .object({
      approver: approverName,
      digest: hex(32).describe('the approval\'s digest, as signed'),
      decision: z.enum(['approve', 'reject']),
      at: signedAt,
      signature: hex(64).describe('Ed25519 over the canonical JSON of {type: "airlock.approval.vote", approvalId, digest, decision, approver, at, comment?}'),
      comment: z.string().max(500).optional().describe('signed with the vote'),
    })
    .strict(),
);
export const ViewApprovalRequest = apiSchema(
  'ViewApprovalRequest',
  z
    .object({
      approver: approverName,
      at: signedAt,
      signature: hex(64).describe('Ed25519 over the canonical JSON of {type: "airlock.approval.view", approvalId, approver, at}'),
    })
    .strict(),
);
export const CreateApproverRequest = apiSchema(
  'CreateApproverRequest',
  z
    .object({
      name: approverName,
      publicKey: hex(32).describe('the approver\'s Ed25519 public key; the private key stays with the approver'),
      groups: z.array(z.string()).min(1).max(20),
      agents: z.array(z.string()).max(1000).optional().describe('agents (ids or names) the approver is linked to: they cannot vote on those agents\' requests'),
    })
    .strict(),
);
export const ApproverSchema = apiSchema(
  'Approver',
  z.object({ id: z.string(), name: z.string(), publicKey: z.string(), groups: z.array(z.string()), agents: z.array(z.string()).describe('linked agent ids'), status: z.enum(['active', 'disabled']), createdAt: iso, updatedAt: iso }),
);
export const ApproverListResponse = apiSchema('ApproverList', z.object({ approvers: z.array(ApproverSchema) }));

export const DenyApprovalRequest = apiSchema('DenyApprovalRequest', z.object({ reason: z.string().max(500).optional() }).strict());
export const UnsealRequest = apiSchema('UnsealRequest', z.object({ passphrase: z.string().min(1) }).strict());
export const UnsealResponse = apiSchema('Unsealed', z.object({ status: z.literal('ok'), alreadyUnsealed: z.literal(true).optional() }));
export const UnsealShareRequest = apiSchema(
  'UnsealShareRequest',
  z.object({ share: z.string().min(1).max(1000).describe('one SLIP-39 share: its words separated by spaces') }).strict(),
);
export const UnsealSharesProgress = apiSchema(
  'UnsealSharesProgress',
  z.object({
    status: z.enum(['collecting', 'unsealed']),
    groupThreshold: z.number().int().nullable().describe('groups needed; null until a first share is accepted'),
    groupCount: z.number().int().nullable(),
    groupsComplete: z.number().int(),
    groups: z.array(z.object({ index: z.number().int().describe('0-based group index'), have: z.number().int(), need: z.number().int() })).describe('groups with at least one share entered'),
  }),
);
export const HealthResponse = apiSchema('Health', z.object({ status: z.literal('ok'), store: z.enum(['sqlite', 'postgres']), keyProcess: z.literal('ok').optional().describe('Present when the keys live in a key process (AIRLOCK_KEY_PROCESS_SOCKET): it answered. One that does not is 503 key_process_unavailable.') }));
export const SealedHealthResponse = apiSchema('HealthSealed', z.object({ status: z.literal('sealed') }));
export const LiveHealthResponse = apiSchema('HealthLive', z.object({ status: z.literal('alive') }));
export const ReadyHealthResponse = apiSchema('HealthReady', z.object({ status: z.literal('ready'), store: z.enum(['sqlite', 'postgres']) }));
/** Not ready: sealed or draining (a store that does not answer is the `Error` body, `store_unavailable`). */
export const NotReadyHealthResponse = apiSchema('HealthNotReady', z.object({ status: z.enum(['sealed', 'shutting_down']) }));
export const OpenApiDocument = apiSchema('OpenApiDocument', jsonObject.describe('This document.'));

export const ListAgentsParams = z.object({
  status: z.enum(['active', 'frozen', 'retired']).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).optional(),
  after: z.string().optional(),
  address: z.string().optional().describe('An EVM address: the agent that has or ever had it (a rotated key included), or none'),
});
export const ListSessionsParams = z.object({ agent: z.string().optional(), all: z.enum(['true', 'false']).optional() });
export const ListApprovalsParams = z.object({ state: z.enum(['pending', 'approved', 'denied', 'expired', 'all']).optional(), agent: z.string().optional() });
export const PolicyVersionParams = z.object({ version: z.coerce.number().int().min(1).optional() });
export const ShadowDifferencesParams = z.object({ after: z.coerce.number().int().min(0).optional(), limit: z.coerce.number().int().min(1).max(1000).optional() });
export const PolicyDiffParams = z.object({ from: z.coerce.number().int().min(1).optional(), to: z.coerce.number().int().min(1).optional() });

export type CreateAgentsInput = z.infer<typeof CreateAgentsRequest>;
export type IssueSessionInput = z.infer<typeof IssueSessionRequest>;

// ---- x402 ----

const requirementObject = z.record(z.string(), z.unknown());

export const X402PayRequest = apiSchema(
  'X402PayRequest',
  z
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
  .refine((b) => b.accepts === undefined || b.x402Version !== undefined, 'accepts needs x402Version'),
);

const chosenRequirement = {
  x402Version: z.union([z.literal(1), z.literal(2)]),
  requirementIndex: z.number().describe('which of the offered requirements was chosen'),
  requirement: jsonObject,
};

export const X402PayResponse = apiSchema(
  'X402PayResponse',
  z.object({
    decision: z.literal('allow'),
    paymentId: z.string().optional().describe('Absent for Permit2 payments (charged to the ledger at once).'),
    ...chosenRequirement,
    header: z.object({ name: z.enum(['PAYMENT-SIGNATURE', 'X-PAYMENT']), value: z.string() }),
    payload: jsonObject.describe('The PaymentPayload the header encodes.'),
    authorization: jsonObject.optional(),
    permit2Authorization: jsonObject.optional(),
    signature: z.string(),
    auditSeq: z.number(),
    receipt: AuditReceiptSchema.optional(),
    policyVersion: z.string().optional(),
    allowedBy: z.array(z.string()).optional(),
    intent: jsonObject,
    replayed: replay.replayed,
  }),
);

export const X402PendingApprovalResponse = apiSchema(
  'X402PendingApproval',
  PendingApprovalResponse.extend(chosenRequirement).describe('The chosen requirement is held for a human: poll GET /v1/approvals/{id}; once approved its `result.x402` carries the header to send.'),
);

export const X402DeniedResponse = apiSchema(
  'X402Denied',
  z
    .object({
      decision: z.literal('deny'),
      error: z.object({
        code: z.literal('policy_denied'),
        message: z.string(),
        violations: z.array(ViolationSchema),
        requirements: z
          .array(z.object({ index: z.number(), scheme: z.unknown(), network: z.unknown(), asset: z.unknown(), amount: z.unknown(), payTo: z.unknown(), violations: z.array(ViolationSchema).optional(), skipped: z.enum(keys(VIOLATION_CODES)).optional() }))
          .optional()
          .describe('Every offered requirement and why it was refused (absent when the chosen one was refused at signing)'),
      }),
      policyVersion: z.string().optional(),
      auditSeq: z.number(),
      ...replay,
      ...partial(chosenRequirement),
    })
    .describe('No offered requirement is allowed (or the chosen one was refused at signing: then the chosen requirement is named).'),
);

export const X402SettlementRequest = apiSchema(
  'X402SettlementRequest',
  z
  .object({
    paymentId: z.string().max(64).optional(),
    nonce: z.string().regex(/^0x[0-9a-fA-F]{64}$/, 'a bytes32 hex nonce').optional(),
    paymentResponse: z.string().min(1).max(16 * 1024).describe('The PAYMENT-RESPONSE (v2) or X-PAYMENT-RESPONSE (v1) header value (base64 JSON).'),
  })
  .strict()
  .refine((b) => b.paymentId !== undefined || b.nonce !== undefined, 'give paymentId or nonce'),
);

export const X402SettlementResponse = apiSchema(
  'X402SettlementResponse',
  z
  .object({ paymentId: z.string(), state: z.enum(['reserved', 'settled', 'expired']), transaction: z.string().nullable() }),
);

export const PaymentSchema = apiSchema(
  'Payment',
  z
  .object({
    id: z.string(), agentId: z.string(), sessionId: z.string(), auditSeq: z.number(), protocol: z.literal('x402'), x402Version: z.number().optional(),
    network: z.string(), asset: z.string().describe('CAIP-19'), token: z.string(), from: z.string(), to: z.string(), value: z.string(), nonce: z.string(),
    validAfter: z.number(), validBefore: z.number(), resource: z.string().optional(), origin: z.string().optional(),
    state: z.enum(['reserved', 'settled', 'expired']), settlementTx: z.string().optional(), reportedTx: z.string().optional(), createdAt: z.string(), updatedAt: z.string(),
    settledValue: z.string().optional().describe('what the Transfer that used the nonce moved; the ledger is charged max(value, settledValue)'),
    settledTo: z.string().optional().describe('recipient of that Transfer'),
  }),
);

export const PaymentListResponse = apiSchema('PaymentList', z.object({ payments: z.array(PaymentSchema) }));

export const ListPaymentsParams = z.object({
  agent: z.string().optional(),
  state: z.enum(['reserved', 'settled', 'expired']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

export const PaymentSummaryParams = z.object({ agent: z.string().optional() });

export const PaymentSummaryResponse = apiSchema(
  'PaymentSummary',
  z
  .object({
    rows: z.array(z.object({ agentId: z.string(), agentName: z.string().optional(), origin: z.string().describe('"" when the payment named no resource'), asset: z.string(), reserved: z.string(), settled: z.string(), released: z.string(), count: z.number() })),
    agents: z.array(z.object({ agentId: z.string(), agentName: z.string().optional(), asset: z.string(), reserved: z.string(), settled: z.string(), released: z.string(), count: z.number() })),
  }),
);

export const ReconcileResponse = apiSchema(
  'ReconcileResult',
  z
  .object({ checked: z.number(), settled: z.number(), expired: z.number(), assumedSettled: z.number(), errors: z.number(), alerts: z.number().describe('alert.reconciler / alert.settlement_mismatch entries written'), disagreements: z.number().describe('holds kept because the chain\'s answers disagree, alerted or not (a payment is alerted when it first disagrees, when its reason changes, and hourly while it goes on)') }),
);

export type X402PayInput = z.infer<typeof X402PayRequest>;

// ---- Nostr (nostr-routes.ts) ----
const nostrTags = z.array(z.array(z.string()).min(1)).max(2000);

export const UnsignedNostrEventRequest = apiSchema(
  'UnsignedNostrEvent',
  z
    .strictObject({
      kind: z.number().int().min(0).max(65535),
      tags: nostrTags,
      content: z.string(),
      created_at: z.number().int().min(0).describe('unix seconds'),
      pubkey: hex32.optional().describe("When given, must be the agent's Nostr pubkey"),
    })
    .describe('A NIP-01 event without id and sig. NIP-98 auth events (kind 27235) go to /v1/sign/nostr-http-auth.'),
);


export const NostrIdentityResponse = apiSchema(
  'NostrIdentity',
  z.object({ agentId: z.string(), pubkey: hex32.describe('x-only public key (NIP-01): the key at m/44\'/1237\'/{account}\'/0/0 (NIP-06), or the group key of the threshold cluster the agent is bound to'), npub: z.string().describe('NIP-19 bech32 encoding of pubkey') }),
);

export const Nip44EncryptRequest = apiSchema('Nip44EncryptRequest', z.strictObject({ peer: hex32.describe('the peer pubkey (x-only hex)'), plaintext: z.string().min(1).max(65535) }));
export const Nip44DecryptRequest = apiSchema('Nip44DecryptRequest', z.strictObject({ peer: hex32, ciphertext: z.string().min(1).max(87472).describe('NIP-44 v2 payload (base64)') }));
export const Nip44EncryptResponse = apiSchema('Nip44EncryptResponse', z.object({ ciphertext: z.string(), auditSeq: z.number() }));
export const Nip44DecryptResponse = apiSchema('Nip44DecryptResponse', z.object({ plaintext: z.string(), auditSeq: z.number() }));
