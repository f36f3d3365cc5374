import { parseDuration, seriesFor, type WindowQuery } from '@airlock/core';
import type { Airlock } from '../runtime.ts';

/** Active agents looked at per scrape: the per-agent series are the top N of these. */
export const BUDGET_AGENTS_SCANNED = 200;

export interface BudgetUtilisation {
  scope: 'fleet' | 'agent';
  /** Agent name for agent-scope budgets. */
  agent?: string;
  /** `<layer>/<rule name>` as violations name it: `fleet/daily-usdc`, `agent/usdc-daily`. */
  rule: string;
  asset: string;
  /** used / max over the rule's window (approval and payment holds included, as policy counts them). */
  ratio: number;
}

export interface BudgetRule {
  name: string;
  asset: string;
  max: bigint;
  windowMs: number;
  /** The window as written in the policy (`24h`). */
  window: string;
  scope: 'fleet' | 'agent';
}

/**
 * Budget use for the metrics scrape, read from the same window totals policy reads. Only plain budgets
 * (fleet or agent scope, no per-destination or per-origin split: those have a series per address and
 * would make cardinality unbounded), only the first BUDGET_AGENTS_SCANNED active agents, and of their
 * agent-scope budgets only the `topAgents` most used agents are returned. One read-only transaction.
 */
export async function budgetUtilisation(airlock: Airlock, options: { topAgents: number }): Promise<BudgetUtilisation[]> {
  const { store, clock } = airlock.deps;
  const now = clock.now();
  const fleetRules = budgetRulesOf((await store.getPolicy('fleet'))?.document, 'fleet');
  const agents = options.topAgents > 0 ? await store.listAgents({ status: 'active', limit: BUDGET_AGENTS_SCANNED }) : [];
  const questions: { query: WindowQuery; rule: BudgetRule; agent?: string }[] = [];
  for (const rule of fleetRules.filter((r) => r.scope === 'fleet')) {
    questions.push({ query: { series: seriesFor.fleet(), asset: rule.asset, sinceMs: now - rule.windowMs }, rule });
  }
  for (const agent of agents) {
    const own = budgetRulesOf((await store.getPolicy(`agent:${agent.id}`))?.document, 'agent');
    for (const rule of [...fleetRules, ...own].filter((r) => r.scope === 'agent')) {
      questions.push({ query: { series: seriesFor.agent(agent.id), asset: rule.asset, sinceMs: now - rule.windowMs }, rule, agent: agent.name });
    }
  }
  if (questions.length === 0) return [];
  const totals = await store.transaction((tx) => tx.windowTotals(questions.map((q) => q.query)));
  const rows = questions.map((q, i) => ({
    scope: q.rule.scope,
    ...(q.agent !== undefined ? { agent: q.agent } : {}),
    rule: q.rule.name,
    asset: q.rule.asset,
    ratio: q.rule.max === 0n ? 1 : Number(((totals[i]?.amount ?? 0n) * 1_000_000n) / q.rule.max) / 1_000_000,
  }));
  const fleet = rows.filter((r) => r.scope === 'fleet');
  const peakByAgent = new Map<string, number>();
  for (const r of rows) if (r.agent !== undefined) peakByAgent.set(r.agent, Math.max(peakByAgent.get(r.agent) ?? 0, r.ratio));
  const top = new Set([...peakByAgent.entries()].sort((a, b) => b[1] - a[1]).slice(0, options.topAgents).map(([name]) => name));
  return [...fleet, ...rows.filter((r) => r.agent !== undefined && top.has(r.agent))];
}

/** Plain budget rules of a stored (already validated) policy document. */
export function budgetRulesOf(document: unknown, layer: 'fleet' | 'agent'): BudgetRule[] {
  const rules = (document as { rules?: unknown[] } | undefined)?.rules ?? [];
  const out: BudgetRule[] = [];
  for (const raw of rules) {
    const r = raw as Record<string, unknown>;
    if (r.type !== 'budget' || r.per_destination === true || r.per_origin === true) continue;
    const scope = (r.scope ?? 'agent') as string;
    if (scope !== 'fleet' && scope !== 'agent') continue;
    let max: bigint;
    try {
      max = BigInt(r.max as string | number);
    } catch {
      continue; // validated when stored; a document from an older version that does not parse is left out
    }
    out.push({ name: `${layer}/${String(r.name ?? 'budget')}`, asset: String(r.asset).toLowerCase(), max, windowMs: parseDuration(String(r.window)), window: String(r.window), scope });
  }
  return out;
}
