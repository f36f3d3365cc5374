import type { GrantRecord, GroupCommitStats, ReleasedSignatures, ThresholdBinding, TransactionOptions } from '@airlock/core';
import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import { AirlockError } from '@airlock/core';
import type {
  Agent, AgentStatus, ApprovalRecord, ApprovalState, AuditCheckpoint, AuditEntry, AuditQuery, NewAgent, NodeId, PolicyRecord, SignedTreeHead, StoredAuditHead, TreeNode, VerifiableEntry,
  LightningPaymentFilter, LightningPaymentRecord, PaymentFilter, PaymentRecord, PaymentSummaryRow, Session, SessionDescendantsFilter, Store, StoreTx, BreakerRecord, BreakerState, ShadowOutcome, ShadowOutcomeCounts, ShadowPolicyRecord,
  AuditMatch, LifecycleJob, LifecycleJobFilter, NewWebhookDelivery, WebhookAttempt, WebhookDelivery, WebhookDeliveryState, WebhookEndpoint,
  Approver, AgentKey,
} from '@airlock/core';
import { GroupCommitter, RetryInNextBatch } from '../shared/group-commit.ts';
import { toInt } from '../shared/values.ts';
import * as agentKeys from './agent-keys.ts';
import * as approvals from './approvals.ts';
import * as breakers from './breakers.ts';
import * as grants from './grants.ts';
import * as releasedSignatures from './released-signatures.ts';
import * as thresholdBindings from './threshold-bindings.ts';
import * as payments from './payments.ts';
import * as lightning from './lightning.ts';
import * as shadow from './shadow.ts';
import * as audit from './audit.ts';
import { postgresMigrations } from './migrations/index.ts';
import { isConnectionError, isServerAnswer, mapPgError } from './pg-errors.ts';
import { MIGRATION_LOCK_KEY, queryFn, SIGNING_LOCK_KEY, StatementNames, type Q } from './pg-query.ts';
import { agentWithSessionRead, PostgresStoreTx, type AgentWithSessionRead, AgentRows, type LatestPolicies } from './postgres-tx.ts';
import { TxLocks } from './tx-locks.ts';
import { PendingLedger } from './ledger.ts';
import { WindowReads } from './window-reads.ts';
import * as records from './records.ts';
import * as webhooks from './webhooks.ts';
import * as lifecycle from './lifecycle.ts';

export interface PostgresStoreOptions {
  connectionString: string;
  /** Schema to use (created if missing; lowercase a-z, 0-9, _); every pooled connection gets it as its search_path. */
  schema?: string;
  poolSize?: number;
  /** Group-commit batches one instance runs at once, each on its own connection (default 4). */
  batchesInFlight?: number;
  /**
   * Every connection starts read-only (`default_transaction_read_only`): the key process's view. A session can
   * turn that off again, so deployments also give the key process a role with SELECT only (docs/custody.md).
   */
  readOnly?: boolean;
  /**
   * Parameterised statements are prepared once per connection and then only executed (default true; see
   * StatementNames). Off for a pooler that cannot keep them (store URL `prepared_statements=off`).
   */
  preparedStatements?: boolean;
}

/**
 * Batches in flight per instance (group-commit lanes). Batches lock only what they touch (tx-locks.ts), so
 * while one waits on a round trip another can run; more than a few only adds connections and lock traffic,
 * and every lane of every instance that charges fleet series holds one of the FLEET_SLOTS while it runs.
 */
const DEFAULT_BATCHES_IN_FLIGHT = 4;

/**
 * Requests per group-commit batch. A request that writes does so in its own savepoint, a subtransaction;
 * PostgreSQL caches 64 subtransaction ids per backend (PGPROC_MAX_CACHED_SUBXIDS) and past that every
 * other session's snapshot has to consult pg_subtrans, a known cliff. 32 stays well under it.
 */
const MAX_BATCH = 32;

const JSON_OIDS = new Set([114, 3802]); // json, jsonb

