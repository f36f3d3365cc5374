import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AirlockError } from '@airlock/core';
import { encodeFunctionData, getAddress, getContractAddress, parseAbi, serializeTransaction } from 'viem';
import { AbiRegistry } from './abi-registry.ts';
import { createEvmAdapter } from './adapter.ts';
import { signer } from './test-key.ts';

const TOKEN = '0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913';
const token = TOKEN.toLowerCase();
const bob = '0xb0b0000000000000000000000000000000000b0b';
const BOB = getAddress(bob);
const CAROL = '0xcccccccccccccccccccccccccccccccccccccccc';
const MAX = (1n << 256n) - 1n;
const adapter = createEvmAdapter();

function tx(fields: Record<string, unknown>, chainId: unknown = 8453) {
  return { chainId, transaction: { nonce: 0, gas: 21000, maxFeePerGas: '1000', maxPriorityFeePerGas: '10', ...fields } };
}
function decode(payload: unknown, a = adapter) {
  return a.decode('evm.transaction', payload, signer).intent;
}
function rejects(payload: unknown, code: string, messagePart?: string) {
  assert.throws(() => decode(payload), (e: unknown) => {
    assert.ok(e instanceof AirlockError, String(e));
    assert.equal(e.code, code, e.message);
    if (messagePart) assert.ok(e.message.includes(messagePart), e.message);
    return true;
  });
}
const erc20 = parseAbi([
  'function transfer(address to, uint256 value)',
  'function transferFrom(address from, address to, uint256 value)',
  'function approve(address spender, uint256 value)',
  'function increaseAllowance(address spender, uint256 addedValue)',
]);

test('native transfer: value spend to the recipient plus the max fee', () => {
  const intent = decode(tx({ to: BOB, value: '1000000000000000000' }));
  assert.equal(intent.kind, 'native.transfer');
  assert.equal(intent.chain, 'eip155:8453');
  assert.equal(intent.to, bob);
  assert.equal(intent.from, signer.address);
  assert.deepEqual(intent.spends, [
    { asset: 'eip155:8453/slip44:60', amount: 10n ** 18n, to: bob, kind: 'value' },
    { asset: 'eip155:8453/slip44:60', amount: 21000n * 1000n, kind: 'fee' },
  ]);
  assert.deepEqual(intent.fees, { gasLimit: 21000n, maxTotalFee: 21_000_000n, maxFeePerGas: 1000n, maxPriorityFeePerGas: 10n });
  assert.match(intent.summary, /transfer 1000000000000000000 of eip155:8453\/slip44:60 to 0xb0b0/);
});

test('legacy fees use gasPrice for maxTotalFee; numbers accepted as hex, decimal and JSON numbers', () => {
  const intent = decode({ chainId: '0x1', transaction: { type: 'legacy', to: BOB, value: 5, nonce: '0x7', gasLimit: '50000', gasPrice: '0x64' } });
  assert.equal(intent.chain, 'eip155:1');
  assert.deepEqual(intent.fees, { gasLimit: 50000n, maxTotalFee: 5_000_000n, gasPrice: 100n });
  assert.deepEqual(intent.spends.map((s) => [s.kind, s.amount]), [['value', 5n], ['fee', 5_000_000n]]);
});

test('erc20.transfer: token spend to the recipient and call args', () => {
  const data = encodeFunctionData({ abi: erc20, functionName: 'transfer', args: [BOB, 1_000_000n] });
  const intent = decode(tx({ to: TOKEN, data, gas: 60000 }));
  assert.equal(intent.kind, 'erc20.transfer');
  assert.equal(intent.to, bob);
  assert.deepEqual(intent.spends[0], { asset: `eip155:8453/erc20:${token}`, amount: 1_000_000n, to: bob, kind: 'transfer' });
  assert.deepEqual(intent.call, { contract: token, selector: '0xa9059cbb', functionName: 'transfer', args: { to: bob, value: 1_000_000n } });
  assert.equal(intent.summary.startsWith(`transfer 1000000 of eip155:8453/erc20:${token} to ${bob}`), true);
});

test('erc20.transfer_from: spend to the recipient', () => {
  const data = encodeFunctionData({ abi: erc20, functionName: 'transferFrom', args: [CAROL, BOB, 42n] });
  const intent = decode(tx({ to: TOKEN, data }));
  assert.equal(intent.kind, 'erc20.transfer_from');
  assert.equal(intent.to, bob);
  assert.deepEqual(intent.spends[0], { asset: `eip155:8453/erc20:${token}`, amount: 42n, to: bob, kind: 'transfer' });
  assert.equal(intent.call?.args?.from, CAROL);
});

