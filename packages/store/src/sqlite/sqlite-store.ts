import type { GrantRecord, GroupCommitStats, ReleasedSignatures, ThresholdBinding, TransactionOptions } from '@airlock/core';
import { AsyncLocalStorage } from 'node:async_hooks';
import { AirlockError } from '@airlock/core';
import type {
  Agent, AgentStatus, ApprovalRecord, ApprovalState, AuditCheckpoint, AuditEntry, AuditQuery, NewAgent, NodeId, PolicyRecord, SignedTreeHead, StoredAuditHead, TreeNode, VerifiableEntry,
  LightningPaymentFilter, LightningPaymentRecord, PaymentFilter, PaymentRecord, PaymentSummaryRow, Session, SessionDescendantsFilter, Store, StoreTx, BreakerRecord, BreakerState, ShadowOutcome, ShadowOutcomeCounts, ShadowPolicyRecord,
  AuditMatch, LifecycleJob, LifecycleJobFilter, NewWebhookDelivery, WebhookAttempt, WebhookDelivery, WebhookDeliveryState, WebhookEndpoint,
  Approver, AgentKey,
} from '@airlock/core';
import { AsyncMutex } from '@airlock/core';
import { GroupCommitter } from '../shared/group-commit.ts';
import { toInt } from '../shared/values.ts';
import * as agentKeys from './agent-keys.ts';
import * as approvals from './approvals.ts';
import * as breakers from './breakers.ts';
import * as grants from './grants.ts';
import * as releasedSignatures from './released-signatures.ts';
import * as thresholdBindings from './threshold-bindings.ts';
import * as payments from './payments.ts';
import * as lightning from './lightning.ts';
import * as audit from './audit.ts';
import { sqliteMigrations } from './migrations/index.ts';
import * as records from './records.ts';
import * as shadow from './shadow.ts';
import * as webhooks from './webhooks.ts';
import * as lifecycle from './lifecycle.ts';
import { SqliteDb } from './sqlite-db.ts';
import { mapSqliteError } from './sqlite-errors.ts';
import { SqliteStoreTx } from './sqlite-tx.ts';
import { WalCheckpointer } from './wal-checkpointer.ts';
import { WalSync, type SyncFile } from './wal-sync.ts';

/** Requests per group-commit batch: enough to amortise one fsync, few enough to keep a batch short. */
const MAX_BATCH = 64;

export interface SqliteStoreOptions {
  /**
   * Checkpoint the WAL from a worker thread instead of inside the COMMIT that crosses SQLite's threshold
   * (see WalCheckpointer): the daemon turns it on so no request waits for a checkpoint. Ignored for
   * `:memory:`.
   */
  backgroundCheckpoints?: boolean;
  /** Open the file read-only (SQLite refuses every write on this connection): the key process's view. */
  readOnly?: boolean;
  /**
   * Sync each commit's WAL off the event loop (WalSync), signing and the next batch going on meanwhile, instead of
   * inside COMMIT (`synchronous = FULL`): the daemon turns it on. Ignored for `:memory:` and read-only.
   */
  syncOffLoop?: boolean;
  /** Test-only, with `syncOffLoop`: how the WAL is flushed to disk after a commit (default fdatasync on libuv's thread pool). */
  syncWal?: SyncFile;
}

/**
 * Store on one `node:sqlite` connection. Every operation takes the in-process mutex (the connection
 * is shared, and an open transaction would otherwise see, or swallow, another caller's statements);
 * writes also take SQLite's write lock with BEGIN IMMEDIATE, which serialises other processes.
 * Writes are group-committed (GroupCommitter): the transactions queued together run in one BEGIN
 * IMMEDIATE ... COMMIT, a savepoint each, and every caller is answered after that one durable commit.
 */
export class SqliteStore implements Store {
  readonly dialect = 'sqlite' as const;
  private readonly db: SqliteDb;
  private readonly mutex = new AsyncMutex();
  // Marks code running inside this store's transaction callback, to catch re-entrant calls that would deadlock.
  private readonly inTransaction = new AsyncLocalStorage<true>();

