import type { Approval, Intent, Spend } from '../intent.ts';
import { intentFacts, type IntentFacts } from './facts.ts';

/**
 * Requests that execute several calls (a Safe transaction, an ERC-4337 user operation, a module call), as the
 * restricting rules and the ledger see them (semantics §10/§11). The whole of such a request is a kind of its own
 * (`safe.transaction`, `erc4337.user_operation`) with no `call`, so a rule's `match` naming what the calls are
 * (`kinds: [erc20.transfer]`, `contracts`, `selectors`, `args`) would never touch it: these helpers let a
 * restriction on the whole see its calls.
 */

/** The calls a request executes, each an intent of its own (a Safe transaction's, a user operation's, a module's); none for other requests. */
export function innerCalls(intent: Intent): readonly Intent[] {
  return intent.safe?.calls ?? intent.userOperation?.calls ?? intent.module?.calls ?? [];
}

/** `all` without one occurrence of each of `taken` (compared field by field): what a request does beyond its calls. */
export function without<T>(all: readonly T[], taken: readonly T[]): T[] {
  const key = (x: T) => JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
  const left = new Map<string, number>();
  for (const t of taken) left.set(key(t), (left.get(key(t)) ?? 0) + 1);
  return all.filter((x) => {
    const n = left.get(key(x)) ?? 0;
    if (n === 0) return true;
    left.set(key(x), n - 1);
    return false;
  });
}

const factsCache = new WeakMap<Intent, IntentFacts>();

/** intentFacts, computed once per call object (rules ask about the same calls of a batch again and again). */
export function factsOf(intent: Intent): IntentFacts {
  let facts = factsCache.get(intent);
  if (!facts) factsCache.set(intent, (facts = intentFacts(intent)));
  return facts;
}

interface Touching {
  touches(intent: Intent, facts: IntentFacts): boolean;
}

/**
 * The parts of a request a `match` touches: the request itself when it touches it (then nothing else: the
 * request's amounts already hold its calls'), else each call that it touches, looking into the calls of a call
 * that it does not (a user operation's module call and the call the module executes). Empty: nothing touched.
 */
export function touchedParts(match: Touching, intent: Intent, facts: IntentFacts = factsOf(intent)): Intent[] {
  if (match.touches(intent, facts)) return [intent];
  return innerCalls(intent).flatMap((call) => touchedParts(match, call));
}

/** Whether a `match` touches the request or any call it executes (at any depth). */
export function touchesAnyPart(match: Touching, intent: Intent, facts: IntentFacts): boolean {
  return match.touches(intent, facts) || innerCalls(intent).some((call) => touchesAnyPart(match, call, factsOf(call)));
}

/**
 * The facts a per-request amount rule (`max_amount`, an amount `approval_tier`) judges for a `match` on a
 * request: the request's own when the match touches it (or there is no match); when it touches only some of the
 * calls a batch executes, those calls' spends and approvals added up (a cap of 25 USDC per `erc20.transfer`
 * sees the sum of the batch's transfers, not its other calls); undefined when it touches no part.
 */
export function matchedFacts(match: Touching | undefined, intent: Intent, facts: IntentFacts): IntentFacts | undefined {
  if (match === undefined || match.touches(intent, facts)) return facts;
  const parts = innerCalls(intent).flatMap((call) => touchedParts(match, call));
  if (parts.length === 0) return undefined;
  return intentFacts({ ...intent, spends: parts.flatMap((p) => p.spends), approvals: parts.flatMap((p) => p.approvals) });
}

/**
 * Whether a `match` touches every part of a request that moves or approves `asset` (its network fee aside), each
 * part judged on its own: a request that executes no call is one part; a batch's parts are its calls, at any depth
 * (a Safe gas refund among them), and what it moves itself beyond them (a module call's own value), which no call
 * judged, so it is never covered. A match can touch a batch as a whole through one call (`to` names any party), so
 * this is what tells a quorum tier that judged the whole asset from one that judged part (approvals/quorum.ts; found
 * by review: compared as amounts, an unlimited router approve equalled the whole request's unlimited amount).
 */
export function touchesEveryPartMoving(match: Touching, intent: Intent, asset: string): boolean {
  const calls = innerCalls(intent);
  if (calls.length === 0) return !movesAsset(intent.spends, intent.approvals, asset) || match.touches(intent, factsOf(intent));
  const ownSpends = without(intent.spends.filter((s) => s.kind !== 'fee'), calls.flatMap((c) => c.spends));
  const ownApprovals = without(intent.approvals, calls.flatMap((c) => c.approvals));
  if (movesAsset(ownSpends, ownApprovals, asset)) return false;
  return calls.every((call) => touchesEveryPartMoving(match, call, asset));
}

/** Whether these spends (fees aside) or approvals move or approve `asset` (lowercase). */
function movesAsset(spends: readonly Spend[], approvals: readonly Approval[], asset: string): boolean {
  return spends.some((s) => s.kind !== 'fee' && s.asset.toLowerCase() === asset) || approvals.some((a) => a.asset.toLowerCase() === asset);
}

/**
 * The calls a request executes, one level below the other (a user operation's module call counts as the calls
 * the module makes its account execute); a Safe gas refund is the fee, not a call. A request that executes no
 * call is one call itself.
 */
function executedCalls(intent: Intent): Intent[] {
  const calls = innerCalls(intent);
  if (calls.length === 0) return [intent];
  const out = calls.filter((c) => c.kind !== 'safe.gas_refund').flatMap(executedCalls);
  return out.length > 0 ? out : [intent];
}

/**
 * How many requests a request counts as in the request-count series (asset `*`) and in rate limits: one, or for
 * a request that executes several calls, one per call (the calls sent one by one would have counted as many).
 * The charge (ledgerWritesFor) and the rate_limit check use this same figure.
 */
export function requestCount(intent: Intent): number {
  return executedCalls(intent).length;
}

/**
 * Per destination of the request (`facts.destinations`): how many of its calls pay or approve that destination
 * (at least one). What the per-destination request counts are charged and checked with.
 */
export function requestCountByDestination(intent: Intent, facts: IntentFacts): ReadonlyMap<string, number> {
  const counts = new Map<string, number>();
  const calls = executedCalls(intent);
  if (calls.length > 1 || calls[0] !== intent) {
    for (const call of calls) for (const to of factsOf(call).destinations) counts.set(to, (counts.get(to) ?? 0) + 1);
  }
  const out = new Map<string, number>();
  for (const to of facts.destinations) out.set(to, Math.max(1, counts.get(to) ?? 0));
  return out;
}
