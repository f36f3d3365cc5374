// What the attacks part sends: a seeded random source (a failure names the seed that replays it), hostile
// JSON texts built around valid requests, recursive EIP-712 struct types, Permit2 batches and a lying
// chain reader. Nothing here judges an answer; torture/attacks.ts does.
import type { ChainReader } from '@airlock/core';
import { BASE, USDC } from '../packages/server/src/testing/harness.ts';

/** mulberry32: small, seedable, good enough to pick variants (not for keys). */
export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(0, xs.length - 1)]!;
  }
  /** Fisher-Yates, in place. */
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  }
  hex(bytes: number): string {
    let out = '';
    for (let i = 0; i < bytes; i++) out += this.int(0, 255).toString(16).padStart(2, '0');
    return out;
  }
  bytes32(): string {
    return `0x${this.hex(32)}`;
  }
  address(): string {
    return `0x${this.hex(20)}`;
  }
  /** A bigint in [1, 2^bits - 1]. */
  bigint(bits: number): bigint {
    const value = BigInt(`0x${this.hex(Math.ceil(bits / 8))}`) & ((1n << BigInt(bits)) - 1n);
    return value === 0n ? 1n : value;
  }
  /** An identifier-like string (type names, keys, labels). */
  word(min = 1, max = 10): string {
    const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
    let out = '';
    for (let i = this.int(min, max); i > 0; i--) out += this.pick([...letters]);
    return out;
  }
}

// ---- hostile JSON ----

/** Deepest nesting of a JSON text (containers), scanned as text so any depth is measured without recursion. */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') max = Math.max(max, ++depth);
    else if (c === '}' || c === ']') depth--;
  }
  return max;
}

interface Container {
  node: object;
  isArray: boolean;
  /** 1 for the document itself. */
  depth: number;
}

function containers(value: unknown, depth = 1, out: Container[] = []): Container[] {
  if (value === null || typeof value !== 'object') return out;
  out.push({ node: value, isArray: Array.isArray(value), depth });
  for (const child of Object.values(value)) containers(child, depth + 1, out);
  return out;
}

/** JSON text of `value` with `piece` spliced into `target` (a member for an object, an element for an array). */
function renderWith(value: unknown, target: object, piece: string, position: number): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const parts = Array.isArray(value)
    ? value.map((x) => renderWith(x, target, piece, position))
    : Object.entries(value).map(([k, x]) => `${JSON.stringify(k)}:${renderWith(x, target, piece, position)}`);
  if (value === target) parts.splice(Math.min(position, parts.length), 0, piece);
  return Array.isArray(value) ? `[${parts.join(',')}]` : `{${parts.join(',')}}`;
}

export const FORBIDDEN_KEYS = ['__proto__', 'constructor', 'prototype'] as const;

/** The key as a JSON string literal, sometimes with one character written as a \u escape (same key once parsed). */
function spellKey(key: string, rnd: Random): string {
  if (rnd.chance(0.5)) return JSON.stringify(key);
  const i = rnd.int(0, key.length - 1);
  const hex = key.charCodeAt(i).toString(16).padStart(4, '0');
  return `"${key.slice(0, i)}\\u${rnd.chance(0.5) ? hex : hex.toUpperCase()}${key.slice(i + 1)}"`;
}

/** `levels` nested containers (arrays, objects or both) around `inner`, as text. */
function nest(levels: number, inner: string, style: 'array' | 'object' | 'mixed', rnd: Random): string {
  const opens: string[] = [];
  const closes: string[] = [];
  for (let i = 0; i < levels; i++) {
    const array = style === 'array' || (style === 'mixed' && rnd.chance(0.5));
    opens.push(array ? '[' : `{"${rnd.pick(['a', 'b', 'x', 'k1', 'next'])}":`);
    closes.push(array ? ']' : '}');
  }
  return `${opens.join('')}${inner}${closes.reverse().join('')}`;
}

export interface HostileText {
  text: string;
  /** What was planted, for figures and violation messages. */
  what: string;
  /** Nesting depth of the whole text. */
  depth: number;
}

/**
 * `base` with a prototype key planted in a random container at a random position, sometimes under extra
 * levels of nesting; always at most `maxDepth` deep so that the key, not the depth, is what is refused.
 */
