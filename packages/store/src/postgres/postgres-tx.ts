import type { AuditEntryOrigin, GrantRecord, QuorumRequirement, ThresholdBinding } from '@airlock/core';
import { AirlockError, FLEET_SCOPE, agentScope } from '@airlock/core';
import type {
  Agent, AgentStatus, ApprovalRecord, AuditEntry, AuditEntryInput, IdempotencyRecord, LedgerWrite, LightningFinish, LightningPaymentRecord, NonceClaim, PaymentRecord, PolicyRecord, Session, StoreTx, ChildSessionCounts,
  SettledTransfer, WindowQuery, WindowTotal, BreakerRecord, BreakerResetResult, BreakerTargets, DestinationPayers, ShadowOutcome, ShadowOutcomeCounts, ShadowPolicyRecord, WebhookEndpoint,
  ApprovalVote, Approver, ApproverStatus, LifecycleFinish, LifecycleJob, LifecycleSignature, AgentKey, ApprovalState, DeriveAgentAddress,
} from '@airlock/core';
import * as agentKeys from './agent-keys.ts';
import * as approvals from './approvals.ts';
import * as breakers from './breakers.ts';
import * as grants from './grants.ts';
import * as payments from './payments.ts';
import * as lightning from './lightning.ts';
import * as audit from './audit.ts';
import * as ledger from './ledger.ts';
import * as lifecycle from './lifecycle.ts';
import * as nonces from './nonces.ts';
import type { Q } from './pg-query.ts';
import * as records from './records.ts';
import * as shadow from './shadow.ts';
import * as webhooks from './webhooks.ts';
import * as thresholdBindings from './threshold-bindings.ts';
import { agentLockKey, type TxLocks } from './tx-locks.ts';
import type { WindowReads } from './window-reads.ts';
import { agentFromRow, policyFromRow, sessionFromRow, type Row } from '../shared/rows.ts';
import { requireExclusive } from '../shared/exclusive-writes.ts';

/** Session columns read in the agent's statement carry this prefix (no column of `agents` starts with it). */
const SESSION_PREFIX = 'session.';
const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;
const AGENT_SQL = 'SELECT * FROM agents WHERE id = $1';

/**
 * The statement reading an agent ($1) and a session ($2) together, built once from the `sessions` columns, and
 * the same with the batch's policies ($3, $4; withPolicies).
 */
export interface AgentWithSessionRead {
  sql: string;
  sqlWithPolicies: string;
  columns: readonly string[];
}

/** Columns of the policy rows read with an agent carry these prefixes (no column of `agents` or `sessions` does). */
const POLICY_PREFIXES = ['fleet_policy.', 'agent_policy.'] as const;
const POLICY_COLUMNS = ['scope', 'version', 'hash', 'document', 'author', 'created_at', 'source'] as const;

/**
 * An agent read (`read`, whose parameters come first) extended with the latest policy of the fleet scope and of
 * the agent's scope (the two the signing path loads next, policy-layers.ts), so a batch's first request of each
 * agent reads its policies in the statement that locks and reads the agent instead of in a round trip of its
 * own. Policies only change under the exclusive signing lock, which this batch's shared one excludes since BEGIN,
 * so reading them here sees what a statement of their own would.
 */
function withPolicies(read: string, paramCount: number): string {
  const latest = (n: number) => `LEFT JOIN LATERAL (SELECT * FROM policies WHERE scope = $${paramCount + n} ORDER BY version DESC LIMIT 1) AS p${n} ON true`;
  const columns = POLICY_PREFIXES.flatMap((prefix, i) => POLICY_COLUMNS.map((c) => `p${i + 1}.${c} AS ${quoteIdent(prefix + c)}`)).join(', ');
  return `SELECT r.*, ${columns} FROM (SELECT 1) AS one LEFT JOIN (${read}) AS r ON true ${latest(1)} ${latest(2)}`;
}

const AGENT_SQL_WITH_POLICIES = withPolicies(AGENT_SQL, 1);

