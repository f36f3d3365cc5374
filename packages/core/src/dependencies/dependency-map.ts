// The dependency map of one agent (issue 14): everything its key handed out that outlives a freeze. Grants
// recorded at signing time (chainless EIP-3009 authorizations among them), outstanding chain-bound EIP-3009
// authorizations (the payments table), open sessions and their child sessions, pending approvals, Lightning
// payments in flight and NWC connections. `reconcileDependencyMap`
// then asks the chain which grants are still live. Reading only: nothing here writes.
import { AirlockError } from '../errors.ts';
import type { AuditEntry } from '../audit/types.ts';
import type { ChainReader } from '../ports/chain-reader.ts';
import type { GrantRecord } from '../ports/grants.ts';
import type { Agent, Store } from '../ports/store.ts';
import type { RecordedDomain } from './grants.ts';

/** `true` live on chain, `false` provably not, `unknown` when the chain could not be asked (never read as "not live"). */
export type Liveness = true | false | 'unknown';

/** What the chain said about a grant, and why that makes it live or not. */
export interface LiveEvidence {
  /** Stable reason: `allowance_nonzero`, `allowance_zero`, `allowance_expired`, `permit_unused`, `permit_used`, `permit_expired`, `authorization_unused`, `authorization_used`, `authorization_expired`, `no_rpc`, `rpc_failed`, `read_failed`, `unsupported_reader`. */
  reason: string;
  /** Human sentence (no RPC URLs, no error text from the transport). */
  message: string;
  /** The allowance read (ERC-20, or Permit2's amount), decimal. */
  allowance?: string;
  /** Permit2 allowance expiration (unix s). */
  expiration?: number;
  /** The next nonce on chain (EIP-2612 and DAI `nonces`, Permit2 allowance nonce), decimal. */
  chainNonce?: string;
  /** The latest block's timestamp the deadlines were compared with. */
  chainTime?: number;
}

/** A grant row as the map lists it; its domain read as grants.ts records it (with the salt and fields: what the planner checks). */
export interface MappedGrant extends Omit<GrantRecord, 'domain'> {
  domain?: RecordedDomain;
  live?: Liveness;
  evidence?: LiveEvidence;
}

/** An EIP-3009 authorization bound to a chain, signed and not yet settled or expired (a reserved payment); a chainless one is a grant (`eip3009.authorization`). */
export interface MappedAuthorization {
  paymentId: string;
  auditSeq: number;
  chain: string;
  token: string;
  owner: string;
  to: string;
  value: bigint;
  /** bytes32 hex. */
  nonce: string;
  validAfter: number;
  validBefore: number;
  /** The token's EIP-712 domain as signed (from the audit entry): what a CancelAuthorization signs under. */
  domain?: RecordedDomain;
  resource?: string;
  live?: Liveness;
  evidence?: LiveEvidence;
}

export interface MappedSession {
  id: string;
  parentId?: string;
  label?: string;
  actions: string[];
  chains: string[];
  createdAt: number;
  expiresAt: number;
}

export interface MappedApproval {
  id: string;
  sessionId: string;
  auditSeq: number;
  action: string;
  summary?: string;
  createdAt: number;
  expiresAt: number;
}

export interface MappedLightningPayment {
  id: string;
  sessionId: string;
  auditSeq: number;
  paymentHash: string;
  amountMsat: bigint;
  createdAt: number;
}

export interface MappedNwcConnection {
  sessionId: string;
  auditSeq: number;
  clientPubkey: string;
  walletPubkey: string;
  /** The session it is bound to is still open (a connection ends with its session). */
  open: boolean;
}

export interface DependencyMap {
  agent: { id: string; name: string; address: string; status: string };
  generatedAt: number;
  /** Whether `reconcileDependencyMap` ran: only then do grants and authorizations carry `live`. */
  reconciled: boolean;
  grants: MappedGrant[];
  authorizations: MappedAuthorization[];
  sessions: MappedSession[];
  approvals: MappedApproval[];
  lightningPayments: MappedLightningPayment[];
  nwcConnections: MappedNwcConnection[];
  /**
   * NIP-46 bunker connections are kept in memory by the bunker, bound to a session: they end when that session
   * is revoked, and a restart forgets them. The store does not know them, so the map cannot list them.
   */
  notes: string[];
}

