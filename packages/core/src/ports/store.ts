import type { LedgerWrite, WindowQuery, WindowTotal } from './ledger.ts';
import type { AuditEntry, AuditEntryInput, AuditCheckpoint, AuditQuery, SignedTreeHead } from '../audit/types.ts';
import type { VerifiableEntry } from '../audit/log-verifier.ts';
import type { NodeId } from '../audit/merkle.ts';
import type { QuorumRequirement } from '../approvals/quorum.ts';

/** The newest entry (seq, hash) and the number of leaves in the log's Merkle tree. */
export interface StoredAuditHead {
  seq: number;
  hash: string;
  treeSize: number;
}

/** A stored complete subtree of the audit tree. */
export interface TreeNode extends NodeId {
  hash: Uint8Array;
}
import type { PaymentFilter, PaymentRecord, PaymentSummaryRow, SettledTransfer } from './payments.ts';
import type { LightningFinish, LightningPaymentFilter, LightningPaymentRecord } from './lightning-payments.ts';
import type { BreakerRecord, BreakerResetResult, BreakerState, BreakerTargets, DestinationPayers } from './breakers.ts';
import type { ShadowOutcome, ShadowOutcomeCounts, ShadowPolicyRecord } from './shadow-policies.ts';
import type { WebhookStore, WebhookStoreTx } from './webhooks.ts';
import type { GrantStore, GrantStoreTx } from './grants.ts';
import type { ReleasedSignatureStore } from './released-signatures.ts';
import type { ThresholdBindingStore, ThresholdBindingStoreTx } from './threshold-keys.ts';
import type { LifecycleStore, LifecycleStoreTx } from './lifecycle.ts';
import type { AgentKey, DeriveAgentAddress } from './agent-keys.ts';

export type AgentStatus = 'active' | 'frozen' | 'retired';

export interface Agent {
  id: string; // `ag_` + 16 hex
  name: string; // unique
  /** Hardened BIP-44 account index; allocated once, never reused (enforced by the store). */
  accountIndex: number;
  /** The signing key's index (the last path component): rotation moves it to the next unused one (ports/agent-keys.ts). */
  keyIndex: number;
  /** Lowercase EVM address of m/44'/60'/{accountIndex}'/0/{keyIndex}. */
  address: string;
  status: AgentStatus;
  labels: Record<string, string>;
  createdAt: number; // ms
  updatedAt: number; // ms
}

export interface NewAgent {
  id: string;
  name: string;
  /** Filled by the store inside `createAgents`, via `deriveAddress`. */
  labels: Record<string, string>;
}

export interface SessionScope {
  /** Actions this session may use, e.g. `evm.transaction`. */
  actions: string[];
  /** CAIP-2 chains this session may use; empty means the agent's policy decides. */
  chains: string[];
  /** Optional sub-budgets (the session's own ceiling, never above the agent's). */
  budgets: { asset: string; max: string; window: string }[];
}

export interface Session {
  id: string; // `ses_` + 16 hex
  agentId: string;
  /** sha256 of the token's secret part, hex. The token itself is never stored. */
  tokenHash: string;
  scope: SessionScope;
  label?: string;
  /**
   * The session this one was derived from (POST /v1/session/children): its scope is a subset of the parent's,
   * it expires no later, and its charges are charged to every ancestor too. Absent for operator-issued sessions.
   */
  parentId?: string;
  createdAt: number;
  expiresAt: number;
  revokedAt?: number;
}

/** A page of a session's descendants (Store.sessionDescendantsPage). */
export interface SessionDescendantsFilter {
  now: number;
  includeInactive?: boolean;
  /** The last session of the previous page: the page starts after it in (`createdAt`, `id`) order. */
  after?: { createdAt: number; id: string };
  limit: number;
}

/** Store.childSessionCounts. */
export interface ChildSessionCounts {
  /** Every session ever derived directly from the parent, revoked and expired ones included. */
  total: number;
  /** Those neither revoked nor expired. */
  live: number;
}

export interface PolicyRecord {
  /** `fleet` or `agent:<agentId>`. */
  scope: string;
  version: number; // 1, 2, 3… per scope
  /** sha256 hex of the canonical JSON of the document. */
  hash: string;
  document: unknown; // the parsed policy document (JSON)
  /** The text the operator set (YAML or JSON, comments and order kept), when the policy was set as text. */
  source?: string;
  author: string;
  createdAt: number;
}

export type ApprovalState = 'pending' | 'approved' | 'denied' | 'expired';

