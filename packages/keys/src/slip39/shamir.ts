/**
 * SLIP-39 two-level Shamir sharing: the encrypted master secret is split into groups (group threshold of group
 * count), each group secret into member shares (member threshold of member count). Splitting and the
 * one-share-at-a-time ShareCollector used by unseal, restore and combineShares.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { AirlockError } from '@airlock/core';
import { decryptMasterSecret, decryptMasterSecretSync, encryptMasterSecret } from './cipher.ts';
import { interpolate, type Point } from './gf256.ts';
import { decodeShare, encodeShare, type Share } from './share.ts';

const SECRET_INDEX = 255;
const DIGEST_INDEX = 254;
const DIGEST_BYTES = 4;
export const MAX_SHARE_COUNT = 16;
/** What splitSecret writes unless told otherwise: SLIP-39's recommended exponent, which Trezor and the reference tool write too. */
export const DEFAULT_ITERATION_EXPONENT = 1;
/** The largest exponent the share's 4-bit field holds: 10000 << 15 PBKDF2 iterations, minutes of work. */
export const MAX_ITERATION_EXPONENT = 15;
/** Documented limit: no set of fewer than this many shares may recover the vault. */
export const MIN_SHARES_TO_RECOVER = 2;

export interface GroupLayout {
  memberThreshold: number;
  memberCount: number;
}

export interface SplitOptions {
  groupThreshold: number;
  groups: readonly GroupLayout[];
  /** SLIP-39 passphrase (printable ASCII). Default empty: the shares alone recover the secret. */
  passphrase?: string;
  /** Default true, as current SLIP-39 implementations create. */
  extendable?: boolean;
  /** PBKDF2 work: 10000 << e iterations in all. Default DEFAULT_ITERATION_EXPONENT. */
  iterationExponent?: number;
  /** Test-only: a fixed source of randomness (the identifier and the random polynomial coefficients). */
  random?: (n: number) => Uint8Array;
}

export interface ShareSet {
  identifier: number;
  groupThreshold: number;
  /** groups[g][m]: the mnemonic of member m of group g. */
  groups: string[][];
}

function digest(randomPart: Uint8Array, secret: Uint8Array): Uint8Array {
  return createHmac('sha256', randomPart).update(secret).digest().subarray(0, DIGEST_BYTES);
}

/** (Exported for the property tests only.) Shamir split of `secret` into `count` points with the SLIP-39 digest at x = 254 and the secret at x = 255. */
export function splitRaw(threshold: number, count: number, secret: Uint8Array, random: (n: number) => Uint8Array): Point[] {
  if (threshold === 1) return Array.from({ length: count }, (_, x) => ({ x, y: Uint8Array.from(secret) }));
  const points: Point[] = Array.from({ length: threshold - 2 }, (_, x) => ({ x, y: random(secret.length) }));
  const randomPart = random(secret.length - DIGEST_BYTES);
  const base = [...points, { x: DIGEST_INDEX, y: Uint8Array.from([...digest(randomPart, secret), ...randomPart]) }, { x: SECRET_INDEX, y: secret }];
  for (let x = threshold - 2; x < count; x++) points.push({ x, y: interpolate(base, x) });
  return points;
}

export function recoverRaw(threshold: number, points: readonly Point[]): Uint8Array {
  if (threshold === 1) return Uint8Array.from(points[0]!.y);
  const secret = interpolate(points, SECRET_INDEX);
  const digestShare = interpolate(points, DIGEST_INDEX);
  const expected = digest(digestShare.subarray(DIGEST_BYTES), secret);
  if (!timingSafeEqual(expected, digestShare.subarray(0, DIGEST_BYTES))) {
    secret.fill(0);
    throw new AirlockError('slip39_invalid_digest', 'the shares do not combine to a consistent secret: one of them is corrupt or forged', {
      hints: ['each share passed its checksum, so a share was altered deliberately or belongs to no set: check each with its holder'],
    });
  }
  return secret;
}