const NWC_CONNECTION_ISSUED = 'nwc.connection_issued';
/** NWC connections live at most as long as a session (30 days); that much of the log is read. */
const NWC_LOOKBACK_MS = 31 * 24 * 3600 * 1000;
const LIST_LIMIT = 1000;

/**
 * Assembles the map of `agentIdOrName` from the store (no chain reads). Throws `not_found` for an unknown agent.
 */
export async function buildDependencyMap(store: Store, agentIdOrName: string, nowMs: number): Promise<DependencyMap> {
  const agent = await store.getAgent(agentIdOrName);
  if (!agent) throw new AirlockError('not_found', 'No such agent.');
  const [grants, sessions, approvals, payments, lightning] = await Promise.all([
    allGrants(store, agent.id),
    store.listSessions({ agentId: agent.id, now: nowMs }),
    store.listApprovals({ state: 'pending', agentId: agent.id, limit: LIST_LIMIT }),
    store.listPayments({ agentId: agent.id, state: 'reserved', limit: LIST_LIMIT }),
    store.listLightningPayments({ agentId: agent.id, state: 'in_flight', limit: LIST_LIMIT }),
  ]);
  const openSessions = sessions.filter((s) => s.revokedAt === undefined && s.expiresAt > nowMs);
  const openIds = new Set(openSessions.map((s) => s.id));
  const authorizations: MappedAuthorization[] = [];
  for (const p of payments) {
    const domain = await signedDomain(store, p.auditSeq);
    authorizations.push({
      paymentId: p.id, auditSeq: p.auditSeq, chain: p.network, token: p.asset, owner: p.from, to: p.to, value: p.value, nonce: p.nonce,
      validAfter: p.validAfter, validBefore: p.validBefore, ...(domain ? { domain } : {}), ...(p.resource !== undefined ? { resource: p.resource } : {}),
    });
  }
  return {
    agent: agentView(agent),
    generatedAt: nowMs,
    reconciled: false,
    grants: grants.map((g) => ({ ...g })),
    authorizations,
    sessions: openSessions.map((s) => ({
      id: s.id, ...(s.parentId !== undefined ? { parentId: s.parentId } : {}), ...(s.label !== undefined ? { label: s.label } : {}),
      actions: s.scope.actions, chains: s.scope.chains, createdAt: s.createdAt, expiresAt: s.expiresAt,
    })),
    approvals: approvals.map((a) => ({
      id: a.id, sessionId: a.sessionId, auditSeq: a.auditSeq, action: a.action, createdAt: a.createdAt, expiresAt: a.expiresAt,
      ...(summaryLine(a.summary) !== undefined ? { summary: summaryLine(a.summary)! } : {}),
    })),
    lightningPayments: lightning.map((l) => ({ id: l.id, sessionId: l.sessionId, auditSeq: l.auditSeq, paymentHash: l.paymentHash, amountMsat: l.amountMsat, createdAt: l.createdAt })),
    nwcConnections: (await nwcConnections(store, agent.id, nowMs)).map((c) => ({ ...c, open: openIds.has(c.sessionId) })),
    notes: [
      'NIP-46 bunker connections are held in memory by the bunker and end with their session; they are not listed here.',
      ...truncationNotes({ 'pending approvals': approvals, 'outstanding EIP-3009 authorizations': payments, 'Lightning payments in flight': lightning }),
    ],
  };
}

/** Every grant of the agent, page by page: a map that silently stopped at a page size would hide a live grant. */
async function allGrants(store: Store, agentId: string): Promise<GrantRecord[]> {
  const out: GrantRecord[] = [];
  for (;;) {
    const last = out.at(-1);
    const page = await store.listGrants(agentId, { limit: LIST_LIMIT, ...(last ? { after: { auditSeq: last.auditSeq, index: last.index } } : {}) });
    out.push(...page);
    if (page.length < LIST_LIMIT) return out;
  }
}

/** The lists read in one page: a full page says there may be more (never a silent cut). */
function truncationNotes(lists: Record<string, readonly unknown[]>): string[] {
  return Object.entries(lists).filter(([, list]) => list.length >= LIST_LIMIT).map(([name]) => `Only the first ${LIST_LIMIT} ${name} are listed; there may be more.`);
}

function agentView(agent: Agent): DependencyMap['agent'] {
  return { id: agent.id, name: agent.name, address: agent.address, status: agent.status };
}

