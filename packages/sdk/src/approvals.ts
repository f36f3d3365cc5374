// Approver votes on quorum approvals: the key pair, the signed vote and view, and a small client. What the CLI,
// the console and a webhook callback sender share, so they all sign the same bytes the daemon verifies.
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { createAirlockHttp, type AirlockHttp } from './http.ts';

export type VoteDecision = 'approve' | 'reject';

/** What POST /v1/approvals/{id}/votes takes. */
export interface SignedVote {
  approver: string;
  digest: string;
  decision: VoteDecision;
  at: string;
  signature: string;
  comment?: string;
}

/** What POST /v1/approvals/{id}/view takes. */
export interface SignedView {
  approver: string;
  at: string;
  signature: string;
}

/** An approval as Airlock answers it (the fields an approver acts on). */
export interface ApprovalView {
  id: string;
  agentId: string;
  action: string;
  state: 'pending' | 'approved' | 'denied' | 'expired';
  digest: string;
  summary: { intent?: { summary?: string }; violations?: { rule: string; message: string }[] } & Record<string, unknown>;
  /** The request exactly as the agent sent it: what is signed once granted (read it, not only the summary). */
  request?: unknown;
  expiresAt: string;
  decidedBy?: string;
  /** Who must approve; a requirement with `operator` is met by the operator's approve, not by votes (`approvedBy` once given). */
  quorum?: { rule: string; min: number; groups: string[]; operator?: { approvedBy?: string } }[];
  votes?: { approver: string; decision: VoteDecision; at: string; signature: string; comment?: string; auditSeq: number }[];
  approvers?: string[];
  result?: Record<string, unknown>;
}

/** A fresh Ed25519 key pair for `airlock approver add`: register the public key, keep the secret key. */
export function generateApproverKey(): { secretKey: string; publicKey: string } {
  const secret = ed25519.utils.randomSecretKey();
  return { secretKey: bytesToHex(secret), publicKey: bytesToHex(ed25519.getPublicKey(secret)) };
}

export function approverPublicKey(secretKeyHex: string): string {
  return bytesToHex(ed25519.getPublicKey(hexToBytes(secretKeyHex)));
}

/**
 * RFC 8785 canonical JSON of a flat object of strings: members sorted by their UTF-16 code units, absent ones
 * left out, strings as JSON.stringify writes them. Equal to core's canonicalJson for these objects (a test
 * checks it), without the SDK depending on the server's packages.
 */
function canonicalStrings(fields: Record<string, string | undefined>): string {
  const keys = Object.keys(fields).filter((k) => fields[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(fields[k])}`).join(',')}}`;
}

/** The exact bytes an approver signs for a vote (core/approvals/vote.ts). */
export function approvalVoteMessage(m: { approvalId: string; digest: string; decision: VoteDecision; approver: string; at: string; comment?: string }): Uint8Array {
  return new TextEncoder().encode(canonicalStrings({ type: 'airlock.approval.vote', approvalId: m.approvalId, digest: m.digest, decision: m.decision, approver: m.approver, at: m.at, comment: m.comment }));
}

/** The exact bytes an approver signs to read an approval. */
export function approvalViewMessage(m: { approvalId: string; approver: string; at: string }): Uint8Array {
  return new TextEncoder().encode(canonicalStrings({ type: 'airlock.approval.view', approvalId: m.approvalId, approver: m.approver, at: m.at }));
}

/**
 * Signs a vote on one approval: it binds the approval id and the exact digest that will be signed, so it counts
 * for nothing else; `at` (default now) must be within 5 minutes of the daemon's clock when it is posted.
 * Verifies its own signature before returning it.
 */
export function signApprovalVote(input: { secretKey: string; approvalId: string; digest: string; decision: VoteDecision; approver: string; at?: string; comment?: string }): SignedVote {
  const at = input.at ?? new Date().toISOString();
  const fields = { approvalId: input.approvalId, digest: input.digest.toLowerCase(), decision: input.decision, approver: input.approver, at, ...(input.comment !== undefined ? { comment: input.comment } : {}) };
  const signature = signChecked(input.secretKey, approvalVoteMessage(fields));
  return { approver: fields.approver, digest: fields.digest, decision: fields.decision, at, signature, ...(input.comment !== undefined ? { comment: input.comment } : {}) };
}

export function signApprovalView(input: { secretKey: string; approvalId: string; approver: string; at?: string }): SignedView {
  const at = input.at ?? new Date().toISOString();
  return { approver: input.approver, at, signature: signChecked(input.secretKey, approvalViewMessage({ approvalId: input.approvalId, approver: input.approver, at })) };
}

function signChecked(secretKeyHex: string, message: Uint8Array): string {
  const secret = hexToBytes(secretKeyHex);
  const signature = ed25519.sign(message, secret);
  if (!ed25519.verify(signature, message, ed25519.getPublicKey(secret))) throw new Error('approver signature failed its own check');
  return bytesToHex(signature);
}

export interface ApproverClientOptions {
  /** Base URL of the daemon. */
  url: string;
  /** The approver's name, as registered. */
  approver: string;
  /** Hex of the approver's Ed25519 secret key. */
  secretKey: string;
  fetch?: typeof globalThis.fetch;
}

export interface ApproverClient {
  /** Reads an approval the approver may vote on (what it asks, its digest, the quorum and the votes so far). */
  view(approvalId: string): Promise<ApprovalView>;
  /**
   * Votes. Without `digest`, the digest is read with `view` first; pass the digest the approver reviewed
   * elsewhere (a webhook, the console) to vote on exactly that.
   */
  vote(approvalId: string, decision: VoteDecision, options?: { digest?: string; comment?: string }): Promise<ApprovalView>;
}

/** An approver's side of the API: no bearer token, every call signed with the approver's key. */
export function approverClient(options: ApproverClientOptions): ApproverClient {
  const http: AirlockHttp = createAirlockHttp({ url: options.url, ...(options.fetch ? { fetch: options.fetch } : {}) });
  const path = (id: string, tail: string) => `/v1/approvals/${encodeURIComponent(id)}/${tail}`;
  const view = async (approvalId: string) =>
    (await http.request<ApprovalView>('POST', path(approvalId, 'view'), signApprovalView({ secretKey: options.secretKey, approvalId, approver: options.approver }))).body;
  return {
    view,
    async vote(approvalId, decision, o = {}) {
      const digest = o.digest ?? (await view(approvalId)).digest;
      const body = signApprovalVote({ secretKey: options.secretKey, approvalId, digest, decision, approver: options.approver, ...(o.comment !== undefined ? { comment: o.comment } : {}) });
      return (await http.request<ApprovalView>('POST', path(approvalId, 'votes'), body)).body;
    },
  };
}
