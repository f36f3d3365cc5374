// The decoding limits, on raw PSBT bytes written here (no library builds a PSBT this hostile): each limit holds
// at its value and refuses one past it with `psbt_too_large` naming it, before any parser runs. The reviewed
// attacks (a previous transaction of 20,000 outputs; 16 leaf scripts on each of 49 inputs) are among them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAirlockError } from '@airlock/core';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';
import { assertPsbtWithinLimits, PSBT_LIMITS, type PsbtLimit } from './psbt-limits.ts';

type Entry = [type: number, keyData: Uint8Array, value: Uint8Array];

function compactSize(n: number): number[] {
  if (n < 0xfd) return [n];
  if (n <= 0xffff) return [0xfd, n & 0xff, n >> 8];
  return [0xfe, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24];
}
const bytes = (n: number, fill = 0) => new Uint8Array(n).fill(fill);
const concat = (...parts: (Uint8Array | number[])[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

function map(entries: readonly Entry[]): Uint8Array {
  return concat(...entries.flatMap(([type, keyData, value]) => [compactSize(1 + keyData.length), [type], keyData, compactSize(value.length), value]), [0]);
}

/** A transaction: `inputs` spending made-up outpoints, `outputs` of 1 sat to an empty script; `segwit` adds the BIP-144 marker and `witnessItems` empty items on each input. */
function transaction(inputs: number, outputs: number, segwit = false, witnessItems = 0): Uint8Array {
  const input = concat(bytes(32, 7), [0, 0, 0, 0], [0], [0xff, 0xff, 0xff, 0xff]);
  const output = concat([1, 0, 0, 0, 0, 0, 0, 0], [0]);
  const witness = concat(compactSize(witnessItems), new Uint8Array(witnessItems));
  return concat([2, 0, 0, 0], segwit ? [0, 1] : [], compactSize(inputs), ...Array(inputs).fill(input), compactSize(outputs), ...Array(outputs).fill(output), ...(segwit ? Array(inputs).fill(witness) : []), [0, 0, 0, 0]);
}

/** A v0 PSBT with `inputs.length` inputs and `outputs` outputs, each input map holding the given entries. */
function psbt(inputs: readonly Entry[][], outputs = 1, global: Entry[] = []): Uint8Array {
  return concat([0x70, 0x73, 0x62, 0x74, 0xff], map([[0x00, new Uint8Array(), transaction(inputs.length, outputs)], ...global]), ...inputs.map(map), ...Array(outputs).fill(map([])));
}

const keys = Array.from({ length: 64 }, (_, i) => secp256k1.getPublicKey(sha256(utf8ToBytes(`limits/${i}`)), true));
const partialSig = (i: number): Entry => [0x02, keys[i % 64]!, bytes(72, 1)];
const leaf = (i: number): Entry => [0x15, concat([0xc0], bytes(32, 2), bytes(32, i)), Uint8Array.of(0x51, 0xc0)];
const previousTx = (tx: Uint8Array): Entry => [0x00, new Uint8Array(), tx];

function refusedFor(limit: PsbtLimit, found: number, bytesOf: Uint8Array, what: string): void {
  assert.throws(
    () => assertPsbtWithinLimits(bytesOf),
    (e: unknown) => isAirlockError(e) && e.code === 'psbt_too_large' && e.details?.limit === limit && e.details?.max === PSBT_LIMITS[limit] && e.details?.found === found,
    `${what}: expected psbt_too_large naming ${limit} (found ${found})`,
  );
}

test('entries in all maps: 1,000 hold, 1,001 are refused (64 unknown entries in each of 49 inputs and 100 outputs took 15 s)', () => {
  const unknown = (k: number): Entry => [0xf0, Uint8Array.of(k >> 8, k & 0xff), Uint8Array.of(1)];
  // The global map holds the unsigned transaction: 1 entry; 49 inputs of 20 and one of 19 make 999 more.
  const maps = Array.from({ length: 50 }, (_, i) => Array.from({ length: i === 49 ? 19 : 20 }, (_, k) => unknown(k)));
  assertPsbtWithinLimits(psbt(maps, 0));
  maps[49]!.push(unknown(99));
  refusedFor('entries', 1_001, psbt(maps, 0), '1,001 entries');
  refusedFor('entries', 1 + 64 * 16, psbt(Array.from({ length: 49 }, () => Array.from({ length: 64 }, (_, k) => unknown(k))), 100), 'the measured 64 on each of 49 inputs (and 100 outputs)');
});

test('public keys in all maps: 200 hold, 201 are refused (50 inputs of 4 partial signatures; a MuSig2 participant list counts each key)', () => {
  assertPsbtWithinLimits(psbt(Array.from({ length: 50 }, () => Array.from({ length: 4 }, (_, k) => partialSig(k)))));
  const over = Array.from({ length: 50 }, () => Array.from({ length: 4 }, (_, k) => partialSig(k)));
  over[49]!.push(partialSig(9));
  refusedFor('publicKeys', 201, psbt(over), '201 partial signatures');
  // 60 partial signatures on each of 49 inputs (2,940 keys, 19 s of decoding before): refused at the fourth input.
  refusedFor('publicKeys', 240, psbt(Array.from({ length: 49 }, () => Array.from({ length: 60 }, (_, k) => partialSig(k)))), '60 partial signatures on each of 49 inputs');
  // One MuSig2 participants entry of 200 keys (6.6 kB in one value) is 201 keys to decompress.
  refusedFor('publicKeys', 201, psbt([[[0x1a, keys[0]!, concat(...Array.from({ length: 200 }, (_, k) => keys[k % 64]!))]]]), 'one MuSig2 entry listing 200 keys');
});

test('taproot leaf scripts: 8 per input and 32 in all hold; the reviewed 16 per input on 49 inputs, 9 on one, 33 in all are refused', () => {
  assertPsbtWithinLimits(psbt(Array.from({ length: 4 }, () => Array.from({ length: 8 }, (_, k) => leaf(k)))));
  refusedFor('leafScriptsPerInput', 9, psbt([Array.from({ length: 9 }, (_, k) => leaf(k))]), 'nine leaves on one input');
  refusedFor('leafScriptsPerInput', 16, psbt(Array.from({ length: 49 }, () => Array.from({ length: 16 }, (_, k) => leaf(k)))), 'the reviewed 49 x 16');
  refusedFor('leafScripts', 33, psbt([...Array.from({ length: 4 }, () => Array.from({ length: 8 }, (_, k) => leaf(k))), [leaf(0)]]), '33 leaves in all');
});

test('previous transactions: the size of each, and the size and the inputs, outputs and witness items of all together (each copy counted)', () => {
  assertPsbtWithinLimits(psbt([[previousTx(transaction(1, 2_499))]]));
  refusedFor('previousTxItems', 2_501, psbt([[previousTx(transaction(1, 2_500))]]), '2,500 outputs and an input');
  refusedFor('previousTxItems', 2_501, psbt([[previousTx(transaction(2_000, 501, true))]]), '2,000 inputs and 501 outputs, BIP-144 serialisation');
  assertPsbtWithinLimits(psbt([[previousTx(transaction(1, 1, true, 2_498))]]));
  refusedFor('previousTxItems', 95_002, psbt([[previousTx(transaction(1, 1, true, 95_000))]]), 'one input with 95,000 witness items');
  const reviewed = transaction(1, 20_001);
  refusedFor('previousTxBytes', reviewed.length, psbt([[previousTx(reviewed)]]), 'the reviewed 20,001 outputs (180 kB)');
  // A transaction of one input and one output with a large scriptSig.
  const withScriptSig = (n: number) => concat([2, 0, 0, 0], [1], bytes(32, 7), [0, 0, 0, 0], compactSize(n), bytes(n), [0xff, 0xff, 0xff, 0xff], [1], [1, 0, 0, 0, 0, 0, 0, 0], [0], [0, 0, 0, 0]);
  const huge = withScriptSig(100_000);
  refusedFor('previousTxBytes', huge.length, psbt([[previousTx(huge)]]), 'a 100 kB scriptSig');
  // One previous transaction of 1,249 outputs held twice (two inputs spending it): 2,500 in all.
  const shared = transaction(1, 1_249);
  assertPsbtWithinLimits(psbt([[previousTx(shared)], [previousTx(shared)]]));
  refusedFor('previousTxItems', 2_501, psbt([[previousTx(shared)], [previousTx(shared)], [previousTx(transaction(1, 1))]]), 'a third copy');
  const fat = withScriptSig(74_000);
  const small = withScriptSig(2_000);
  assertPsbtWithinLimits(psbt([[previousTx(fat)], [previousTx(fat)]]));
  assert.ok(fat.length * 2 <= PSBT_LIMITS.previousTxBytesTotal && fat.length * 2 + small.length > PSBT_LIMITS.previousTxBytesTotal);
  refusedFor('previousTxBytesTotal', fat.length * 2 + small.length, psbt([[previousTx(fat)], [previousTx(fat)], [previousTx(small)]]), 'three that add up past 150 kB');
});

test('output taproot trees: 256 leaves in all hold, 257 are refused (a 32,768-leaf tree took 0.3 s to decode)', () => {
  const tree = (leaves: number) => concat(...Array.from({ length: leaves }, () => [8, 0xc0, 1, 0x51]));
  const withTrees = (...trees: Uint8Array[]) =>
    concat([0x70, 0x73, 0x62, 0x74, 0xff], map([[0x00, new Uint8Array(), transaction(1, trees.length)]]), map([]), ...trees.map((t) => map([[0x06, new Uint8Array(), t]])));
  assertPsbtWithinLimits(withTrees(tree(128), tree(128)));
  refusedFor('tapTreeLeaves', 257, withTrees(tree(128), tree(129)), '257 leaves over two outputs');
  refusedFor('tapTreeLeaves', 257, withTrees(tree(32_768)), 'one tree of 32,768 leaves (counted only as far as the limit)');
});

test('final witnesses: 1,000 items in all hold, 1,001 are refused (65,000 empty items on one input took 0.35 s)', () => {
  const witness = (items: number): Entry => [0x08, new Uint8Array(), concat(compactSize(items), new Uint8Array(items))];
  assertPsbtWithinLimits(psbt([[witness(500)], [witness(500)]]));
  refusedFor('finalWitnessItems', 1_001, psbt([[witness(500)], [witness(501)]]), '1,001 items over two inputs');
  refusedFor('finalWitnessItems', 65_000, psbt([[witness(65_000)]]), 'the measured 65,000');
});

test('a previous transaction that does not parse does not hide the maps after it from the count (the parser refuses it)', () => {
  const truncated = transaction(1, 3).subarray(0, 20);
  assertPsbtWithinLimits(psbt([[previousTx(truncated)]]));
  refusedFor('leafScriptsPerInput', 9, psbt([[previousTx(truncated)], Array.from({ length: 9 }, (_, k) => leaf(k))]), 'leaves after a truncated previous transaction');
});