/** The group layout as SLIP-39 allows it (counts, thresholds, no 1-of-many copies): invalid_request otherwise. */
export function checkGroupLayout(groupThreshold: number, groups: readonly GroupLayout[]): void {
  const bad = (m: string) => new AirlockError('invalid_request', m);
  if (groups.length < 1 || groups.length > MAX_SHARE_COUNT) throw bad(`between 1 and ${MAX_SHARE_COUNT} groups`);
  if (!Number.isInteger(groupThreshold) || groupThreshold < 1 || groupThreshold > groups.length) throw bad('the group threshold must be between 1 and the number of groups');
  for (const [i, g] of groups.entries()) {
    if (!Number.isInteger(g.memberCount) || g.memberCount < 1 || g.memberCount > MAX_SHARE_COUNT) throw bad(`group ${i + 1}: between 1 and ${MAX_SHARE_COUNT} members`);
    if (!Number.isInteger(g.memberThreshold) || g.memberThreshold < 1 || g.memberThreshold > g.memberCount) throw bad(`group ${i + 1}: the member threshold must be between 1 and the member count`);
    // SLIP-39: several copies of one secret are not sharing; say 1of1.
    if (g.memberThreshold === 1 && g.memberCount > 1) throw bad(`group ${i + 1}: ${g.memberThreshold}of${g.memberCount} would print ${g.memberCount} copies of one share; use 1of1`);
  }
}

function checkLayout(options: SplitOptions, secret: Uint8Array): void {
  const bad = (m: string) => new AirlockError('invalid_request', m);
  if (secret.length < 16 || secret.length % 2 !== 0) throw bad('a SLIP-39 master secret is at least 16 bytes and an even number of bytes');
  checkGroupLayout(options.groupThreshold, options.groups);
  const e = options.iterationExponent ?? DEFAULT_ITERATION_EXPONENT;
  if (!Number.isInteger(e) || e < 0 || e > MAX_ITERATION_EXPONENT) throw bad(`the iteration exponent is 0..${MAX_ITERATION_EXPONENT}`);
  if (![...(options.passphrase ?? '')].every((c) => c.charCodeAt(0) >= 32 && c.charCodeAt(0) <= 126)) throw bad('a SLIP-39 passphrase is printable ASCII');
}

/** Splits `masterSecret` (16..32+ bytes, even length) into SLIP-39 mnemonics. */
export function splitSecret(masterSecret: Uint8Array, options: SplitOptions): ShareSet {
  checkLayout(options, masterSecret);
  const random = options.random ?? ((n: number) => new Uint8Array(randomBytes(n)));
  const r = random(2);
  const identifier = ((r[0]! << 8) | r[1]!) & 0x7fff;
  const extendable = options.extendable ?? true;
  const iterationExponent = options.iterationExponent ?? DEFAULT_ITERATION_EXPONENT;
  const ems = encryptMasterSecret(masterSecret, Buffer.from(options.passphrase ?? '', 'ascii'), iterationExponent, identifier, extendable);
  const groupPoints = splitRaw(options.groupThreshold, options.groups.length, ems, random);
  ems.fill(0);
  const groups = options.groups.map((layout, groupIndex) =>
    splitRaw(layout.memberThreshold, layout.memberCount, groupPoints[groupIndex]!.y, random).map((member) =>
      encodeShare({
        identifier, extendable, iterationExponent, groupIndex, groupThreshold: options.groupThreshold, groupCount: options.groups.length,
        memberIndex: member.x, memberThreshold: layout.memberThreshold, value: member.y,
      }),
    ),
  );
  for (const p of groupPoints) p.y.fill(0);
  return { identifier, groupThreshold: options.groupThreshold, groups };
}

export interface GroupProgress {
  index: number;
  have: number;
  need: number;
}

export interface ShareProgress {
  /** Undefined until the first share is accepted. */
  identifier?: number;
  groupThreshold?: number;
  groupCount?: number;
  groupsComplete: number;
  groups: GroupProgress[];
  complete: boolean;
}

/**
 * What a collector accepts beyond SLIP-39's own checks. Both defaults are Airlock's rules for the vault's shares,
 * checked as each share is entered, before any PBKDF2: the unseal endpoints take shares from anyone who reaches the
 * port, and a share chooses its own exponent and layout.
 */
export interface CollectRules {
  /**
   * Shares asking for more PBKDF2 work than this are refused on entry (slip39_invalid_share). The work is
   * 10000 << e iterations and doubles with each step: a self-made share with e = 15 held a sealed daemon for
   * about 90 s. Default DEFAULT_ITERATION_EXPONENT, what splitSecret writes.
   */
  maxIterationExponent?: number;
  /**
   * A share that would complete a set which fewer shares than this recover is refused (slip39_layout_too_weak),
   * as the split refuses such a layout. Default MIN_SHARES_TO_RECOVER.
   */
  minSharesToRecover?: number;
}

