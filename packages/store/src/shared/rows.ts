import { auditLeafData, COUNT_ASSET, settlementCharges, type LedgerWrite, type SettledTransfer, type SignedTreeHead, type VerifiableEntry } from '@airlock/core';
import type { Agent, AgentStatus, ApprovalRecord, ApprovalState, ApprovalVote, Approver, ApproverStatus, QuorumRequirement, AuditCheckpoint, AuditDecision, AuditEntry, AuditHashVersion, IdempotencyRecord, NonceClaim, PaymentRecord, PaymentState, PaymentSummaryRow, PolicyRecord, Session, SessionScope } from '@airlock/core';
import { fromJson, toAmount, toInt, toOptionalInt, toOptionalString } from './values.ts';

/**
 * Row -> domain mappers shared by both dialects: the tables use the same snake_case columns, and
 * `values.ts` absorbs the type differences (TEXT vs NUMERIC, number vs INT8 string).
 */
export type Row = Record<string, unknown>;

export function agentFromRow(r: Row): Agent {
  return {
    id: String(r.id),
    name: String(r.name),
    accountIndex: toInt(r.account_index),
    keyIndex: toInt(r.key_index),
    address: String(r.address),
    status: String(r.status) as AgentStatus,
    labels: (fromJson(r.labels) ?? {}) as Record<string, string>,
    createdAt: toInt(r.created_at),
    updatedAt: toInt(r.updated_at),
  };
}

/**
 * The document is parsed when first read. Every signature reads the fleet and agent policies, and the
 * signing path compiles them by content hash (CompiledPolicies), so after the first request it never reads
 * the document: parsing it anyway was about 1% of a signature's CPU.
 */
export function policyFromRow(r: Row): PolicyRecord {
  const text = r.document;
  let document: { value: unknown } | undefined;
  const record = Object.defineProperty(policyVersionFromRow(r), 'document', {
    enumerable: true,
    configurable: true,
    get: () => (document ??= { value: fromJson(text) }).value,
    set: (value: unknown) => void (document = { value }),
  }) as PolicyRecord;
  if (r.source !== null && r.source !== undefined) record.source = String(r.source);
  return record;
}

export function policyVersionFromRow(r: Row): Omit<PolicyRecord, 'document'> {
  return {
    scope: String(r.scope),
    version: toInt(r.version),
    hash: String(r.hash),
    author: String(r.author),
    createdAt: toInt(r.created_at),
  };
}

export function sessionFromRow(r: Row): Session {
  const s: Session = {
    id: String(r.id),
    agentId: String(r.agent_id),
    tokenHash: String(r.token_hash),
    scope: fromJson(r.scope) as SessionScope,
    createdAt: toInt(r.created_at),
    expiresAt: toInt(r.expires_at),
  };
  const label = toOptionalString(r.label);
  if (label !== undefined) s.label = label;
  const parentId = toOptionalString(r.parent_id);
  if (parentId !== undefined) s.parentId = parentId;
  const revokedAt = toOptionalInt(r.revoked_at);
  if (revokedAt !== undefined) s.revokedAt = revokedAt;
  return s;
}

export function approvalFromRow(r: Row): ApprovalRecord {
  const a: ApprovalRecord = {
    id: String(r.id),
    agentId: String(r.agent_id),
    sessionId: String(r.session_id),
    auditSeq: toInt(r.audit_seq),
    action: String(r.action),
    request: fromJson(r.request),
    digest: String(r.digest),
    summary: fromJson(r.summary),
    state: String(r.state) as ApprovalState,
    createdAt: toInt(r.created_at),
    expiresAt: toInt(r.expires_at),
  };
  const decidedAt = toOptionalInt(r.decided_at);
  if (decidedAt !== undefined) a.decidedAt = decidedAt;
  const decidedBy = toOptionalString(r.decided_by);
  if (decidedBy !== undefined) a.decidedBy = decidedBy;
  const result = fromJson(r.result);
  if (result !== undefined) a.result = result;
  const quorum = fromJson(r.quorum);
  if (quorum !== undefined) a.quorum = quorum as QuorumRequirement[];
  return a;
}

