// The revocation planner (issue 14, section 3): a reconciled dependency map in, the on-chain steps that undo
// every grant still live out. Pure: no I/O, no clock (the caller passes chain time), no keys. Each step is a
// call the agent's own address sends (`to`, `data`, value 0), or a typed-data signature the agent's key must
// give first plus `buildCall`, which turns that signature into the call. Grants read `live: false` need nothing;
// `live: 'unknown'` (and a map never reconciled) are planned like live ones: revoking what is already dead
// costs gas, leaving a live grant costs the funds. What cannot be planned is returned with a reason.
import { addressWord, bytes32Word, encodeCall, SELECTORS, uintWord } from './abi-words.ts';
import type { DependencyMap, MappedAuthorization, MappedGrant } from './dependency-map.ts';
import type { RecordedDomain } from './grants.ts';

/** Which grant or authorization a step undoes. */
export type GrantRef = { auditSeq: number; index: number; kind: string } | { paymentId: string; auditSeq: number; kind: 'eip3009.authorization' };

export interface PlannedCall {
  /** CAIP-2 chain the call is sent on. */
  chain: string;
  to: string;
  data: string;
  value: 0n;
}

/** EIP-712 typed data as Airlock's `evm.typed_data` action takes it (`typedData` of the request body); uints are decimal strings, bools (DAI's `allowed`) booleans. */
export interface RevocationTypedData {
  /** No `chainId` only to cancel a chainless EIP-3009 authorization: the token checks the cancellation under the domain the authorization used. */
  domain: { name?: string; version?: string; chainId?: number; verifyingContract: string };
  types: Record<string, { name: string; type: string }[]>;
  primaryType: string;
  message: Record<string, string | boolean>;
}

export type RevocationStep =
  | { type: 'transaction'; purpose: string; grants: GrantRef[]; call: PlannedCall }
  | {
    type: 'signature_then_transaction';
    purpose: string;
    grants: GrantRef[];
    /** CAIP-2 chain the call is sent on (the typed data may name none). */
    chain: string;
    /** Signed by the owner (the agent's key) first. */
    typedData: RevocationTypedData;
    /** The call that consumes the signature (65-byte r‖s‖v hex), sent by the owner. */
    buildCall(signature: string): PlannedCall;
  };

export interface UnplannedRevocation {
  purpose: string;
  /** Stable: `not_evm`, `domain_unknown`, `domain_unsupported`, `nonce_range_too_large`, `nonce_unknown`, `chainless_other_chains`. */
  reason: string;
  message: string;
  grants: GrantRef[];
}

export interface RevocationPlan {
  agentId: string;
  owner: string;
  steps: RevocationStep[];
  unplanned: UnplannedRevocation[];
  /** Grants the chain showed dead (`live: false`): nothing to do. */
  alreadyDead: GrantRef[];
}

export interface PlanOptions {
  /** Unix seconds: the deadline of burn permits (EIP-2612 deadline, DAI expiry). Default: `nowSeconds` + 1 hour. */
  deadline?: number;
  nowSeconds: number;
  /** The most EIP-2612 (or DAI) permit nonces burnt on one token (each is a signature and a transaction). Default 16. */
  maxPermitBurns?: number;
}

const MAX_UINT16 = 65_535n;

