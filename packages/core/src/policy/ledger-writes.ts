import type { LedgerWrite } from '../ports/ledger.ts';
import { COUNT_ASSET, seriesFor } from '../ports/ledger.ts';
import { requestCount, requestCountByDestination } from './calls.ts';
import { intentFacts } from './facts.ts';
import type { EvaluationInput } from './rules/index.ts';


/**
 * The standard series an allowed (or held) request charges, so that any budget or rate limit,
 * including one added later, can be answered from history (ports/ledger.ts):
 * fleet, agent and session (and each ancestor of a child session) get one write per asset plus a count (1, or one
 * per call of a request that executes several: calls.ts requestCount);
 * fleet|to and agent|to get the
 * same per destination. Amounts: spends (fees included) plus bounded approvals.
 */
export function ledgerWritesFor(input: EvaluationInput): LedgerWrite[] {
  const facts = intentFacts(input.intent);
  const writes = new Map<string, LedgerWrite>();
  const charge = (series: string, asset: string, amount: bigint, count = 1) => {
    const key = `${series}\u0000${asset}`;
    const existing = writes.get(key);
    // Merge duplicates: the same series and asset is charged once with the sum.
    if (existing) existing.amount += amount;
    else writes.set(key, { series, asset, amount, count });
  };
  // The request count (asset `*`): one per request, one per call for a request that executes several (calls.ts),
  // the figure the rate_limit check adds to what the window holds.
  const requests = requestCount(input.intent);
  const requestsTo = requestCountByDestination(input.intent, facts);

  const agent = seriesFor.agent(input.agentId);
  const sessions = [input.sessionId, ...(input.sessionAncestors ?? [])].map(seriesFor.session);
  for (const series of [seriesFor.fleet(), agent, ...sessions]) {
    for (const [asset, amount] of facts.requestedByAsset) charge(series, asset, amount);
    charge(series, COUNT_ASSET, 0n, requests);
  }
  for (const [to, amounts] of facts.requestedByDestination) {
    for (const series of [seriesFor.withDestination(seriesFor.fleet(), to), seriesFor.withDestination(agent, to)]) {
      for (const [asset, amount] of amounts) charge(series, asset, amount);
      charge(series, COUNT_ASSET, 0n, requestsTo.get(to) ?? 1);
    }
  }
  // x402 payments that name a resource also charge the origin and resource series (per_origin,
  // per_resource, loop_guard read them).
  const payment = input.intent.payment;
  if (payment?.origin !== undefined) {
    for (const series of [seriesFor.withOrigin(seriesFor.fleet(), payment.origin), seriesFor.withOrigin(agent, payment.origin)]) {
      for (const [asset, amount] of facts.requestedByAsset) charge(series, asset, amount);
      charge(series, COUNT_ASSET, 0n, requests);
    }
  }
  if (payment?.resource !== undefined) charge(seriesFor.withResource(agent, payment.resource), COUNT_ASSET, 0n, requests);
  // Nostr events also count per kind (rate_limit per_nostr_kind reads these).
  const eventKind = input.intent.nostr?.eventKind;
  if (eventKind !== undefined) {
    for (const series of [seriesFor.withNostrKind(seriesFor.fleet(), eventKind), seriesFor.withNostrKind(agent, eventKind)]) charge(series, COUNT_ASSET, 0n, requests);
  }
  return [...writes.values()];
}

/**
 * The request-count writes alone: what a replay charges. A replay re-releases a signature already charged,
 * so it moves no new value, but rate limits and the loop guard count every signature released.
 */
export function countWritesFor(input: EvaluationInput): LedgerWrite[] {
  return ledgerWritesFor(input).filter((w) => w.asset === COUNT_ASSET);
}
