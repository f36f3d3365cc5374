// ERC-20 calldata is read word by word (decodeStaticWords) instead of through viem's decoder. A difference
// from the strict decoder would charge the wrong recipient or amount, or let a non-canonical encoding
// through, so the two are compared on valid calls and on every way an encoding can be wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AirlockError } from '@airlock/core';
import { encodeFunctionData, type Hex } from 'viem';
import { decodeCall, decodeStaticWords, decodeStrict, ERC20_ABI, namedArgs } from './calldata.ts';

const TOKEN = '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
const randomAddress = () => `0x${randomBytes(20).toString('hex')}` as Hex;
const randomAmount = () => BigInt(`0x${randomBytes(1 + Math.floor(Math.random() * 32)).toString('hex')}`);

/** What the strict decoder answers: the named arguments, or the error code. */
function strict(fn: (typeof ERC20_ABI)[number], data: Hex): unknown {
  try {
    return namedArgs(fn, decodeStrict(fn, data, 'transaction.data'));
  } catch (e) {
    return (e as AirlockError).code;
  }
}

function fast(fn: (typeof ERC20_ABI)[number], data: Hex): unknown {
  try {
    return decodeStaticWords(fn, data, 'transaction.data');
  } catch (e) {
    assert.ok(e instanceof AirlockError);
    assert.equal(e.message, 'transaction.data does not decode against the ABI for its selector');
    return e.code;
  }
}

function callData(fn: (typeof ERC20_ABI)[number]): Hex {
  const args = fn.inputs.map((p) => (p.type === 'address' ? randomAddress() : randomAmount()));
  return encodeFunctionData({ abi: [fn], functionName: fn.name, args } as never);
}

test('every ERC-20 function decodes to the same arguments as the strict decoder, including 0 and 2^256-1', () => {
  for (const fn of ERC20_ABI) {
    for (let i = 0; i < 200; i++) {
      const data = callData(fn);
      assert.deepEqual(fast(fn, data), strict(fn, data));
    }
    const extremes = encodeFunctionData({ abi: [fn], functionName: fn.name, args: fn.inputs.map((p) => (p.type === 'address' ? `0x${'f'.repeat(40)}` : 2n ** 256n - 1n)) } as never);
    assert.deepEqual(fast(fn, extremes), strict(fn, extremes));
    const zeros = encodeFunctionData({ abi: [fn], functionName: fn.name, args: fn.inputs.map((p) => (p.type === 'address' ? `0x${'0'.repeat(40)}` : 0n)) } as never);
    assert.deepEqual(fast(fn, zeros), strict(fn, zeros));
  }
});

test('a non-canonical or malformed encoding is refused by both, with undecodable_payload', () => {
  for (const fn of ERC20_ABI) {
    const good = callData(fn);
    const bad: Hex[] = [
      `${good}00` as Hex, // a trailing byte
      `${good}${'0'.repeat(64)}` as Hex, // a trailing word
      good.slice(0, -2) as Hex, // one byte short
      good.slice(0, -64) as Hex, // one word short
      good.slice(0, 10) as Hex, // the selector alone
      `${good.slice(0, 10)}${'1'}${good.slice(11)}` as Hex, // a dirty high byte in the first (address) word
      `${good.slice(0, 33)}1${good.slice(34)}` as Hex, // the last dirty nibble before the address
      `${good.slice(0, 20)}g${good.slice(21)}` as Hex, // not hex
    ];
    for (const data of bad) {
      const answer = fast(fn, data);
      assert.equal(answer, 'undecodable_payload', `${fn.name}: ${data}`);
      assert.equal(strict(fn, data), 'undecodable_payload', `${fn.name}: ${data}`);
    }
  }
});

test('a transfer is charged to its decoded recipient for its decoded amount', () => {
  const to = randomAddress();
  const data = encodeFunctionData({ abi: ERC20_ABI, functionName: 'transfer', args: [to, 12_345n] });
  const decoded = decodeCall('eip155:8453', TOKEN, data, undefined, 'transaction.data');
  assert.equal(decoded.kind, 'erc20.transfer');
  assert.deepEqual(decoded.spends, [{ asset: `eip155:8453/erc20:${TOKEN}`, amount: 12_345n, to: to.toLowerCase(), kind: 'transfer' }]);
  assert.deepEqual(decoded.call.args, { to: to.toLowerCase(), value: 12_345n });
  const approval = decodeCall('eip155:8453', TOKEN, encodeFunctionData({ abi: ERC20_ABI, functionName: 'approve', args: [to, 2n ** 256n - 1n] }), undefined, 'transaction.data');
  assert.deepEqual(approval.approvals, [{ asset: `eip155:8453/erc20:${TOKEN}`, amount: 2n ** 256n - 1n, spender: to.toLowerCase(), unlimited: true }]);
  // Unlimited in effect from 2^128 base units (more than any balance), not only at the exact maximum.
  const unlimitedAt = (amount: bigint) => decodeCall('eip155:8453', TOKEN, encodeFunctionData({ abi: ERC20_ABI, functionName: 'approve', args: [to, amount] }), undefined, 'transaction.data').approvals[0]!.unlimited;
  assert.deepEqual([2n ** 256n - 2n, 2n ** 128n, 2n ** 128n - 1n, 1000n].map(unlimitedAt), [true, true, false, false]);
});