/** Every set SLIP-39 allows, whatever its exponent and however few shares recover it: the spec vectors. */
export const ANY_SLIP39_SET: Required<CollectRules> = { maxIterationExponent: MAX_ITERATION_EXPONENT, minSharesToRecover: 1 };

/** What every share of one set has in common (value: only its length counts). */
type SetParameters = Pick<Share, 'identifier' | 'extendable' | 'iterationExponent' | 'groupThreshold' | 'groupCount' | 'value'>;

/**
 * Collects shares one at a time, as an unseal ceremony receives them. A share that does not parse, belongs to
 * another set, repeats a member, adds to a group that is already complete or breaks the collector's rules is
 * refused with its code and not counted; the collector is unchanged. Once enough groups are complete, recover()
 * yields the master secret.
 */
export class ShareCollector {
  #common?: SetParameters;
  readonly #groups = new Map<number, { memberThreshold: number; members: Map<number, Uint8Array> }>();
  readonly #rules: Required<CollectRules>;

  constructor(rules: CollectRules = {}) {
    this.#rules = { maxIterationExponent: rules.maxIterationExponent ?? DEFAULT_ITERATION_EXPONENT, minSharesToRecover: rules.minSharesToRecover ?? MIN_SHARES_TO_RECOVER };
  }

  /** Adds one share; throws (and counts nothing) when it cannot count. */
  add(mnemonic: string): ShareProgress {
    const share = decodeShare(mnemonic);
    if (share.iterationExponent > this.#rules.maxIterationExponent) {
      share.value.fill(0);
      throw new AirlockError('slip39_invalid_share', `this share asks for iteration exponent ${share.iterationExponent}; shares are accepted up to ${this.#rules.maxIterationExponent}`, {
        hints: [`Airlock splits with exponent ${DEFAULT_ITERATION_EXPONENT}; the exponent sets the PBKDF2 work (10000 << e iterations), so a higher one is refused before any of it runs`],
      });
    }
    const c = this.#common;
    if (c) {
      if (share.identifier !== c.identifier || share.extendable !== c.extendable) {
        share.value.fill(0);
        throw new AirlockError('slip39_share_mismatch', 'this share belongs to another share set (its identifier differs from the shares entered so far)', {
          hints: ['every share of one set begins with the same two words'],
        });
      }
      if (share.iterationExponent !== c.iterationExponent || share.groupThreshold !== c.groupThreshold || share.groupCount !== c.groupCount || share.value.length !== c.value.length) {
        share.value.fill(0);
        throw new AirlockError('slip39_share_mismatch', 'this share has the identifier of the shares entered so far but other set parameters: it is corrupt or forged');
      }
    }
    const group = this.#groups.get(share.groupIndex);
    if (group) {
      if (group.memberThreshold !== share.memberThreshold) {
        share.value.fill(0);
        throw new AirlockError('slip39_share_mismatch', `this share says group ${share.groupIndex + 1} needs ${share.memberThreshold} members, the earlier shares of that group say ${group.memberThreshold}`);
      }
      if (group.members.has(share.memberIndex)) {
        share.value.fill(0);
        throw new AirlockError('slip39_duplicate_share', `member ${share.memberIndex + 1} of group ${share.groupIndex + 1} was already entered`, {
          hints: ['enter a share of another holder'],
        });
      }
      if (group.members.size >= group.memberThreshold) {
        share.value.fill(0);
        throw new AirlockError('slip39_group_complete', `group ${share.groupIndex + 1} already has the ${group.memberThreshold} shares it needs`, {
          hints: ['enter a share of another group'],
        });
      }
    }
    const combined = this.#sharesCombinedWith(share);
    if (combined !== undefined && combined < this.#rules.minSharesToRecover) {
      share.value.fill(0);
      // Only the groups seen so far are known (a share carries its group's threshold, not its member count), so
      // this is the split's layout rule as far as the shares show it: the set they complete is too weak.
      throw new AirlockError('slip39_layout_too_weak', `with this share ${combined} share${combined === 1 ? '' : 's'} would recover the secret; at least ${this.#rules.minSharesToRecover} must be needed`, {
        hints: [`Airlock splits no set that fewer than ${MIN_SHARES_TO_RECOVER} shares recover, so this share was not made by \`airlock vault split\``],
      });
    }
    if (!c) this.#common = { ...share, value: new Uint8Array(share.value.length) };
    const target = group ?? { memberThreshold: share.memberThreshold, members: new Map() };
    target.members.set(share.memberIndex, share.value);
    this.#groups.set(share.groupIndex, target);
    return this.progress();
  }