function summaryLine(summary: unknown): string | undefined {
  const s = (summary as { intent?: { summary?: unknown } } | undefined)?.intent?.summary;
  return typeof s === 'string' ? s : undefined;
}

/**
 * The EIP-712 domain an authorization was signed under, from its audit entry (`sign.request` carries the intent;
 * an approved one points at it through `approval.granted`'s `requestSeq`).
 */
async function signedDomain(store: Store, seq: number): Promise<RecordedDomain | undefined> {
  let entry: AuditEntry | undefined = (await store.readAudit(seq, 1))[0];
  const requestSeq = (entry?.data as { requestSeq?: unknown } | undefined)?.requestSeq;
  if (entry?.type === 'approval.granted' && typeof requestSeq === 'number') entry = (await store.readAudit(requestSeq, 1))[0];
  const domain = (entry?.data as { intent?: { typedData?: { domain?: Record<string, unknown> } } } | undefined)?.intent?.typedData?.domain;
  if (!domain) return undefined;
  // The salt and the fields too (as grants.ts records them): a cancellation under another domain shape cannot verify.
  return {
    ...(typeof domain.name === 'string' ? { name: domain.name } : {}), ...(typeof domain.version === 'string' ? { version: domain.version } : {}),
    ...(typeof domain.salt === 'string' ? { salt: domain.salt } : {}),
    fields: ['name', 'version', 'chainId', 'verifyingContract', 'salt'].filter((f) => domain[f] !== undefined && domain[f] !== null),
  };
}

async function nwcConnections(store: Store, agentId: string, nowMs: number): Promise<Omit<MappedNwcConnection, 'open'>[]> {
  const found: Omit<MappedNwcConnection, 'open'>[] = [];
  let afterSeq: number | undefined;
  for (;;) {
    const page = await store.queryAudit({ type: NWC_CONNECTION_ISSUED, agentId, fromMs: nowMs - NWC_LOOKBACK_MS, limit: LIST_LIMIT, ...(afterSeq !== undefined ? { afterSeq } : {}) });
    for (const e of page) {
      const d = e.data as { sessionId?: unknown; clientPubkey?: unknown; walletPubkey?: unknown };
      if (typeof d.sessionId === 'string' && typeof d.clientPubkey === 'string' && typeof d.walletPubkey === 'string') {
        found.push({ sessionId: d.sessionId, auditSeq: e.seq, clientPubkey: d.clientPubkey, walletPubkey: d.walletPubkey });
      }
    }
    if (page.length < LIST_LIMIT) return found;
    afterSeq = page[page.length - 1]!.seq;
  }
}

/**
 * Asks the chain, through `reader`, which grants and authorizations of `map` are live, and returns the map with
 * `live` and `evidence` on each. Reads are shared (one allowance read per owner/token/spender). A failed read,
 * a chain without an RPC, or a reader that cannot read a kind: `unknown`, never `false`.
 */
export async function reconcileDependencyMap(map: DependencyMap, reader: ChainReader | undefined): Promise<DependencyMap> {
  const reads = new ChainReads(reader);
  const grants: MappedGrant[] = [];
  for (const g of map.grants) grants.push({ ...g, ...(await grantLiveness(g, reads)) });
  const authorizations: MappedAuthorization[] = [];
  for (const a of map.authorizations) authorizations.push({ ...a, ...(await authorizationLiveness(a, reads)) });
  return { ...map, reconciled: true, grants, authorizations };
}

type Verdict = { live: Liveness; evidence: LiveEvidence };

/** One cached promise per read: grants of one pair share it. A rejected read stays rejected (all `unknown`). */
class ChainReads {
  private readonly cache = new Map<string, Promise<unknown>>();
  readonly reader: ChainReader | undefined;
  constructor(reader: ChainReader | undefined) {
    this.reader = reader;
  }

  read<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let p = this.cache.get(key);
    if (!p) {
      p = fn();
      p.catch(() => undefined); // observed here; each caller handles it
      this.cache.set(key, p);
    }
    return p as Promise<T>;
  }

  chainTime(chain: string): Promise<number> {
    return this.read(`time|${chain}`, () => this.reader!.latestBlockTimestamp(chain));
  }
}

const UNKNOWN_MESSAGES = {
  no_rpc: (chain: string) => `No RPC is configured for ${chain}.`,
  rpc_failed: (chain: string) => `The RPC for ${chain} did not answer; the grant may still be live.`,
  read_failed: () => 'The chain answered but this read failed (no such contract, or it lacks the function); the grant may still be live.',
  unsupported_reader: () => 'The chain reader cannot read this kind of grant.',
};