export interface ApprovalRecord {
  id: string; // `apr_` + 16 hex
  agentId: string;
  sessionId: string;
  /** Audit entry that recorded the `require_approval` decision. */
  auditSeq: number;
  action: string;
  /** What is needed to sign later: the request payload as received (JSON, no secrets). */
  request: unknown;
  /** Hex of the 32-byte digest that will be signed. */
  digest: string;
  /** The decoded intent (JSON) and the thresholds crossed, for the operator's review. */
  summary: unknown;
  state: ApprovalState;
  createdAt: number;
  expiresAt: number;
  decidedAt?: number;
  decidedBy?: string;
  /** The signing result once approved (signatures are public; no secrets). */
  result?: unknown;
  /**
   * Set when an approval tier with a quorum held the request: the quorums to meet, fixed when the request was
   * held (a later policy change does not move them). Absent: an operator approves with the admin token.
   */
  quorum?: QuorumRequirement[];
  /** The votes counted so far (quorum approvals only), in the order they were cast. */
  votes?: ApprovalVote[];
}

export type ApproverStatus = 'active' | 'disabled';

/** A person (or their system) who votes on quorum approvals with their own Ed25519 key. */
export interface Approver {
  id: string; // `apv_` + 16 hex
  name: string; // unique
  /** Hex of the 32-byte Ed25519 public key; the private key never reaches Airlock. */
  publicKey: string;
  groups: string[];
  /** Agent ids this approver is linked to (their own agents): they cannot vote on those agents' requests. */
  agents: string[];
  status: ApproverStatus;
  createdAt: number;
  updatedAt: number;
}

/** One counted vote: signed by the approver over the approval id and digest (approvals/vote.ts). */
export interface ApprovalVote {
  approvalId: string;
  approverId: string;
  /** The approver's name, as signed. */
  approver: string;
  /** The approver's groups when the vote was cast (what the quorum counts). */
  groups: string[];
  decision: 'approve' | 'reject';
  /** The signed time (ms). */
  at: number;
  /** Hex of the 64-byte Ed25519 signature. */
  signature: string;
  comment?: string;
  /** The `approval.vote` audit entry. */
  auditSeq: number;
  createdAt: number;
}

export interface IdempotencyRecord {
  /** `agent:<id>`: retries are recognised across the agent's sessions (a renewed session may retry). */
  scope: string;
  key: string;
  /** sha256 hex of the canonical request (action + payload). */
  requestHash: string;
  /** The audit entry of the original request. */
  auditSeq: number;
  /** The stored response (status + body), replayed as is. */
  response: { status: number; body: unknown };
  /**
   * Hex of the digest the original request decoded to. A retry is released only if it decodes to the same
   * digest; records written before this field existed have none and are never re-signed.
   */
  digest?: string;
  createdAt: number;
}

/**
 * A single-use authorization nonce (`Intent.nonceKeys`) claimed by one signature. A second request over the
 * same key is either byte-identical (same digest: a replay) or refused with `nonce_reused`.
 */
export interface NonceClaim {
  key: string;
  agentId: string;
  /** Hex of the digest whose signature consumes the nonce. */
  digest: string;
  /** The audit entry of the request that claimed it. */
  auditSeq: number;
  /**
   * `signed`: the signature was released (or is being released after commit). `pending`: an approval in
   * flight holds it; approving makes it `signed`, denying or expiring the approval frees the nonce.
   */
  state: 'signed' | 'pending';
  approvalId?: string;
  /**
   * Unix seconds after which the claiming signature can no longer be used on chain (deadline). A claim on a
   * sequential nonce (EIP-2612, Permit2 allowances) lapses then: the next permit must reuse that nonce.
   */
  validBefore?: number;
  createdAt: number;
}

/**
 * Persistence port. Implementations: SQLite (`node:sqlite`) and PostgreSQL (`pg`).
 * Amounts cross this boundary as bigint; they are stored as TEXT (SQLite) / NUMERIC(78,0) (PostgreSQL).
 * Any I/O failure surfaces as AirlockError('store_unavailable') so the service fails closed.
 */
export interface Store extends WebhookStore, GrantStore, LifecycleStore, ReleasedSignatureStore, ThresholdBindingStore {
  readonly dialect: 'sqlite' | 'postgres';
  /** Applies pending numbered migrations. Safe to call from several instances at once. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  getMeta(key: string): Promise<string | undefined>;
  /** Inserts only if absent; returns the value now stored (first writer wins). */
  initMeta(key: string, value: string): Promise<string>;
  setMeta(key: string, value: string): Promise<void>;