  private readonly committer: GroupCommitter<SqliteStoreTx>;
  private readonly checkpointer: WalCheckpointer | undefined;
  /** Syncs the WAL after each commit, off the event loop (none for `:memory:` or a read-only connection). */
  private readonly walSync: WalSync | undefined;

  constructor(path: string, options: SqliteStoreOptions = {}) {
    const syncOffLoop = options.syncOffLoop === true && path !== ':memory:' && !options.readOnly;
    this.db = new SqliteDb(path, { readOnly: options.readOnly ?? false, syncsItsOwnCommits: syncOffLoop });
    // The WAL is named after the database file as SQLite resolved it (a symlinked path puts it beside the target).
    if (syncOffLoop) this.walSync = new WalSync(`${this.db.location()}-wal`, options.syncWal);
    const db = this.db;
    const walSync = this.walSync;
    if (options.backgroundCheckpoints && path !== ':memory:' && !options.readOnly) this.checkpointer = new WalCheckpointer(path, (pages) => db.setAutoCheckpoint(pages));
    this.committer = new GroupCommitter<SqliteStoreTx>({
      maxBatch: MAX_BATCH,
      inTransaction: this.inTransaction,
      ...(walSync ? { durableSoFar: () => walSync.allCommitsDurable() } : {}),
      withBatch: (body) => this.mutex.run(async () => {
        // A disk that stops answering holds the batches back here, a few commits on, not an ever longer queue
        // of charged requests whose signatures wait in memory; after a failed sync this refuses, and nothing more
        // is written (what this connection committed since may not be on disk).
        await walSync?.roomForCommit();
        // After a full disk, room for the WAL first (see reclaimWalAfterDiskTrouble): else the commits themselves eat it.
        await db.reclaimWalAfterDiskTrouble();
        await db.beginImmediate();
        try {
          await body({
            savepoint: () => db.savepoint(),
            releaseSavepoint: () => db.releaseSavepoint(),
            rollbackToSavepoint: () => db.rollbackToSavepoint(),
            stillOpen: () => db.inTransaction,
            newTx: () => new SqliteStoreTx(db),
          });
          if (!db.inTransaction) throw new AirlockError('store_unavailable', 'the SQLite store rolled the transaction back');
          db.commit();
        } catch (e) {
          db.rollback();
          throw e;
        }
        // Committed (the next batch may begin) but answered only once on disk: see WalSync.
        return walSync ? { durable: walSync.afterCommit() } : undefined;
      }),
    });
  }

  async migrate(): Promise<void> {
    await this.write(() => {
      this.db.execRaw('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT');
      const applied = new Set(this.db.all('SELECT version FROM schema_migrations').map((r) => toInt(r.version)));
      for (const [version, migration] of [...sqliteMigrations].sort(([a], [b]) => a - b)) {
        if (applied.has(version)) continue;
        for (const sql of migration.statements) {
          try {
            this.db.execRaw(sql);
          } catch (e) {
            throw mapSqliteError(e);
          }
        }
        this.db.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', version, migration.name, Date.now());
      }
    });
  }

  async close(): Promise<void> {
    // The worker's connection first: the last connection to close checkpoints the WAL and removes it.
    await this.checkpointer?.stop();
    await this.mutex.run(async () => {
      // Every commit on disk before the connection goes (its callers are waiting for that).
      await this.walSync?.close();
      this.db.close();
    });
  }

  /** Test-only: runs raw SQL with SQLite's own errors (used to prove the triggers hold). Not on the port. */
  async rawExec(sql: string): Promise<void> {
    await this.mutex.run(async () => this.db.execRaw(sql));
  }

  getMeta(key: string): Promise<string | undefined> {
    return this.read(() => records.getMeta(this.db, key));
  }
  initMeta(key: string, value: string): Promise<string> {
    return this.write(() => records.initMeta(this.db, key, value));
  }
  setMeta(key: string, value: string): Promise<void> {
    return this.write(() => records.setMeta(this.db, key, value));
  }

