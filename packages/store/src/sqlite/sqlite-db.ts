import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { AirlockError } from '@airlock/core/errors';
import type { Row } from '../shared/rows.ts';
import { isDiskTrouble, isSqliteBusy, mapSqliteError } from './sqlite-errors.ts';

export const BUSY_TIMEOUT_MS = 5000;

/**
 * One `node:sqlite` connection: prepared-statement cache, error mapping, and transaction
 * boundaries. Callers serialise access (see SqliteStore); this class only talks to SQLite.
 */
export class SqliteDb {
  private readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();
  private memo: Map<string, unknown> | undefined;
  /** A statement failed for want of disk or on an I/O error since the WAL was last reclaimed (see reclaimWalAfterDiskTrouble). */
  private diskTrouble = false;

  /**
   * `readOnly`: a connection that cannot write (a key process reads decisions; a missing file is an error, not a new store).
   * `syncsItsOwnCommits`: COMMIT leaves the WAL's sync to the caller (`synchronous = NORMAL`, then WalSync
   * syncs it off the event loop before anyone is answered); otherwise COMMIT syncs it (`synchronous = FULL`).
   */
  constructor(path: string, options: { readOnly?: boolean; syncsItsOwnCommits?: boolean } = {}) {
    try {
      if (options.readOnly) {
        this.db = new DatabaseSync(path, { readOnly: true });
        this.db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
        return;
      }
      // The database holds the audit log and token hashes: create it owner-only (SQLite gives its WAL
      // and shared-memory files the same mode as the database file).
      if (path !== ':memory:' && !existsSync(path)) closeSync(openSync(path, 'a', 0o600));
      if (path !== ':memory:') chmodSync(path, 0o600);
      this.db = new DatabaseSync(path);
      this.db.exec('PRAGMA journal_mode = WAL');
      this.db.exec(`PRAGMA synchronous = ${options.syncsItsOwnCommits ? 'NORMAL' : 'FULL'}`);
      this.db.exec('PRAGMA foreign_keys = ON');
      this.db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
      // Group commit gives every request of a batch its own savepoint; without this SQLite spills each
      // savepoint's statement journal to a temporary file.
      this.db.exec('PRAGMA temp_store = MEMORY');
    } catch (e) {
      throw this.failed(e);
    }
  }

  all(sql: string, ...params: SQLInputValue[]): Row[] {
    try {
      return this.prepare(sql).all(...params) as Row[];
    } catch (e) {
      throw this.failed(e);
    }
  }

  get(sql: string, ...params: SQLInputValue[]): Row | undefined {
    try {
      return this.prepare(sql).get(...params) as Row | undefined;
    } catch (e) {
      throw this.failed(e);
    }
  }

  run(sql: string, ...params: SQLInputValue[]): number {
    try {
      return Number(this.prepare(sql).run(...params).changes);
    } catch (e) {
      throw this.failed(e);
    }
  }

  /** Raw multi-statement SQL with SQLite's own errors (migrations and tests). */
  execRaw(sql: string): void {
    this.db.exec(sql);
  }

  /**
   * BEGIN IMMEDIATE takes the write lock up front, so writers in other processes serialise here.
   * Waiting for that lock is done asynchronously (busy_timeout would block the event loop, and with
   * two connections in one process the holder could never finish): retry with backoff until the
   * same 5 s budget busy_timeout gives, then fail closed.
   */
  async beginImmediate(): Promise<void> {
    this.memo = undefined;
    let busy: unknown;
    try {
      await this.untilNotBusy(BUSY_TIMEOUT_MS, () => {
        try {
          this.db.exec('BEGIN IMMEDIATE');
          return true;
        } catch (e) {
          if (!isSqliteBusy(e)) throw e;
          busy = e;
          return false;
        }
      }, () => busy);
    } catch (e) {
      throw this.failed(e);
    }
  }

  /**
   * Runs `attempt` until it returns true, with busy_timeout off and an asynchronous backoff between tries (a
   * busy_timeout would block the event loop while it waits); throws what `timedOut` gives once `budgetMs` passed.
   */
  private async untilNotBusy(budgetMs: number, attempt: () => boolean, timedOut: () => unknown): Promise<void> {
    const deadline = Date.now() + budgetMs;
    let delayMs = 1;
    this.db.exec('PRAGMA busy_timeout = 0');
    try {
      while (!attempt()) {
        if (Date.now() >= deadline) throw timedOut();
        await new Promise((resolve) => setTimeout(resolve, delayMs * (0.5 + Math.random())));
        delayMs = Math.min(delayMs * 2, 20);
      }
    } finally {
      try {
        this.db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
      } catch {
        // The connection is gone; the caller already has the error that matters.
      }
    }
  }


