/**
 * A signer node's own ledger and decision log, in its own SQLite file: what this node has agreed to sign,
 * counted for its own rolling windows, and a hash-chained record of every decision it made (allow or deny).
 * It shares nothing with the daemon's store or with the other nodes: that is the point. One node process owns
 * the file; a decision and its ledger charge are written in one transaction before the share leaves.
 */
import { DatabaseSync } from 'node:sqlite';
import { canonicalJson, type LedgerView, type LedgerWrite, type WindowQuery, type WindowTotal } from '@airlock/core';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';

export interface NodeDecision {
  seq: number;
  atMs: number;
  /** The message this node was asked to sign a share of: the Nostr event id, or for a PSBT the commitment over its unsigned transaction and every sighash signed. */
  eventId: string;
  action: string;
  decision: 'allow' | 'deny' | 'replay';
  /** Rule names that granted, or the violations that refused (rule, code, message, limit, used, requested). */
  allowedBy: string[];
  violations: unknown[];
  policy: string;
  /** sha256(previous hash || canonical JSON of this entry without its hash): editing a past entry breaks every later hash. */
  hash: string;
}

const GENESIS = '0'.repeat(64);

/** The replay key: the action and the message (an entry written before actions were keyed matches no request: re-evaluated, fail closed). */
const chargedKey = (eventId: string, action: string) => `${action} ${eventId}`;

export class NodeLedger {
  private readonly db: DatabaseSync;

