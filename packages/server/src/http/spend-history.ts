import { AirlockError, seriesFor, windowKey, type Agent, type WindowQuery, type WindowTotal } from '@airlock/core';
import type { Airlock } from '../runtime.ts';
import { budgetRulesOf, type BudgetRule } from './budget-utilisation.ts';

/** Buckets one answer may hold: the range is bounded, so is the work (one window read per bucket edge). */
export const MAX_SPEND_BUCKETS = 200;
/** Assets, and budget rules, one answer covers at most. */
export const MAX_SPEND_SERIES = 8;

export interface SpendHistoryQuery {
  /** The fleet, or one agent. */
  agent?: Agent;
  sinceMs: number;
  untilMs: number;
  bucketMs: number;
  /** Assets to chart besides those the scope's budget rules name (CAIP-19). */
  assets: readonly string[];
}

export interface SpendHistory {
  /** N + 1 bucket edges, ms since epoch; bucket i is [edges[i], edges[i+1]) and the last one ends at `until`. */
  edges: number[];
  assets: { asset: string; amounts: bigint[]; counts: number[] }[];
  /** Each plain budget rule of the scope: its use over its own window at every bucket end, and now. */
  budgets: { rule: string; asset: string; max: bigint; window: string; used: bigint; usedAt: bigint[] }[];
}

/**
 * Spend over time, from the ledger's running totals: W(t), the total a window starting at t sees, is the
 * series' head total minus its total before t, plus pending holds: their amounts count in every window and cancel in
 * every difference; their counts count in the windows their time is in, so a request waiting on a hold shows in the
 * count of the bucket it was made in (docs/console.md). So
 * - spend in a bucket [a, b) is W(a) - W(b): what was charged at a <= at < b;
 * - a budget's use at time t is W(t - window) - W(t): charges in [t - window, t), as policy counted them then,
 *   except for holds pending at that past moment (not kept); and its use now is W(now - window), holds
 *   included, which is exactly what policy reads for the next request.
 * Every W is one indexed seek per series (no scan of history), all in one read transaction.
 */
export async function spendHistory(airlock: Airlock, q: SpendHistoryQuery): Promise<SpendHistory> {
  const { store, clock } = airlock.deps;
  const now = clock.now();
  const count = Math.ceil((q.untilMs - q.sinceMs) / q.bucketMs);
  if (!(count >= 1 && count <= MAX_SPEND_BUCKETS)) {
    throw new AirlockError('invalid_request', `since..until holds ${count} buckets of this size; between 1 and ${MAX_SPEND_BUCKETS} are answered.`, { hints: ['Use a larger bucket or a shorter range.'] });
  }
  const edges = Array.from({ length: count + 1 }, (_, i) => Math.min(q.sinceMs + i * q.bucketMs, q.untilMs));

  const fleetRules = budgetRulesOf((await store.getPolicy('fleet'))?.document, 'fleet');
  const rules: BudgetRule[] = q.agent
    ? [...fleetRules, ...budgetRulesOf((await store.getPolicy(`agent:${q.agent.id}`))?.document, 'agent')].filter((r) => r.scope === 'agent')
    : fleetRules.filter((r) => r.scope === 'fleet');
  const budgets = rules.slice(0, MAX_SPEND_SERIES);
  const assets = [...new Set([...q.assets.map((a) => a.toLowerCase()), ...budgets.map((r) => r.asset)])].slice(0, MAX_SPEND_SERIES);
  const series = q.agent ? seriesFor.agent(q.agent.id) : seriesFor.fleet();

  const queries = new Map<string, WindowQuery>();
  const ask = (asset: string, sinceMs: number) => {
    const query = { series, asset, sinceMs };
    queries.set(windowKey(query), query);
    return windowKey(query);
  };
  const assetKeys = assets.map((asset) => edges.map((t) => ask(asset, t)));
  const budgetKeys = budgets.map((r) => ({ now: ask(r.asset, now - r.windowMs), at: edges.slice(1).map((t) => [ask(r.asset, t - r.windowMs), ask(r.asset, t)] as const) }));
  const list = [...queries.values()];
  const totals = list.length ? await store.transaction((tx) => tx.windowTotals(list)) : [];
  const byKey = new Map<string, WindowTotal>(list.map((query, i) => [windowKey(query), totals[i] ?? { amount: 0n, count: 0 }]));
  const W = (key: string) => byKey.get(key)!;

  return {
    edges,
    assets: assets.map((asset, a) => {
      const keys = assetKeys[a]!;
      const buckets = keys.slice(1).map((end, i) => ({ amount: W(keys[i]!).amount - W(end).amount, count: W(keys[i]!).count - W(end).count }));
      return { asset, amounts: buckets.map((b) => b.amount), counts: buckets.map((b) => b.count) };
    }),
    budgets: budgets.map((r, b) => ({
      rule: r.name,
      asset: r.asset,
      max: r.max,
      window: r.window,
      used: W(budgetKeys[b]!.now).amount,
      usedAt: budgetKeys[b]!.at.map(([start, end]) => W(start).amount - W(end).amount),
    })),
  };
}
