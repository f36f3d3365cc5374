import { AsyncResource, type AsyncLocalStorage } from 'node:async_hooks';
import { AirlockError, GROUP_COMMIT_SIZE_BOUNDS, type GroupCommitStats } from '@airlock/core';

/** What one batch's open transaction offers the committer. Every method maps its errors to AirlockError. */
export interface BatchOps<Tx> {
  savepoint(): Promise<void> | void;
  releaseSavepoint(): Promise<void> | void;
  rollbackToSavepoint(): Promise<void> | void;
  /**
   * False once the outer transaction is gone. SQLite rolls a whole transaction back by itself after some
   * errors (SQLITE_FULL, SQLITE_IOERR, ...); a later SAVEPOINT would then open a new transaction and its
   * RELEASE would commit it alone, so the committer must notice and abandon the batch.
   */
  stillOpen(): boolean;
  /**
   * True when what ended the transaction was a statement of the request that just ran, made where it had no
   * savepoint (PostgreSQL takes a request's savepoint only before its first write): the requests before it
   * then wrote nothing that is lost for good, and they run again in a later batch instead of failing.
   */
  abortedByRequest?(): boolean;
  /** A fresh handle for one item; `end()` makes it unusable once the item is done. */
  newTx(): Tx & { end(): void };
}

/**
 * Opens a transaction (taking whatever locks the store needs), runs `body`, commits once `body` resolves
 * and rolls back if it throws or the commit fails; rethrows the failure. `size`: the requests in the batch
 * (PostgreSQL draws that many audit seqs with its BEGIN).
 *
 * A store whose COMMIT returns before the commit is on disk (SQLite's writer: wal-sync.ts) resolves with
 * `durable`, which settles once it is: the batch's callers are answered only then, and the lane goes on to
 * its next batch meanwhile. If `durable` rejects, every caller is told it may or may not have been recorded.
 */
export type WithBatch<Tx> = (body: (ops: BatchOps<Tx>) => Promise<void>, size: number) => Promise<void | { durable: Promise<void> }>;

/**
 * Work on a transaction's result that may start once it has committed and must not be answered before the
 * commit is durable (signing: see `Store.transaction`). It runs after COMMIT, beside the commit's sync where
 * the store syncs apart from COMMIT, and outside the transaction (it may use the store).
 */
export type AfterCommit = (value: unknown) => unknown;

interface Item<Tx> {
  fn: (tx: Tx) => unknown;
  afterCommit: AfterCommit | undefined;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

interface Lane<Tx> {
  queue: Item<Tx>[];
  scheduled: boolean;
  running: boolean;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown } | { retry: true };

/**
 * Thrown by a store inside a request when the request must not wait where it is (on PostgreSQL, a lock it
 * could only wait for out of order, which could deadlock): the committer rolls the request back to its
 * savepoint, which undoes everything it did, and runs it again at the front of a later batch. Its caller sees
 * nothing of this.
 */
export class RetryInNextBatch extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RetryInNextBatch';
  }
}

/**
 * Group commit: transactions submitted together share one durable commit. A batch takes what is queued
 * (up to `maxBatch`), runs each callback in order inside one store transaction with a savepoint each (a
 * callback that throws is rolled back to its savepoint and touches no other), commits once, and only
 * then settles every caller, once the commit is durable: nothing a caller does after its transaction
 * (answering) can run before its writes are on disk. Work handed over as `afterCommit` (signing) starts at
 * COMMIT and is answered with the rest. If the batch does not commit, no caller gets a result.
 *
 * Commit at once when idle, batch under load: the first submission schedules a batch for the end of the
 * current event-loop turn (setImmediate), so requests parsed in the same turn share it; while a batch runs
 * and commits, new submissions queue and form the next one. Each lane runs one batch at a time; there is
 * one lane on SQLite (a single writer) and several on PostgreSQL, whose batches lock only what they touch.
 */
