import { INTENT_KINDS, type Intent, type IntentKind } from '../intent.ts';
import { normaliseParty } from './party.ts';

/**
 * Typed-data kinds that move or expose tokens. Signed over a domain without `chainId`, such a
 * signature is valid on every chain where the verifying contract lives, so it is refused unless an
 * allow rule opts in (semantics §4).
 */
const VALUE_MOVING_TYPED_DATA: ReadonlySet<IntentKind> = new Set(INTENT_KINDS.filter((k) => /^(eip3009|eip2612|dai|permit2)\./.test(k)));

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
  /**
   * Per asset (lowercase): the largest unlimited approval of it, as encoded (max uint256, max uint160, …). Not an
   * amount a budget can charge: an unlimited approval is signed only where an `approvals` rule allows unlimited
   * ones, and it exceeds every `max_amount` and `approval_tier` of its asset.
   */
  unlimitedApprovals: ReadonlyMap<string, bigint>;
  /** Unique destinations that receive value or allowance: spend recipients and approval spenders. */
  destinations: readonly string[];
  /** Per destination, per asset: the same sums restricted to what goes to that destination. */
  requestedByDestination: ReadonlyMap<string, ReadonlyMap<string, bigint>>;
  /** Every counterparty: `intent.to` plus the destinations. What a destinations allowlist must cover. */
  counterparties: readonly string[];
  /**
   * What an allow rule's `to` must list. A Bitcoin transaction: every counterparty (it has no single main one).
   * Elsewhere the main counterparty and everyone else the request pays or lets spend (a transaction whose calldata
   * reads transfer(partner, 1) sends its native value to its own target, an address the agent chose: found by
   * review), but not what comes back to the agent itself (a swap's declared spend to its own recipient); none
   * without a main counterparty (a Safe refund to tx.origin among them), which no list covers.
   */
  listedByTo: readonly string[];
  /**
   * Every address the intent names as a party: the counterparties, the call target and the x402
   * `payTo`. What a deny reading (`to` in a deny match, a destinations denylist) looks at.
   */
  parties: readonly string[];
  /**
   * Assets the intent moves or approves; what `match.assets` looks at. Network fees (a transaction's gas, a user
   * operation's prefund, a Lightning routing fee, a Bitcoin fee) are left out; a Safe gas refund is not a network
   * fee (the Safe pays it to a receiver, in any token) and counts.
   */
  movedAssets: readonly string[];
  /** Every chain the intent names (CAIP-2): the request chain, the EIP-712 domain chainId, the x402 network. */
  chains: readonly string[];
  /**
   * Typed data that moves or exposes tokens over an EIP-712 domain without `chainId`: the signature
   * is valid on every chain. Refused unless an allow rule opts in; counts as on every chain for
   * deny rules and `chains` rules.
   */
  chainlessValueMoving: boolean;
  /**
   * An EIP-7702 authorization with chain id 0 signed by this request: valid on every chain, the request's
   * chainId only the agent's label for it. Granted by a `delegations` rule with `allow_any_chain`; an allow
   * rule that lists chains does not cover it.
   */
  anyChainAuthorization: boolean;
  /**
   * The signature is valid on every chain, whatever chain the request names: value-moving typed data over an
   * EIP-712 domain without chainId, any typed data whose domain names a verifying contract but no chainId
   * (unknown typed data may move value too, wherever that contract lives), or an authorization with chain id 0.
   * No `chains` rule list covers it and a deny naming any chain touches it. (Typed data naming neither, such as
   * a Snapshot vote, is verified off chain: the request's chain is its label.)
   */
  everyChain: boolean;
  /**
   * Value goes to a recipient no one can name at signing: a Safe gas refund with refundReceiver zero pays
   * tx.origin, whoever submits the transaction (a call of the request, or the request itself). As `everyChain`
   * for chains: no destinations allowlist covers it, and a deny reading (`to` in a deny match, a destinations
   * denylist) counts it as touched, since it may be any address, listed ones included.
   */
  unknownRecipient: boolean;
}

/** A Safe gas refund to refundReceiver zero (no `to`: tx.origin), as the refund call or among a request's calls. */
function paysUnknownRecipient(intent: Intent): boolean {
  if (intent.kind === 'safe.gas_refund') return intent.to === undefined;
  return intent.safe?.calls.some(paysUnknownRecipient) ?? false;
}

/**
 * An authorization this signature creates with chain id 0. (A type-4 transaction's list carries entries
 * signed before; signing the transaction signs none of them.)
 */
function anyChainAuthorization(intent: Intent): boolean {
  return intent.kind === 'eip7702.authorization' && (intent.delegation?.authorizations.some((a) => a.chainId === 0) ?? false);
}

/** Typed data a contract verifies (its domain names one) over a domain without chainId: replayable on every chain. */
function chainlessVerifiedOnChain(intent: Intent): boolean {
  const domain = intent.typedData?.domain;
  return domain !== undefined && domain.chainId === undefined && domain.verifyingContract !== undefined;
}

function add(map: Map<string, bigint>, asset: string, amount: bigint): void {
  map.set(asset, (map.get(asset) ?? 0n) + amount);
}

export function intentFacts(intent: Intent): IntentFacts {
  const requestedByAsset = new Map<string, bigint>();
  const unlimitedApprovals = new Map<string, bigint>();
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
    if (s.to !== undefined) add(destinationMap(normaliseParty(s.to)), s.asset, s.amount);
  }
  for (const a of intent.approvals) {
    moved.add(a.asset);
    const perAsset = destinationMap(normaliseParty(a.spender));
    if (a.unlimited) {
      const asset = a.asset.toLowerCase();
      if (a.amount > (unlimitedApprovals.get(asset) ?? -1n)) unlimitedApprovals.set(asset, a.amount);
      continue;
    }
    add(requestedByAsset, a.asset, a.amount);
    add(perAsset, a.asset, a.amount);
  }
  const to = intent.to === undefined ? undefined : normaliseParty(intent.to);
  const contract = intent.call?.contract.toLowerCase();
  const destinations = [...requestedByDestination.keys()];
  const counterparties = to === undefined || requestedByDestination.has(to) ? destinations : [to, ...destinations];
  const self = normaliseParty(intent.from);
  const listedByTo = intent.bitcoin ? counterparties : to === undefined ? [] : counterparties.filter((p) => p === to || p !== self);
  const parties = new Set(counterparties);
  if (contract !== undefined) parties.add(contract);
  if (intent.payment) parties.add(normaliseParty(intent.payment.payTo));

  const anyChain = anyChainAuthorization(intent);
  const chainlessValueMoving = intent.typedData !== undefined && intent.typedData.domain.chainId === undefined && VALUE_MOVING_TYPED_DATA.has(intent.kind);
  const chains = new Set([intent.chain]);
  const domainChainId = intent.typedData?.domain.chainId;
  if (domainChainId !== undefined) chains.add(`eip155:${domainChainId}`);
  if (intent.payment) chains.add(intent.payment.network);
  return {
    to,
    contract,
    requestedByAsset,
    unlimitedApprovals,
    destinations,
    requestedByDestination,
    counterparties,
    listedByTo,
    parties: [...parties],
    movedAssets: [...moved],
    chains: [...chains],
    chainlessValueMoving,
    anyChainAuthorization: anyChain,
    everyChain: anyChain || chainlessValueMoving || chainlessVerifiedOnChain(intent),
    unknownRecipient: paysUnknownRecipient(intent),
  };
}
