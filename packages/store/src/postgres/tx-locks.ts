import { createHash } from 'node:crypto';
import { RetryInNextBatch } from '../shared/group-commit.ts';
import type { Row } from '../shared/rows.ts';
import type { Q } from './pg-query.ts';

/**
 * The advisory locks of one PostgreSQL batch transaction (see docs/architecture.md, "Locking on PostgreSQL").
 *
 * A signing transaction locks only what it touches: its agent (nonces, idempotency keys, payments of that
 * agent's address), each agent or session ledger series it reads or writes, and a fleet slot for fleet series
 * it writes. Fleet-wide series are hot (every signature writes them), so their running sums are striped over
 * FLEET_SLOTS physical series `<series>#<slot>`: a writer needs one slot, which it picks among the free ones;
 * a reader of a fleet total (a fleet-wide budget) needs every slot, so it excludes all fleet writers while it
 * checks and reserves. The lock that protects agent status, sessions and policies is the shared signing lock
 * taken at BEGIN (exclusive for the operator writes that change them).
 *
 * Deadlock freedom by ordering: keys carry their class in the top byte (agent < series < fleet slot) and a
 * transaction waits for a key only when every key it already holds is smaller. Any other key is only tried
 * (`pg_try_advisory_xact_lock`); if it is taken, the request is rolled back to its savepoint (which releases
 * what it locked) and runs again in a later batch, first, where it holds nothing and may wait.
 */
// At least the batches that may run at once across instances (lanes x instances: 4 x 4 by default), so a
// writer finds a free slot; a fleet total costs two index seeks per slot.
export const FLEET_SLOTS = 16;

const CLASS_AGENT = 1n;
const CLASS_SERIES = 2n;
const CLASS_FLEET_SLOT = 3n;
const CLASS_PAYMENT_HASH = 4n;

function keyOf(cls: bigint, name: string): bigint {
  const digest = createHash('sha256').update(name).digest();
  // 7 bytes of hash under the class byte: a positive int8, ordered by class first.
  return (cls << 56n) | digest.readBigUInt64BE(0) >> 8n;
}

export const agentLockKey = (agentId: string) => keyOf(CLASS_AGENT, agentId);
export const seriesLockKey = (series: string) => keyOf(CLASS_SERIES, series);
export const fleetSlotKey = (slot: number) => (CLASS_FLEET_SLOT << 56n) | BigInt(slot);
/**
 * One Lightning payment hash (lightning.ts): a new payment of the hash and the charge of a late success decide
 * "is another payment of this hash active?" one after the other. Taken after the ledger's keys (the largest class).
 */
export const paymentHashLockKey = (paymentHash: string) => keyOf(CLASS_PAYMENT_HASH, `lightning:${paymentHash.toLowerCase()}`);

/** Fleet-wide series (`fleet`, `fleet|to:...`, `fleet|origin:...`) are striped; agent and session series are not. */
export const isFleetSeries = (series: string) => series === 'fleet' || series.startsWith('fleet|');
/** The physical series of one stripe of a fleet series. */
export const fleetShard = (series: string, slot: number) => `${series}#${slot}`;

const acquireSqlCache = new Map<string | undefined, string>();

/** Built once per distinct read: the text is also the prepared statement's key (pg-query.ts). */
function acquireSql(then?: string): string {
  let sql = acquireSqlCache.get(then);
  if (sql === undefined) acquireSqlCache.set(then, (sql = buildAcquireSql(then)));
  return sql;
}

/**
 * One round trip: tries `$1` (without waiting; which were taken, in order), waits for `$2` in ascending order,
 * tries the fleet slots `$3` in order and keeps the first free one (`$4` their numbers), then runs the caller's read, if any, after the
 * locks (a read that needs none of them to be right: its snapshot is the statement's start). Keys are text
 * parameters: int8 does not survive a JavaScript number.
 */