  /**
   * Creates agents in one transaction. Account indexes come from a store-held counter that
   * only grows; `deriveAddress` (may be async: await it) maps (accountIndex, keyIndex=0) to the address to record.
   * Names must be unique: a duplicate fails the whole batch with `conflict`.
   */
  createAgents(agents: NewAgent[], deriveAddress: (accountIndex: number, keyIndex: number) => string | Promise<string>, now: number): Promise<Agent[]>;
  getAgent(idOrName: string): Promise<Agent | undefined>;
  listAgents(filter: { status?: AgentStatus; limit?: number; after?: string }): Promise<Agent[]>;
  /** As StoreTx.setAgentStatus: 'frozen' is an operator's freeze, which no breaker reset undoes. */
  setAgentStatus(id: string, status: AgentStatus, now: number): Promise<Agent>;

  /** Every key the agent ever had (ports/agent-keys.ts), by key index, oldest first. */
  listAgentKeys(agentId: string): Promise<AgentKey[]>;
  /** The key with this address (any case), whichever agent had it and whatever its state; undefined if none ever did. */
  findAgentKey(address: string): Promise<AgentKey | undefined>;

  putPolicy(record: Omit<PolicyRecord, 'version'>): Promise<PolicyRecord>;
  /** Latest version for the scope. */
  getPolicy(scope: string, version?: number): Promise<PolicyRecord | undefined>;
  listPolicyVersions(scope: string): Promise<Omit<PolicyRecord, 'document'>[]>;

  /** The candidate staged at `scope`, if any (shadow-policies.ts). */
  getShadowPolicy(scope: string): Promise<ShadowPolicyRecord | undefined>;
  /** How many evaluations of the candidate `shadowId` came out each way. */
  shadowOutcomeCounts(shadowId: string): Promise<ShadowOutcomeCounts>;
  /** The candidate's differences (every outcome but `same`), oldest request first, after `afterSeq`. */
  listShadowDifferences(shadowId: string, filter: { afterSeq?: number; limit: number }): Promise<ShadowOutcome[]>;

  createSession(session: Session): Promise<void>;
  getSession(id: string): Promise<Session | undefined>;
  listSessions(filter: { agentId?: string; includeInactive?: boolean; now: number }): Promise<Session[]>;
  /** Revokes the session and every session derived from it, at any depth (those not revoked yet), at once. */
  revokeSession(id: string, now: number): Promise<Session>;
  /** Every session derived from this one, at any depth, revoked and expired ones included (oldest first). */
  sessionDescendants(id: string): Promise<Session[]>;
  /**
   * One page of the sessions derived from this one, at any depth, oldest first (`createdAt`, then `id`), after
   * `after`. Unless `includeInactive`, only live ones (not revoked, not expired at `now`), found by walking live
   * sessions only: a revoked or expired session and everything below it are skipped, so what a live listing
   * costs does not grow with the history of revoked children.
   */
  sessionDescendantsPage(id: string, filter: SessionDescendantsFilter): Promise<Session[]>;

  getApproval(id: string): Promise<ApprovalRecord | undefined>;
  listApprovals(filter: { state?: ApprovalState; agentId?: string; limit?: number }): Promise<ApprovalRecord[]>;

  getApprover(idOrName: string): Promise<Approver | undefined>;
  /** By name. */
  listApprovers(): Promise<Approver[]>;

  getPayment(id: string): Promise<PaymentRecord | undefined>;
  /** Newest first. */
  listPayments(filter: PaymentFilter): Promise<PaymentRecord[]>;
  /** Reserved / settled / released totals per agent, origin and asset (all payments, or one agent's). */
  paymentSummary(filter: { agentId?: string }): Promise<PaymentSummaryRow[]>;

  getLightningPayment(id: string): Promise<LightningPaymentRecord | undefined>;
  /** Newest first. */
  listLightningPayments(filter: LightningPaymentFilter): Promise<LightningPaymentRecord[]>;
  /**
   * The agent's newest succeeded L402 payment for `origin` whose credential has not expired at `nowSeconds`
   * (a credential without an expiry caveat does not expire here): the token cache. One bought for `resource`
   * itself comes first (servers such as Aperture sell one token per service, not per origin).
   */
  findL402Token(agentId: string, origin: string, nowSeconds: number, resource?: string): Promise<LightningPaymentRecord | undefined>;

  /** Circuit breakers, newest first (ports/breakers.ts). */
  listBreakers(filter: { state?: BreakerState; limit?: number }): Promise<BreakerRecord[]>;
  getBreaker(id: string): Promise<BreakerRecord | undefined>;