/** The revocation steps for `map`, in order: signatures to obtain first (EIP-3009 cancels, EIP-2612 and DAI permit burns), Permit2 invalidations and lockdowns, then ERC-20 approve(spender, 0). */
export function planRevocations(map: DependencyMap, options: PlanOptions): RevocationPlan {
  const owner = map.agent.address;
  const plan: RevocationPlan = { agentId: map.agent.id, owner, steps: [], unplanned: [], alreadyDead: [] };
  const grants: MappedGrant[] = [];
  for (const g of map.grants) {
    if (g.live === false) plan.alreadyDead.push(grantRef(g));
    else if (!g.chain.startsWith('eip155:')) plan.unplanned.push({ purpose: `revoke ${g.kind} to ${g.spender}`, reason: 'not_evm', message: `${g.chain} is not an EVM chain.`, grants: [grantRef(g)] });
    else grants.push(g);
  }
  const authorizations: MappedAuthorization[] = [];
  for (const a of map.authorizations) {
    if (a.live === false) plan.alreadyDead.push(authRef(a));
    else authorizations.push(a);
  }

  for (const a of authorizations) planCancelAuthorization(plan, a);
  for (const g of grants.filter((g) => g.kind === 'eip3009.authorization')) planChainlessCancel(plan, g, options);
  planPermitBurns(plan, grants.filter((g) => g.kind === 'eip2612.permit'), options, 'eip2612');
  planPermitBurns(plan, grants.filter((g) => g.kind === 'dai.permit'), options, 'dai');
  planPermit2NonceInvalidations(plan, grants.filter((g) => g.kind === 'permit2.permit' && outstandingSignature(g)));
  planPermit2UnorderedInvalidations(plan, grants.filter((g) => g.kind === 'permit2.transfer'));
  planPermit2Lockdowns(plan, grants.filter((g) => g.kind === 'permit2.permit' || g.kind === 'permit2.approve'));
  planErc20ZeroApprovals(plan, grants.filter((g) => g.kind === 'erc20.approve' || g.kind === 'erc20.increase_allowance' || g.kind === 'eip2612.permit' || g.kind === 'dai.permit'));
  return plan;
}

function grantRef(g: MappedGrant): GrantRef {
  return { auditSeq: g.auditSeq, index: g.index, kind: g.kind };
}

function authRef(a: MappedAuthorization): GrantRef {
  return { paymentId: a.paymentId, auditSeq: a.auditSeq, kind: 'eip3009.authorization' };
}

function chainIdOf(chain: string): number {
  return Number(chain.slice('eip155:'.length));
}

/** A permit whose signature may still be submitted: the chain said so, or could not say. */
function outstandingSignature(g: MappedGrant): boolean {
  return g.live === undefined || g.live === 'unknown' || g.evidence?.reason === 'permit_unused';
}

/** Splits a 65-byte signature into v (27/28), r, s. */
export function splitSignature(signature: string): { v: number; r: string; s: string } {
  if (!/^0x[0-9a-fA-F]{130}$/.test(signature)) throw new RangeError('expected a 65-byte signature (r, s, v)');
  const r = `0x${signature.slice(2, 66)}`;
  const s = `0x${signature.slice(66, 130)}`;
  let v = parseInt(signature.slice(130, 132), 16);
  if (v < 27) v += 27;
  if (v !== 27 && v !== 28) throw new RangeError('signature v must be 27 or 28');
  return { v, r, s };
}

// EIP-3009 §cancelAuthorization: CancelAuthorization(authorizer, nonce) signed by the authorizer, under the
// token's domain, then cancelAuthorization(authorizer, nonce, v, r, s) (OpenZeppelin draft-ERC3009, USDC v2).
function planCancelAuthorization(plan: RevocationPlan, a: MappedAuthorization): void {
  const purpose = `cancel the EIP-3009 authorization ${a.nonce} (${a.value} of ${a.token} to ${a.to})`;
  if (!a.chain.startsWith('eip155:')) {
    plan.unplanned.push({ purpose, reason: 'not_evm', message: `${a.chain} is not an EVM chain.`, grants: [authRef(a)] });
    return;
  }
  if (a.domain?.name === undefined || a.domain.version === undefined) {
    plan.unplanned.push({ purpose, reason: 'domain_unknown', message: "The token's EIP-712 name and version are not on record; the cancellation cannot be signed.", grants: [authRef(a)] });
    return;
  }
  const unsupported = unsupportedDomain(a.domain, CHAIN_DOMAIN);
  if (unsupported) {
    plan.unplanned.push({ purpose, reason: 'domain_unsupported', message: `${unsupported} The cancellation cannot be signed.`, grants: [authRef(a)] });
    return;
  }
  const domain = { name: a.domain.name, version: a.domain.version, chainId: chainIdOf(a.chain), verifyingContract: a.token };
  plan.steps.push(cancelAuthorizationStep(purpose, [authRef(a)], a.chain, a.owner, a.nonce, domain));
}

