// BIP-174 and BIP-370 test vectors (shared/vectors): every invalid PSBT is refused as psbt_malformed without
// echoing its bytes, every valid one parses (and re-serialises byte for byte: the PSBT an agent gets back keeps
// every field it sent), the signer-check failures are refused, and BIP-370's lock time determination holds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAirlockError } from '@airlock/core';
import { base64 } from '@scure/base';
import { bytesToHex } from '@noble/hashes/utils.js';
import { readVector, vectorsSkipReason } from '../../../../testing/vectors.ts';
import { createBitcoinAdapter } from './adapter.ts';
import { decodePsbtBase64, parsePsbt } from './psbt-parse.ts';
import { openTestVault } from './testing/test-vault.ts';

const skip = vectorsSkipReason;
const adapter = createBitcoinAdapter();

interface Case {
  description: string;
  hex: string;
  base64: string;
}
interface Vectors {
  case_groups: { category: string; cases: Case[] }[];
}

function groups(file: string): Vectors['case_groups'] {
  return (JSON.parse(readVector(file)) as Vectors).case_groups;
}

function refusal(run: () => unknown): unknown {
  try {
    run();
  } catch (e) {
    return e;
  }
  return undefined;
}

/** Refused as psbt_malformed, and the message quotes none of the PSBT's bytes (16 hex digits in a row). */
function assertMalformed(c: Case, what: string): void {
  const e = refusal(() => parsePsbt(decodePsbtBase64(c.base64)));
  assert.ok(isAirlockError(e) && e.code === 'psbt_malformed', `${what}: ${c.description}: ${String(e)}`);
  for (let i = 0; i + 16 <= c.hex.length; i += 16) assert.ok(!e.message.includes(c.hex.slice(i, i + 16)), `${c.description}: the message echoes the PSBT`);
}

test('BIP-174: invalid PSBTs refused, valid ones parsed and re-serialised unchanged, signer-check failures refused', { skip }, async () => {
  const vault = await openTestVault();
  const [invalid, valid, signerChecks] = groups('bip174-psbt-test-vectors.json');
  assert.match(invalid!.category, /invalid/);
  assert.equal(invalid!.cases.length, 20);
  for (const c of invalid!.cases) {
    assertMalformed(c, 'BIP-174');
    const e = refusal(() => adapter.decode('bitcoin.psbt', { psbt: c.base64, network: 'testnet' }, vault.signer));
    assert.ok(isAirlockError(e) && e.code === 'psbt_malformed', `through the adapter: ${c.description}`);
  }
  assert.match(valid!.category, /valid/);
  assert.equal(valid!.cases.length, 10);
  for (const c of valid!.cases) {
    const parsed = parsePsbt(decodePsbtBase64(c.base64));
    assert.equal(parsed.version, 0, c.description);
    assert.equal(bytesToHex(parsed.tx.toPSBT(0)), c.hex, `${c.description}: re-serialised`);
    // None of them spends a key of this vault: refused, but never as malformed.
    const e = refusal(() => adapter.decode('bitcoin.psbt', { psbt: c.base64, network: 'testnet' }, vault.signer));
    assert.ok(isAirlockError(e) && e.code !== 'psbt_malformed', `${c.description}: ${String(e)}`);
  }
  assert.equal(signerChecks!.cases.length, 4);
  for (const c of signerChecks!.cases) {
    const e = refusal(() => adapter.decode('bitcoin.psbt', { psbt: c.base64, network: 'testnet' }, vault.signer));
    assert.ok(isAirlockError(e), `${c.description}: refused`);
  }
});

test('BIP-370: invalid v2 PSBTs refused, valid ones parsed as v2 and re-serialised unchanged, lock times determined', { skip }, () => {
  const all = groups('bip370-psbt-v2-test-vectors.json');
  const byCategory = (re: RegExp) => all.filter((g) => re.test(g.category)).flatMap((g) => g.cases);
  const invalid = byCategory(/are invalid/);
  assert.equal(invalid.length, 24);
  for (const c of invalid) assertMalformed(c, 'BIP-370');
  const valid = byCategory(/are valid/);
  assert.equal(valid.length, 14);
  for (const c of valid) {
    const parsed = parsePsbt(decodePsbtBase64(c.base64));
    assert.equal(parsed.version, 2, c.description);
    assert.equal(bytesToHex(parsed.tx.toPSBT(2)), c.hex, `${c.description}: re-serialised`);
  }
  const lockTimes: [RegExp, number][] = [
    [/computed to be 0:/, 0],
    [/computed to be 10000:/, 10000],
    [/computed to be 1657048460:/, 1657048460],
  ];
  for (const [re, expected] of lockTimes) {
    const cases = byCategory(re);
    assert.ok(cases.length > 0);
    for (const c of cases) assert.equal(parsePsbt(decodePsbtBase64(c.base64)).tx.lockTime, expected, c.description);
  }
  const undetermined = byCategory(/cannot be computed/);
  assert.equal(undetermined.length, 1);
  for (const c of undetermined) assertMalformed(c, 'BIP-370 lock time');
  assert.equal(base64.decode(valid[0]!.base64).length * 2, valid[0]!.hex.length);
});