/** The columns read under `prefix` as a row of their own; null if the joined row found nothing (its `key` is null). */
function rowAt(row: Row | undefined, prefix: string, columns: readonly string[], key: string): Row | null {
  const value = row?.[prefix + key];
  if (value === null || value === undefined) return null;
  const part: Row = {};
  for (const c of columns) part[c] = row![prefix + c];
  return part;
}

export function agentWithSessionRead(columns: readonly string[]): AgentWithSessionRead {
  const aliased = columns.map((c) => `s.${quoteIdent(c)} AS ${quoteIdent(SESSION_PREFIX + c)}`).join(', ');
  const sql = `SELECT a.*, ${aliased} FROM (SELECT 1) AS one LEFT JOIN agents a ON a.id = $1 LEFT JOIN sessions s ON s.id = $2`;
  return { sql, sqlWithPolicies: withPolicies(sql, 2), columns };
}

/**
 * The latest policy row of each scope a batch has read (null: the scope has none), shared by its requests:
 * a batch reads the fleet's policy once, not once per request. The operator's policy set is an exclusive
 * transaction, which cannot commit while the batch runs. Beyond that, every request of a batch was submitted before
 * the batch began (GroupCommitter), so a version another transaction commits while the batch runs was stored
 * after all of them were asked for: reading the version the batch first saw is reading it in an order that
 * really happened, and the first request submitted after that commit runs in a later batch, which reads it.
 * The batch's own writes must show: putPolicy forgets the scope, and a request rolled back to its savepoint
 * forgets them all (postgres-store.ts). Rows, not records, so no request shares an object with another.
 */
export type LatestPolicies = Map<string, Row | null>;

/**
 * The rows a batch's agent statements read (agent, and session if one was read with it), by agent and session,
 * for the next request of the same agent: a batch of one agent's signatures reads its agent once, not once per
 * request. Sound for the reasons LatestPolicies is: the operator's freeze and revoke take the exclusive signing
 * lock, and every request of a batch was submitted before the batch began, so whatever another transaction
 * commits while the batch runs (a breaker's freeze in another batch: docs/architecture.md) is ordered after all of
 * them. The batch forgets them all on any statement of its own that writes and when a request is rolled back
 * (postgres-store.ts). Only used while this batch holds every lock the read would take.
 */
export class AgentRows {
  private readonly rows = new Map<string, Row>();
  /** Counts the clears: a read that was in flight across one keeps its row to itself. */
  private generation = 0;

  get(key: string): Row | undefined {
    return this.rows.get(key);
  }
  /** `since`: the generation when the read was sent (current()). */
  set(key: string, row: Row, since: number): void {
    if (since === this.generation) this.rows.set(key, row);
  }
  current(): number {
    return this.generation;
  }
  clear(): void {
    this.rows.clear();
    this.generation++;
  }
}

/**
 * The handle `PostgresStore.transaction` passes to one request of a batch: bound to the batch's client and
 * locks, dead once the request ends. It takes the advisory locks of what it touches as it goes (tx-locks.ts):
 * the agent when the agent is read, series before they are read or charged.
 */
export class PostgresStoreTx implements StoreTx {
  private readonly q: Q;
  private readonly locks: TxLocks;
  private open = true;
  /** A transaction run `exclusive` (PostgresStore.exclusiveTransaction): it may make the writes of ExclusiveWrite. */
  private readonly exclusive: boolean;
  /** Audit entries this request appended, written when the batch commits (audit.insertAuditEntries). */
  readonly auditEntries: AuditEntry[] = [];
  /** Set when the request was rolled back to its savepoint: its entries are not written. */
  rolledBack = false;
  private readonly policyReads: { scope: string; resolve: (p: PolicyRecord | undefined) => void; reject: (e: unknown) => void }[] = [];

  private readonly seqs: audit.SeqPool | undefined;
  private readonly withSession: AgentWithSessionRead | undefined;
  private readonly latestPolicies: LatestPolicies | undefined;
  private readonly agentRows: AgentRows | undefined;
  private readonly windowReads: WindowReads | undefined;
  /** The batch's deferred ledger entries (its own go there too); absent: each append is inserted at once. */
  private readonly deferLedger: ledger.DeferredAppend | undefined;
  /** Series the request expects to charge (lockAhead), locked with its agent. */
  private aheadSeries: readonly string[] | undefined;
  /** An agent read scheduled in this turn, which a session read asked for in the same turn joins. */
  private agentRead: { session?: { id: string; resolve: (s: Session | undefined) => void; reject: (e: unknown) => void } } | undefined;