  createAgents(agents: NewAgent[], deriveAddress: (accountIndex: number, keyIndex: number) => string | Promise<string>, now: number): Promise<Agent[]> {
    return this.write(() => records.createAgents(this.db, agents, deriveAddress, now));
  }
  getAgent(idOrName: string): Promise<Agent | undefined> {
    return this.read(() => records.getAgent(this.db, idOrName));
  }
  listAgents(filter: { status?: AgentStatus; limit?: number; after?: string }): Promise<Agent[]> {
    return this.read(() => records.listAgents(this.db, filter));
  }
  setAgentStatus(id: string, status: AgentStatus, now: number): Promise<Agent> {
    return this.write(() => records.setAgentStatus(this.db, id, status, now));
  }

  listAgentKeys(agentId: string): Promise<AgentKey[]> {
    return this.read(() => agentKeys.listAgentKeys(this.db, agentId));
  }
  findAgentKey(address: string): Promise<AgentKey | undefined> {
    return this.read(() => agentKeys.findAgentKey(this.db, address));
  }

  putPolicy(record: Omit<PolicyRecord, 'version'>): Promise<PolicyRecord> {
    return this.write(() => records.putPolicy(this.db, record));
  }
  getPolicy(scope: string, version?: number): Promise<PolicyRecord | undefined> {
    return this.read(() => records.getPolicy(this.db, scope, version));
  }
  listPolicyVersions(scope: string): Promise<Omit<PolicyRecord, 'document'>[]> {
    return this.read(() => records.listPolicyVersions(this.db, scope));
  }

  getShadowPolicy(scope: string): Promise<ShadowPolicyRecord | undefined> {
    return this.read(() => shadow.getShadowPolicy(this.db, scope));
  }
  shadowOutcomeCounts(shadowId: string): Promise<ShadowOutcomeCounts> {
    return this.read(() => shadow.shadowOutcomeCounts(this.db, shadowId));
  }
  listShadowDifferences(shadowId: string, filter: { afterSeq?: number; limit: number }): Promise<ShadowOutcome[]> {
    return this.read(() => shadow.listShadowDifferences(this.db, shadowId, filter));
  }

  createSession(session: Session): Promise<void> {
    return this.write(() => records.createSession(this.db, session));
  }
  getSession(id: string): Promise<Session | undefined> {
    return this.read(() => records.getSession(this.db, id));
  }
  listSessions(filter: { agentId?: string; includeInactive?: boolean; now: number }): Promise<Session[]> {
    return this.read(() => records.listSessions(this.db, filter));
  }
  revokeSession(id: string, now: number): Promise<Session> {
    return this.write(() => records.revokeSession(this.db, id, now));
  }
  sessionDescendants(id: string): Promise<Session[]> {
    return this.read(() => records.sessionDescendants(this.db, id));
  }
  sessionDescendantsPage(id: string, filter: SessionDescendantsFilter): Promise<Session[]> {
    return this.read(() => records.sessionDescendantsPage(this.db, id, filter));
  }

  getReleasedSignatures(auditSeq: number): Promise<ReleasedSignatures | undefined> {
    return this.read(() => releasedSignatures.getReleasedSignatures(this.db, auditSeq));
  }
  /** Its own durable write (a group-commit batch like any other), outside the caller's transactions. */
  keepReleasedSignatures(record: ReleasedSignatures): Promise<ReleasedSignatures> {
    return this.write(() => releasedSignatures.keepReleasedSignatures(this.db, record));
  }

  getThresholdBinding(agentId: string, namespace: string): Promise<ThresholdBinding | undefined> {
    return this.read(() => thresholdBindings.getThresholdBinding(this.db, agentId, namespace));
  }
  listGrants(agentId: string, filter: { after?: { auditSeq: number; index: number }; limit?: number } = {}): Promise<GrantRecord[]> {
    return this.read(() => grants.listGrants(this.db, agentId, filter));
  }
  listBreakers(filter: { state?: BreakerState; limit?: number }): Promise<BreakerRecord[]> {
    return this.read(() => breakers.listBreakers(this.db, filter));
  }
  getBreaker(id: string): Promise<BreakerRecord | undefined> {
    return this.read(() => breakers.getBreaker(this.db, id));
  }

  getApproval(id: string): Promise<ApprovalRecord | undefined> {
    return this.read(() => approvals.getApproval(this.db, id));
  }
  listApprovals(filter: { state?: ApprovalState; agentId?: string; limit?: number }): Promise<ApprovalRecord[]> {
    return this.read(() => approvals.listApprovals(this.db, filter));
  }
  getApprover(idOrName: string): Promise<Approver | undefined> {
    return this.read(() => approvals.getApprover(this.db, idOrName));
  }
  listApprovers(): Promise<Approver[]> {
    return this.read(() => approvals.listApprovers(this.db));
  }

