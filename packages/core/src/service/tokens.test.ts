// Token and request hashing moved from @noble/hashes to node:crypto: stored token hashes and recorded request
// hashes must not change. The pure-JS implementation is the independent reference.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { canonicalJson } from '../canonical-json.ts';
import { hashSecret, requestHash } from './tokens.ts';

const reference = (s: string) => bytesToHex(sha256(utf8ToBytes(s)));

test('hashSecret is the sha256 hex of the UTF-8 bytes, as before, for tokens and any text', () => {
  const inputs = [
    '', 'abc', 'A'.repeat(43), 'x'.repeat(1000),
    'é ü 漢字 😀', // multi-byte and astral characters
    'lone \ud800 surrogate', // both encoders write U+FFFD for it
  ];
  for (const s of inputs) assert.equal(hashSecret(s), reference(s), JSON.stringify(s));
  assert.equal(hashSecret('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'); // FIPS 180-2 example
});

test('requestHash is unchanged: sha256 of the canonical JSON of action and payload', () => {
  const payload = { chainId: 8453, transaction: { to: '0xb0b', value: '1', memo: 'naïve' } };
  assert.equal(requestHash('evm.transaction', payload, canonicalJson), reference(canonicalJson({ action: 'evm.transaction', payload })));
});