export class GroupCommitter<Tx> {
  /** One queue per lane; a lane runs one batch at a time. */
  private readonly lanes: Lane<Tx>[];
  private nextLane = 0;
  private readonly withBatch: WithBatch<Tx>;
  private readonly maxBatch: number;
  private readonly inTransaction: AsyncLocalStorage<true>;
  private readonly durableSoFar: (() => Promise<void>) | undefined;
  /** Counted per commit, never per request: what `stats()` reports. */
  private commits = 0;
  private transactions = 0;
  /** Commits by size bucket, not cumulative (`bySize[i]`: sizes above the bound before i, up to bound i). */
  private readonly bySize = GROUP_COMMIT_SIZE_BOUNDS.map(() => 0);

  /**
   * `durableSoFar` (a store whose COMMIT returns before the disk has it): resolves once every commit made so far
   * is on disk. A request refused on its own, in a batch that did not commit, is answered only then: its error
   * may come from an earlier batch's rows (a name already taken), which a power cut could still take back.
   */
  constructor(options: { withBatch: WithBatch<Tx>; maxBatch: number; lanes?: number; inTransaction: AsyncLocalStorage<true>; durableSoFar?: () => Promise<void> }) {
    this.withBatch = options.withBatch;
    this.durableSoFar = options.durableSoFar;
    this.maxBatch = options.maxBatch;
    this.lanes = Array.from({ length: Math.max(1, options.lanes ?? 1) }, () => ({ queue: [], scheduled: false, running: false }));
    this.inTransaction = options.inTransaction;
  }

  /**
   * Queues `fn` for a batch. With several lanes, submissions with the same `affinity` share a lane (an agent's
   * requests then share its lock in one batch instead of waiting for another lane's); others take turns.
   */
  submit<T, R = T>(fn: (tx: Tx) => T | Promise<T>, affinity?: string, afterCommit?: (value: T) => R | Promise<R>): Promise<R> {
    // A transaction opened from inside another would wait for a batch that waits for it.
    if (this.inTransaction.getStore()) {
      return Promise.reject(new AirlockError('internal', 'store write called inside a transaction; use the StoreTx handle'));
    }
    const lane = this.lanes[this.laneFor(affinity)]!;
    return new Promise<R>((resolve, reject) => {
      // afterCommit runs from the batch, not from its caller: bound here, it keeps the caller's async context.
      lane.queue.push({ fn, afterCommit: afterCommit && (AsyncResource.bind(afterCommit) as AfterCommit), resolve: resolve as (value: unknown) => void, reject });
      this.schedule(lane);
    });
  }

  /** What the committer has done so far (metrics: airlock_store_group_commit_size). */
  stats(): GroupCommitStats {
    let sum = 0;
    return { commits: this.commits, transactions: this.transactions, atMost: this.bySize.map((n) => (sum += n)) };
  }

  /**
   * Counts a commit that carried `size` transactions, once it is durable (a commit whose sync failed answered
   * its callers store_unavailable: not a commit). A batch whose every request was moved to a later one committed
   * nothing of theirs and is not counted (PostgreSQL lanes that wait on another instance's locks would otherwise
   * count an empty commit each millisecond).
   */
  private countCommit(size: number, durable: Promise<void> | undefined): void {
    if (durable) {
      // A failed sync is the callers' to hear (store_unavailable); here it only means no count.
      durable.then(() => this.countCommit(size, undefined), () => undefined);
      return;
    }
    if (size === 0) return;
    this.commits++;
    this.transactions += size;
    const bucket = GROUP_COMMIT_SIZE_BOUNDS.findIndex((bound) => size <= bound);
    // A size above every bound (a larger maxBatch) is in the count only, as Prometheus' +Inf bucket.
    if (bucket >= 0) this.bySize[bucket]!++;
  }

  private laneFor(affinity: string | undefined): number {
    if (this.lanes.length === 1) return 0;
    if (affinity === undefined) return (this.nextLane = (this.nextLane + 1) % this.lanes.length);
    let h = 0;
    for (let i = 0; i < affinity.length; i++) h = (Math.imul(h, 31) + affinity.charCodeAt(i)) | 0;
    return (h >>> 0) % this.lanes.length;
  }

