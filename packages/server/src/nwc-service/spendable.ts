/**
 * NIP-47 get_balance for a session: what it may still spend over Lightning, read from the same window totals
 * policy reads (payments in flight and approvals held are counted, as policy counts them).
 *
 * The budgets counted are those that bound EVERY Lightning payment of the session, in the backend network's
 * bitcoin asset (msat): the sub-budgets of the session and of each session it derives from, and plain `budget` rules
 * of the fleet and agent policies (scope fleet, agent, or session: then on the session and on each ancestor) whose
 * `match`, if any, names nothing but actions / chains / assets / kinds that every Lightning payment has. A per-destination or per-origin budget, or one matching some payees or resources,
 * bounds only some payments: it is left out, and refuses the payments it covers when they would exceed it (the
 * error then names it). The balance is the least of what the counted budgets still allow; when the backend
 * reports its own spendable balance, and that is less, it is that. A payment holds its amount plus its routing
 * fee limit, so the largest invoice that fits is a little below the balance.
 *
 * With no budget and no balance from the backend there is no honest figure: get_balance is refused (the
 * documented choice; a client then learns the limit from a policy refusal).
 */
import { bitcoinAsset, BITCOIN_CHAINS, parseDuration, readAncestors, seriesFor, type AgentAuth, type LightningBackend, type Store, type WindowQuery } from '@airlock/core';

interface CountedBudget {
  max: bigint;
  query: WindowQuery;
}

const LIGHTNING_KINDS = ['lightning.payment', 'lightning.amountless_payment'];

/** The session's spendable msat, or undefined when neither a budget nor the backend bounds it. */
export async function spendableMsat(store: Store, backend: LightningBackend, auth: AgentAuth, now: number): Promise<bigint | undefined> {
  const chain = BITCOIN_CHAINS[backend.network];
  const asset = bitcoinAsset(chain);
  // A derived session is also bound by each ancestor's scope budgets, and a policy `scope: session` budget bounds
  // the session and each ancestor (each one's series holds its descendants' charges), as policy evaluates them.
  const ancestors = await readAncestors(store, auth.session);
  const series = { fleet: seriesFor.fleet(), agent: seriesFor.agent(auth.agent.id), session: seriesFor.session(auth.session.id) };
  const budgets: CountedBudget[] = [];
  for (const s of [auth.session, ...ancestors]) {
    for (const b of s.scope.budgets) {
      if (b.asset.toLowerCase() === asset) budgets.push({ max: BigInt(b.max), query: { series: seriesFor.session(s.id), asset, sinceMs: now - parseDuration(b.window) } });
    }
  }
  const lineage = [series.session, ...ancestors.map((a) => seriesFor.session(a.id))];
  for (const scope of ['fleet', `agent:${auth.agent.id}`]) {
    for (const rule of budgetRulesOf((await store.getPolicy(scope))?.document)) {
      if (rule.asset !== asset || !boundsEveryPayment(rule.match, chain, asset)) continue;
      for (const s of rule.scope === 'session' ? lineage : [series[rule.scope]]) budgets.push({ max: rule.max, query: { series: s, asset, sinceMs: now - rule.windowMs } });
    }
  }
  let least: bigint | undefined;
  if (budgets.length > 0) {
    const totals = await store.transaction((tx) => tx.windowTotals(budgets.map((b) => b.query)));
    for (const [i, b] of budgets.entries()) {
      const left = b.max - (totals[i]?.amount ?? 0n);
      const floor = left > 0n ? left : 0n;
      if (least === undefined || floor < least) least = floor;
    }
  }
  const wallet = await backend.balance?.().catch(() => undefined);
  if (wallet && (least === undefined || wallet.msat < least)) least = wallet.msat;
  return least;
}

interface BudgetRule {
  asset: string;
  max: bigint;
  windowMs: number;
  scope: 'fleet' | 'agent' | 'session';
  match?: Record<string, unknown>;
}

/** Plain budget rules of a stored (already validated) policy document. */
function budgetRulesOf(document: unknown): BudgetRule[] {
  const rules = (document as { rules?: unknown[] } | undefined)?.rules ?? [];
  const out: BudgetRule[] = [];
  for (const raw of rules) {
    const r = raw as Record<string, unknown>;
    if (r.type !== 'budget' || r.per_destination === true || r.per_origin === true) continue;
    const scope = (r.scope ?? 'agent') as BudgetRule['scope'];
    if (scope !== 'fleet' && scope !== 'agent' && scope !== 'session') continue;
    try {
      out.push({ asset: String(r.asset).toLowerCase(), max: BigInt(r.max as string), windowMs: parseDuration(String(r.window)), scope, ...(r.match ? { match: r.match as Record<string, unknown> } : {}) });
    } catch {
      continue; // validated when stored; a document from an older version that does not parse is left out
    }
  }
  return out;
}

/** Whether a budget's `match` covers every Lightning payment (fields that depend on the payment: no). */
function boundsEveryPayment(match: Record<string, unknown> | undefined, chain: string, asset: string): boolean {
  if (!match) return true;
  const has = (list: unknown, ...values: string[]) => Array.isArray(list) && values.every((v) => list.includes(v));
  return Object.entries(match).every(([field, value]) => {
    switch (field) {
      case 'actions':
        return has(value, 'lightning.pay');
      case 'chains':
        return has(value, chain);
      case 'assets':
        return has(value, asset);
      case 'kinds':
        return has(value, ...LIGHTNING_KINDS);
      default:
        return value === undefined;
    }
  });
}