  getLightningPayment(id: string): Promise<LightningPaymentRecord | undefined> {
    return this.read(() => lightning.getLightningPayment(this.db, id));
  }
  listLightningPayments(filter: LightningPaymentFilter): Promise<LightningPaymentRecord[]> {
    return this.read(() => lightning.listLightningPayments(this.db, filter));
  }
  findL402Token(agentId: string, origin: string, nowSeconds: number, resource?: string): Promise<LightningPaymentRecord | undefined> {
    return this.read(() => lightning.findL402Token(this.db, agentId, origin, nowSeconds, resource));
  }
  getPayment(id: string): Promise<PaymentRecord | undefined> {
    return this.read(() => payments.getPayment(this.db, id));
  }
  listPayments(filter: PaymentFilter): Promise<PaymentRecord[]> {
    return this.read(() => payments.listPayments(this.db, filter));
  }
  paymentSummary(filter: { agentId?: string }): Promise<PaymentSummaryRow[]> {
    return this.read(() => payments.paymentSummary(this.db, filter));
  }

  queryAudit(query: AuditQuery): Promise<AuditEntry[]> {
    return this.read(() => audit.queryAudit(this.db, query));
  }
  readAudit(fromSeq: number, limit: number): Promise<AuditEntry[]> {
    return this.read(() => audit.readAudit(this.db, fromSeq, limit));
  }
  auditHead(): Promise<StoredAuditHead> {
    return this.read(() => audit.auditHead(this.db));
  }
  listCheckpoints(): Promise<AuditCheckpoint[]> {
    return this.read(() => audit.listCheckpoints(this.db));
  }
  lastCheckpoint(): Promise<AuditCheckpoint | undefined> {
    return this.read(() => audit.lastCheckpoint(this.db));
  }
  appendCheckpoint(checkpoint: AuditCheckpoint): Promise<void> {
    return this.write(() => audit.appendCheckpoint(this.db, checkpoint));
  }
  readAuditLeaves(fromLeafIndex: number, limit: number): Promise<VerifiableEntry[]> {
    return this.read(() => audit.readAuditLeaves(this.db, fromLeafIndex, limit));
  }
  auditEntriesOutsideTree(limit: number): Promise<number[]> {
    return this.read(() => audit.auditEntriesOutsideTree(this.db, limit));
  }
  countAuditLeaves(): Promise<number> {
    return this.read(() => audit.countAuditLeaves(this.db));
  }
  listTreeHeads(): Promise<SignedTreeHead[]> {
    return this.read(() => audit.listTreeHeads(this.db));
  }
  lastTreeHead(): Promise<SignedTreeHead | undefined> {
    return this.read(() => audit.lastTreeHead(this.db));
  }
  getTreeHead(treeSize: number): Promise<SignedTreeHead | undefined> {
    return this.read(() => audit.getTreeHead(this.db, treeSize));
  }
  appendTreeHead(head: SignedTreeHead): Promise<void> {
    return this.write(() => audit.appendTreeHead(this.db, head));
  }
  builtTreeSize(): Promise<number> {
    return this.read(() => audit.builtTreeSize(this.db));
  }
  readTreeNodes(ids: readonly NodeId[]): Promise<(Uint8Array | undefined)[]> {
    return this.read(() => audit.readTreeNodes(this.db, ids));
  }
  appendTreeNodes(nodes: readonly TreeNode[], options: { replace?: boolean } = {}): Promise<void> {
    return this.write(() => audit.appendTreeNodes(this.db, nodes, options.replace));
  }