// A chainless EIP-3009 authorization (a grant row, grants.ts) is valid on every chain whose token has its domain.
// The token checks a CancelAuthorization under its own domain separator, so the cancellation is signed under the
// domain the authorization used, without chainId. It is planned on the one chain the request named (unless that
// chain saw the nonce used: the call would revert); the other chains cannot be named, so they are reported.
function planChainlessCancel(plan: RevocationPlan, g: MappedGrant, options: PlanOptions): void {
  const purpose = `cancel the chainless EIP-3009 authorization ${g.nonce} (${g.amount} of ${g.token} to ${g.spender})`;
  // Past validBefore it is refused on every chain: nothing to do, even where nothing was read.
  if (g.deadline !== undefined && g.deadline <= options.nowSeconds) {
    plan.alreadyDead.push(grantRef(g));
    return;
  }
  if (g.nonce === undefined) {
    plan.unplanned.push({ purpose, reason: 'nonce_unknown', message: 'The authorization was recorded without its nonce.', grants: [grantRef(g)] });
    return;
  }
  if (g.domain?.name === undefined || g.domain.version === undefined) {
    plan.unplanned.push({ purpose, reason: 'domain_unknown', message: "The token's EIP-712 name and version are not on record; the cancellation cannot be signed.", grants: [grantRef(g)] });
    return;
  }
  // Found by review: a salted domain was cancelled under the domain without its salt and reported submitted.
  const unsupported = unsupportedDomain(g.domain, CHAINLESS_DOMAIN);
  if (unsupported) {
    plan.unplanned.push({ purpose, reason: 'domain_unsupported', message: `${unsupported} The cancellation cannot be signed: the authorization stays usable until its validBefore${g.deadline !== undefined ? ` (unix ${g.deadline})` : ''} on every chain where ${g.token} has this domain.`, grants: [grantRef(g)] });
    return;
  }
  const cancelHere = g.evidence?.reason !== 'authorization_used';
  if (cancelHere) {
    plan.steps.push(cancelAuthorizationStep(purpose, [grantRef(g)], g.chain, g.owner, g.nonce, { name: g.domain.name, version: g.domain.version, verifyingContract: g.token }));
  }
  // The cancellation is chainless too, and cancelAuthorization may be sent by anyone: the calldata signed for the
  // named chain cancels the authorization on the other chains as well, so the operator is told to send it there.
  const elsewhere = cancelHere
    ? `The cancellation is chainless too: once it is signed there, the same cancelAuthorization calldata (the transaction of that step's lifecycle job) may be sent by any address on every other chain where the token is deployed.`
    : `Its nonce is used on ${g.chain}, so no cancellation is signed there; on the other chains it may still be usable.`;
  plan.unplanned.push({
    purpose,
    reason: 'chainless_other_chains',
    message: `Signed without chainId, the authorization is valid on every chain where ${g.token} has this EIP-712 domain; only ${g.chain} (the chain the request named) is planned. ${elsewhere}`,
    grants: [grantRef(g)],
  });
}

/** The domain shapes a revocation is signed under: a chain-bound one, and a chainless EIP-3009 authorization's. */
const CHAIN_DOMAIN = ['name', 'version', 'chainId', 'verifyingContract'] as const;
const CHAINLESS_DOMAIN = ['name', 'version', 'verifyingContract'] as const;

/**
 * Why a revocation cannot be signed under the domain the grant was signed under, or undefined when it can. The
 * token checks the signature under its own domain separator; the planner signs under `expected` (the lifecycle
 * path signs no salt), so a salt or any other shape would give a signature the token rejects while the step is
 * reported submitted. A row recorded before `fields` (grants.ts) is judged by its salt only.
 */
function unsupportedDomain(domain: RecordedDomain | undefined, expected: readonly string[]): string | undefined {
  if (domain?.salt !== undefined) return `It was signed under an EIP-712 domain with a salt (${domain.salt}), which a revocation is not signed under.`;
  if (domain?.fields !== undefined && domain.fields.join() !== expected.join()) {
    return `It was signed under an EIP-712 domain of the fields ${domain.fields.join(', ')}, not ${expected.join(', ')} which a revocation is signed under.`;
  }
  return undefined;
}