test('erc20.approve and increase_allowance: approvals to the spender, unlimited at 2^256-1', () => {
  const approve = decode(tx({ to: TOKEN, data: encodeFunctionData({ abi: erc20, functionName: 'approve', args: [BOB, MAX] }) }));
  assert.equal(approve.kind, 'erc20.approve');
  assert.equal(approve.to, bob);
  assert.deepEqual(approve.approvals, [{ asset: `eip155:8453/erc20:${token}`, amount: MAX, spender: bob, unlimited: true }]);
  assert.deepEqual(approve.spends.map((s) => s.kind), ['fee']);
  assert.match(approve.summary, /UNLIMITED/);

  const increase = decode(tx({ to: TOKEN, data: encodeFunctionData({ abi: erc20, functionName: 'increaseAllowance', args: [BOB, 7n] }) }));
  assert.equal(increase.kind, 'erc20.increase_allowance');
  assert.deepEqual(increase.approvals, [{ asset: `eip155:8453/erc20:${token}`, amount: 7n, spender: bob, unlimited: false }]);
});

test('malformed calldata for a known ERC-20 selector fails closed, never contract.call', () => {
  const good = encodeFunctionData({ abi: erc20, functionName: 'transfer', args: [BOB, 1n] });
  rejects(tx({ to: TOKEN, data: good.slice(0, -2) }), 'undecodable_payload', 'transaction.data'); // truncated
  rejects(tx({ to: TOKEN, data: `${good}00` }), 'undecodable_payload'); // trailing byte
  rejects(tx({ to: TOKEN, data: `${good}${'00'.repeat(32)}` }), 'undecodable_payload'); // extra word
  // Dirty high bytes in the address word: viem would silently drop them; a contract would revert or differ.
  const dirty = `0xa9059cbb${'ff'.repeat(12)}${bob.slice(2)}${'00'.repeat(31)}01`;
  rejects(tx({ to: TOKEN, data: dirty }), 'undecodable_payload');
  rejects(tx({ to: TOKEN, data: '0xa9059c' }), 'undecodable_payload'); // under 4 bytes
});

test('unknown calldata: contract.call with selector; args decoded only with a registered ABI', () => {
  const abi = parseAbi(['function swap(address tokenIn, uint256 amountIn, (address recipient, uint256 minOut) params)']);
  const data = encodeFunctionData({ abi, functionName: 'swap', args: [TOKEN, 5n, { recipient: BOB, minOut: 3n }] });
  const plain = decode(tx({ to: CAROL, data, value: 9 }));
  assert.equal(plain.kind, 'contract.call');
  assert.equal(plain.to, CAROL);
  assert.deepEqual(plain.call, { contract: CAROL, selector: data.slice(0, 10), data });
  assert.deepEqual(plain.spends[0], { asset: 'eip155:8453/slip44:60', amount: 9n, to: CAROL, kind: 'value' });

  const withAbi = createEvmAdapter({ abis: new AbiRegistry().register(CAROL, abi) });
  const decoded = decode(tx({ to: CAROL, data }), withAbi);
  assert.equal(decoded.call?.functionName, 'swap');
  assert.deepEqual(decoded.call?.args, { tokenIn: token, amountIn: 5n, params: { recipient: bob, minOut: 3n } });
  // The ABI is for CAROL only; the wildcard applies everywhere.
  assert.equal(decode(tx({ to: BOB, data }), withAbi).call?.args, undefined);
  const wildcard = createEvmAdapter({ abis: new AbiRegistry().register('*', abi) });
  assert.equal(decode(tx({ to: BOB, data }), wildcard).call?.functionName, 'swap');
  // A registered ABI decodes strictly as well.
  assert.throws(() => decode(tx({ to: CAROL, data: data.slice(0, 74) }), withAbi), { code: 'undecodable_payload' });
});

test('contract.deploy when to is absent or null; its counterparty (and the value\'s recipient) is the contract it creates', () => {
  const intent = decode(tx({ to: null, data: '0x6080604052', value: 3, nonce: 7 }));
  assert.equal(intent.kind, 'contract.deploy');
  // CREATE: keccak256(rlp([sender, nonce])), as the chain computes it (viem's implementation, checked on a known vector below).
  const created = getContractAddress({ from: signer.address as `0x${string}`, nonce: 7n }).toLowerCase();
  assert.equal(intent.to, created);
  assert.deepEqual(intent.spends[0], { asset: 'eip155:8453/slip44:60', amount: 3n, to: created, kind: 'value' });
  assert.match(intent.summary, new RegExp(`^deploy a contract at ${created} \\(5 bytes of init code\\) with value 3 `));
  // Another nonce creates another contract; the serialized form names the same one.
  assert.notEqual(decode(tx({ data: '0x60', nonce: 8 })).to, created);
  const serialized = serializeTransaction({ type: 'eip1559', chainId: 8453, data: '0x6080604052', value: 3n, nonce: 7, gas: 21000n, maxFeePerGas: 1000n, maxPriorityFeePerGas: 10n });
  assert.equal(decode({ serializedTransaction: serialized }).to, created);
  // A widely published CREATE vector (sender 0x6ac7…, nonce 0 creates 0xcd23…): the helper computes what the chain does.
  assert.equal(getContractAddress({ from: '0x6ac7ea33f8831ea9dcc53393aaa88b25a785dbf0', nonce: 0n }).toLowerCase(), '0xcd234a471b72ba2f1ccf0a70fcaba648a5eecd8d');
});