export function withForbiddenKey(base: unknown, rnd: Random, maxDepth = 64): HostileText {
  const target = rnd.pick(containers(base));
  const key = rnd.pick(FORBIDDEN_KEYS);
  const value = rnd.pick(['1', '"x"', 'null', '{"polluted":true}', '[]', '{"isAdmin":true,"to":"0x2222222222222222222222222222222222222222"}']);
  const extra = rnd.chance(0.5) ? rnd.int(0, Math.max(0, maxDepth - target.depth - 3)) : 0;
  const carrier = nest(extra, `{${spellKey(key, rnd)}:${value}}`, 'mixed', rnd);
  // A member of an object: the key itself when there is no extra nesting, else a member holding the carrier.
  const piece = target.isArray ? carrier : extra === 0 ? carrier.slice(1, -1) : `"${rnd.word(1, 6)}":${carrier}`;
  const text = renderWith(base, target.node, piece, rnd.int(0, Object.keys(target.node).length));
  return { text, what: `${key} at depth ${target.depth + extra + 1}`, depth: jsonDepth(text) };
}

/**
 * `base` with a nest of `levels` containers planted in a random container; `levels` is chosen so that the
 * text stays under `maxBytes` (random up to that, or just past the limit).
 */
export function withDeepNest(base: unknown, rnd: Random, maxBytes: number, levels?: number): HostileText {
  const all = containers(base);
  const target = rnd.pick(all);
  const style = rnd.pick(['array', 'object', 'mixed'] as const);
  const plain = JSON.stringify(base);
  const perLevel = style === 'array' ? 2 : 10;
  const most = Math.max(70, Math.floor((maxBytes - plain.length - 64) / perLevel));
  const n = levels ?? (rnd.chance(0.4) ? rnd.int(65 - target.depth, 80) : rnd.int(65, most));
  const inner = nest(n, rnd.pick(['0', '[]', '{}', '"end"']), style, rnd);
  const piece = target.isArray ? inner : `"${rnd.word(1, 6)}":${inner}`;
  const text = renderWith(base, target.node, piece, rnd.int(0, Object.keys(target.node).length));
  return { text, what: `${n} ${style} levels at depth ${target.depth}`, depth: jsonDepth(text) };
}

/** A typed-data request whose message carries an `extra` member nested so that the body is exactly `depth` deep. */
export function typedDataAtDepth(depth: number, rnd: Random): string {
  const domain = { name: 'USD Coin', version: '2', chainId: 8453, verifyingContract: USDC };
  // body {1} typedData {2} message {3} extra [4 … 3+n]
  const extra = nest(depth - 3, '0', rnd.pick(['array', 'object', 'mixed'] as const), rnd);
  return `{"typedData":{"domain":${JSON.stringify(domain)},"types":{"Note":[{"name":"body","type":"string"}]},"primaryType":"Note","message":{"body":"x","extra":${extra}}}}`;
}

// ---- recursive EIP-712 struct types ----

const SCALARS = ['uint256', 'address', 'string', 'bool', 'bytes32', 'uint8', 'bytes'];

/**
 * Typed data whose struct types contain themselves (a cycle of 1 to 4 types, through arrays or not, reached
 * from the primary type or not), or chain deeper than 64 types, or nest an array type deeper than 64.
 */
