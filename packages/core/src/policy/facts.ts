import type { Intent } from '../intent.ts';

/**
 * What rules need to know about an intent, computed once per evaluation so that a hundred rules
 * do not each re-walk spends and approvals.
 */
export interface IntentFacts {
  /** Main counterparty (lowercase), when there is one. */
  to: string | undefined;
  /** Call target (lowercase), for `contract.call` and friends. */
  contract: string | undefined;
  /**
   * Per asset: every spend (network fees included) plus every bounded approval. Unlimited approvals
   * are not amounts; the approvals rule governs them.
   */
  requestedByAsset: ReadonlyMap<string, bigint>;
  /** Unique destinations that receive value or allowance: spend recipients and approval spenders. */
  destinations: readonly string[];
  /** Per destination, per asset: the same sums restricted to what goes to that destination. */
  requestedByDestination: ReadonlyMap<string, ReadonlyMap<string, bigint>>;
  /** Every counterparty: `intent.to` plus the destinations. */
  counterparties: readonly string[];
  /** Assets the intent moves or approves (network fees excluded); what `match.assets` looks at. */
  movedAssets: readonly string[];
}

function add(map: Map<string, bigint>, asset: string, amount: bigint): void {
  map.set(asset, (map.get(asset) ?? 0n) + amount);
}

export function intentFacts(intent: Intent): IntentFacts {
  const requestedByAsset = new Map<string, bigint>();
  const requestedByDestination = new Map<string, Map<string, bigint>>();
  const moved = new Set<string>();
  const destinationMap = (to: string) => {
    let m = requestedByDestination.get(to);
    if (!m) requestedByDestination.set(to, (m = new Map()));
    return m;
  };
  for (const s of intent.spends) {
    add(requestedByAsset, s.asset, s.amount);
    if (s.kind !== 'fee') moved.add(s.asset);
    if (s.to !== undefined) add(destinationMap(s.to.toLowerCase()), s.asset, s.amount);
  }
  for (const a of intent.approvals) {
    moved.add(a.asset);
    const perAsset = destinationMap(a.spender.toLowerCase());
    if (a.unlimited) continue;
    add(requestedByAsset, a.asset, a.amount);
    add(perAsset, a.asset, a.amount);
  }
  const to = intent.to?.toLowerCase();
  const destinations = [...requestedByDestination.keys()];
  const counterparties = to === undefined || requestedByDestination.has(to) ? destinations : [to, ...destinations];
  return {
    to,
    contract: intent.call?.contract.toLowerCase(),
    requestedByAsset,
    destinations,
    requestedByDestination,
    counterparties,
    movedAssets: [...moved],
  };
}