/**
 * JSON columns come back as text (parsed by the shared row mappers), so a JSON string value can
 * never be confused with its encoding; INT8 and NUMERIC keep pg's default (text) and are converted
 * explicitly, never through parseFloat.
 */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    JSON_OIDS.has(oid) ? (value: string) => value : pg.types.getTypeParser(oid, format ?? 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * Whether a statement may write (or lock rows: FOR UPDATE), by its text: a request's savepoint is taken
 * before the first such statement. Advisory locks and plain reads are not writes. Errs towards a savepoint.
 */
const WRITE_SQL = /\b(INSERT|UPDATE|DELETE|MERGE|TRUNCATE|CREATE|ALTER|DROP|COPY|LOCK)\b/i;
const writes = (sql: string) => WRITE_SQL.test(sql);

/**
 * Store on a `pg` Pool, for several instances on one database. Signing transactions are group-committed
 * (GroupCommitter): the transactions queued together run in one BEGIN ... COMMIT, a savepoint each (taken
 * before its first write), and every caller is answered after that commit; each instance runs a few such
 * batches at once. A batch takes the signing lock in shared mode and then only the advisory locks of what its
 * requests touch (tx-locks.ts): agents, ledger series, a fleet slot. Audit entries get their seq from a sequence and their leaf index
 * from a counter row in the batch's last statement (audit.ts). The operator writes that change what every
 * transaction reads (agent status, sessions, policies) take the signing lock exclusively (run()).
 */
export class PostgresStore implements Store {
  readonly dialect = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly q: Q;
  // Marks code inside this store's transaction callback: a nested locking call would wait on itself forever.
  private readonly inTransaction = new AsyncLocalStorage<true>();
  private readonly committer: GroupCommitter<PostgresStoreTx>;
  /** Known once migrate() ran (it needs the `sessions` columns): a session is then read in its agent's statement. */
  private withSession: AgentWithSessionRead | undefined;
  private readonly statements: StatementNames;

  constructor(options: PostgresStoreOptions) {
    // search_path is a startup parameter of every pooled connection (no extra round trip, no race
    // with the first query); the schema name was validated as a lowercase identifier.
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize ?? 10,
      // Visible in pg_stat_activity: operators (and tests) can tell Airlock's connections and their schema apart.
      application_name: options.schema === undefined ? 'airlock' : `airlock:${options.schema}`,
      types,
      // Queries issued together on one connection go out together (node-postgres pipelining, each with its own
      // Sync): a batch sends its ledger and audit inserts in one round trip. Everything else awaits each query
      // before the next, as without it. (A client-side query_timeout now ends the connection instead of leaving
      // the query running: the server rolls back an open transaction, unless what timed out was its COMMIT.)
      pipeline: true,
      ...(pgStartupOptions(options) ? { options: pgStartupOptions(options) } : {}),
    });
    // An idle client losing its connection must not crash the process; the next query reports it.
    this.pool.on('error', () => undefined);
    this.statements = new StatementNames(options.preparedStatements ?? true);
    this.q = queryFn(this.pool, this.statements);
    this.committer = new GroupCommitter<PostgresStoreTx>({
      maxBatch: MAX_BATCH,
      lanes: options.batchesInFlight ?? DEFAULT_BATCHES_IN_FLIGHT,
      inTransaction: this.inTransaction,
      withBatch: (body, size) => this.withClient(async (client, q) => {
        // One round trip (simple protocol, no parameters): BEGIN, the shared signing lock, which only the
        // operator writes that change agents, sessions and policies take exclusively (see run()), and one
        // audit seq per request (most append exactly one entry: that saves each a round trip).
        let seqs: audit.SeqPool;
        try {
          const results = (await client.query(`BEGIN; SELECT pg_advisory_xact_lock_shared(${SIGNING_LOCK_KEY}); ${audit.drawSeqsSql(size)}`)) as unknown as { rows: { seq: unknown }[] }[];
          seqs = new audit.SeqPool(results[2]!.rows.map((r) => toInt(r.seq as string)));
        } catch (e) {
          throw mapPgError(e);
        }
        try {
          // A request's savepoint is taken only before its first statement that writes (lazily): the signing
          // path's statements only lock and read (its ledger and audit entries wait in memory for the end of the
          // batch), so a batch of signatures takes none. A request that fails without one has written nothing:
          // its locks stay the batch's until COMMIT (as a finished request's do) and its pending entries are
          // dropped. A statement that fails without one has aborted the whole transaction: that request gets
          // its error and the requests before it run again in the next batch (abortedByRequest).
          let savepointOwed = false;
          let savepointMade = false;
          let aborted = false;
          // A finished request's RELEASE travels with the next SAVEPOINT (one round trip, simple protocol); the
          // last one is never sent: COMMIT commits what is inside the savepoint too.
          let releasePending = false;
          const simple = async (sql: string) => {
            try {
              await client.query(sql);
            } catch (e) {
              throw mapPgError(e);
            }
          };
          const requestQ: Q = async (sql, params) => {
            const write = writes(sql);
            // What the batch read of agents, sessions and windows may be what this statement changes.
            if (write) forgetReads();
            if (savepointOwed && write) {
              savepointOwed = false;
              // Locks taken so far survive a rollback to the savepoint: they are the batch's from here.
              locks.keepCurrent();
              try {
                await simple(releasePending ? 'RELEASE SAVEPOINT request; SAVEPOINT request' : 'SAVEPOINT request');
              } catch (e) {
                aborted = true;
                throw e;
              }
              releasePending = false;
              savepointMade = true;
            }
            try {
              return await q(sql, params);
            } catch (e) {
              if (!savepointMade) aborted = true;
              throw e;
            }
          };
          const locks = new TxLocks(requestQ);
          const latestPolicies: LatestPolicies = new Map();
          const agentRows = new AgentRows();
          const windowReads = new WindowReads();
          const forgetReads = () => {
            agentRows.clear();
            windowReads.clear();
          };
          const pendingLedger = new PendingLedger();
          const requests: PostgresStoreTx[] = [];
          let current: PostgresStoreTx | undefined;
          await body({
            savepoint: () => {
              savepointOwed = true;
              savepointMade = false;
            },
            releaseSavepoint: () => {
              if (current && !current.rolledBack) locks.keepCurrent();
              if (savepointMade) releasePending = true;
              savepointOwed = false;
              savepointMade = false;
            },
            rollbackToSavepoint: async () => {
              current!.rolledBack = true;
              latestPolicies.clear();
              forgetReads();
              if (!savepointMade) {
                // Nothing written; the locks it took cannot be given back before COMMIT.
                locks.keepCurrent();
                return;
              }
              locks.dropCurrent();
              await q('ROLLBACK TO SAVEPOINT request');
            },
            // A lost connection fails the next statement (ROLLBACK TO included), which aborts the batch.
            stillOpen: () => !aborted,
            // Set only by a request's own statement (requestQ): the requests before it run again, next batch.
            abortedByRequest: () => aborted,
            newTx: () => {
              current = new PostgresStoreTx(requestQ, locks, { seqs, latestPolicies, agentRows, windowReads, pendingLedger, ...(this.withSession ? { withSession: this.withSession } : {}) });
              requests.push(current);
              return current;
            },
          });
          // The ledger entries and the audit entries in one round trip (pipelined, sent in this order, each with its
          // own Sync: if the server refuses the ledger insert, the audit insert fails too, as the transaction is
          // aborted; if it fails on this side, the audit insert may still run, and ROLLBACK follows). The audit
          // insert takes the leaf counter's row lock, which every instance's batches queue for, until COMMIT.
          // COMMIT is sent only once both have answered, not with them: sent behind an insert still waiting for the
          // counter, it would commit the batch even after this side gave up on the connection (a reset, a
          // timeout, a killed daemon), and callers would have been told that nothing was recorded.
          const [ledgerWritten, auditWritten] = await Promise.allSettled([
            pendingLedger.flush(q),
            audit.insertAuditEntries(q, requests.filter((r) => !r.rolledBack).flatMap((r) => r.auditEntries)),
          ]);
          if (ledgerWritten.status === 'rejected') throw ledgerWritten.reason;
          if (auditWritten.status === 'rejected') throw auditWritten.reason;
          await commit(client, 'nothing was released; retry with the same idempotency key');
        } catch (e) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw e;
        }
      }),
    });
  }

  async migrate(): Promise<void> {
    await this.withClient(async (client, q) => {
      // Session-level lock: several instances starting together apply each migration once.
      await q('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
      try {
        await q('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)');
        const applied = new Set((await q('SELECT version FROM schema_migrations')).map((r) => toInt(r.version)));
        let migrated = false;
        for (const [version, migration] of [...postgresMigrations].sort(([a], [b]) => a - b)) {
          if (applied.has(version)) continue;
          migrated = true;
          await q('BEGIN');
          try {
            for (const sql of migration.statements) await q(sql);
            await q('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [version, migration.name, Date.now()]);
            await q('COMMIT');
          } catch (e) {
            await client.query('ROLLBACK').catch(() => undefined);
            throw e;
          }
        }
        // A statement a connection prepared before the schema changed is never run again (StatementNames).
        if (migrated) this.statements.reset();
      } finally {
        await client.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
      }
      // The session columns as this schema has them, for reading a session in the agent's statement (postgres-tx.ts).
      const columns = await q("SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'sessions' ORDER BY ordinal_position");
      this.withSession = agentWithSessionRead(columns.map((r) => String(r.column_name)));
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** Test-only: raw SQL with PostgreSQL's own errors (used to prove the triggers hold). Not on the port. */
  async rawExec(sql: string): Promise<void> {
    await this.pool.query(sql);
  }

  getMeta(key: string): Promise<string | undefined> {
    return records.getMeta(this.q, key);
  }
  initMeta(key: string, value: string): Promise<string> {
    return records.initMeta(this.q, key, value);
  }
  setMeta(key: string, value: string): Promise<void> {
    return records.setMeta(this.q, key, value);
  }

  createAgents(agents: NewAgent[], deriveAddress: (accountIndex: number, keyIndex: number) => string | Promise<string>, now: number): Promise<Agent[]> {
    // The counter row lock serialises provisioning without stalling signing.
    return this.run({ signingLock: false }, (q) => records.createAgents(q, agents, deriveAddress, now));
  }
  getAgent(idOrName: string): Promise<Agent | undefined> {
    return records.getAgent(this.q, idOrName);
  }
  listAgents(filter: { status?: AgentStatus; limit?: number; after?: string }): Promise<Agent[]> {
    return records.listAgents(this.q, filter);
  }
  /** Under the signing lock: once this returns, no signing transaction that read the old status can still commit. */
  setAgentStatus(id: string, status: AgentStatus, now: number): Promise<Agent> {
    return this.run({ signingLock: true }, (q) => records.setAgentStatus(q, id, status, now));
  }

  listAgentKeys(agentId: string): Promise<AgentKey[]> {
    return agentKeys.listAgentKeys(this.q, agentId);
  }
  findAgentKey(address: string): Promise<AgentKey | undefined> {
    return agentKeys.findAgentKey(this.q, address);
  }

  putPolicy(record: Omit<PolicyRecord, 'version'>): Promise<PolicyRecord> {
    return this.run({ signingLock: true }, (q) => records.putPolicy(q, record));
  }
  getPolicy(scope: string, version?: number): Promise<PolicyRecord | undefined> {
    return records.getPolicy(this.q, scope, version);
  }
  listPolicyVersions(scope: string): Promise<Omit<PolicyRecord, 'document'>[]> {
    return records.listPolicyVersions(this.q, scope);
  }

  getShadowPolicy(scope: string): Promise<ShadowPolicyRecord | undefined> {
    return shadow.getShadowPolicy(this.q, scope);
  }
  shadowOutcomeCounts(shadowId: string): Promise<ShadowOutcomeCounts> {
    return shadow.shadowOutcomeCounts(this.q, shadowId);
  }
  listShadowDifferences(shadowId: string, filter: { afterSeq?: number; limit: number }): Promise<ShadowOutcome[]> {
    return shadow.listShadowDifferences(this.q, shadowId, filter);
  }

  createSession(session: Session): Promise<void> {
    return records.createSession(this.q, session);
  }
  getSession(id: string): Promise<Session | undefined> {
    return records.getSession(this.q, id);
  }
  listSessions(filter: { agentId?: string; includeInactive?: boolean; now: number }): Promise<Session[]> {
    return records.listSessions(this.q, filter);
  }
  /** Under the signing lock, like setAgentStatus: revocation is final once this returns. */
  revokeSession(id: string, now: number): Promise<Session> {
    return this.run({ signingLock: true }, (q) => records.revokeSession(q, id, now));
  }
  sessionDescendants(id: string): Promise<Session[]> {
    return records.sessionDescendants(this.q, id);
  }
  sessionDescendantsPage(id: string, filter: SessionDescendantsFilter): Promise<Session[]> {
    return records.sessionDescendantsPage(this.q, id, filter);
  }

  getReleasedSignatures(auditSeq: number): Promise<ReleasedSignatures | undefined> {
    return releasedSignatures.getReleasedSignatures(this.q, auditSeq);
  }
  /** Autocommit statements on the pool, outside the group-commit batches: no lock beyond the row's key. */
  keepReleasedSignatures(record: ReleasedSignatures): Promise<ReleasedSignatures> {
    return releasedSignatures.keepReleasedSignatures(this.q, record);
  }

  getThresholdBinding(agentId: string, namespace: string): Promise<ThresholdBinding | undefined> {
    return thresholdBindings.getThresholdBinding(this.q, agentId, namespace);
  }
  listGrants(agentId: string, filter: { after?: { auditSeq: number; index: number }; limit?: number } = {}): Promise<GrantRecord[]> {
    return grants.listGrants(this.q, agentId, filter);
  }
  listBreakers(filter: { state?: BreakerState; limit?: number }): Promise<BreakerRecord[]> {
    return breakers.listBreakers(this.q, filter);
  }
  getBreaker(id: string): Promise<BreakerRecord | undefined> {
    return breakers.getBreaker(this.q, id);
  }

  getApproval(id: string): Promise<ApprovalRecord | undefined> {
    return approvals.getApproval(this.q, id);
  }
  listApprovals(filter: { state?: ApprovalState; agentId?: string; limit?: number }): Promise<ApprovalRecord[]> {
    return approvals.listApprovals(this.q, filter);
  }
  getApprover(idOrName: string): Promise<Approver | undefined> {
    return approvals.getApprover(this.q, idOrName);
  }
  listApprovers(): Promise<Approver[]> {
    return approvals.listApprovers(this.q);
  }

  getLightningPayment(id: string): Promise<LightningPaymentRecord | undefined> {
    return lightning.getLightningPayment(this.q, id);
  }
  listLightningPayments(filter: LightningPaymentFilter): Promise<LightningPaymentRecord[]> {
    return lightning.listLightningPayments(this.q, filter);
  }
  findL402Token(agentId: string, origin: string, nowSeconds: number, resource?: string): Promise<LightningPaymentRecord | undefined> {
    return lightning.findL402Token(this.q, agentId, origin, nowSeconds, resource);
  }
  getPayment(id: string): Promise<PaymentRecord | undefined> {
    return payments.getPayment(this.q, id);
  }
  listPayments(filter: PaymentFilter): Promise<PaymentRecord[]> {
    return payments.listPayments(this.q, filter);
  }
  paymentSummary(filter: { agentId?: string }): Promise<PaymentSummaryRow[]> {
    return payments.paymentSummary(this.q, filter);
  }

  queryAudit(query: AuditQuery): Promise<AuditEntry[]> {
    return audit.queryAudit(this.q, query);
  }
  readAudit(fromSeq: number, limit: number): Promise<AuditEntry[]> {
    return audit.readAudit(this.q, fromSeq, limit);
  }
  auditHead(): Promise<StoredAuditHead> {
    return audit.auditHead(this.q);
  }
  listCheckpoints(): Promise<AuditCheckpoint[]> {
    return audit.listCheckpoints(this.q);
  }
  lastCheckpoint(): Promise<AuditCheckpoint | undefined> {
    return audit.lastCheckpoint(this.q);
  }
  appendCheckpoint(checkpoint: AuditCheckpoint): Promise<void> {
    return audit.appendCheckpoint(this.q, checkpoint);
  }
  readAuditLeaves(fromLeafIndex: number, limit: number): Promise<VerifiableEntry[]> {
    return audit.readAuditLeaves(this.q, fromLeafIndex, limit);
  }
  auditEntriesOutsideTree(limit: number): Promise<number[]> {
    return audit.auditEntriesOutsideTree(this.q, limit);
  }
  countAuditLeaves(): Promise<number> {
    return audit.countAuditLeaves(this.q);
  }
  listTreeHeads(): Promise<SignedTreeHead[]> {
    return audit.listTreeHeads(this.q);
  }
  lastTreeHead(): Promise<SignedTreeHead | undefined> {
    return audit.lastTreeHead(this.q);
  }
  getTreeHead(treeSize: number): Promise<SignedTreeHead | undefined> {
    return audit.getTreeHead(this.q, treeSize);
  }
  appendTreeHead(head: SignedTreeHead): Promise<void> {
    return audit.appendTreeHead(this.q, head);
  }
  builtTreeSize(): Promise<number> {
    return audit.builtTreeSize(this.q);
  }
  readTreeNodes(ids: readonly NodeId[]): Promise<(Uint8Array | undefined)[]> {
    return audit.readTreeNodes(this.q, ids);
  }
  appendTreeNodes(nodes: readonly TreeNode[], options: { replace?: boolean } = {}): Promise<void> {
    return audit.appendTreeNodes(this.q, nodes, options.replace);
  }

  getWebhookEndpoint(id: string): Promise<WebhookEndpoint | undefined> {
    return webhooks.getWebhookEndpoint(this.q, id);
  }
  listWebhookEndpoints(filter: { includeRemoved?: boolean } = {}): Promise<WebhookEndpoint[]> {
    return webhooks.listWebhookEndpoints(this.q, filter);
  }
  scanAuditForWebhooks(fromLeaf: number, toLeaf: number, match: AuditMatch, limit: number): Promise<AuditEntry[]> {
    return webhooks.scanAuditForWebhooks(this.q, fromLeaf, toLeaf, match, limit);
  }
  auditEntryAt(leafIndex: number): Promise<AuditEntry | undefined> {
    return webhooks.auditEntryAt(this.q, leafIndex);
  }
  /** Not under the signing lock: webhook state is nothing a signing transaction reads. */
  enqueueWebhookDeliveries(deliveries: readonly NewWebhookDelivery[], cursors: readonly { endpointId: string; cursor: number }[], now: number): Promise<void> {
    return this.run({ signingLock: false }, (q) => webhooks.enqueueWebhookDeliveries(q, deliveries, cursors, now));
  }
  claimWebhookDeliveries(now: number, leaseUntil: number, limit: number, perEndpoint?: number): Promise<WebhookDelivery[]> {
    return this.run({ signingLock: false }, (q) => webhooks.claimWebhookDeliveries(q, now, leaseUntil, limit, perEndpoint));
  }
  recordWebhookAttempt(attempt: WebhookAttempt, next: { state: 'pending' | 'delivered' | 'failed'; nextAttemptAt: number }, now: number): Promise<void> {
    return webhooks.recordWebhookAttempt(this.q, attempt, next, now);
  }
  pruneWebhookDeliveries(finishedBefore: number, limit: number): Promise<number> {
    return webhooks.pruneWebhookDeliveries(this.q, finishedBefore, limit);
  }
  listWebhookDeliveries(endpointId: string, filter: { state?: WebhookDeliveryState; limit?: number } = {}): Promise<(WebhookDelivery & { log: WebhookAttempt[] })[]> {
    return webhooks.listWebhookDeliveries(this.q, endpointId, filter);
  }

  getLifecycleJob(id: string): Promise<LifecycleJob | undefined> {
    return lifecycle.getLifecycleJob(this.q, id);
  }
  listLifecycleJobs(filter: LifecycleJobFilter): Promise<LifecycleJob[]> {
    return lifecycle.listLifecycleJobs(this.q, filter);
  }
  /** Bookkeeping of the broadcast only (no audit entry, no ledger): not under the signing lock. */
  recordLifecycleBroadcast(id: string, now: number): Promise<LifecycleJob | undefined> {
    return lifecycle.recordLifecycleBroadcast(this.q, id, now);
  }

  transaction<T>(fn: (tx: StoreTx) => Promise<T>, options?: TransactionOptions): Promise<T>;
  transaction<T, R>(fn: (tx: StoreTx) => Promise<T>, options: TransactionOptions & { afterCommit: (value: T) => Promise<R> }): Promise<R>;
  transaction<T, R>(fn: (tx: StoreTx) => Promise<T>, options: TransactionOptions & { afterCommit?: (value: T) => Promise<R> } = {}): Promise<T | R> {
    // PostgreSQL's COMMIT answers once durable: `afterCommit` simply follows it.
    if (options.exclusive) return this.exclusiveTransaction(fn).then((value) => (options.afterCommit ? options.afterCommit(value) : (value as unknown as R)));
    return this.committer.submit(fn, options.affinity, options.afterCommit);
  }

  /** What the group committer has done since this store opened (metrics). Exclusive transactions (a key rotation) run outside it and are not counted. */
  groupCommitStats(): GroupCommitStats {
    return this.committer.stats();
  }

  /**
   * One transaction on its own, outside the group-commit batches, under the signing lock taken exclusively: it
   * waits for the batches running now (each holds the lock shared) and batches starting meanwhile wait for it.
   * So no signing transaction that read the state before it commits after it, and every statement after the
   * lock reads what committed before (READ COMMITTED). Its audit entries are written before COMMIT, as a batch's.
   */
  private async exclusiveTransaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.run({ signingLock: true }, async (q) => {
          const tx = new PostgresStoreTx(q, new TxLocks(q), { exclusive: true });
          try {
            const result = await fn(tx);
            await audit.insertAuditEntries(q, tx.auditEntries);
            return result;
          } finally {
            tx.end();
          }
        });
      } catch (e) {
        // A lock taken out of order was busy (only a writer outside the signing lock could hold it): the
        // transaction rolled back whole; run it again, a few times at most.
        if (!(e instanceof RetryInNextBatch) || attempt >= 3) throw e instanceof RetryInNextBatch ? new AirlockError('store_unavailable', 'an exclusive transaction could not take its locks', { cause: e }) : e;
      }
    }
  }

  /** BEGIN; [advisory lock]; fn; COMMIT — ROLLBACK and rethrow (unchanged) if fn throws. */
  private run<T>(opts: { signingLock: boolean }, fn: (q: Q) => Promise<T>): Promise<T> {
    if (this.inTransaction.getStore()) {
      return Promise.reject(new AirlockError('internal', 'store write called inside a transaction; use the StoreTx handle'));
    }
    return this.withClient(async (client, q) => {
      await q('BEGIN');
      try {
        if (opts.signingLock) await q('SELECT pg_advisory_xact_lock($1::bigint)', [SIGNING_LOCK_KEY]);
        const result = await this.inTransaction.run(true, () => fn(q));
        await commit(client, 'retry it once the store answers, after checking whether it took effect');
        return result;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
    });
  }

  private async withClient<T>(fn: (client: pg.PoolClient, q: Q) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw mapPgError(e);
    }
    let broken: Error | undefined;
    // A checked-out client whose connection dies between queries emits 'error'; unheard, that would
    // crash the process. Record it instead: the next query fails and the client is discarded.
    const onError = (e: Error) => void (broken = e);
    client.on('error', onError);
    try {
      return await fn(client, queryFn(client, this.statements));
    } catch (e) {
      // A client whose connection failed must not go back to the pool.
      if (isConnectionError(e)) broken = e as Error;
      throw e;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }
}

/**
 * COMMIT, and what its answer means. PostgreSQL answers COMMIT of an aborted transaction with ROLLBACK, not an
 * error. Anything but PostgreSQL's own refusal (a lost connection, a client-side timeout) leaves the COMMIT carried
 * out or not: the error says so (`next`: what the caller can do), instead of "nothing was recorded".
 */
async function commit(client: pg.PoolClient, next: string): Promise<void> {
  const answer = await client.query('COMMIT').catch((e: unknown) => {
    if (!isServerAnswer(e)) {
      throw new AirlockError('store_unavailable', `the answer to COMMIT was lost (connection or timeout): this request may or may not have been recorded; ${next}`, { cause: e });
    }
    throw mapPgError(e);
  });
  if (answer.command !== 'COMMIT') throw new AirlockError('store_unavailable', 'the store rolled the transaction back');
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Startup parameters of every pooled connection: the schema as search_path, read-only for a key process. */
function pgStartupOptions(options: PostgresStoreOptions): string | undefined {
  const parts = [...(options.schema === undefined ? [] : [`-c search_path=${options.schema}`]), ...(options.readOnly ? ['-c default_transaction_read_only=on'] : [])];
  return parts.length ? parts.join(' ') : undefined;
}

export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  if (options.schema !== undefined && !options.readOnly) {
    if (!SCHEMA_NAME.test(options.schema)) throw new AirlockError('invalid_request', 'schema must be a lowercase identifier (a-z, 0-9, _)');
    // Created through a schema-less pool first: the store's own connections set search_path to it.
    const bootstrap = new pg.Pool({ connectionString: options.connectionString, max: 1 });
    bootstrap.on('error', () => undefined);
    try {
      await bootstrap.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(options.schema)}`);
    } catch (e) {
      // Two instances creating it at once: the loser sees a unique violation on the catalog; the schema exists.
      if ((e as { code?: string }).code !== '23505' && (e as { code?: string }).code !== '42P06') throw mapPgError(e);
    } finally {
      await bootstrap.end();
    }
  }
  return new PostgresStore(options);
}
