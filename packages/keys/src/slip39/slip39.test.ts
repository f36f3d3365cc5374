// SLIP-39 split and combine in our own code: round trips over layouts, refusals by code, below-threshold sets.
import assert from 'node:assert/strict';
import nodeCrypto, { createHash, randomBytes } from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';
import { test } from 'node:test';
import { ANY_SLIP39_SET, combineShares, ShareCollector, splitRaw, splitSecret } from './shamir.ts';
import { decodeShare, encodeShare } from './share.ts';
import { SLIP39_WORDLIST } from './wordlist.ts';

/**
 * How many PBKDF2 calls (node:crypto's, which the cipher imports) `run` makes. Counted rather than timed: a 50 ms
 * bound on the wall clock also failed when a loaded machine descheduled the process (0.3 % of such calls took
 * over 50 ms at a load of 17, the first, cold one up to 35 ms), and e = 2 costs only about 40 ms.
 */
function pbkdf2Runs(run: () => unknown): number {
  const real = { sync: nodeCrypto.pbkdf2Sync, async: nodeCrypto.pbkdf2 };
  let runs = 0;
  nodeCrypto.pbkdf2Sync = ((...args: Parameters<typeof real.sync>) => (runs++, real.sync(...args))) as typeof real.sync;
  nodeCrypto.pbkdf2 = ((...args: Parameters<typeof real.async>) => (runs++, real.async(...args))) as typeof real.async;
  syncBuiltinESMExports();
  try {
    run();
  } finally {
    nodeCrypto.pbkdf2Sync = real.sync;
    nodeCrypto.pbkdf2 = real.async;
    syncBuiltinESMExports();
  }
  return runs;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const code = (c: string) => (e: Error & { code?: string }) => e.code === c;

/** Every k-subset of items. */
function subsets<T>(items: readonly T[], k: number): T[][] {
  if (k === 0) return [[]];
  return items.flatMap((x, i) => subsets(items.slice(i + 1), k - 1).map((rest) => [x, ...rest]));
}

test('the embedded wordlist is the SLIP-39 list (1024 words, hash of the reference file)', () => {
  assert.equal(SLIP39_WORDLIST.length, 1024);
  assert.equal(createHash('sha256').update(`${SLIP39_WORDLIST.join('\n')}\n`).digest('hex'), 'bcc4555340332d169718aed8bf31dd9d5248cb7da6e5d355140ef4f1e601eec3');
});

const LAYOUTS = [
  { groupThreshold: 1, groups: [{ memberThreshold: 2, memberCount: 3 }] },
  { groupThreshold: 2, groups: [{ memberThreshold: 2, memberCount: 3 }, { memberThreshold: 1, memberCount: 1 }] },
  { groupThreshold: 2, groups: [{ memberThreshold: 3, memberCount: 5 }, { memberThreshold: 2, memberCount: 2 }, { memberThreshold: 1, memberCount: 1 }] },
  { groupThreshold: 3, groups: [{ memberThreshold: 1, memberCount: 1 }, { memberThreshold: 1, memberCount: 1 }, { memberThreshold: 1, memberCount: 1 }, { memberThreshold: 1, memberCount: 1 }] },
];

for (const [i, layout] of LAYOUTS.entries()) {
  test(`split then combine: layout ${i + 1} (${layout.groupThreshold} of ${layout.groups.map((g) => `${g.memberThreshold}of${g.memberCount}`).join(',')}), 16 and 32 bytes`, () => {
    for (const length of [16, 32]) {
      const secret = new Uint8Array(randomBytes(length));
      const set = splitSecret(secret, { ...layout, iterationExponent: 0 });
      // Every choice of groupThreshold groups, each with exactly memberThreshold members (the first ones and the last ones).
      for (const groupChoice of subsets([...set.groups.keys()], layout.groupThreshold)) {
        for (const pick of ['first', 'last'] as const) {
          const shares = groupChoice.flatMap((g) => {
            const need = layout.groups[g]!.memberThreshold;
            return pick === 'first' ? set.groups[g]!.slice(0, need) : set.groups[g]!.slice(-need);
          });
          assert.equal(hex(combineShares(shares.reverse())), hex(secret));
        }
      }
      // One group short: threshold not met.
      const short = set.groups.slice(0, layout.groupThreshold - 1).flatMap((g, gi) => g.slice(0, layout.groups[gi]!.memberThreshold));
      assert.throws(() => combineShares(short), code('slip39_threshold_not_met'));
    }
  });
}

test('a passphrase-protected set needs its passphrase (another one yields another secret, as SLIP-39 intends)', () => {
  const secret = new Uint8Array(randomBytes(16));
  const set = splitSecret(secret, { groupThreshold: 1, groups: [{ memberThreshold: 2, memberCount: 2 }], passphrase: 'TREZOR', iterationExponent: 0 });
  assert.equal(hex(combineShares(set.groups[0]!, 'TREZOR')), hex(secret));
  assert.notEqual(hex(combineShares(set.groups[0]!, 'other')), hex(secret));
});

test('every set of fewer than T members of a group is refused with slip39_threshold_not_met', () => {
  const set = splitSecret(new Uint8Array(randomBytes(32)), { groupThreshold: 1, groups: [{ memberThreshold: 3, memberCount: 5 }], iterationExponent: 0 });
  for (const k of [1, 2]) for (const s of subsets(set.groups[0]!, k)) assert.throws(() => combineShares(s), code('slip39_threshold_not_met'));
});

test('below the threshold the shares do not depend on the secret: T-2 shares are identical and a T-1 share is uniform whatever the secret', () => {
  // Same randomness, two different secrets: the first T-2 members (pure random coefficients) come out the same.
  const stream = (seed: number) => {
    let n = seed;
    return (len: number) => Uint8Array.from({ length: len }, () => (n = (n * 1103515245 + 12345) >>> 0) >>> 24);
  };
  const a = splitSecret(new Uint8Array(16).fill(0x00), { groupThreshold: 1, groups: [{ memberThreshold: 4, memberCount: 5 }], iterationExponent: 0, random: stream(7) });
  const b = splitSecret(new Uint8Array(16).fill(0xff), { groupThreshold: 1, groups: [{ memberThreshold: 4, memberCount: 5 }], iterationExponent: 0, random: stream(7) });
  for (const m of [0, 1]) assert.deepEqual(decodeShare(a.groups[0]![m]!).value, decodeShare(b.groups[0]![m]!).value);
  assert.notDeepEqual(decodeShare(a.groups[0]![3]!).value, decodeShare(b.groups[0]![3]!).value);
  // A single share of a 2-of-n split (T-1 = 1): over many splits, its bytes are uniform for an all-zero and an
  // all-ones secret alike (chi-square over 256 bins; a share that leaked the secret would pile up in one bin).
  for (const fill of [0x00, 0xff]) {
    const secret = new Uint8Array(32).fill(fill);
    const counts = new Array<number>(256).fill(0);
    const splits = 2048;
    for (let i = 0; i < splits; i++) {
      const share = splitRaw(2, 3, secret, (n) => new Uint8Array(randomBytes(n)))[1]!;
      for (const byte of share.y) counts[byte]!++;
    }
    const expected = (splits * 32) / 256;
    const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    // 255 degrees of freedom: mean 255, sd ~22.6; 420 is beyond p = 1e-6.
    assert.ok(chi2 < 420, `chi-square ${chi2.toFixed(1)} for secret ${fill}`);
  }
});

test('the collector names each bad share by code and counts none of them', async () => {
  const layout = { groupThreshold: 2, groups: [{ memberThreshold: 2, memberCount: 3 }, { memberThreshold: 2, memberCount: 2 }], iterationExponent: 0 };
  const typoIn = (share: string) => share.split(' ').map((w, i) => (i === 5 ? 'notaword' : w)).join(' ');
  const other = splitSecret(new Uint8Array(randomBytes(32)), layout);
  // What a typo is refused with, read off the other set's share. The check below that the refusal does not echo the
  // share needs a first word that is not in that sentence anyway: the first word comes from the set's random
  // identifier and is "that" (a SLIP-39 word of the sentence) once in 1024 sets. And the other set must have another
  // identifier (the same one once in 32768 draws), else its share is counted as one of this set's. Such a set is drawn again.
  let sentence = '';
  assert.throws(() => new ShareCollector().add(typoIn(other.groups[0]![0]!)), (e: Error) => ((sentence = e.message), true));
  let set = splitSecret(new Uint8Array(randomBytes(32)), layout);
  while (set.identifier === other.identifier || sentence.includes(set.groups[0]![0]!.split(' ')[0]!)) set = splitSecret(new Uint8Array(randomBytes(32)), layout);
  const c = new ShareCollector();
  const first = set.groups[0]![0]!;
  const progress = c.add(first);
  assert.deepEqual({ ...progress, identifier: undefined }, { identifier: undefined, groupThreshold: 2, groupCount: 2, groupsComplete: 0, groups: [{ index: 0, have: 1, need: 2 }], complete: false });
  const words = first.split(' ');
  const typo = typoIn(first);
  assert.throws(() => c.add(typo), (e: Error & { code?: string; hints?: string[] }) => e.code === 'slip39_invalid_word' && e.hints![0] === 'check word number 6' && !e.message.includes(words[0]!));
  // Two neighbouring words that differ: a random share repeats a word in place about once in 1024 draws.
  const at = words.findIndex((w, i) => i >= 5 && words[i + 1] !== undefined && words[i + 1] !== w);
  const swapped = [...words.slice(0, at), words[at + 1], words[at], ...words.slice(at + 2)].join(' ');
  assert.throws(() => c.add(swapped), code('slip39_invalid_checksum'));
  assert.throws(() => c.add(words.slice(0, 19).join(' ')), code('slip39_invalid_share'));
  assert.throws(() => c.add(first), code('slip39_duplicate_share'));
  assert.throws(() => c.add(other.groups[0]![1]!), code('slip39_share_mismatch'));
  assert.deepEqual(c.progress().groups, [{ index: 0, have: 1, need: 2 }]);
  c.add(set.groups[0]![2]!);
  assert.throws(() => c.add(set.groups[0]![1]!), code('slip39_group_complete'));
  await assert.rejects(c.recover(), code('slip39_threshold_not_met'));
  c.add(set.groups[1]![1]!);
  assert.equal(c.progress().complete, false);
  c.reset();
  assert.deepEqual(c.progress(), { groupsComplete: 0, groups: [], complete: false });
});

test('Airlock\'s rules, on entry and before any PBKDF2: an exponent above 1 and a set fewer than 2 shares recover are refused, nothing counted', () => {
  // Forged shares: well-formed words with any parameters, no encryption behind them (e = 15 would take minutes).
  const forged = (iterationExponent: number, memberThreshold: number, memberIndex = 0) =>
    encodeShare({ identifier: 4242, extendable: true, iterationExponent, groupIndex: 0, groupThreshold: 1, groupCount: 1, memberIndex, memberThreshold, value: new Uint8Array(randomBytes(32)) });
  const c = new ShareCollector();
  for (const e of [2, 15]) {
    const ran = pbkdf2Runs(() => assert.throws(() => c.add(forged(e, 2)), (err: Error & { code?: string }) => err.code === 'slip39_invalid_share' && err.message.includes(`exponent ${e}`)));
    assert.equal(ran, 0, 'refused before any PBKDF2');
  }
  // The count sees the cipher's PBKDF2: combining a real set runs it once per Feistel round (4).
  const real = splitSecret(new Uint8Array(16), { groupThreshold: 1, groups: [{ memberThreshold: 2, memberCount: 2 }], iterationExponent: 0 });
  assert.equal(pbkdf2Runs(() => combineShares(real.groups[0]!)), 4);
  assert.throws(() => c.add(forged(1, 1)), code('slip39_layout_too_weak'));
  assert.deepEqual(c.progress(), { groupsComplete: 0, groups: [], complete: false });
  // The second group of a 2-of-(1of1, 1of1) set makes two shares: that layout is allowed.
  const pair = [0, 1].map((groupIndex) => encodeShare({ identifier: 7, extendable: true, iterationExponent: 0, groupIndex, groupThreshold: 2, groupCount: 2, memberIndex: 0, memberThreshold: 1, value: new Uint8Array(32) }));
  c.add(pair[0]!);
  assert.equal(c.add(pair[1]!).complete, true);
  // SLIP-39 itself allows both: the named opt-out accepts them (the spec vectors use it).
  const any = new ShareCollector(ANY_SLIP39_SET);
  assert.equal(any.add(forged(15, 2)).complete, false);
  assert.equal(new ShareCollector(ANY_SLIP39_SET).add(forged(1, 1)).complete, true);
  // combineShares (restore from share files) applies the same rules.
  assert.throws(() => combineShares([forged(1, 1)]), code('slip39_layout_too_weak'));
});

test('recover() runs PBKDF2 off the event loop: timers keep firing while a set of exponent 6 (640,000 iterations) combines', async () => {
  const secret = new Uint8Array(randomBytes(32));
  const set = splitSecret(secret, { groupThreshold: 1, groups: [{ memberThreshold: 2, memberCount: 2 }], iterationExponent: 6 });
  const c = new ShareCollector({ maxIterationExponent: 6 });
  for (const share of set.groups[0]!) c.add(share);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 2);
  const started = performance.now();
  try {
    assert.equal(hex(await c.recover()), hex(secret));
  } finally {
    clearInterval(timer);
  }
  // On the event loop the four rounds run back to back and no timer fires before recover() returns.
  assert.ok(ticks >= 3, `${ticks} timer ticks in ${(performance.now() - started).toFixed(0)} ms of combining`);
});

test('layout checks: 1-of-many copies, thresholds beyond counts, more than 16 groups', () => {
  const secret = new Uint8Array(16);
  const bad = (groupThreshold: number, groups: { memberThreshold: number; memberCount: number }[]) =>
    assert.throws(() => splitSecret(secret, { groupThreshold, groups }), code('invalid_request'));
  bad(1, [{ memberThreshold: 1, memberCount: 3 }]);
  bad(1, [{ memberThreshold: 4, memberCount: 3 }]);
  bad(3, [{ memberThreshold: 2, memberCount: 3 }, { memberThreshold: 1, memberCount: 1 }]);
  bad(1, Array.from({ length: 17 }, () => ({ memberThreshold: 1, memberCount: 1 })));
  bad(1, [{ memberThreshold: 2, memberCount: 17 }]);
  assert.throws(() => splitSecret(new Uint8Array(15), { groupThreshold: 1, groups: [{ memberThreshold: 2, memberCount: 2 }] }), code('invalid_request'));
});
