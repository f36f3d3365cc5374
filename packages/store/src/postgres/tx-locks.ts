import { createHash } from 'node:crypto';
import { RetryInNextBatch } from '../shared/group-commit.ts';
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
export const FLEET_SLOTS = 8;

const CLASS_AGENT = 1n;
const CLASS_SERIES = 2n;
const CLASS_FLEET_SLOT = 3n;

function keyOf(cls: bigint, name: string): bigint {
  const digest = createHash('sha256').update(name).digest();
  // 7 bytes of hash under the class byte: a positive int8, ordered by class first.
  return (cls << 56n) | digest.readBigUInt64BE(0) >> 8n;
}

export const agentLockKey = (agentId: string) => keyOf(CLASS_AGENT, agentId);
export const seriesLockKey = (series: string) => keyOf(CLASS_SERIES, series);
export const fleetSlotKey = (slot: number) => (CLASS_FLEET_SLOT << 56n) | BigInt(slot);

/** Fleet-wide series (`fleet`, `fleet|to:...`, `fleet|origin:...`) are striped; agent and session series are not. */
export const isFleetSeries = (series: string) => series === 'fleet' || series.startsWith('fleet|');
/** The physical series of one stripe of a fleet series. */
export const fleetShard = (series: string, slot: number) => `${series}#${slot}`;

/**
 * Tries `tryKeys` (without waiting) and waits for `waitKeys` in ascending order, in one round trip. Keys
 * are passed as text: int8 parameters do not survive a JavaScript number.
 */
const ACQUIRE = `SELECT (SELECT bool_and(pg_try_advisory_xact_lock(k)) FROM unnest($1::int8[]) AS k) AS tried,
                        (SELECT count(pg_advisory_xact_lock(k)) FROM unnest($2::int8[]) AS k) AS waited`;

/** Tries each slot in the given order and keeps the first one free; no waiting. */
const TRY_ONE_SLOT = `SELECT s.slot FROM unnest($1::int8[], $2::int[]) AS s(k, slot) WHERE pg_try_advisory_xact_lock(s.k) LIMIT 1`;

export class TxLocks {
  private readonly q: Q;
  /** Keys held by requests of this batch that finished; they stay held until COMMIT. */
  private readonly held = new Set<bigint>();
  /** Keys taken by the request running now: released with its savepoint if it rolls back. */
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

  private holds(key: bigint): boolean {
    return this.held.has(key) || this.current.has(key);
  }

  private maxHeld(): bigint {
    let max = -1n;
    for (const k of this.held) if (k > max) max = k;
    for (const k of this.current) if (k > max) max = k;
    return max;
  }

  /** Locks every key not held yet; throws RetryInNextBatch if one that may not be waited for is taken. */
  async lock(keys: Iterable<bigint>): Promise<void> {
    const wanted = [...new Set(keys)].filter((k) => !this.holds(k)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (wanted.length === 0) return;
    const max = this.maxHeld();
    const tryKeys = wanted.filter((k) => k < max);
    const waitKeys = wanted.filter((k) => k > max);
    const [row] = await this.q(ACQUIRE, [tryKeys.map(String), waitKeys.map(String)]);
    // A partly acquired set stays held until the savepoint rolls back; the retry starts from nothing.
    for (const k of waitKeys) this.current.add(k);
    if (row?.tried === false) throw new RetryInNextBatch('a lock this request needs is held by another transaction');
    for (const k of tryKeys) this.current.add(k);
  }

  lockAgent(agentId: string): Promise<void> {
    return this.lock([agentLockKey(agentId)]);
  }

  /**
   * Locks what reading or charging these series needs: each agent or session series, and every fleet slot
   * if any series is a fleet one and `allSlots` (a read of the fleet total). Writers of fleet series take one
   * slot through `fleetSlot`.
   */
  lockSeries(series: Iterable<string>, options: { allSlots: boolean }): Promise<void> {
    const keys: bigint[] = [];
    let fleet = false;
    for (const s of series) {
      if (isFleetSeries(s)) fleet = true;
      else keys.push(seriesLockKey(s));
    }
    if (fleet && options.allSlots) for (let slot = 0; slot < FLEET_SLOTS; slot++) keys.push(fleetSlotKey(slot));
    return this.lock(keys);
  }

  /** The fleet slot this transaction writes fleet series through: one it holds already, else a free one. */
  async fleetSlot(): Promise<number> {
    for (let slot = 0; slot < FLEET_SLOTS; slot++) if (this.holds(fleetSlotKey(slot))) return slot;
    const order = Array.from({ length: FLEET_SLOTS }, (_, i) => (this.slotStart + i) % FLEET_SLOTS);
    const [row] = await this.q(TRY_ONE_SLOT, [order.map((s) => String(fleetSlotKey(s))), order]);
    if (row) {
      const slot = Number(row.slot);
      this.current.add(fleetSlotKey(slot));
      return slot;
    }
    // Every slot is busy: wait for one (allowed only above everything held, else retried in a later batch).
    await this.lock([fleetSlotKey(this.slotStart)]);
    return this.slotStart;
  }
}