  queryAudit(query: AuditQuery): Promise<AuditEntry[]>;
  /** Streams every entry in seq order (for verify/export) in pages. */
  readAudit(fromSeq: number, limit: number): Promise<AuditEntry[]>;
  /**
   * Entries in leaf order from `fromLeafIndex` (for verify and the tree builder), in pages. A version-3
   * entry comes with its stored leaf and without parsed data.
   */
  readAuditLeaves(fromLeafIndex: number, limit: number): Promise<VerifiableEntry[]>;
  /**
   * Seqs of rows that are not in the tree (no leaf index, or a negative one), oldest first, at most `limit`. The
   * writers never make one: such a row was inserted behind the log's back, and `audit verify` reports it
   * (listings and readAudit never show one).
   */
  auditEntriesOutsideTree(limit: number): Promise<number[]>;
  auditHead(): Promise<StoredAuditHead>;
  /**
   * Rows in the tree (leaf index 0 or more). Leaf indexes are unique, so this is auditHead().treeSize (the largest
   * leaf index + 1) unless leaves are missing: a row inserted far out makes that size anything.
   */
  countAuditLeaves(): Promise<number>;
  /** Legacy signed chain heads (written before signed tree heads; still verified, never written now). */
  listCheckpoints(): Promise<AuditCheckpoint[]>;
  /** The newest legacy checkpoint. */
  lastCheckpoint(): Promise<AuditCheckpoint | undefined>;
  appendCheckpoint(checkpoint: AuditCheckpoint): Promise<void>;
  listTreeHeads(): Promise<SignedTreeHead[]>;
  /** The signed tree head of the largest size (one index lookup). */
  lastTreeHead(): Promise<SignedTreeHead | undefined>;
  getTreeHead(treeSize: number): Promise<SignedTreeHead | undefined>;
  /** Fails with `conflict` if a head of that size is already stored. */
  appendTreeHead(head: SignedTreeHead): Promise<void>;
  /** Leaves covered by the stored tree nodes (the builder extends them from there). */
  builtTreeSize(): Promise<number>;
  /** Stored complete-subtree hashes, undefined where absent. */
  readTreeNodes(ids: readonly NodeId[]): Promise<(Uint8Array | undefined)[]>;
  /**
   * Stores nodes; one already stored is kept as it is (nodes are a function of the leaves), unless
   * `replace` (only after an operator acknowledged a rewritten log).
   */
  appendTreeNodes(nodes: readonly TreeNode[], options?: { replace?: boolean }): Promise<void>;

  /**
   * Runs `fn` as if alone: on SQLite inside `BEGIN IMMEDIATE` (one writer), on PostgreSQL holding the locks
   * of what it touches (its agent, the ledger series it reads and charges; docs/architecture.md). Every
   * writer of ledger and audit goes through here, so concurrent requests, instances and retries serialize
   * where they meet. Commits when `fn` resolves, rolls back when it throws (and rethrows). `affinity` (an
   * agent id) lets the store run transactions of one agent in the same group-commit lane, where they share
   * that agent's lock instead of waiting for each other's batches. `exclusive` (rare operator changes that every
   * signing transaction depends on: an agent's status, a session revoke, a policy, a key rotation): no signing transaction runs beside it, so none that read
   * the state before it can commit after it (PostgreSQL: the signing lock taken exclusively, outside the
   * group-commit batches; SQLite has one writer already). Both stores refuse `setAgentStatus`, `revokeSession`,
   * `putPolicy` and `rotateAgentKey` in a transaction that is not exclusive (`internal`).
   *
   * `afterCommit`: work on the result that may start once the transaction has committed but whose answer must
   * wait until the commit is durable (signing, answered with the signature). A store that syncs apart from
   * COMMIT (SQLite: the WAL's fdatasync runs off the event loop) runs it beside that sync; the promise settles
   * with its result only once both are done, and if the commit cannot be made durable the result is dropped and
   * the caller gets `store_unavailable` (may or may not have been recorded). Elsewhere it runs after COMMIT.
   */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>, options?: TransactionOptions): Promise<T>;
  transaction<T, R>(fn: (tx: StoreTx) => Promise<T>, options: TransactionOptions & { afterCommit: (value: T) => Promise<R> }): Promise<R>;

  /** How many write transactions shared each durable commit since the store opened (metrics); absent on a store without group commit. */
  groupCommitStats?(): GroupCommitStats;
}

/** Upper bounds of the group-commit size buckets (`GroupCommitStats.atMost`), as a Prometheus histogram's `le`. */
export const GROUP_COMMIT_SIZE_BOUNDS: readonly number[] = [1, 2, 4, 8, 16, 32, 64];