  /**
   * Values this write transaction derived from its own reads and writes (ledger heads, the audit head, each
   * scope's latest policy: see ledger.ts, audit.ts, records.ts), dropped when the transaction ends or a
   * request's savepoint rolls back. BEGIN IMMEDIATE holds the
   * write lock for the whole transaction, so no other connection can change what they were derived from
   * meanwhile. Undefined outside a transaction: then nothing is remembered.
   */
  transactionMemo(): Map<string, unknown> | undefined {
    if (!this.db.isOpen || !this.db.isTransaction) {
      this.memo = undefined;
      return undefined;
    }
    return (this.memo ??= new Map());
  }

  commit(): void {
    this.memo = undefined;
    try {
      this.db.exec('COMMIT');
    } catch (e) {
      this.rollback();
      throw this.failed(e);
    }
  }

  /** Pages in the WAL past which a COMMIT on this connection checkpoints (SQLite's default is 1,000). */
  setAutoCheckpoint(pages: number): void {
    this.exec(`PRAGMA wal_autocheckpoint = ${Math.trunc(pages)}`);
  }

  /** The database file as SQLite resolved it (symlinks followed); its WAL is this path with `-wal`. */
  location(): string {
    const at = this.db.location();
    if (at === null) throw new AirlockError('internal', 'an in-memory SQLite database has no file');
    return at;
  }

  /** Whether a transaction is open: SQLite ends one by itself after some errors (SQLITE_FULL, SQLITE_IOERR). */
  get inTransaction(): boolean {
    return this.db.isOpen && this.db.isTransaction;
  }

  /** One request's savepoint inside a group-commit batch (see GroupCommitter). */
  savepoint(): void {
    // Outside a transaction a SAVEPOINT opens a new one (after SQLite ended the last one by itself): nothing
    // remembered from before may carry into it.
    if (!this.db.isTransaction) this.memo = undefined;
    this.exec('SAVEPOINT request');
  }

  releaseSavepoint(): void {
    this.exec('RELEASE request');
  }

  rollbackToSavepoint(): void {
    // What the rolled-back request wrote is gone; what it read may have been its own writes.
    this.memo = undefined;
    this.exec('ROLLBACK TO request');
  }

  /**
   * After a write failed for want of disk, checkpoints the whole WAL into the database file and truncates it
   * to nothing before anything more is written; throws store_unavailable while that cannot be done.
   *
   * Why: a WAL is reset only by a checkpoint that copies all of it into the database file, and that copy must
   * grow the database file by the pages added since the last one. While the disk is full every checkpoint
   * fails; once space is freed, commits under load grew the WAL into the freed space before the background
   * checkpoint (every 200 ms) got there, the checkpoint then had no room to grow the database file, and every
   * commit after failed at once until the daemon was restarted (the torture's full-disk check, intermittently
   * under load). Checkpointing first needs room only for the database file's growth, then gives the
   * WAL's space back to the filesystem.
   */
  async reclaimWalAfterDiskTrouble(): Promise<void> {
    if (!this.diskTrouble) return;
    // A reader of the WAL (the background checkpoint mid-copy, a backup) makes TRUNCATE answer busy: wait for it
    // briefly, then refuse this batch and try again with the next.
    await this.untilNotBusy(1000, () => {
      let row: Row | undefined;
      try {
        row = this.db.prepare('PRAGMA wal_checkpoint(TRUNCATE)').get() as Row | undefined;
      } catch (e) {
        // Still no room (or the disk still failing): nothing is written until there is.
        throw new AirlockError('store_unavailable', 'the disk holding the SQLite store is full or failing: Airlock writes nothing until space is freed, then resumes by itself', { cause: e });
      }
      return Number(row?.busy ?? 1) === 0;
    }, () => new AirlockError('store_unavailable', 'the SQLite store is reclaiming its write-ahead log after the disk was full, and another connection is reading it'));
    this.diskTrouble = false;
  }


  /** Maps a SQLite error for the caller, noting a failure for want of disk (see reclaimWalAfterDiskTrouble). */
  private failed(e: unknown): AirlockError {
    if (isDiskTrouble(e)) this.diskTrouble = true;
    return mapSqliteError(e);
  }

  private exec(sql: string): void {
    try {
      this.db.exec(sql);
    } catch (e) {
      throw this.failed(e);
    }
  }

  rollback(): void {
    this.memo = undefined;
    try {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
    } catch {
      // Nothing more to undo: SQLite rolls back an unfinished transaction when the connection closes.
    }
  }

  close(): void {
    this.memo = undefined;
    if (!this.db.isOpen) return;
    this.statements.clear();
    this.db.close();
  }

  private prepare(sql: string): StatementSync {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      if (!this.db.isOpen) throw new AirlockError('store_unavailable', 'the SQLite store is closed');
      stmt = this.db.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }
}