function cancelAuthorizationStep(purpose: string, grants: GrantRef[], chain: string, owner: string, nonce: string, domain: RevocationTypedData['domain']): RevocationStep {
  const token = domain.verifyingContract;
  return {
    type: 'signature_then_transaction',
    purpose,
    grants,
    chain,
    typedData: {
      domain,
      types: { CancelAuthorization: [{ name: 'authorizer', type: 'address' }, { name: 'nonce', type: 'bytes32' }] },
      primaryType: 'CancelAuthorization',
      message: { authorizer: owner, nonce },
    },
    buildCall(signature) {
      const { v, r, s } = splitSignature(signature);
      return { chain, to: token, value: 0n, data: encodeCall(SELECTORS.eip3009CancelAuthorization, [addressWord(owner), bytes32Word(nonce), uintWord(v), bytes32Word(r), bytes32Word(s)]) };
    },
  };
}

/** Which permit a token implements: EIP-2612's, or DAI's (which predates it). */
type PermitStandard = 'eip2612' | 'dai';
const PERMIT_NAMES: Record<PermitStandard, string> = { eip2612: 'EIP-2612', dai: 'DAI' };

// EIP-2612: approve(spender, 0) does not stop a permit signed and not yet submitted; using its nonce does. A
// permit(owner, spender, 0, nonce, deadline) signed by the owner and submitted by the owner consumes the nonce
// and sets that spender's allowance to 0. Nonces are sequential: every nonce from the chain's next one up to the
// highest outstanding is burnt, in order. DAI's permit alike: permit(holder, spender, nonce, expiry, false)
// requires nonce == nonces[holder], consumes it and sets the allowance to 0 (Dai.sol).
function planPermitBurns(plan: RevocationPlan, permits: MappedGrant[], options: PlanOptions, standard: PermitStandard): void {
  const byToken = groupBy(permits.filter(outstandingSignature), (g) => `${g.chain}|${g.token}`);
  const deadline = options.deadline ?? options.nowSeconds + 3600;
  const maxBurns = options.maxPermitBurns ?? 16;
  for (const group of byToken.values()) {
    const first = group[0]!;
    const refs = group.map(grantRef);
    const purpose = `burn the outstanding ${PERMIT_NAMES[standard]} permit nonces of ${first.token}`;
    const nonces = group.map((g) => (g.nonce !== undefined ? BigInt(g.nonce) : undefined));
    if (nonces.some((n) => n === undefined)) {
      plan.unplanned.push({ purpose, reason: 'nonce_unknown', message: 'A permit was recorded without its nonce.', grants: refs });
      continue;
    }
    const domain = group.find((g) => g.domain?.name !== undefined && g.domain.version !== undefined)?.domain;
    if (!domain) {
      plan.unplanned.push({ purpose, reason: 'domain_unknown', message: "The token's EIP-712 name and version are not on record; a burn permit cannot be signed.", grants: refs });
      continue;
    }
    const unsupported = group.map((g) => unsupportedDomain(g.domain, CHAIN_DOMAIN)).find((m) => m !== undefined);
    if (unsupported) {
      plan.unplanned.push({ purpose, reason: 'domain_unsupported', message: `${unsupported} A burn permit cannot be signed.`, grants: refs });
      continue;
    }
    const chainNonces = group.map((g) => g.evidence?.chainNonce).filter((n): n is string => n !== undefined).map(BigInt);
    const highest = max(nonces as bigint[]);
    const from = chainNonces.length ? max(chainNonces) : min(nonces as bigint[]);
    if (highest - from + 1n > BigInt(maxBurns)) {
      plan.unplanned.push({ purpose, reason: 'nonce_range_too_large', message: `Burning nonces ${from}..${highest} takes more than ${maxBurns} permits.`, grants: refs });
      continue;
    }
    for (let nonce = from; nonce <= highest; nonce++) {
      const named = group.filter((g) => BigInt(g.nonce!) === nonce);
      // The spender the outstanding permit names: the burn also sets its allowance to 0.
      const spender = named[0]?.spender ?? plan.owner;
      const build = standard === 'dai' ? daiPermitBurnStep : permitBurnStep;
      plan.steps.push(build(plan.owner, first.chain, first.token, spender, nonce, deadline, domain, named.length ? named.map(grantRef) : refs));
    }
  }
}