/**
 * What a store's group committer has done since the store opened. A commit carries the write transactions of
 * one batch that ran in it: those that committed and those that failed on their own (rolled back to their
 * savepoint, answered after the commit), not those moved to a later batch. A commit is counted once durable
 * (SQLite: its WAL synced). A batch that did not commit or could not be made durable counts nowhere
 * (`airlock_store_errors_total` sees its requests), nor does one whose every request was moved to a later batch.
 */
export interface GroupCommitStats {
  /** Commits made by the group committer (each one transaction of the store). */
  commits: number;
  /** Write transactions those commits carried. */
  transactions: number;
  /** `atMost[i]`: commits that carried at most `GROUP_COMMIT_SIZE_BOUNDS[i]` transactions (cumulative). */
  atMost: number[];
}

/** How `Store.transaction` runs (see there). */
export interface TransactionOptions {
  affinity?: string;
  exclusive?: boolean;
}

/** Handle bound to the open transaction. Only valid inside `Store.transaction`. */
/** StoreTx.auditEntryOrigin: who made a recorded request and what was decided on it. */
export interface AuditEntryOrigin {
  sessionId?: string;
  decision?: string;
  /** When the entry was appended (ms since epoch). */
  at: number;
}

export interface StoreTx extends WebhookStoreTx, GrantStoreTx, LifecycleStoreTx, ThresholdBindingStoreTx {
  getAgent(id: string): Promise<Agent | undefined>;
  getSession(id: string): Promise<Session | undefined>;
  /**
   * The agent's sessions that are live at `now` (not revoked, not expired), read in the transaction: an operator
   * write that revokes every credential of an agent (retire, revoke-all) lists them under its exclusive lock, so a
   * session issued while it waited is among them (found by review: listed before the transaction, one issued in
   * between outlived the retirement, and outlived revoke-all to sign after the unfreeze).
   */
  liveSessionsOf(agentId: string, now: number): Promise<Session[]>;
  /**
   * The session named by the committed audit entry `seq` (the session that made that request) and the entry's
   * decision: a field is absent when the entry names none, undefined when there is no such committed entry
   * (PostgreSQL writes a batch's entries at its commit, so another request's entry of the same batch is not found yet).
   */
  auditEntryOrigin(seq: number): Promise<AuditEntryOrigin | undefined>;
  /** Latest policy for each scope (fleet, agent:<id>), read inside the transaction. */
  getPolicy(scope: string): Promise<PolicyRecord | undefined>;

  // Operator changes inside a transaction, so each commits together with its audit entry.
  /**
   * Sets meta `key` to `value` only if it holds `expected` now (compare-and-set); false if it held something
   * else. The admin token rotation uses it so two rotations, or a rotation with a token another instance
   * already replaced, cannot both win.
   */
  compareAndSetMeta(key: string, expected: string, value: string): Promise<boolean>;
  /**
   * 'frozen' is an operator's freeze: it also marks the agent frozen by the operator (also when a breaker had frozen
   * it already), which no breaker reset undoes; any other status clears that mark. Breakers freeze through tripBreaker.
   */
  setAgentStatus(id: string, status: AgentStatus, now: number): Promise<Agent>;

  // The key registry (ports/agent-keys.ts).
  listAgentKeys(agentId: string): Promise<AgentKey[]>;
  findAgentKey(address: string): Promise<AgentKey | undefined>;
  /**
   * Gives the agent its next key: index = the largest it ever had + 1 (never one used before), address from
   * `deriveAddress` (lowercased); the active key becomes `rotated` at `now`, and `agents.key_index`/`address`
   * follow. The caller checked the agent (exists, not retired) in the same transaction. `not_found` for no such
   * agent, `conflict` when no hardened key index is left.
   */
  rotateAgentKey(agentId: string, deriveAddress: DeriveAgentAddress, now: number): Promise<{ agent: Agent; previous: AgentKey; current: AgentKey }>;
  /**
   * Marks one of the agent's keys `retired` (a retired key is returned as it is). The active key of an agent
   * that is not retired cannot be (`conflict`: rotate first); `not_found` if the agent never had that index.
   */
  retireAgentKey(agentId: string, keyIndex: number, now: number): Promise<AgentKey>;
  putPolicy(record: Omit<PolicyRecord, 'version'>): Promise<PolicyRecord>;
  createSession(session: Session): Promise<void>;
  /** Revokes the session and every session derived from it (Store.revokeSession). */
  revokeSession(id: string, now: number): Promise<Session>;
  sessionDescendants(id: string): Promise<Session[]>;
  /**
   * The sessions derived directly from `parentId`: how many ever (revoked and expired included), and how many
   * are live at `now`. Counted by the store (one indexed query), whatever the history of the session.
   */
  childSessionCounts(parentId: string, now: number): Promise<ChildSessionCounts>;
  /**
   * The sessions ever derived under `rootId` at any depth (revoked and expired included), counted up to
   * `atMost`: the walk stops there, so its cost is bounded whatever the history of the tree.
   */
  sessionTreeDerivations(rootId: string, atMost: number): Promise<number>;