  getWebhookEndpoint(id: string): Promise<WebhookEndpoint | undefined> {
    return this.read(() => webhooks.getWebhookEndpoint(this.db, id));
  }
  listWebhookEndpoints(filter: { includeRemoved?: boolean } = {}): Promise<WebhookEndpoint[]> {
    return this.read(() => webhooks.listWebhookEndpoints(this.db, filter));
  }
  scanAuditForWebhooks(fromLeaf: number, toLeaf: number, match: AuditMatch, limit: number): Promise<AuditEntry[]> {
    return this.read(() => webhooks.scanAuditForWebhooks(this.db, fromLeaf, toLeaf, match, limit));
  }
  auditEntryAt(leafIndex: number): Promise<AuditEntry | undefined> {
    return this.read(() => webhooks.auditEntryAt(this.db, leafIndex));
  }
  enqueueWebhookDeliveries(deliveries: readonly NewWebhookDelivery[], cursors: readonly { endpointId: string; cursor: number }[], now: number): Promise<void> {
    return this.write(() => webhooks.enqueueWebhookDeliveries(this.db, deliveries, cursors, now));
  }
  async claimWebhookDeliveries(now: number, leaseUntil: number, limit: number, perEndpoint?: number): Promise<WebhookDelivery[]> {
    if (!(await this.read(() => webhooks.anyDueWebhookDelivery(this.db, now)))) return [];
    return this.write(() => webhooks.claimWebhookDeliveries(this.db, now, leaseUntil, limit, perEndpoint));
  }
  recordWebhookAttempt(attempt: WebhookAttempt, next: { state: 'pending' | 'delivered' | 'failed'; nextAttemptAt: number }, now: number): Promise<void> {
    return this.write(() => webhooks.recordWebhookAttempt(this.db, attempt, next, now));
  }
  pruneWebhookDeliveries(finishedBefore: number, limit: number): Promise<number> {
    return this.write(() => webhooks.pruneWebhookDeliveries(this.db, finishedBefore, limit));
  }
  listWebhookDeliveries(endpointId: string, filter: { state?: WebhookDeliveryState; limit?: number } = {}): Promise<(WebhookDelivery & { log: WebhookAttempt[] })[]> {
    return this.read(() => webhooks.listWebhookDeliveries(this.db, endpointId, filter));
  }

  getLifecycleJob(id: string): Promise<LifecycleJob | undefined> {
    return this.read(() => lifecycle.getLifecycleJob(this.db, id));
  }
  listLifecycleJobs(filter: LifecycleJobFilter): Promise<LifecycleJob[]> {
    return this.read(() => lifecycle.listLifecycleJobs(this.db, filter));
  }
  recordLifecycleBroadcast(id: string, now: number): Promise<LifecycleJob | undefined> {
    return this.write(() => lifecycle.recordLifecycleBroadcast(this.db, id, now));
  }

  /**
   * Every write transaction is exclusive here (one writer, and signing transactions re-read inside theirs); one
   * run `exclusive` is only marked so, for the writes that must be (shared/exclusive-writes.ts).
   */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>, options?: TransactionOptions): Promise<T>;
  transaction<T, R>(fn: (tx: StoreTx) => Promise<T>, options: TransactionOptions & { afterCommit: (value: T) => Promise<R> }): Promise<R>;
  transaction<T, R>(fn: (tx: StoreTx) => Promise<T>, options: TransactionOptions & { afterCommit?: (value: T) => Promise<R> } = {}): Promise<T | R> {
    return this.committer.submit((tx) => fn(options.exclusive ? tx.markExclusive() : tx), undefined, options.afterCommit);
  }

  /** What the group committer has done since this store opened (metrics). */
  groupCommitStats(): GroupCommitStats {
    return this.committer.stats();
  }

  /** Reads take the mutex too (no dirty reads of another caller's open transaction), unless nested in one. */
  private async read<T>(fn: () => T): Promise<T> {
    if (this.inTransaction.getStore()) return fn();
    const value = await this.mutex.run(async () => fn());
    // What a read saw may be a commit still on its way to disk (its own callers not yet answered): the
    // read is answered after it too, so nothing leaves the store that a power cut could take back.
    await this.walSync?.allCommitsDurable();
    return value;
  }

  /** One write, group-committed with whatever else is queued (see GroupCommitter). */
  private write<T>(fn: (tx: SqliteStoreTx) => T | Promise<T>): Promise<T> {
    return this.committer.submit(fn);
  }
}

export async function openSqliteStore(path: string, options: SqliteStoreOptions = {}): Promise<SqliteStore> {
  return new SqliteStore(path, options);
}