test('serializedTransaction decodes like the JSON form and gives the same digest', () => {
  const data = encodeFunctionData({ abi: erc20, functionName: 'approve', args: [BOB, 10n] });
  const json = tx({ to: TOKEN, data, nonce: 3, gas: 70000 });
  const serialized = serializeTransaction({ type: 'eip1559', chainId: 8453, to: TOKEN, data, nonce: 3, gas: 70000n, maxFeePerGas: 1000n, maxPriorityFeePerGas: 10n });
  const a = adapter.decode('evm.transaction', json, signer);
  const b = adapter.decode('evm.transaction', { serializedTransaction: serialized }, signer);
  assert.deepEqual(b.intent, a.intent);
  assert.deepEqual(b.digest, a.digest);
  rejects({ chainId: 1, serializedTransaction: serialized }, 'chain_mismatch');
  rejects({ serializedTransaction: '0x02c0' }, 'undecodable_payload');
  const legacy = serializeTransaction({ type: 'legacy', chainId: 10, to: BOB, value: 1n, nonce: 0, gas: 21000n, gasPrice: 5n });
  assert.equal(decode({ serializedTransaction: legacy }).chain, 'eip155:10');
  const signed = serializeTransaction({ type: 'eip1559', chainId: 8453, to: BOB, nonce: 0, gas: 21000n, maxFeePerGas: 1n, maxPriorityFeePerGas: 1n }, { r: `0x${'11'.repeat(32)}`, s: `0x${'22'.repeat(32)}`, yParity: 0 });
  rejects({ serializedTransaction: signed }, 'invalid_request', 'unsigned');
});

test('bad inputs give their codes and name the field', () => {
  rejects(tx({ to: '0x1234' }), 'invalid_address', 'transaction.to');
  rejects(tx({ to: BOB, data: '0xabc' }), 'invalid_hex', 'transaction.data');
  rejects(tx({ to: BOB, data: 'hello' }), 'invalid_hex', 'transaction.data');
  rejects(tx({ to: BOB, value: (MAX + 1n).toString() }), 'invalid_amount', 'transaction.value');
  rejects(tx({ to: BOB, value: '-1' }), 'invalid_amount', 'transaction.value');
  rejects(tx({ to: BOB, value: 1.5 }), 'invalid_amount', 'transaction.value');
  rejects(tx({ to: BOB, value: 2 ** 60 }), 'invalid_amount', 'transaction.value');
  rejects(tx({ to: BOB, type: 'eip4844' }), 'undecodable_payload', 'transaction.type');
  // EIP-7702 is signed (eip7702.test.ts), but only with at least one authorization.
  rejects(tx({ to: BOB, type: '0x4' }), 'invalid_request', 'transaction.authorizationList');
  rejects(tx({ to: BOB, authorizationList: [] }), 'invalid_request', 'transaction.authorizationList');
  rejects(tx({ to: BOB, type: 'weird' }), 'invalid_request', 'transaction.type');
  rejects(tx({ to: BOB, chainId: 1 }), 'chain_mismatch');
  rejects(tx({ to: BOB }, 0), 'unsupported_chain');
  rejects(tx({ to: BOB }, 'bip122:000000000019d6689c085ae165831e93'), 'unsupported_chain');
  rejects(tx({ to: BOB, gasPrice: 1 }), 'invalid_request', 'gasPrice');
  rejects({ chainId: 1, transaction: { type: 'legacy', to: BOB, nonce: 0, gas: 1 } }, 'invalid_request', 'transaction.gasPrice');
  rejects({ chainId: 1, transaction: { to: BOB, nonce: 0, gas: 1, maxFeePerGas: 1 } }, 'invalid_request', 'maxPriorityFeePerGas');
  rejects(tx({ to: BOB, maxPriorityFeePerGas: 5000 }), 'invalid_request');
  rejects(tx({ to: BOB, surprise: 1 }), 'invalid_request', 'surprise');
  rejects(tx({ to: BOB, from: CAROL }), 'invalid_request', 'transaction.from');
  rejects({ transaction: { to: BOB } }, 'invalid_request', 'chainId');
  rejects('nope', 'invalid_request');
});

test('error messages do not echo long input values', () => {
  const long = `0x${'ab'.repeat(500)}z`;
  try {
    decode(tx({ to: BOB, data: long }));
    assert.fail('expected an error');
  } catch (e) {
    assert.ok(e instanceof AirlockError);
    assert.ok(!e.message.includes('abababab'), e.message);
  }
});