  /**
   * `seqs`: the audit seqs the batch drew with its BEGIN, shared by its requests. `withSession`: lets a session
   * be read in the statement that locks and reads its agent (the signing path asks for both at once: one round
   * trip instead of two). `pendingLedger`: the batch's deferred ledger entries (ledger.ts, PendingLedger).
   */
  constructor(q: Q, locks: TxLocks, options: { exclusive?: boolean; seqs?: audit.SeqPool; withSession?: AgentWithSessionRead; latestPolicies?: LatestPolicies; agentRows?: AgentRows; windowReads?: WindowReads; pendingLedger?: ledger.PendingLedger } = {}) {
    this.q = q;
    this.exclusive = options.exclusive ?? false;
    this.locks = locks;
    this.seqs = options.seqs;
    this.withSession = options.withSession;
    this.latestPolicies = options.latestPolicies;
    this.agentRows = options.agentRows;
    this.windowReads = options.windowReads;
    this.deferLedger = options.pendingLedger && { ledger: options.pendingLedger, owner: this };
  }

  end(): void {
    this.open = false;
  }

  private live(): Q {
    if (!this.open) throw new AirlockError('internal', 'a StoreTx was used after its transaction ended');
    return this.q;
  }

  async getAgent(id: string): Promise<Agent | undefined> {
    this.live();
    // Everything of one agent (nonce claims, idempotency keys, its payments) is serialised by this lock,
    // taken in the statement that reads the agent (whose row only changes under the exclusive signing lock).
    const { withSession } = this;
    let session: NonNullable<typeof this.agentRead>['session'];
    if (withSession) {
      // Wait for the end of this turn: a getSession called alongside (recheck's Promise.all) joins this statement.
      const read: NonNullable<typeof this.agentRead> = {};
      this.agentRead = read;
      await Promise.resolve();
      if (this.agentRead === read) this.agentRead = undefined;
      session = read.session;
    }
    try {
      const policies = this.latestPolicies;
      const scopes = [FLEET_SCOPE, agentScope(id)];
      const prefetch = policies !== undefined && scopes.some((scope) => !policies.has(scope));
      const withSessionRead = session !== undefined && withSession !== undefined;
      const params = withSessionRead ? [id, session!.id] : [id];
      const sql = withSessionRead ? (prefetch ? withSession!.sqlWithPolicies : withSession!.sql) : prefetch ? AGENT_SQL_WITH_POLICIES : AGENT_SQL;
      const then = { sql, params: prefetch ? [...params, ...scopes] : params };
      // The agent and session series it will charge are locked here too (after the agent's key: classes order
      // them), so its window read can run in the statement that takes what else it charges (ledger.ts). Not a
      // fleet slot: a request that reads a fleet total must be able to wait for all of them in order.
      const ahead = this.aheadSeries ?? [];
      this.aheadSeries = undefined;
      const keys = [agentLockKey(id), ...this.locks.seriesKeys(ahead, { allSlots: false })];
      // The session id is part of the key: a row read without a session (or with another) holds none of it.
      const rowKey = `${id}\u0000${withSessionRead ? session!.id : ''}`;
      const known = prefetch ? undefined : this.agentRows?.get(rowKey);
      let row: Row | undefined;
      if (known !== undefined && keys.every((k) => this.locks.holds(k))) row = known;
      else {
        const since = this.agentRows?.current();
        [row] = await this.locks.acquire({ keys, then });
        if (row !== undefined && since !== undefined) this.agentRows?.set(rowKey, row, since);
      }
      if (prefetch) {
        scopes.forEach((scope, i) => {
          if (!policies.has(scope)) policies.set(scope, rowAt(row, POLICY_PREFIXES[i]!, POLICY_COLUMNS, 'scope'));
        });
      }
      if (session && withSession) {
        const sessionRow = rowAt(row, SESSION_PREFIX, withSession.columns, 'id');
        session.resolve(sessionRow ? sessionFromRow(sessionRow) : undefined);
      }
      return row && row.id !== null && row.id !== undefined ? agentFromRow(row) : undefined;
    } catch (e) {
      session?.reject(e);
      throw e;
    }
  }
  async liveSessionsOf(agentId: string, now: number): Promise<Session[]> {
    return records.listSessions(this.live(), { agentId, now });
  }
  async getSession(id: string): Promise<Session | undefined> {
    this.live();
    const read = this.agentRead;
    if (read && !read.session) return new Promise((resolve, reject) => (read.session = { id, resolve, reject }));
    return records.getSession(this.q, id);
  }
  async auditEntryOrigin(seq: number): Promise<AuditEntryOrigin | undefined> {
    this.live();
    const own = this.auditEntries.find((e) => e.seq === seq);
    if (own) return { at: own.at, ...(own.sessionId !== undefined ? { sessionId: own.sessionId } : {}), ...(own.decision !== undefined ? { decision: own.decision } : {}) };
    return audit.auditEntryOrigin(this.q, seq);
  }
  /** Calls made together (the fleet and agent layers) share one round trip. */
  getPolicy(scope: string): Promise<PolicyRecord | undefined> {
    this.live();
    const known = this.latestPolicies?.get(scope);
    if (known !== undefined) return Promise.resolve(known === null ? undefined : policyFromRow(known));
    return new Promise((resolve, reject) => {
      this.policyReads.push({ scope, resolve, reject });
      if (this.policyReads.length === 1) queueMicrotask(() => void this.readPolicies());
    });
  }