  /** Every staged candidate (the signing path caches these; shadow-policies.ts). */
  listShadowPolicies(): Promise<ShadowPolicyRecord[]>;
  /** Stages `record` at its scope, replacing (and forgetting the outcomes of) the candidate staged there. */
  putShadowPolicy(record: ShadowPolicyRecord): Promise<void>;
  /** Unstages the candidate at `scope` and drops its outcomes; returns what was staged. */
  deleteShadowPolicy(scope: string): Promise<ShadowPolicyRecord | undefined>;
  shadowOutcomeCounts(shadowId: string): Promise<ShadowOutcomeCounts>;
  /**
   * Records evaluations of candidates. An outcome whose candidate is no longer staged (unstaged by another
   * instance since this one cached it) is dropped, never an error: a shadow must not fail a request.
   */
  appendShadowOutcomes(outcomes: readonly ShadowOutcome[]): Promise<void>;

  getIdempotency(scope: string, key: string): Promise<IdempotencyRecord | undefined>;
  putIdempotency(record: IdempotencyRecord): Promise<void>;

  /** The claims that exist for these nonce keys (any order; absent keys are unclaimed). */
  getNonceClaims(keys: readonly string[]): Promise<NonceClaim[]>;
  /** Claims nonce keys for one signature. A key already claimed fails the call with `conflict`. */
  claimNonces(claims: readonly NonceClaim[]): Promise<void>;
  /** Drops claims (lapsed ones, before a new signature claims the same sequential nonce). */
  releaseNonceClaims(keys: readonly string[]): Promise<void>;

  /**
   * Totals charged to each (series, asset) at or after `sinceMs`: committed ledger entries plus
   * amounts held by pending approvals and by reserved payments. Must not scan history older than the window: answered from
   * cumulative sums (two index lookups per query), so cost does not grow with history.
   * `charging`: the series this transaction will charge if the request is allowed. A store that locks what
   * a transaction touches (PostgreSQL) locks them with the reads, in one round trip.
   */
  windowTotals(queries: WindowQuery[], options?: { charging?: readonly string[] }): Promise<WindowTotal[]>;
  /**
   * A hint, before the transaction reads its agent: the ledger series it expects to charge. A store that locks
   * what a transaction touches (PostgreSQL) may take their locks in the statement that locks and reads the
   * agent, so `windowTotals` finds them held and needs no round trip of its own. A store that does not lock
   * ignores it. Only a hint: `windowTotals`' `charging` still names everything charged.
   */
  lockAhead?(series: readonly string[]): void;
  /** Charges the ledger at `at` (clamped so time never goes backwards within a series). */
  appendLedger(writes: LedgerWrite[], at: number, auditSeq: number): Promise<void>;

  /** Holds reservations for a pending approval (counted by windowTotals while held). */
  holdForApproval(approval: ApprovalRecord, writes: LedgerWrite[]): Promise<void>;
  /**
   * What a pending approval holds now (its rows still `held`; none once decided), merged per (series, asset). A
   * grant judges the request under the policy in force then with these taken out of the totals: the request is
   * counted once, as itself (OperatorService.grantIn).
   */
  approvalHolds(approvalId: string): Promise<LedgerWrite[]>;
  /** As `Store.listApprovals`, inside the transaction (a key rotation denies the agent's pending ones). */
  listApprovals(filter: { state?: ApprovalState; agentId?: string; limit?: number }): Promise<ApprovalRecord[]>;
  /** `lock`: votes on one approval serialize behind this read (PostgreSQL: FOR UPDATE; SQLite has one writer). */
  getApproval(id: string, options?: { lock?: boolean }): Promise<ApprovalRecord | undefined>;
  /**
   * Moves a pending approval to its final state. `approved` converts the holds into ledger entries
   * at `now` (never earlier, so windows can only over-count); `denied`/`expired` release them.
   * `convertHolds: false` (approved payments): the holds are released because the caller re-holds the
   * spend as a payment in the same transaction (settled or expired later by the reconciler).
   * Nonce claims held by the approval become `signed` when approved and are freed otherwise.
   */
  decideApproval(id: string, state: 'approved' | 'denied' | 'expired', by: string, now: number, auditSeq: number, options?: { convertHolds?: boolean }): Promise<ApprovalRecord>;
  setApprovalResult(id: string, result: unknown): Promise<void>;
  /**
   * Replaces a pending approval's quorum with the one the policy in force now holds its request for (a quorum added
   * or raised while it waited: OperatorService.grantIn); the votes already cast stay and count toward it. Anything
   * but a pending approval fails with `approval_not_pending`.
   */
  raiseApprovalQuorum(id: string, quorum: QuorumRequirement[]): Promise<ApprovalRecord>;
  /**
   * Pending approvals whose expiresAt <= now, each held for this transaction (it stays pending until this one
   * decides it). One another transaction holds is left out (PostgreSQL: FOR UPDATE SKIP LOCKED), never waited for
   * nor listed: two instances' expiry passes split the overdue ones instead of meeting each other's decisions.
   */
  overdueApprovals(now: number, limit: number): Promise<ApprovalRecord[]>;
  /** Counts a vote. A second vote of the same approver on the same approval fails with `conflict`. */
  recordApprovalVote(vote: ApprovalVote): Promise<void>;

