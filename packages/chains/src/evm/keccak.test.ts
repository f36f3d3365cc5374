// The signing path's keccak-256 (WebAssembly) against the reference implementation (@noble/hashes) and the
// published empty-input value: any disagreement would sign, or report, the wrong digest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { bytesToHex } from 'viem';
import { keccak256Bytes, keccakImplementation } from './keccak.ts';

test('keccak-256 runs on WebAssembly here (the fast path the bench measures)', () => {
  assert.equal(keccakImplementation, 'wasm');
});

test('keccak-256 of the empty input is the published value', () => {
  assert.equal(bytesToHex(keccak256Bytes(new Uint8Array(0))), '0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470');
});

test('keccak-256 equals @noble/hashes on every length across three 136-byte blocks and on random inputs', () => {
  for (let n = 0; n <= 3 * 136 + 1; n++) {
    const data = randomBytes(n);
    assert.equal(bytesToHex(keccak256Bytes(data)), bytesToHex(keccak_256(data)), `length ${n}`);
  }
  for (let i = 0; i < 200; i++) {
    const data = randomBytes(1 + Math.floor(Math.random() * 4096));
    assert.equal(bytesToHex(keccak256Bytes(data)), bytesToHex(keccak_256(data)));
  }
});

test('each digest is its own copy: a later hash does not change an earlier result', () => {
  const first = keccak256Bytes(Uint8Array.of(1));
  const kept = bytesToHex(first);
  keccak256Bytes(Uint8Array.of(2));
  assert.equal(bytesToHex(first), kept);
  // A view into a larger buffer hashes only its own bytes.
  const big = randomBytes(300);
  assert.equal(bytesToHex(keccak256Bytes(big.subarray(10, 50))), bytesToHex(keccak_256(big.subarray(10, 50))));
});