function permitBurnStep(owner: string, chain: string, token: string, spender: string, nonce: bigint, deadline: number, domain: { name?: string; version?: string }, grants: GrantRef[]): RevocationStep {
  return {
    type: 'signature_then_transaction',
    purpose: `burn EIP-2612 nonce ${nonce} of ${token} (permit of 0 to ${spender})`,
    grants,
    chain,
    typedData: {
      domain: { ...(domain.name !== undefined ? { name: domain.name } : {}), ...(domain.version !== undefined ? { version: domain.version } : {}), chainId: chainIdOf(chain), verifyingContract: token },
      types: { Permit: [{ name: 'owner', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'value', type: 'uint256' }, { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' }] },
      primaryType: 'Permit',
      message: { owner, spender, value: '0', nonce: nonce.toString(), deadline: String(deadline) },
    },
    buildCall(signature) {
      const { v, r, s } = splitSignature(signature);
      return { chain, to: token, value: 0n, data: encodeCall(SELECTORS.eip2612Permit, [addressWord(owner), addressWord(spender), uintWord(0n), uintWord(deadline), uintWord(v), bytes32Word(r), bytes32Word(s)]) };
    },
  };
}

// DAI: Permit(holder, spender, nonce, expiry, allowed = false) under the token's domain, then
// permit(holder, spender, nonce, expiry, false, v, r, s). The expiry is the burn's deadline (never 0: a burn
// signature that never lapses is not wanted even though it grants nothing).
function daiPermitBurnStep(owner: string, chain: string, token: string, spender: string, nonce: bigint, deadline: number, domain: { name?: string; version?: string }, grants: GrantRef[]): RevocationStep {
  return {
    type: 'signature_then_transaction',
    purpose: `burn DAI permit nonce ${nonce} of ${token} (permit allowed = false to ${spender})`,
    grants,
    chain,
    typedData: {
      domain: { ...(domain.name !== undefined ? { name: domain.name } : {}), ...(domain.version !== undefined ? { version: domain.version } : {}), chainId: chainIdOf(chain), verifyingContract: token },
      types: { Permit: [{ name: 'holder', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'nonce', type: 'uint256' }, { name: 'expiry', type: 'uint256' }, { name: 'allowed', type: 'bool' }] },
      primaryType: 'Permit',
      message: { holder: owner, spender, nonce: nonce.toString(), expiry: String(deadline), allowed: false },
    },
    buildCall(signature) {
      const { v, r, s } = splitSignature(signature);
      return { chain, to: token, value: 0n, data: encodeCall(SELECTORS.daiPermit, [addressWord(owner), addressWord(spender), uintWord(nonce), uintWord(deadline), uintWord(0n), uintWord(v), bytes32Word(r), bytes32Word(s)]) };
    },
  };
}

// Permit2 AllowanceTransfer: invalidateNonces(token, spender, newNonce) moves the owner's nonce past every
// signed permit for that pair (Permit2 allows a step of at most 2^16 - 1).
function planPermit2NonceInvalidations(plan: RevocationPlan, permits: MappedGrant[]): void {
  for (const group of groupBy(permits, (g) => `${g.chain}|${g.contract}|${g.token}|${g.spender}`).values()) {
    const g0 = group[0]!;
    const refs = group.map(grantRef);
    const purpose = `invalidate the outstanding Permit2 permits of ${g0.token} for ${g0.spender}`;
    if (group.some((g) => g.nonce === undefined)) {
      plan.unplanned.push({ purpose, reason: 'nonce_unknown', message: 'A Permit2 permit was recorded without its nonce.', grants: refs });
      continue;
    }
    const newNonce = max(group.map((g) => BigInt(g.nonce!))) + 1n;
    const current = group.map((g) => g.evidence?.chainNonce).find((n) => n !== undefined);
    if (current !== undefined && newNonce - BigInt(current) > MAX_UINT16) {
      plan.unplanned.push({ purpose, reason: 'nonce_range_too_large', message: 'Permit2 moves a nonce by at most 65535 at a time.', grants: refs });
      continue;
    }
    plan.steps.push({ type: 'transaction', purpose, grants: refs, call: { chain: g0.chain, to: g0.contract, value: 0n, data: encodeCall(SELECTORS.permit2InvalidateNonces, [addressWord(g0.token), addressWord(g0.spender), uintWord(newNonce)]) } });
  }
}

// Permit2 SignatureTransfer: invalidateUnorderedNonces(wordPos, mask) sets the nonce bits, one call per word.
function planPermit2UnorderedInvalidations(plan: RevocationPlan, transfers: MappedGrant[]): void {
  for (const group of groupBy(transfers, (g) => `${g.chain}|${g.contract}|${BigInt(g.nonce ?? '0') >> 8n}`).values()) {
    const g0 = group[0]!;
    const refs = group.map(grantRef);
    const purpose = `invalidate ${group.length} outstanding Permit2 transfer signature(s)`;
    if (group.some((g) => g.nonce === undefined)) {
      plan.unplanned.push({ purpose, reason: 'nonce_unknown', message: 'A Permit2 transfer was recorded without its nonce.', grants: refs });
      continue;
    }
    const wordPos = BigInt(g0.nonce!) >> 8n;
    const mask = group.reduce((m, g) => m | (1n << (BigInt(g.nonce!) & 255n)), 0n);
    plan.steps.push({ type: 'transaction', purpose, grants: refs, call: { chain: g0.chain, to: g0.contract, value: 0n, data: encodeCall(SELECTORS.permit2InvalidateUnorderedNonces, [uintWord(wordPos), uintWord(mask)]) } });
  }
}

// Permit2 lockdown((token, spender)[]): sets each pair's allowance amount to 0, one call per Permit2 deployment.
function planPermit2Lockdowns(plan: RevocationPlan, grants: MappedGrant[]): void {
  for (const group of groupBy(grants, (g) => `${g.chain}|${g.contract}`).values()) {
    const g0 = group[0]!;
    const pairs = [...new Map(group.map((g) => [`${g.token}|${g.spender}`, [g.token, g.spender] as const])).values()];
    const words = [uintWord(32), uintWord(pairs.length), ...pairs.flatMap(([token, spender]) => [addressWord(token), addressWord(spender)])];
    plan.steps.push({
      type: 'transaction',
      purpose: `Permit2 lockdown of ${pairs.length} token/spender pair(s)`,
      grants: group.map(grantRef),
      call: { chain: g0.chain, to: g0.contract, value: 0n, data: encodeCall(SELECTORS.permit2Lockdown, words) },
    });
  }
}

// ERC-20 approve(spender, 0), once per token and spender (an EIP-2612 or DAI permit's spender too: the permit may
// have been submitted before its nonce was burnt).
function planErc20ZeroApprovals(plan: RevocationPlan, grants: MappedGrant[]): void {
  for (const group of groupBy(grants, (g) => `${g.chain}|${g.token}|${g.spender}`).values()) {
    const g0 = group[0]!;
    plan.steps.push({
      type: 'transaction',
      purpose: `approve(${g0.spender}, 0) on ${g0.token}`,
      grants: group.map(grantRef),
      call: { chain: g0.chain, to: g0.token, value: 0n, data: encodeCall(SELECTORS.erc20Approve, [addressWord(g0.spender), uintWord(0n)]) },
    });
  }
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

function max(values: readonly bigint[]): bigint {
  return values.reduce((a, b) => (b > a ? b : a));
}

function min(values: readonly bigint[]): bigint {
  return values.reduce((a, b) => (b < a ? b : a));
}