  getApprover(idOrName: string): Promise<Approver | undefined>;
  /** A name or public key already registered fails with `conflict`. */
  createApprover(approver: Approver): Promise<void>;
  /**
   * Run it in an `exclusive` transaction (ApproverService.disableApprover): a vote's transaction reads the approver
   * unlocked, so only the signing lock orders a disable after every vote already counting toward a grant.
   */
  setApproverStatus(id: string, status: ApproverStatus, now: number): Promise<Approver>;

  /**
   * Records a reserved payment and holds its spend (counted by windowTotals while held, like approval
   * holds). A second payment with the same (network, asset, from, nonce) fails with `conflict`.
   */
  holdPayment(payment: PaymentRecord, writes: LedgerWrite[]): Promise<void>;
  getPayment(id: string): Promise<PaymentRecord | undefined>;
  getPaymentByNonce(network: string, asset: string, from: string, nonce: string): Promise<PaymentRecord | undefined>;
  /**
   * reserved -> settled (holds become ledger entries at `now`: never earlier, so windows only over-count)
   * or reserved -> expired (amount holds released; the request-count holds become ledger entries, since a
   * signature was released and rate limits count signatures). Anything but `reserved` fails with `conflict`.
   * `settled` (what the chain says moved) is recorded on the payment, and the ledger is charged what
   * `settlementCharges` adds on top of the converted holds (a larger amount, another recipient).
   */
  finishPayment(id: string, state: 'settled' | 'expired', now: number, auditSeq: number, settlementTx?: string, settled?: SettledTransfer): Promise<PaymentRecord>;
  /** Records the settlement transaction the agent reported as `reportedTx` (unverified; it never becomes `settlementTx`). */
  reportPaymentSettlement(id: string, txHash: string, now: number): Promise<PaymentRecord>;
  /**
   * Reserved payments ordered by (validBefore, id), soonest first; with `after`, only those after that position
   * (the reconciler pages through them with the last one of the previous page).
   */
  reservedPayments(limit: number, after?: { validBefore: number; id: string }): Promise<PaymentRecord[]>;