  /**
   * How many shares recover() would combine if `share` were counted: the member thresholds of the first
   * groupThreshold complete groups, in the order recover() takes them. Undefined while the set stays incomplete.
   */
  #sharesCombinedWith(share: Share): number | undefined {
    const groups = new Map([...this.#groups].map(([index, g]) => [index, { need: g.memberThreshold, have: g.members.size }]));
    const own = groups.get(share.groupIndex) ?? { need: share.memberThreshold, have: 0 };
    groups.set(share.groupIndex, { ...own, have: own.have + 1 });
    const complete = [...groups.values()].filter((g) => g.have >= g.need).slice(0, share.groupThreshold);
    return complete.length < share.groupThreshold ? undefined : complete.reduce((n, g) => n + g.need, 0);
  }

  progress(): ShareProgress {
    const c = this.#common;
    const groups = [...this.#groups.entries()].sort(([a], [b]) => a - b).map(([index, g]) => ({ index, have: g.members.size, need: g.memberThreshold }));
    const groupsComplete = groups.filter((g) => g.have >= g.need).length;
    if (!c) return { groupsComplete: 0, groups: [], complete: false };
    return { identifier: c.identifier, groupThreshold: c.groupThreshold, groupCount: c.groupCount, groupsComplete, groups, complete: groupsComplete >= c.groupThreshold };
  }

  /**
   * The master secret (the caller zeroes it), its PBKDF2 rounds on libuv's thread pool so the event loop keeps
   * serving meanwhile. Rejects with slip39_threshold_not_met below the threshold.
   */
  async recover(passphrase = ''): Promise<Uint8Array> {
    const { ems, common } = this.#encryptedMasterSecret();
    try {
      return await decryptMasterSecret(ems, Buffer.from(passphrase, 'ascii'), common.iterationExponent, common.identifier, common.extendable);
    } finally {
      ems.fill(0);
    }
  }

  /** recover() on the calling thread, for callers that serve nobody meanwhile (combineShares). */
  recoverSync(passphrase = ''): Uint8Array {
    const { ems, common } = this.#encryptedMasterSecret();
    try {
      return decryptMasterSecretSync(ems, Buffer.from(passphrase, 'ascii'), common.iterationExponent, common.identifier, common.extendable);
    } finally {
      ems.fill(0);
    }
  }

  /** The encrypted master secret the complete groups interpolate to (no PBKDF2 yet); the caller zeroes it. */
  #encryptedMasterSecret(): { ems: Uint8Array; common: SetParameters } {
    const c = this.#common;
    const progress = this.progress();
    if (!c || !progress.complete) {
      throw new AirlockError('slip39_threshold_not_met', c
        ? `${progress.groupsComplete} of the ${c.groupThreshold} groups needed are complete`
        : 'no share was entered');
    }
    const complete = [...this.#groups.entries()].filter(([, g]) => g.members.size >= g.memberThreshold).slice(0, c.groupThreshold);
    const groupPoints: Point[] = complete.map(([index, g]) => ({
      x: index,
      y: recoverRaw(g.memberThreshold, [...g.members.entries()].map(([x, y]) => ({ x, y }))),
    }));
    try {
      return { ems: recoverRaw(c.groupThreshold, groupPoints), common: c };
    } finally {
      for (const p of groupPoints) p.y.fill(0);
    }
  }

  /** Forgets every share entered (zeroes their values). */
  reset(): void {
    for (const g of this.#groups.values()) for (const v of g.members.values()) v.fill(0);
    this.#groups.clear();
    this.#common = undefined;
  }
}

/**
 * Combines a whole set of mnemonics at once (restore from a folder of shares, the spec vectors), on the calling
 * thread. Shares beyond what a complete group needs are ignored; every other refusal is the collector's, under
 * `rules` (default: Airlock's).
 */
export function combineShares(mnemonics: readonly string[], passphrase = '', rules: CollectRules = {}): Uint8Array {
  const collector = new ShareCollector(rules);
  try {
    for (const m of mnemonics) {
      try {
        collector.add(m);
      } catch (e) {
        if (!(e instanceof AirlockError && e.code === 'slip39_group_complete')) throw e;
      }
    }
    return collector.recoverSync(passphrase);
  } finally {
    collector.reset();
  }
}