/** Attaches each quorum approval's votes (rows of approval_votes in cast order); others get none. */
export function withVotes(approvals: ApprovalRecord[], voteRows: Row[]): ApprovalRecord[] {
  const byApproval = new Map<string, ApprovalVote[]>();
  for (const row of voteRows) {
    const v = voteFromRow(row);
    (byApproval.get(v.approvalId) ?? byApproval.set(v.approvalId, []).get(v.approvalId)!).push(v);
  }
  for (const a of approvals) if (a.quorum) a.votes = byApproval.get(a.id) ?? [];
  return approvals;
}

export function voteFromRow(r: Row): ApprovalVote {
  const v: ApprovalVote = {
    approvalId: String(r.approval_id),
    approverId: String(r.approver_id),
    approver: String(r.approver_name),
    groups: fromJson(r.group_names) as string[],
    decision: String(r.decision) as ApprovalVote['decision'],
    at: toInt(r.at),
    signature: String(r.signature),
    auditSeq: toInt(r.audit_seq),
    createdAt: toInt(r.created_at),
  };
  const comment = toOptionalString(r.comment);
  if (comment !== undefined) v.comment = comment;
  return v;
}

export function approverFromRow(r: Row): Approver {
  return {
    id: String(r.id),
    name: String(r.name),
    publicKey: String(r.public_key),
    groups: fromJson(r.group_names) as string[],
    agents: fromJson(r.agent_ids) as string[],
    status: String(r.status) as ApproverStatus,
    createdAt: toInt(r.created_at),
    updatedAt: toInt(r.updated_at),
  };
}

export function idempotencyFromRow(r: Row): IdempotencyRecord {
  return {
    scope: String(r.scope),
    key: String(r.key),
    requestHash: String(r.request_hash),
    auditSeq: toInt(r.audit_seq),
    response: fromJson(r.response) as IdempotencyRecord['response'],
    ...(r.digest != null ? { digest: String(r.digest) } : {}),
    createdAt: toInt(r.created_at),
  };
}

export function nonceClaimFromRow(r: Row): NonceClaim {
  return {
    key: String(r.key),
    agentId: String(r.agent_id),
    digest: String(r.digest),
    auditSeq: toInt(r.audit_seq),
    state: String(r.state) as NonceClaim['state'],
    ...(r.approval_id != null ? { approvalId: String(r.approval_id) } : {}),
    ...(r.valid_before != null ? { validBefore: toInt(r.valid_before) } : {}),
    createdAt: toInt(r.created_at),
  };
}

/**
 * An entry as the verifier and the tree builder read it: every column, but a version-3 entry's data is
 * left inside its leaf (not parsed). Optional members stay absent (not null): the hashes are computed
 * over exactly these fields.
 */
export function auditLeafFromRow(r: Row): VerifiableEntry {
  const version = toInt(r.hash_version) as AuditHashVersion;
  const e: VerifiableEntry = {
    seq: toInt(r.seq),
    at: toInt(r.at),
    type: String(r.type),
    actor: String(r.actor) as AuditEntry['actor'],
    hash: String(r.hash),
    hashVersion: version,
  };
  const leafIndex = toOptionalInt(r.leaf_index);
  if (leafIndex !== undefined) e.leafIndex = leafIndex;
  const agentId = toOptionalString(r.agent_id);
  if (agentId !== undefined) e.agentId = agentId;
  const sessionId = toOptionalString(r.session_id);
  if (sessionId !== undefined) e.sessionId = sessionId;
  const action = toOptionalString(r.action);
  if (action !== undefined) e.action = action;
  const decision = toOptionalString(r.decision);
  if (decision !== undefined) e.decision = decision as AuditDecision;
  if (version === 3) e.leaf = String(r.leaf);
  else {
    e.data = (fromJson(r.data) ?? {}) as Record<string, unknown>;
    e.prevHash = String(r.prev_hash);
  }
  return e;
}

/**
 * An entry with its data. A version-3 entry's data is read from its leaf (the bytes that were hashed),
 * never from a separate column, so what is shown is what the tree vouches for.
 */
export function auditEntryFromRow(r: Row): AuditEntry {
  const e = auditLeafFromRow(r);
  if (e.hashVersion === 3) {
    let data: unknown;
    try {
      data = JSON.parse(auditLeafData(e as AuditEntry & { leaf: string }));
    } catch {
      data = undefined; // an edited leaf: shown empty here, and `audit verify` names it
    }
    e.data = data !== null && typeof data === 'object' ? (data as Record<string, unknown>) : {};
  }
  return e as AuditEntry;
}