  private schedule(lane: Lane<Tx>, delayMs = 0): void {
    if (lane.running || lane.scheduled || lane.queue.length === 0) return;
    lane.scheduled = true;
    const go = () => {
      lane.scheduled = false;
      void this.drain(lane);
    };
    if (delayMs > 0) setTimeout(go, delayMs);
    else setImmediate(go);
  }

  private async drain(lane: Lane<Tx>): Promise<void> {
    lane.running = true;
    let idle = false;
    try {
      while (lane.queue.length > 0) {
        const batch = lane.queue.splice(0, this.maxBatch);
        const requeue = await this.runBatch(batch);
        // Retried requests go first: in the next batch they hold nothing yet and may wait for their locks.
        lane.queue.unshift(...requeue);
        // A batch that finished nothing (its only requests wait for another transaction) backs off a little
        // instead of spinning on the same locks.
        if (requeue.length === batch.length) {
          idle = true;
          break;
        }
        // Let the settled callers continue (sign, answer) and new requests queue before the next batch.
        if (lane.queue.length > 0) await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      lane.running = false;
    }
    if (idle) this.schedule(lane, 1);
  }

  /** Runs one batch; returns the items it never started or must retry (to run in the next batch). Settles the rest. */
  private async runBatch(batch: Item<Tx>[]): Promise<Item<Tx>[]> {
    const outcomes: Outcome[] = [];
    let batchError: unknown;
    let committed: void | { durable: Promise<void> } = undefined;
    try {
      committed = await this.withBatch(async (ops) => {
        // A batch of one needs no savepoint (two round trips on PostgreSQL): if it throws, the whole
        // transaction is rolled back, which undoes exactly that one request.
        if (batch.length === 1) {
          const outcome = await this.runAlone(ops, batch[0]!);
          outcomes.push(outcome);
          // A retry rolls the whole transaction back: it holds nothing else.
          if ('retry' in outcome) throw new BatchAborted(undefined, { retryAlone: true });
          if (!outcome.ok || !ops.stillOpen()) throw new BatchAborted(errorOf(outcome));
          return;
        }
        for (const item of batch) {
          const outcome = await this.runItem(ops, item);
          outcomes.push(outcome);
          if (!ops.stillOpen()) throw new BatchAborted(errorOf(outcome), { rerunOthers: ops.abortedByRequest?.() === true });
        }
      }, batch.length);
    } catch (e) {
      if (e instanceof BatchAborted && e.retryAlone) return batch;
      if (e instanceof BatchAborted && e.rerunOthers) {
        // Only the request whose statement aborted the transaction is answered, with its own error.
        const last = outcomes.length - 1;
        const outcome = outcomes[last]!;
        this.rejectOnceDurable(batch[last]!, 'error' in outcome ? outcome.error : asStoreFailure(e.reason));
        return batch.filter((_, i) => i !== last);
      }
      batchError = e instanceof BatchAborted ? e.reason : e;
    }
    if (batchError === undefined) {
      this.countCommit(outcomes.filter((outcome) => !('retry' in outcome)).length, committed?.durable);
      const retries: Item<Tx>[] = [];
      batch.forEach((item, i) => {
        const outcome = outcomes[i]!;
        if ('retry' in outcome) retries.push(item);
        else answerWhenDurable(item, outcome, committed?.durable);
      });
      return retries;
    }
    // Nothing in the batch is durable. Items that ran fail (their results described writes that are gone);
    // an item that failed on its own keeps its own error. Items that never ran go into the next batch.
    const failure = asStoreFailure(batchError);
    const retries: Item<Tx>[] = [];
    outcomes.forEach((outcome, i) => {
      // A request rolled back for a retry has no result to lose: it runs again.
      if ('retry' in outcome) retries.push(batch[i]!);
      else this.rejectOnceDurable(batch[i]!, outcome.ok ? failure : outcome.error);
    });
    const notStarted = [...retries, ...batch.slice(outcomes.length)];
    // The batch failed before any item ran (BEGIN or the lock failed): every item gets that error, or
    // a store that is down would be retried forever.
    if (outcomes.length === 0) {
      for (const item of notStarted) this.rejectOnceDurable(item, failure);
      return [];
    }
    return notStarted;
  }

  /** Rejects `item` with `error` once every commit so far is on disk; if one cannot be, with that failure. */
  private rejectOnceDurable(item: Item<Tx>, error: unknown): void {
    if (!this.durableSoFar) return item.reject(error);
    this.durableSoFar().then(
      () => item.reject(error),
      (e: unknown) => item.reject(asStoreFailure(e)),
    );
  }

  private async runAlone(ops: BatchOps<Tx>, item: Item<Tx>): Promise<Outcome> {
    const tx = ops.newTx();
    try {
      return { ok: true, value: await this.inTransaction.run(true, () => item.fn(tx)) };
    } catch (error) {
      if (error instanceof RetryInNextBatch) return { retry: true };
      return { ok: false, error };
    } finally {
      tx.end();
    }
  }

  private async runItem(ops: BatchOps<Tx>, item: Item<Tx>): Promise<Outcome> {
    await ops.savepoint();
    const tx = ops.newTx();
    try {
      const value = await this.inTransaction.run(true, () => item.fn(tx));
      tx.end();
      if (!ops.stillOpen()) return { ok: false, error: new AirlockError('store_unavailable', 'the store rolled the transaction back') };
      await ops.releaseSavepoint();
      return { ok: true, value };
    } catch (error) {
      tx.end();
      if (ops.stillOpen()) {
        try {
          await ops.rollbackToSavepoint();
          await ops.releaseSavepoint();
        } catch (e) {
          // The savepoint could not be undone (connection lost): the batch cannot commit anything.
          throw new BatchAborted(e);
        }
      }
      if (error instanceof RetryInNextBatch) return { retry: true };
      return { ok: false, error };
    }
  }
}

const errorOf = (outcome: Outcome) => ('error' in outcome ? outcome.error : undefined);

/**
 * Answers a committed batch's caller: at once where COMMIT was durable, else once `durable` settles. The item's
 * `afterCommit` starts now either way (beside the sync); its result reaches the caller only if the commit is on
 * disk: if it cannot be made so, the caller is told the request may or may not have been recorded, and what
 * `afterCommit` produced (a signature) is dropped. A request that failed on its own gets its own error, once the
 * commit is on disk (the error may rest on rows of this commit or an earlier one).
 */
function answerWhenDurable<Tx>(item: Item<Tx>, outcome: Exclude<Outcome, { retry: true }>, durable: Promise<void> | undefined): void {
  const then = item.afterCommit;
  const result = outcome.ok ? (then ? Promise.resolve(outcome.value).then(then) : Promise.resolve(outcome.value)) : Promise.reject(outcome.error);
  if (!durable) {
    result.then(item.resolve, item.reject);
    return;
  }
  void Promise.allSettled([durable, result]).then(([disk, answer]) => {
    // Not even a request's own refusal goes out: it may rest on rows of this commit or an earlier one.
    if (disk.status === 'rejected') item.reject(asStoreFailure(disk.reason));
    else if (answer.status === 'rejected') item.reject(answer.reason);
    else item.resolve(answer.value);
  });
}

/** Ends a batch without committing: the store transaction is gone or cannot be made consistent. */
class BatchAborted extends Error {
  readonly reason: unknown;
  /** The batch's only request asked to be retried: nothing failed. */
  readonly retryAlone: boolean;
  /** The last request that ran ended the transaction (BatchOps.abortedByRequest): the others run again. */
  readonly rerunOthers: boolean;
  constructor(reason: unknown, options: { retryAlone?: boolean; rerunOthers?: boolean } = {}) {
    super('batch aborted');
    this.reason = reason ?? new AirlockError('store_unavailable', 'the store rolled the transaction back');
    this.retryAlone = options.retryAlone ?? false;
    this.rerunOthers = options.rerunOthers ?? false;
  }
}

function asStoreFailure(e: unknown): AirlockError {
  if (e instanceof AirlockError && e.code === 'store_unavailable') return e;
  return new AirlockError('store_unavailable', 'the store could not commit this request; nothing was recorded', { cause: e });
}
