/**
 * A brute-force reference for the ledger, for the store tests: it keeps every charge per (series, asset)
 * with the time the rule gives it (the requested time, or the series' last time if later) and sums a
 * window by scanning. Whatever the store's layout, its window totals must equal these, at every boundary.
 * Until schema 008 "the series' last time" was that of the (series, asset) pair; the model can replay that
 * rule to build the old layout for the upgrade tests.
 */
import { COUNT_ASSET, type LedgerWrite, type WindowQuery, type WindowTotal } from '@airlock/core';

import { prng } from '../../../testing/prng.ts';

export interface Charge {
  writes: LedgerWrite[];
  at: number;
  auditSeq: number;
}

export const USDC = 'eip155:8453/erc20:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
export const ETH = 'eip155:8453/slip44:60';

export const DAI = 'eip155:8453/erc20:0x50c5725949a6f0c72e6c4a641f24049a917db0cb';

/**
 * `count` charges the way signatures charge: fleet, an agent, one of its sessions, per-destination series,
 * each with amounts and a request count; times mostly move forward (often several at the same ms) and
 * sometimes jump back (clock skew), amounts sometimes beyond 2^64. `mixedAssets`: a charge moves USDC or
 * DAI, with or without a fee, so a series' assets are charged in some entries and not others. `junkAssets`: a
 * charge also moves one of that many other tokens.
 */
export function generateCharges(seed: number, count: number, startAt = 1_000_000, options: { mixedAssets?: boolean; junkAssets?: number } = {}): Charge[] {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const agents = ['ag_a', 'ag_b', 'ag_c', 'ag_d'];
  const destinations = ['0x' + '11'.repeat(20), '0x' + '22'.repeat(20), '0x' + '33'.repeat(20)];
  const charges: Charge[] = [];
  let clock = startAt;
  for (let i = 0; i < count; i++) {
    const r = rand();
    clock += r < 0.3 ? 0 : r < 0.9 ? Math.floor(rand() * 5_000) : 60_000;
    const at = rand() < 0.1 ? clock - Math.floor(rand() * 20_000) : clock; // skewed writers land at the head time
    const agent = pick(agents);
    const session = `ses_${agent}_${Math.floor(rand() * 2)}`;
    const amount = rand() < 0.05 ? 2n ** 70n + BigInt(i) : BigInt(1 + Math.floor(rand() * 1_000_000));
    const fee = BigInt(Math.floor(rand() * 1_000));
    const token = options.mixedAssets && rand() < 0.3 ? DAI : USDC;
    const paysFee = !options.mixedAssets || rand() < 0.6;
    const writes: LedgerWrite[] = [];
    // One of a pool of worthless tokens as well: more assets than a series' entries keep.
    const junk = options.junkAssets ? `eip155:8453/erc20:0x${Math.floor(rand() * options.junkAssets).toString(16).padStart(40, '0')}` : undefined;
    for (const series of ['fleet', `agent:${agent}`, `session:${session}`]) {
      writes.push({ series, asset: token, amount, count: 1 }, { series, asset: COUNT_ASSET, amount: 0n, count: 1 });
      if (paysFee) writes.push({ series, asset: ETH, amount: fee, count: 1 });
      if (junk) writes.push({ series, asset: junk, amount: amount % 1000n, count: 1 });
    }
    const to = pick(destinations);
    for (const series of [`fleet|to:${to}`, `agent:${agent}|to:${to}`]) {
      writes.push({ series, asset: token, amount, count: 1 }, { series, asset: COUNT_ASSET, amount: 0n, count: 1 });
    }
    charges.push({ writes, at, auditSeq: i + 1 });
  }
  return charges;
}

/** Per (series, asset): every entry with its clamped time, and the raw rows the pre-008 code wrote. */
export class LedgerModel {
  private readonly entries = new Map<string, { series: string; asset: string; rows: { seq: number; at: number; amount: bigint; count: number; cumAmount: bigint; cumCount: number; auditSeq: number }[] }>();
  /** The last time of each series, over all its assets. */
  private readonly lastAt = new Map<string, number>();
  /** Whose last time a late charge is clamped to: its series' (schema 008 on) or its (series, asset)'s (before). */
  clampTo: 'series' | 'pair';

  constructor(clampTo: 'series' | 'pair' = 'series') {
    this.clampTo = clampTo;
  }

  append(writes: LedgerWrite[], at: number, auditSeq: number): void {
    const merged = new Map<string, LedgerWrite>();
    for (const w of writes) {
      const key = `${w.series}\u0000${w.asset}`;
      const prev = merged.get(key);
      merged.set(key, prev ? { ...prev, amount: prev.amount + w.amount, count: prev.count + w.count } : { ...w });
    }
    for (const [key, w] of merged) {
      let series = this.entries.get(key);
      if (!series) this.entries.set(key, (series = { series: w.series, asset: w.asset, rows: [] }));
      const head = series.rows.at(-1);
      const last = this.clampTo === 'series' ? this.lastAt.get(w.series) : head?.at;
      const clamped = last === undefined ? at : Math.max(at, last);
      this.lastAt.set(w.series, Math.max(clamped, this.lastAt.get(w.series) ?? clamped));
      series.rows.push({
        seq: (head?.seq ?? 0) + 1,
        at: clamped,
        amount: w.amount,
        count: w.count,
        cumAmount: (head?.cumAmount ?? 0n) + w.amount,
        cumCount: (head?.cumCount ?? 0) + w.count,
        auditSeq,
      });
    }
  }

  total(q: WindowQuery): WindowTotal {
    let amount = 0n;
    let count = 0;
    for (const row of this.entries.get(`${q.series}\u0000${q.asset}`)?.rows ?? []) {
      if (row.at >= q.sinceMs) (amount += row.amount), (count += row.count);
    }
    return { amount, count };
  }

  /** Every (series, asset), each row as the `ledger` table of schemas 006-007 held it (for the upgrade tests). */
  series() {
    return [...this.entries.values()];
  }

  /**
   * Window queries at every boundary the history has: at, just before and just after each distinct time
   * of each series (sampled to `perSeries`), the start of time, and after the last entry; plus a series
   * nobody charged.
   */
  boundaryQueries(perSeries = 40): WindowQuery[] {
    const queries: WindowQuery[] = [{ series: 'agent:nobody', asset: USDC, sinceMs: 0 }];
    for (const { series, asset, rows } of this.entries.values()) {
      const times = [...new Set(rows.map((r) => r.at))];
      const step = Math.max(1, Math.floor(times.length / perSeries));
      const sinces = new Set<number>([0, times.at(-1)! + 1]);
      for (let i = 0; i < times.length; i += step) for (const d of [-1, 0, 1]) sinces.add(times[i]! + d);
      for (const sinceMs of sinces) queries.push({ series, asset, sinceMs });
    }
    return queries;
  }
}