function unknown(reason: keyof typeof UNKNOWN_MESSAGES, chain: string): Verdict {
  const message = UNKNOWN_MESSAGES[reason](chain);
  return { live: 'unknown', evidence: { reason, message } };
}

/** Runs `fn` with the chain's reader, or answers `unknown` when there is none or it fails. */
async function withReader(reads: ChainReads, chain: string, needs: (keyof ChainReader)[], fn: (reader: ChainReader) => Promise<Verdict>): Promise<Verdict> {
  const reader = reads.reader;
  if (!reader || !reader.supports(chain)) return unknown('no_rpc', chain);
  if (needs.some((n) => typeof reader[n] !== 'function')) return unknown('unsupported_reader', chain);
  // The chain's latest block first (one read per chain, shared): an RPC that is down fails here once, and every
  // other grant on that chain is `unknown` at once instead of waiting for its own timeout.
  try {
    await reads.chainTime(chain);
  } catch {
    return unknown('rpc_failed', chain);
  }
  try {
    return await fn(reader);
  } catch {
    // The node answers but this read failed: no contract there, or one without this function (a token without
    // EIP-2612, no Permit2 deployed). Still never "not live".
    return unknown('read_failed', chain);
  }
}

async function grantLiveness(g: GrantRecord, reads: ChainReads): Promise<Verdict> {
  switch (g.kind) {
    case 'erc20.approve':
    case 'erc20.increase_allowance':
      return withReader(reads, g.chain, ['erc20Allowance'], async (r) => erc20Verdict(await erc20Allowance(reads, r, g)));
    case 'eip2612.permit':
    case 'dai.permit':
      // DAI's permit reads the same way: nonces(holder) is sequential per token and shared by every permit of that
      // holder, allowance(holder, spender) is the ERC-20 one, and a permit without a deadline (expiry 0) never lapses.
      return withReader(reads, g.chain, ['erc20Allowance', 'eip2612Nonce'], async (r) => {
        const [allowance, next, chainTime] = await Promise.all([
          erc20Allowance(reads, r, g),
          reads.read(`2612|${g.chain}|${g.token}|${g.owner}`, () => r.eip2612Nonce!(g.chain, g.token, g.owner)),
          reads.chainTime(g.chain),
        ]);
        const nonce = BigInt(g.nonce ?? '0');
        const base = { allowance: allowance.toString(), chainNonce: next.toString(), chainTime };
        // Unused and submittable: anyone holding the signature can still turn it into an allowance.
        if (nonce >= next && (g.deadline === undefined || g.deadline >= chainTime)) {
          const when = g.deadline === undefined ? 'it never expires' : 'its deadline has not passed';
          return { live: true, evidence: { ...base, reason: 'permit_unused', message: `The permit (nonce ${nonce}) is unused and ${when}: it can still be submitted.` } };
        }
        if (allowance > 0n) return { live: true, evidence: { ...base, reason: 'allowance_nonzero', message: `The spender's allowance is ${allowance}.` } };
        const reason = nonce < next ? 'permit_used' : 'permit_expired';
        return { live: false, evidence: { ...base, reason, message: nonce < next ? 'The permit nonce is used and the allowance is 0.' : 'The permit deadline passed unused and the allowance is 0.' } };
      });
    case 'permit2.permit':
    case 'permit2.approve':
      return withReader(reads, g.chain, ['permit2Allowance'], async (r) => {
        const [state, chainTime] = await Promise.all([
          reads.read(`p2a|${g.chain}|${g.contract}|${g.owner}|${g.token}|${g.spender}`, () => r.permit2Allowance!(g.chain, g.contract, g.owner, g.token, g.spender)),
          reads.chainTime(g.chain),
        ]);
        const base = { allowance: state.amount.toString(), expiration: state.expiration, chainNonce: state.nonce.toString(), chainTime };
        if (g.kind === 'permit2.permit' && g.nonce !== undefined && BigInt(g.nonce) >= state.nonce && (g.deadline === undefined || g.deadline >= chainTime)) {
          return { live: true, evidence: { ...base, reason: 'permit_unused', message: `The Permit2 permit (nonce ${g.nonce}) is unused and its signature deadline has not passed.` } };
        }
        // Permit2 refuses a transfer once block.timestamp > expiration.
        if (state.amount > 0n && state.expiration >= chainTime) return { live: true, evidence: { ...base, reason: 'allowance_nonzero', message: `Permit2 allows ${state.amount} until ${state.expiration}.` } };
        const reason = state.amount === 0n ? 'allowance_zero' : 'allowance_expired';
        return { live: false, evidence: { ...base, reason, message: reason === 'allowance_zero' ? 'The Permit2 allowance is 0.' : 'The Permit2 allowance has expired.' } };
      });
    case 'permit2.transfer':
      return withReader(reads, g.chain, ['permit2NonceBitmap'], async (r) => {
        const nonce = BigInt(g.nonce ?? '0');
        const [bitmap, chainTime] = await Promise.all([
          reads.read(`p2n|${g.chain}|${g.contract}|${g.owner}|${nonce >> 8n}`, () => r.permit2NonceBitmap!(g.chain, g.contract, g.owner, nonce >> 8n)),
          reads.chainTime(g.chain),
        ]);
        const used = ((bitmap >> (nonce & 255n)) & 1n) === 1n;
        if (used) return { live: false, evidence: { reason: 'permit_used', message: 'The Permit2 nonce is used (transferred or invalidated).', chainTime } };
        if (g.deadline !== undefined && g.deadline < chainTime) return { live: false, evidence: { reason: 'permit_expired', message: 'The signature deadline passed unused.', chainTime } };
        return { live: true, evidence: { reason: 'permit_unused', message: 'The Permit2 transfer signature is unused and its deadline has not passed.', chainTime } };
      });
    case 'eip3009.authorization':
      return chainlessAuthorizationLiveness(g, reads);
  }
}