  private async readPolicies(): Promise<void> {
    const reads = this.policyReads.splice(0);
    try {
      const rows = await this.live()('SELECT DISTINCT ON (scope) * FROM policies WHERE scope = ANY($1::text[]) ORDER BY scope, version DESC', [[...new Set(reads.map((r) => r.scope))]]);
      const byScope = new Map(rows.map((r) => [String(r.scope), r]));
      for (const r of reads) {
        const row = byScope.get(r.scope);
        this.latestPolicies?.set(r.scope, row ?? null);
        r.resolve(row && policyFromRow(row));
      }
    } catch (e) {
      for (const r of reads) r.reject(e);
    }
  }
  async setAgentStatus(id: string, status: AgentStatus, now: number): Promise<Agent> {
    requireExclusive(this.exclusive, 'setAgentStatus');
    return records.setAgentStatus(this.live(), id, status, now);
  }
  async listAgentKeys(agentId: string): Promise<AgentKey[]> {
    return agentKeys.listAgentKeys(this.live(), agentId);
  }
  async findAgentKey(address: string): Promise<AgentKey | undefined> {
    return agentKeys.findAgentKey(this.live(), address);
  }
  async rotateAgentKey(agentId: string, deriveAddress: DeriveAgentAddress, now: number): Promise<{ agent: Agent; previous: AgentKey; current: AgentKey }> {
    requireExclusive(this.exclusive, 'rotateAgentKey');
    return agentKeys.rotateAgentKey(this.live(), agentId, deriveAddress, now);
  }
  async retireAgentKey(agentId: string, keyIndex: number, now: number): Promise<AgentKey> {
    return agentKeys.retireAgentKey(this.live(), agentId, keyIndex, now);
  }
  async listApprovals(filter: { state?: ApprovalState; agentId?: string; limit?: number }): Promise<ApprovalRecord[]> {
    return approvals.listApprovals(this.live(), filter);
  }
  async putPolicy(record: Omit<PolicyRecord, 'version'>): Promise<PolicyRecord> {
    requireExclusive(this.exclusive, 'putPolicy');
    const stored = await records.putPolicy(this.live(), record);
    this.latestPolicies?.delete(record.scope);
    return stored;
  }
  async createSession(session: Session): Promise<void> {
    await records.createSession(this.live(), session);
  }
  async revokeSession(id: string, now: number): Promise<Session> {
    requireExclusive(this.exclusive, 'revokeSession');
    return records.revokeSession(this.live(), id, now);
  }
  async listShadowPolicies(): Promise<ShadowPolicyRecord[]> {
    return shadow.listShadowPolicies(this.live());
  }
  async putShadowPolicy(record: ShadowPolicyRecord): Promise<void> {
    return shadow.putShadowPolicy(this.live(), record);
  }
  async deleteShadowPolicy(scope: string): Promise<ShadowPolicyRecord | undefined> {
    return shadow.deleteShadowPolicy(this.live(), scope);
  }
  async shadowOutcomeCounts(shadowId: string): Promise<ShadowOutcomeCounts> {
    return shadow.shadowOutcomeCounts(this.live(), shadowId);
  }
  async appendShadowOutcomes(outcomes: readonly ShadowOutcome[]): Promise<void> {
    return shadow.appendShadowOutcomes(this.live(), outcomes);
  }
  async sessionDescendants(id: string): Promise<Session[]> {
    return records.sessionDescendants(this.live(), id);
  }
  async childSessionCounts(parentId: string, now: number): Promise<ChildSessionCounts> {
    return records.childSessionCounts(this.live(), parentId, now);
  }
  async sessionTreeDerivations(rootId: string, atMost: number): Promise<number> {
    return records.sessionTreeDerivations(this.live(), rootId, atMost);
  }
  async getIdempotency(scope: string, key: string): Promise<IdempotencyRecord | undefined> {
    return records.getIdempotency(this.live(), scope, key);
  }
  async putIdempotency(record: IdempotencyRecord): Promise<void> {
    return records.putIdempotency(this.live(), record);
  }
  async getNonceClaims(keys: readonly string[]): Promise<NonceClaim[]> {
    return nonces.getNonceClaims(this.live(), keys);
  }
  async claimNonces(claims: readonly NonceClaim[]): Promise<void> {
    return nonces.claimNonces(this.live(), claims);
  }
  async releaseNonceClaims(keys: readonly string[]): Promise<void> {
    return nonces.releaseNonceClaims(this.live(), keys);
  }
  lockAhead(series: readonly string[]): void {
    this.aheadSeries = series;
  }
  async windowTotals(queries: WindowQuery[], options: { charging?: readonly string[] } = {}): Promise<WindowTotal[]> {
    return ledger.windowTotals(this.live(), this.locks, queries, options.charging, this.deferLedger?.ledger, this.windowReads);
  }
  async appendLedger(writes: LedgerWrite[], at: number, auditSeq: number): Promise<void> {
    return ledger.appendLedger(this.live(), this.locks, writes, at, auditSeq, this.deferLedger);
  }
  async holdForApproval(approval: ApprovalRecord, writes: LedgerWrite[]): Promise<void> {
    return approvals.holdForApproval(this.live(), this.locks, approval, writes);
  }
  async approvalHolds(approvalId: string): Promise<LedgerWrite[]> {
    return approvals.approvalHolds(this.live(), approvalId);
  }
  /** `lock`: FOR UPDATE, so votes on one approval (from any instance) serialize here. */
  async getApproval(id: string, options: { lock?: boolean } = {}): Promise<ApprovalRecord | undefined> {
    return approvals.getApproval(this.live(), id, options.lock ?? false);
  }
  async decideApproval(id: string, state: 'approved' | 'denied' | 'expired', by: string, now: number, auditSeq: number, options: { convertHolds?: boolean } = {}): Promise<ApprovalRecord> {
    return approvals.decideApproval(this.live(), this.locks, id, state, by, now, auditSeq, options.convertHolds ?? true, this.deferLedger);
  }
  async setApprovalResult(id: string, result: unknown): Promise<void> {
    return approvals.setApprovalResult(this.live(), id, result);
  }
  async overdueApprovals(now: number, limit: number): Promise<ApprovalRecord[]> {
    return approvals.overdueApprovals(this.live(), now, limit);
  }
  async raiseApprovalQuorum(id: string, quorum: QuorumRequirement[]): Promise<ApprovalRecord> {
    return approvals.raiseApprovalQuorum(this.live(), id, quorum);
  }
  async recordApprovalVote(vote: ApprovalVote): Promise<void> {
    return approvals.recordApprovalVote(this.live(), vote);
  }
  async getApprover(idOrName: string): Promise<Approver | undefined> {
    return approvals.getApprover(this.live(), idOrName);
  }
  async createApprover(approver: Approver): Promise<void> {
    return approvals.createApprover(this.live(), approver);
  }
  async setApproverStatus(id: string, status: ApproverStatus, now: number): Promise<Approver> {
    requireExclusive(this.exclusive, 'setApproverStatus');
    return approvals.setApproverStatus(this.live(), id, status, now);
  }
  async holdPayment(payment: PaymentRecord, writes: LedgerWrite[]): Promise<void> {
    return payments.holdPayment(this.live(), this.locks, payment, writes);
  }
  async getPayment(id: string): Promise<PaymentRecord | undefined> {
    return payments.getPayment(this.live(), id);
  }
  async getPaymentByNonce(network: string, asset: string, from: string, nonce: string): Promise<PaymentRecord | undefined> {
    return payments.getPaymentByNonce(this.live(), network, asset, from, nonce);
  }
  async finishPayment(id: string, state: 'settled' | 'expired', now: number, auditSeq: number, settlementTx?: string, settled?: SettledTransfer): Promise<PaymentRecord> {
    return payments.finishPayment(this.live(), this.locks, id, state, now, auditSeq, settlementTx, settled, this.deferLedger);
  }
  async reportPaymentSettlement(id: string, txHash: string, now: number): Promise<PaymentRecord> {
    return payments.reportPaymentSettlement(this.live(), id, txHash, now);
  }
  async holdLightningPayment(payment: LightningPaymentRecord, writes: LedgerWrite[]): Promise<void> {
    return lightning.holdLightningPayment(this.live(), this.locks, payment, writes);
  }
  async getLightningPayment(id: string): Promise<LightningPaymentRecord | undefined> {
    return lightning.getLightningPayment(this.live(), id);
  }
  async activeLightningPayment(paymentHash: string): Promise<LightningPaymentRecord | undefined> {
    return lightning.activeLightningPayment(this.live(), paymentHash);
  }
  async lightningPaymentsByHash(paymentHash: string, opts?: { forUpdate?: boolean }): Promise<LightningPaymentRecord[]> {
    return lightning.lightningPaymentsByHash(this.live(), paymentHash, opts?.forUpdate ?? false);
  }
  async finishLightningPayment(id: string, finish: LightningFinish, charges: LedgerWrite[], now: number, auditSeq: number): Promise<LightningPaymentRecord> {
    return lightning.finishLightningPayment(this.live(), this.locks, id, finish, charges, now, auditSeq, this.deferLedger);
  }
  async chargeLightningAfterFailure(id: string, finish: { preimage: string; feeMsat: bigint }, charges: LedgerWrite[], now: number, auditSeq: number): Promise<LightningPaymentRecord> {
    return lightning.chargeLightningAfterFailure(this.live(), this.locks, id, finish, charges, now, auditSeq, this.deferLedger);
  }
  async countInFlightLightningPayments(agentId: string): Promise<number> {
    return lightning.countInFlightLightningPayments(this.live(), agentId);
  }
  async inFlightLightningPayments(limit: number, after?: { createdAt: number; id: string }): Promise<LightningPaymentRecord[]> {
    return lightning.inFlightLightningPayments(this.live(), limit, after);
  }
  async recordLightningAlert(paymentId: string, key: string, at: number): Promise<boolean> {
    return lightning.recordLightningAlert(this.live(), paymentId, key, at);
  }
  async reservedPayments(limit: number, after?: { validBefore: number; id: string }): Promise<PaymentRecord[]> {
    return payments.reservedPayments(this.live(), limit, after);
  }
  /** Without locks (ledger.readWindowTotals): a fleet-wide figure never makes the fleet's writers wait. */
  async detectorTotals(queries: WindowQuery[]): Promise<WindowTotal[]> {
    return ledger.readWindowTotals(this.live(), queries, this.deferLedger?.ledger);
  }
  async destinationPayers(destinations: readonly string[], sinceMs: number, limit: number): Promise<Map<string, DestinationPayers>> {
    return breakers.destinationPayers(this.live(), destinations, sinceMs, limit);
  }
  async recordGrants(list: readonly GrantRecord[]): Promise<void> {
    return grants.recordGrants(this.live(), list);
  }
  async getThresholdBinding(agentId: string, namespace: string): Promise<ThresholdBinding | undefined> {
    return thresholdBindings.getThresholdBinding(this.live(), agentId, namespace);
  }
  async putThresholdBinding(binding: ThresholdBinding): Promise<void> {
    return thresholdBindings.putThresholdBinding(this.live(), binding);
  }
  async deleteThresholdBinding(agentId: string, namespace: string): Promise<ThresholdBinding | undefined> {
    return thresholdBindings.deleteThresholdBinding(this.live(), agentId, namespace);
  }
  async recordDestinationPayers(agentId: string, destinations: readonly string[], at: number, auditSeq: number): Promise<void> {
    return breakers.recordDestinationPayers(this.live(), agentId, destinations, at, auditSeq);
  }
  async trippedBreakersFor(agentId: string): Promise<BreakerRecord[]> {
    return breakers.trippedBreakersFor(this.live(), agentId);
  }
  async breakerTargets(targets: BreakerTargets): Promise<string[]> {
    return breakers.breakerTargets(this.live(), targets);
  }
  async tripBreaker(record: BreakerRecord, options: { freeze: boolean; now: number }): Promise<void> {
    return breakers.tripBreaker(this.live(), record, options.freeze, options.now);
  }
  async getBreaker(id: string): Promise<BreakerRecord | undefined> {
    return breakers.getBreaker(this.live(), id);
  }
  async resetBreaker(id: string, by: string, now: number, auditSeq: number): Promise<BreakerResetResult> {
    return breakers.resetBreaker(this.live(), id, by, now, auditSeq);
  }
  async compareAndSetMeta(key: string, expected: string, value: string): Promise<boolean> {
    return records.compareAndSetMeta(this.live(), key, expected, value);
  }
  async appendAudit(input: AuditEntryInput): Promise<AuditEntry> {
    const entry = await audit.prepareAuditEntry(this.live(), input, this.seqs);
    this.auditEntries.push(entry);
    return entry;
  }
  async createWebhookEndpoint(endpoint: Omit<WebhookEndpoint, 'cursor'>): Promise<WebhookEndpoint> {
    return webhooks.createWebhookEndpoint(this.live(), endpoint);
  }
  async getWebhookEndpoint(id: string): Promise<WebhookEndpoint | undefined> {
    return webhooks.getWebhookEndpoint(this.live(), id);
  }
  async rotateWebhookSecret(id: string, now: number): Promise<WebhookEndpoint> {
    return webhooks.rotateWebhookSecret(this.live(), id, now);
  }
  async removeWebhookEndpoint(id: string, now: number): Promise<WebhookEndpoint> {
    return webhooks.removeWebhookEndpoint(this.live(), id, now);
  }
  async insertLifecycleJob(job: LifecycleJob): Promise<void> {
    return lifecycle.insertLifecycleJob(this.live(), job);
  }
  async getLifecycleJob(id: string): Promise<LifecycleJob | undefined> {
    return lifecycle.getLifecycleJob(this.live(), id);
  }
  async openLifecycleJobs(agentId: string): Promise<LifecycleJob[]> {
    return lifecycle.openLifecycleJobs(this.live(), agentId);
  }
  async recordLifecycleSignature(id: string, signature: LifecycleSignature, now: number): Promise<LifecycleJob | undefined> {
    return lifecycle.recordLifecycleSignature(this.live(), id, signature, now);
  }
  async finishLifecycleJob(id: string, finish: LifecycleFinish, now: number, auditSeq: number): Promise<LifecycleJob> {
    return lifecycle.finishLifecycleJob(this.live(), id, finish, now, auditSeq);
  }
}