export function treeHeadFromRow(r: Row): SignedTreeHead {
  return {
    treeSize: toInt(r.tree_size),
    rootHash: String(r.root_hash),
    at: toInt(r.at),
    publicKey: String(r.public_key),
    signature: String(r.signature),
  };
}

export function checkpointFromRow(r: Row): AuditCheckpoint {
  return {
    seq: toInt(r.seq),
    headHash: String(r.head_hash),
    at: toInt(r.at),
    publicKey: String(r.public_key),
    signature: String(r.signature),
  };
}

export function paymentFromRow(r: Row): PaymentRecord {
  const p: PaymentRecord = {
    id: String(r.id),
    agentId: String(r.agent_id),
    sessionId: String(r.session_id),
    auditSeq: toInt(r.audit_seq),
    protocol: 'x402',
    network: String(r.network),
    asset: String(r.asset),
    from: String(r.from),
    to: String(r.to),
    value: toAmount(r.value),
    nonce: String(r.nonce),
    validAfter: toInt(r.valid_after),
    validBefore: toInt(r.valid_before),
    state: String(r.state) as PaymentState,
    createdAt: toInt(r.created_at),
    updatedAt: toInt(r.updated_at),
  };
  const version = toOptionalInt(r.x402_version);
  if (version !== undefined) p.x402Version = version;
  for (const [key, column] of [['resource', 'resource'], ['origin', 'origin'], ['settlementTx', 'settlement_tx'], ['reportedTx', 'reported_tx']] as const) {
    const v = toOptionalString(r[column]);
    if (v !== undefined) p[key] = v;
  }
  if (r.settled_value !== null && r.settled_value !== undefined) p.settledValue = toAmount(r.settled_value);
  const settledTo = toOptionalString(r.settled_to);
  if (settledTo !== undefined) p.settledTo = settledTo;
  return p;
}

/** Sums payment rows (agent_id, origin, network, asset, state, value, settled_value) into summary rows; bigint all the way. */
export function summarisePayments(rows: Row[]): PaymentSummaryRow[] {
  const out = new Map<string, PaymentSummaryRow>();
  for (const r of rows) {
    const agentId = String(r.agent_id);
    const origin = toOptionalString(r.origin) ?? '';
    const asset = `${String(r.network)}/erc20:${String(r.asset)}`;
    const key = `${agentId}\u0000${origin}\u0000${asset}`;
    let row = out.get(key);
    if (!row) out.set(key, (row = { agentId, origin, asset, reserved: 0n, settled: 0n, released: 0n, count: 0 }));
    const value = toAmount(r.value);
    const state = String(r.state);
    // A settled payment counts what the ledger was charged: the larger of the signed and the moved amount.
    const settledValue = r.settled_value === null || r.settled_value === undefined ? value : toAmount(r.settled_value);
    if (state === 'reserved') row.reserved += value;
    else if (state === 'settled') row.settled += settledValue > value ? settledValue : value;
    else row.released += value;
    row.count += 1;
  }
  return [...out.values()].sort((a, b) => (a.agentId + a.origin + a.asset < b.agentId + b.origin + b.asset ? -1 : 1));
}

/** Hold rows as ledger writes (the same columns in both dialects). */
export function holdWrites(rows: Row[]): LedgerWrite[] {
  return rows.map((h) => ({ series: String(h.series), asset: String(h.asset), amount: toAmount(h.amount), count: toInt(h.count) }));
}

/**
 * What a payment's holds leave in the ledger when it finishes. Settled: everything (the spend happened), plus
 * what the chain says moved beyond it (`settlementCharges`: a larger amount, another recipient). Expired
 * unused: only the request counts (amount 0): the money never moved, but a signature was released and rate
 * limits and the loop guard count signatures.
 */
export function ledgerOnFinish(holds: LedgerWrite[], state: 'settled' | 'expired', payment: PaymentRecord, settled?: SettledTransfer): LedgerWrite[] {
  if (state === 'settled') return [...holds, ...(settled ? settlementCharges(holds, payment, settled) : [])];
  return holds.filter((w) => w.asset === COUNT_ASSET).map((w) => ({ ...w, amount: 0n }));
}