export function recursiveTypedData(rnd: Random): { body: unknown; what: string } {
  const names = new Set<string>();
  const name = () => {
    let n: string;
    do n = `${rnd.word(1, 1).toUpperCase()}${rnd.word(2, 8)}`;
    while (names.has(n));
    names.add(n);
    return n;
  };
  const scalars = () => Array.from({ length: rnd.int(0, 3) }, (_, i) => ({ name: `f${i}`, type: rnd.pick(SCALARS) }));
  const link = (to: string, dims = rnd.pick(['', '', '[]', '[2]', '[][]'])) => ({ name: 'link', type: `${to}${dims}` });
  const insert = <T>(xs: T[], x: T) => (xs.splice(rnd.int(0, xs.length), 0, x), xs);
  const types: Record<string, { name: string; type: string }[]> = {};
  let primaryType: string;
  let what: string;
  const shape = rnd.int(0, 9);
  if (shape < 7) {
    const cycle = Array.from({ length: rnd.int(1, 4) }, name);
    cycle.forEach((t, i) => (types[t] = insert(scalars(), link(cycle[(i + 1) % cycle.length]!))));
    const entry = rnd.int(0, 2);
    if (entry === 0) primaryType = rnd.pick(cycle);
    else if (entry === 1) types[(primaryType = name())] = insert(scalars(), link(rnd.pick(cycle)));
    else types[(primaryType = name())] = [{ name: 'note', type: 'string' }]; // the cycle is not even reachable
    what = `a cycle of ${cycle.length} struct type(s)${entry === 2 ? ' beside the primary type' : ''}`;
  } else if (shape < 9) {
    const chain = Array.from({ length: rnd.int(65, 120) }, name);
    chain.forEach((t, i) => (types[t] = i + 1 < chain.length ? insert(scalars(), link(chain[i + 1]!, '')) : [{ name: 'v', type: 'uint8' }]));
    primaryType = chain[0]!;
    what = `a chain of ${chain.length} struct types`;
  } else {
    const dims = rnd.int(65, 200);
    types[(primaryType = name())] = [{ name: 'grid', type: `uint8${'[]'.repeat(dims)}` }];
    what = `an array type of ${dims} dimensions`;
  }
  const domain: Record<string, unknown> = { name: rnd.word(3, 12), chainId: 8453 };
  if (rnd.chance(0.5)) domain.version = String(rnd.int(1, 9));
  if (rnd.chance(0.5)) domain.verifyingContract = rnd.address();
  const message = Object.fromEntries((types[primaryType] ?? []).filter((f) => f.type === 'string').map((f) => [f.name, 'x']));
  return { body: { typedData: { domain, types, primaryType, message } }, what };
}

// ---- Permit2 ----

export const PERMIT2 = '0x000000000022d473030f116ddee9f6b43ac78ba3';
const PERMIT_DETAILS = [
  { name: 'token', type: 'address' },
  { name: 'amount', type: 'uint160' },
  { name: 'expiration', type: 'uint48' },
  { name: 'nonce', type: 'uint48' },
];

/** A Permit2 PermitBatch (several tokens) or PermitSingle (one) for `spender`. */
export function permit2(tokens: string[], spender: string, rnd: Random, nowSeconds: number) {
  const expiration = String(nowSeconds + rnd.int(60, 30 * 86400));
  // Random uint48 nonces: Airlock claims Permit2 nonces like EIP-3009 ones, and a collision with a permit signed
  // earlier would be refused as `nonce_reused` before the policy under test is reached.
  const details = tokens.map((token) => ({ token, amount: rnd.bigint(rnd.pick([16, 64, 160])).toString(), expiration, nonce: rnd.bigint(48).toString() }));
  const batch = tokens.length > 1;
  return {
    typedData: {
      domain: { name: 'Permit2', chainId: 8453, verifyingContract: PERMIT2 },
      types: batch
        ? { PermitBatch: [{ name: 'details', type: 'PermitDetails[]' }, { name: 'spender', type: 'address' }, { name: 'sigDeadline', type: 'uint256' }], PermitDetails: PERMIT_DETAILS }
        : { PermitSingle: [{ name: 'details', type: 'PermitDetails' }, { name: 'spender', type: 'address' }, { name: 'sigDeadline', type: 'uint256' }], PermitDetails: PERMIT_DETAILS },
      primaryType: batch ? 'PermitBatch' : 'PermitSingle',
      message: { details: batch ? details : details[0], spender, sigDeadline: expiration },
    },
  };
}

// ---- a lying RPC ----

export interface LyingChain extends ChainReader {
  /** Wall clock (unix seconds) the double measures its lies from. */
  wall: () => number;
  /** Seconds past the wall clock the latest and the pinned block claim to be. */
  latestAhead: number;
  pinnedAhead: number;
}

/** An RPC that puts the chain in the future and calls every nonce unused, at every block. */
export function lyingChain(): LyingChain {
  const chain: LyingChain = {
    wall: () => Math.floor(Date.now() / 1000),
    latestAhead: 0,
    pinnedAhead: 0,
    supports: (network: string) => network === BASE,
    latestBlockTimestamp: async () => chain.wall() + chain.latestAhead,
    pinnedBlock: async () => ({ tag: 'finalized', number: BigInt(1_000_000 + chain.wall()), timestamp: chain.wall() + chain.pinnedAhead }),
    authorizationState: async () => false,
    findAuthorizationUse: async () => undefined,
  };
  return chain;
}