  constructor(path: string) {
    this.db = new DatabaseSync(path);
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS ledger (series TEXT NOT NULL, asset TEXT NOT NULL, amount TEXT NOT NULL, count INTEGER NOT NULL, at_ms INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS ledger_window ON ledger (series, asset, at_ms);
      CREATE TABLE IF NOT EXISTS decisions (seq INTEGER PRIMARY KEY, entry TEXT NOT NULL, hash TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS charged (event_id TEXT PRIMARY KEY, seq INTEGER NOT NULL);
    `);
  }

  /** Totals for exactly the windows policy declared (core's ledgerViewFrom contract: unknown windows fail closed). */
  totals(queries: WindowQuery[]): WindowTotal[] {
    const select = this.db.prepare('SELECT amount, count FROM ledger WHERE series = ? AND asset = ? AND at_ms >= ?');
    return queries.map((q) => {
      let amount = 0n;
      let count = 0;
      for (const row of select.all(q.series, q.asset, q.sinceMs) as { amount: string; count: number }[]) {
        amount += BigInt(row.amount);
        count += row.count;
      }
      return { amount, count };
    });
  }

  /**
   * Has this node already agreed to (and charged) a share for this message under this same action? A message
   * charged as one action is no replay of another (nostr.event and nostr.http_auth share an event id).
   */
  wasCharged(eventId: string, action: string): boolean {
    return this.db.prepare('SELECT 1 FROM charged WHERE event_id = ?').get(chargedKey(eventId, action)) !== undefined;
  }

  /**
   * When this node agreed to (and charged) a share for this message under this action: the time of that allow
   * (its ledger charges carry it), or undefined when it never did.
   */
  chargedAt(eventId: string, action: string): number | undefined {
    const row = this.db.prepare('SELECT d.entry FROM charged c JOIN decisions d ON d.seq = c.seq WHERE c.event_id = ?').get(chargedKey(eventId, action)) as { entry: string } | undefined;
    return row ? (JSON.parse(row.entry) as { atMs: number }).atMs : undefined;
  }

  /**
   * Appends the decision and, for an allow, its ledger charges (for a replay, the message's one charge moved to
   * the replay's time), in one transaction. `evaluate` runs inside it with the view it reads, so no other decision
   * of this node can slip between reading the totals and writing.
   */
  decide(queries: WindowQuery[], evaluate: (view: LedgerView) => Omit<NodeDecision, 'seq' | 'hash'> & { writes: LedgerWrite[] }): NodeDecision {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const totals = this.totals(queries);
      const byKey = new Map(queries.map((q, i) => [`${q.series}\u0000${q.asset}\u0000${q.sinceMs}`, totals[i]!]));
      const view: LedgerView = {
        total(q) {
          const t = byKey.get(`${q.series}\u0000${q.asset}\u0000${q.sinceMs}`);
          if (!t) throw new Error(`ledger window not prefetched: ${q.series} ${q.asset}`);
          return t;
        },
      };
      const { writes, ...rest } = evaluate(view);
      const last = this.db.prepare('SELECT seq, hash FROM decisions ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string } | undefined;
      const seq = (last?.seq ?? 0) + 1;
      const body = { ...rest, seq };
      const hash = bytesToHex(sha256(utf8ToBytes((last?.hash ?? GENESIS) + canonicalJson(body))));
      this.db.prepare('INSERT INTO decisions (seq, entry, hash) VALUES (?, ?, ?)').run(seq, canonicalJson(body), hash);
      const insert = this.db.prepare('INSERT INTO ledger (series, asset, amount, count, at_ms) VALUES (?, ?, ?, ?, ?)');
      if (rest.decision === 'allow') {
        for (const w of writes) insert.run(w.series, w.asset, w.amount.toString(), w.count, rest.atMs);
        this.db.prepare('INSERT INTO charged (event_id, seq) VALUES (?, ?)').run(chargedKey(rest.eventId, rest.action), seq);
      } else if (rest.decision === 'replay') {
        // The one charge of this message moves to the replay's time. A replay is judged as a new request would be,
        // so an allow whose charge had aged out of a window was contributed again charged nowhere in that window:
        // found by review, a coordinator collected allows that never combined, redeemed them a day later and then
        // spent a full day's budget on top. Later is never less: every future window holding the old time holds now.
        const charged = chargedKey(rest.eventId, rest.action);
        const previous = this.db.prepare('SELECT d.entry FROM charged c JOIN decisions d ON d.seq = c.seq WHERE c.event_id = ?').get(charged) as { entry: string } | undefined;
        const fromMs = previous ? (JSON.parse(previous.entry) as { atMs: number }).atMs : undefined;
        const move = this.db.prepare('UPDATE ledger SET at_ms = ? WHERE rowid = (SELECT rowid FROM ledger WHERE series = ? AND asset = ? AND amount = ? AND count = ? AND at_ms = ? LIMIT 1)');
        for (const w of writes) {
          const moved = fromMs === undefined ? 0 : Number(move.run(rest.atMs, w.series, w.asset, w.amount.toString(), w.count, fromMs).changes);
          // No row to move (not expected): charge it now rather than sign uncharged (fail closed).
          if (moved === 0) insert.run(w.series, w.asset, w.amount.toString(), w.count, rest.atMs);
        }
        this.db.prepare('INSERT OR REPLACE INTO charged (event_id, seq) VALUES (?, ?)').run(charged, seq);
      }
      this.db.exec('COMMIT');
      return { ...body, hash };
    } catch (error) {
      this.db.exec('ROLLBACK');
      throw error;
    }
  }

  /** The decision log, oldest first, each entry's hash checked against the chain (a broken chain throws). */
  decisions(): NodeDecision[] {
    let previous = GENESIS;
    return (this.db.prepare('SELECT seq, entry, hash FROM decisions ORDER BY seq').all() as { seq: number; entry: string; hash: string }[]).map((row) => {
      const expected = bytesToHex(sha256(utf8ToBytes(previous + row.entry)));
      if (expected !== row.hash) throw new Error(`decision log entry ${row.seq} does not match its hash: the log was edited`);
      previous = row.hash;
      return { ...(JSON.parse(row.entry) as Omit<NodeDecision, 'hash'>), hash: row.hash };
    });
  }

  close(): void {
    this.db.close();
  }
}