// A chainless EIP-3009 authorization is valid on every chain whose token has its domain; only the chain it was
// labelled with can be asked. Expired is dead everywhere; used there says nothing of the others, so it stays
// `unknown` (never `false`), with the evidence saying why.
async function chainlessAuthorizationLiveness(g: GrantRecord, reads: ChainReads): Promise<Verdict> {
  return withReader(reads, g.chain, [], async (r) => {
    const [used, chainTime] = await Promise.all([r.authorizationState(g.chain, g.token, g.owner, g.nonce ?? ''), reads.chainTime(g.chain)]);
    if (g.deadline !== undefined && g.deadline <= chainTime) return { live: false, evidence: { reason: 'authorization_expired', message: 'The authorization expired unused.', chainTime } };
    if (used) return { live: 'unknown', evidence: { reason: 'authorization_used', message: `The authorization nonce is used on ${g.chain}; signed without chainId, it may still be submitted on another chain.`, chainTime } };
    return { live: true, evidence: { reason: 'authorization_unused', message: 'The authorization is unused and still valid: anyone holding it can submit it.', chainTime } };
  });
}

function erc20Allowance(reads: ChainReads, r: ChainReader, g: GrantRecord): Promise<bigint> {
  return reads.read(`erc20|${g.chain}|${g.token}|${g.owner}|${g.spender}`, () => r.erc20Allowance!(g.chain, g.token, g.owner, g.spender));
}

function erc20Verdict(allowance: bigint): Verdict {
  return allowance > 0n
    ? { live: true, evidence: { reason: 'allowance_nonzero', message: `The spender's allowance is ${allowance}.`, allowance: allowance.toString() } }
    : { live: false, evidence: { reason: 'allowance_zero', message: 'The allowance is 0.', allowance: '0' } };
}

async function authorizationLiveness(a: MappedAuthorization, reads: ChainReads): Promise<Verdict> {
  return withReader(reads, a.chain, [], async (r) => {
    const [used, chainTime] = await Promise.all([r.authorizationState(a.chain, a.token, a.owner, a.nonce), reads.chainTime(a.chain)]);
    if (used) return { live: false, evidence: { reason: 'authorization_used', message: 'The authorization nonce is used (settled or cancelled).', chainTime } };
    // EIP-3009 refuses once block.timestamp >= validBefore.
    if (a.validBefore <= chainTime) return { live: false, evidence: { reason: 'authorization_expired', message: 'The authorization expired unused.', chainTime } };
    return { live: true, evidence: { reason: 'authorization_unused', message: 'The authorization is unused and still valid: anyone holding it can submit it.', chainTime } };
  });
}