  /**
   * Records an in-flight Lightning payment and holds its worst case (counted by windowTotals while held).
   * A payment hash already in flight or succeeded fails with `conflict`.
   */
  holdLightningPayment(payment: LightningPaymentRecord, writes: LedgerWrite[]): Promise<void>;
  getLightningPayment(id: string): Promise<LightningPaymentRecord | undefined>;
  /** The payment of this hash that is in flight or succeeded, if any. */
  activeLightningPayment(paymentHash: string): Promise<LightningPaymentRecord | undefined>;
  /**
   * Every payment of this hash (any state), oldest first. `forUpdate`: those rows are locked until the
   * transaction ends (PostgreSQL; SQLite's single writer excludes everyone already), so two instances deciding
   * whether the hash was already charged serialize, and the second reads what the first recorded.
   */
  lightningPaymentsByHash(paymentHash: string, opts?: { forUpdate?: boolean }): Promise<LightningPaymentRecord[]>;
  /**
   * in_flight -> succeeded | failed: every hold is released and `charges` are appended to the ledger at `now`
   * (what it really cost, or the request counts alone). Anything but `in_flight` fails with `conflict`.
   */
  finishLightningPayment(id: string, finish: LightningFinish, charges: LedgerWrite[], now: number, auditSeq: number): Promise<LightningPaymentRecord>;
  /**
   * failed -> succeeded: a verified success arrived for a payment already recorded failed (its holds were
   * released then), so money moved: `charges` (the amount and the fee, no request counts: those stayed charged)
   * are appended to the ledger at `now` and the preimage and fee recorded; `finished_seq` becomes `auditSeq`.
   * Exactly once: anything but a `failed` record without a preimage fails with `conflict`. When another payment
   * of the hash is in flight or succeeded (one active payment per hash), the record keeps the state `failed`
   * with its preimage and fee (charged all the same).
   */
  chargeLightningAfterFailure(id: string, finish: { preimage: string; feeMsat: bigint }, charges: LedgerWrite[], now: number, auditSeq: number): Promise<LightningPaymentRecord>;
  /**
   * In-flight payments ordered by (createdAt, id), oldest first; `after`: only those after that position (the
   * reconciler pages through all of them across rounds).
   */
  inFlightLightningPayments(limit: number, after?: { createdAt: number; id: string }): Promise<LightningPaymentRecord[]>;
  /** How many of one agent's payments are in flight (the per-agent cap; read under the agent's lock on PostgreSQL). */
  countInFlightLightningPayments(agentId: string): Promise<number>;
  /**
   * Records that the operator alert `key` (the alert's reason and figures) about payment `paymentId` was raised at
   * `at`: true the first time, false when it already was, by an earlier transaction of any instance (durable across
   * restarts). The caller appends the alert's audit entry only on true and in the same transaction, so each
   * distinct alert is appended once however often the reconciler reads the same answer again. A concurrent
   * transaction recording the same key waits for this one (PostgreSQL) and gets false once it commits, true if it
   * rolled back. No such payment: `not_found`.
   */
  recordLightningAlert(paymentId: string, key: string, at: number): Promise<boolean>;

  // Detectors and circuit breakers (ports/breakers.ts, core/service/circuit-breakers.ts).
  /**
   * The window sums for detectors: the ledger's charges as `windowTotals` sums them, and a pending hold (amount
   * and count alike) only in the windows its time is in, none at all for a `chargesOnly` query. A budget counts a
   * hold's amount in every window while it is held (it may still become spend); a detector asks what happened in
   * its window, and a request held for a human ten minutes ago is not spend of the last minute (found by review:
   * one stale hold plus an ordinary payment tripped a fleet-wide freeze). Read without the locks a budget takes,
   * so a fleet-wide figure never makes fleet writers wait. It may miss what a concurrent transaction has not
   * committed; the agent's own series are exact (only written under the agent's lock, which the transaction holds).
   */
  detectorTotals(queries: WindowQuery[]): Promise<WindowTotal[]>;
  /**
   * Per destination: the agents whose first recorded payment to it is at or after `sinceMs` (at most `limit`), and
   * whether the ledger holds a charge on `fleet|to:<destination>` older than its earliest recorded payer (any
   * charge, where none is recorded): DestinationPayers.paidBeforeRecorded.
   */
  destinationPayers(destinations: readonly string[], sinceMs: number, limit: number): Promise<Map<string, DestinationPayers>>;
  /** Records a payment of the agent to each destination (its first time is kept, its count grows). */
  recordDestinationPayers(agentId: string, destinations: readonly string[], at: number, auditSeq: number): Promise<void>;
  /** The tripped breakers that bind this agent. */
  trippedBreakersFor(agentId: string): Promise<BreakerRecord[]>;
  /** The active agents a new breaker would bind (explicit ones that are active, a label group, or the fleet). */
  breakerTargets(targets: BreakerTargets): Promise<string[]>;
  /** Stores a tripped breaker binding `record.agents`; with `freeze`, those agents are frozen in the same transaction. */
  tripBreaker(record: BreakerRecord, options: { freeze: boolean; now: number }): Promise<void>;
  getBreaker(id: string): Promise<BreakerRecord | undefined>;
  /**
   * tripped -> reset (anything else fails with `breaker_not_tripped`). A freeze breaker unfreezes the agents it
   * froze that are still frozen, not frozen by the operator (setAgentStatus 'frozen') and bound by no other tripped
   * freeze breaker; returns those as `unfrozen`, and its other agents still frozen, with why, as `keptFrozen`.
   */
  resetBreaker(id: string, by: string, now: number, auditSeq: number): Promise<BreakerResetResult>;

  /** Appends a version-3 entry (seq, leaf index, leaf and leaf hash computed by the store; no previous entry is read but the head). */
  appendAudit(entry: AuditEntryInput): Promise<AuditEntry>;
}