function buildAcquireSql(then?: string): string {
  const locks = `SELECT (SELECT array_agg(pg_try_advisory_xact_lock(t.k) ORDER BY t.i) FROM unnest($1::int8[]) WITH ORDINALITY AS t(k, i)) AS lock_tried,
                        (SELECT count(pg_advisory_xact_lock(k)) FROM unnest($2::int8[]) AS k) AS lock_waited,
                        (SELECT s.slot FROM unnest($3::int8[], $4::int[]) AS s(k, slot) WHERE pg_try_advisory_xact_lock(s.k) LIMIT 1) AS lock_slot`;
  if (then === undefined) return locks;
  // The caller's parameters follow the four above.
  const shifted = then.replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) + 4}`);
  return `SELECT l.*, x.* FROM (${locks}) AS l LEFT JOIN LATERAL (${shifted}) AS x ON true`;
}

export interface AcquireRequest {
  keys: Iterable<bigint>;
  /** Also a fleet slot (to charge or hold fleet series), unless one is held already. */
  slot?: boolean;
  /** A read to run in the same statement, after the locks. */
  then?: { sql: string; params: unknown[] };
}

export class TxLocks {
  private readonly q: Q;
  /** Keys held by requests of this batch that finished; they stay held until COMMIT. */
  private readonly held = new Set<bigint>();
  /** Keys taken by the request running now: released with its savepoint if it rolls back to one, else kept until COMMIT. */
  private current = new Set<bigint>();
  private slotStart: number;

  constructor(q: Q, slotStart = Math.floor(Math.random() * FLEET_SLOTS)) {
    this.q = q;
    this.slotStart = slotStart;
  }

  /** The request running now finished and its savepoint was released: its locks are the batch's. */
  keepCurrent(): void {
    for (const k of this.current) this.held.add(k);
    this.current = new Set();
  }

  /** The request running now was rolled back to its savepoint, which released its locks. */
  dropCurrent(): void {
    this.current = new Set();
  }

  holds(key: bigint): boolean {
    return this.held.has(key) || this.current.has(key);
  }

  private maxHeld(): bigint {
    let max = -1n;
    for (const k of this.held) if (k > max) max = k;
    for (const k of this.current) if (k > max) max = k;
    return max;
  }

  /** The fleet slot held (the lowest, if several), if any. */
  private heldSlot(): number | undefined {
    for (let slot = 0; slot < FLEET_SLOTS; slot++) if (this.holds(fleetSlotKey(slot))) return slot;
    return undefined;
  }

  /**
   * Locks every key not held yet (and a fleet slot if asked), in one round trip with the `then` read if any;
   * returns that read's rows (a row of nulls where it found none). Throws RetryInNextBatch if a key that may
   * not be waited for (one below a key held) is taken.
   */
  async acquire(request: AcquireRequest): Promise<Row[]> {
    const wanted = [...new Set(request.keys)].filter((k) => !this.holds(k)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const wantSlot = request.slot === true && this.heldSlot() === undefined;
    if (wanted.length === 0 && !wantSlot) return request.then ? this.q(request.then.sql, request.then.params) : [];
    const max = this.maxHeld();
    const tryKeys = wanted.filter((k) => k < max);
    const waitKeys = wanted.filter((k) => k > max);
    const slots = wantSlot ? Array.from({ length: FLEET_SLOTS }, (_, i) => (this.slotStart + i) % FLEET_SLOTS) : [];
    const rows = await this.q(acquireSql(request.then?.sql), [
      tryKeys.map(String), waitKeys.map(String), slots.map((s) => String(fleetSlotKey(s))), slots, ...(request.then?.params ?? []),
    ]);
    const row = rows[0];
    // Exactly the keys taken count as held, even when some tried key was not: they stay held until the
    // savepoint rolls back (the retry starts from nothing), or until COMMIT if the request has none.
    for (const k of waitKeys) this.current.add(k);
    const tried = (row?.lock_tried ?? []) as boolean[];
    tryKeys.forEach((k, i) => {
      if (tried[i] === true) this.current.add(k);
    });
    // The slot a statement took is held even if a tried key was refused (no savepoint may give it back).
    const slotTaken = wantSlot && row?.lock_slot !== null && row?.lock_slot !== undefined;
    if (slotTaken) this.current.add(fleetSlotKey(Number(row!.lock_slot)));
    if (tried.length !== tryKeys.length || tried.includes(false)) throw new RetryInNextBatch('a lock this request needs is held by another transaction');
    // Every slot is busy: wait for one (only above everything held, else retried in a later batch).
    if (wantSlot && !slotTaken) await this.acquire({ keys: [fleetSlotKey(this.slotStart)] });
    return rows;
  }

  /**
   * The keys reading or charging these series needs: each agent or session series, and every fleet slot if
   * `allSlots` and any series is a fleet one (a read of the fleet total). Writers of fleet series take one
   * slot (`AcquireRequest.slot`).
   */
  seriesKeys(series: Iterable<string>, options: { allSlots: boolean }): bigint[] {
    const keys: bigint[] = [];
    let fleet = false;
    for (const s of series) {
      if (isFleetSeries(s)) fleet = true;
      else keys.push(seriesLockKey(s));
    }
    if (fleet && options.allSlots) for (let slot = 0; slot < FLEET_SLOTS; slot++) keys.push(fleetSlotKey(slot));
    return keys;
  }

  /** The slot to charge fleet series through: one held (acquire with `slot: true` first). */
  chargingSlot(): number {
    const slot = this.heldSlot();
    if (slot === undefined) throw new Error('no fleet slot held');
    return slot;
  }
}
