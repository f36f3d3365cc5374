import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AirlockError } from '@airlock/core';
import { encodeFunctionData, erc20Abi, hashMessage, hexToBytes, parseAbi, recoverAddress, bytesToHex } from 'viem';
import { getUserOperationHash, getUserOperationTypedData } from 'viem/account-abstraction';
import { createEvmAdapter } from './adapter.ts';
import { signDigest, signer } from './test-key.ts';

const adapter = createEvmAdapter();
const sender = '0x5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a';
const bob = '0xb0b0000000000000000000000000000000000b0b';
const usdc = '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
const paymaster = '0x9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a';
const EP07 = '0x0000000071727de22e5e9d8baf0edac6f37da032';
const EP08 = '0x4337084d9e255ff0702461cf8895ce9e3b5ff108';
const EP06 = '0x5ff137d4b0fdcd49dca30c7cf57e578a026d2789';
const ACCOUNT = parseAbi(['function execute(address target, uint256 value, bytes data)', 'function executeBatch((address target, uint256 value, bytes data)[] calls)', 'function executeBatch(address[] dest, uint256[] value, bytes[] func)']);

const transfer = (to: string, amount: bigint) => encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [to as `0x${string}`, amount] });
const gasFields = { callGasLimit: 100_000n, verificationGasLimit: 200_000n, preVerificationGas: 50_000n, maxFeePerGas: 3_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n };
const json = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'bigint' ? v.toString() : v]));

function assertCode(fn: () => unknown, code: string) {
  assert.throws(fn, (e: unknown) => e instanceof AirlockError && e.code === code);
}

test('userOpHash recomputed for v0.6, v0.7 and v0.8 equals viem getUserOperationHash (paymaster, factory, 7702)', () => {
  const callData = encodeFunctionData({ abi: ACCOUNT, functionName: 'execute', args: [usdc, 0n, transfer(bob, 5n)] });
  const cases = [
    { version: '0.6' as const, entryPoint: EP06, op: { sender, nonce: 7n, initCode: '0x', callData, paymasterAndData: `${paymaster}abcd`, signature: '0x', ...gasFields } },
    { version: '0.7' as const, entryPoint: EP07, op: { sender, nonce: 1n << 64n, factory: bob, factoryData: '0x1234', callData, paymaster, paymasterVerificationGasLimit: 30_000n, paymasterPostOpGasLimit: 20_000n, paymasterData: '0xbeef', signature: '0x', ...gasFields } },
    { version: '0.8' as const, entryPoint: EP08, op: { sender, nonce: 3n, callData, ...gasFields } },
    { version: '0.8' as const, entryPoint: EP08, op: { sender, nonce: 0n, factory: '0x7702', factoryData: '0x', authorization: { address: bob, chainId: 8453, nonce: 0 }, callData, ...gasFields } },
  ];
  for (const { version, entryPoint, op } of cases) {
    const expected = getUserOperationHash({ chainId: 8453, entryPointAddress: entryPoint as `0x${string}`, entryPointVersion: version, userOperation: op as never });
    const decoded = adapter.decode('evm.user_operation', { chainId: 8453, entryPoint, entryPointVersion: version, userOperation: json(op) }, signer);
    assert.equal(decoded.intent.userOperation?.hash, expected, `v${version}`);
    assert.equal(bytesToHex(decoded.digest), expected, 'raw signing signs the userOpHash itself');
  }
});

test('eip191 signing signs a personal message over the userOpHash; the signature recovers to the agent', async () => {
  const callData = encodeFunctionData({ abi: ACCOUNT, functionName: 'execute', args: [bob, 10n, '0x'] });
  const payload = { chainId: 8453, entryPoint: EP07, entryPointVersion: '0.7', userOperation: json({ sender, nonce: 0n, callData, ...gasFields }), signing: 'eip191' };
  const decoded = adapter.decode('evm.user_operation', payload, signer);
  const hash = decoded.intent.userOperation!.hash as `0x${string}`;
  assert.equal(bytesToHex(decoded.digest), hashMessage({ raw: hash }));
  const { signature } = adapter.finalize('evm.user_operation', decoded, signDigest(decoded.digest), signer);
  assert.equal((await recoverAddress({ hash: hashMessage({ raw: hash }), signature: signature as `0x${string}` })).toLowerCase(), signer.address);
});

test('executeBatch decodes into its calls; spends add up with the prefund; each call is an intent of its own', () => {
  const callData = encodeFunctionData({ abi: ACCOUNT, functionName: 'executeBatch', args: [[
    { target: usdc, value: 0n, data: transfer(bob, 5n) },
    { target: bob, value: 7n, data: '0x' },
    { target: usdc, value: 0n, data: encodeFunctionData({ abi: erc20Abi, functionName: 'approve', args: [bob, (1n << 256n) - 1n] }) },
  ]] });
  const { intent } = adapter.decode('evm.user_operation', { chainId: 8453, entryPoint: EP08, entryPointVersion: '0.8', userOperation: json({ sender, nonce: 0n, callData, ...gasFields }) }, signer);
  const op = intent.userOperation!;
  assert.equal(intent.kind, 'erc4337.user_operation');
  assert.equal(intent.action, 'evm.user_operation');
  assert.equal(op.accountCall, 'executeBatch');
  assert.deepEqual(op.calls.map((c) => c.kind), ['erc20.transfer', 'native.transfer', 'erc20.approve']);
  assert.ok(op.calls.every((c) => c.from === sender && c.action === 'evm.user_operation'));
  assert.equal(op.totalGas, 350_000n);
  assert.equal(op.prefund, 350_000n * 3_000_000_000n);
  assert.deepEqual(intent.spends.map((s) => [s.kind, s.amount]), [['transfer', 5n], ['value', 7n], ['fee', op.prefund]]);
  assert.equal(intent.approvals[0]?.unlimited, true);
});

test("SimpleAccount v0.7's array executeBatch decodes; mismatched arrays are refused", () => {
  const callData = encodeFunctionData({ abi: ACCOUNT, functionName: 'executeBatch', args: [[usdc, bob], [], [transfer(bob, 1n), '0x']] });
  const { intent } = adapter.decode('evm.user_operation', { chainId: 8453, entryPoint: EP07, entryPointVersion: '0.7', userOperation: json({ sender, nonce: 0n, callData, ...gasFields }) }, signer);
  assert.deepEqual(intent.userOperation!.calls.map((c) => c.kind), ['erc20.transfer', 'native.transfer']);
  const bad = encodeFunctionData({ abi: ACCOUNT, functionName: 'executeBatch', args: [[usdc, bob], [1n], [transfer(bob, 1n), '0x']] });
  assertCode(() => adapter.decode('evm.user_operation', { chainId: 8453, entryPoint: EP07, entryPointVersion: '0.7', userOperation: json({ sender, nonce: 0n, callData: bad, ...gasFields }) }, signer), 'undecodable_payload');
});

test('unknown account calldata decodes to no calls (policy refuses it); a paymaster is named and pays the prefund', () => {
  const callData = encodeFunctionData({ abi: parseAbi(['function addOwnerAddress(address owner)']), functionName: 'addOwnerAddress', args: [bob] });
  const { intent } = adapter.decode('evm.user_operation', { chainId: 8453, entryPoint: EP07, entryPointVersion: '0.7', userOperation: json({ sender, nonce: 0n, callData, paymaster, paymasterVerificationGasLimit: 1n, paymasterPostOpGasLimit: 1n, ...gasFields }) }, signer);
  assert.equal(intent.userOperation!.accountCall, 'unknown');
  assert.deepEqual(intent.userOperation!.calls, []);
  assert.equal(intent.userOperation!.paymaster, paymaster);
  assert.equal(intent.spends.length, 0, 'the paymaster pays gas: no fee charged to the agent');
});

test('bad operations are refused with codes: no hash-only request, bad version, unknown field, short paymasterAndData', () => {
  const base = { chainId: 8453, entryPoint: EP07, entryPointVersion: '0.7' };
  assertCode(() => adapter.decode('evm.user_operation', { ...base, userOpHash: `0x${'11'.repeat(32)}` }, signer), 'invalid_request');
  assertCode(() => adapter.decode('evm.user_operation', { ...base, entryPointVersion: '0.9', userOperation: { sender, nonce: 0 } }, signer), 'invalid_request');
  assertCode(() => adapter.decode('evm.user_operation', { ...base, userOperation: { sender, nonce: 0, hash: '0x' } }, signer), 'invalid_request');
  assertCode(() => adapter.decode('evm.user_operation', { ...base, userOperation: { sender, nonce: 0, accountGasLimits: `0x${'00'.repeat(32)}`, gasFees: `0x${'00'.repeat(32)}`, paymasterAndData: paymaster } }, signer), 'undecodable_payload');
});

test('PackedUserOperation typed data (what Simple7702Account signs) decodes as the same user operation', () => {
  const callData = encodeFunctionData({ abi: ACCOUNT, functionName: 'execute', args: [usdc, 0n, transfer(bob, 9n)] });
  const typedData = getUserOperationTypedData({ chainId: 8453, entryPointAddress: EP08, userOperation: { sender, nonce: 2n, callData, signature: '0x', ...gasFields } as never });
  const { signature: _dropped, ...message } = typedData.message as typeof typedData.message & { signature: string };
  const decoded = adapter.decode('evm.typed_data', { typedData: { ...typedData, message: json(message) } }, signer);
  assert.equal(decoded.intent.kind, 'erc4337.user_operation');
  assert.equal(decoded.intent.action, 'evm.user_operation', 'a session needs evm.user_operation, whichever route it takes');
  assert.equal(decoded.intent.userOperation?.signing, 'typed_data');
  assert.equal(decoded.intent.userOperation?.calls[0]?.kind, 'erc20.transfer');
  const viaOperation = adapter.decode('evm.user_operation', { chainId: 8453, entryPoint: EP08, entryPointVersion: '0.8', userOperation: json({ sender, nonce: 2n, callData, ...gasFields }) }, signer);
  assert.deepEqual(decoded.digest, viaOperation.digest);
  // The `signature` field is not part of the type: a client must drop it (the SDK does).
  assertCode(() => adapter.decode('evm.typed_data', { typedData: { ...typedData, message: json(typedData.message) } }, signer), 'undecodable_payload');
  // A lookalike domain stays unknown typed data.
  const other = adapter.decode('evm.typed_data', { typedData: { ...typedData, domain: { ...typedData.domain, name: 'ERC4337x' }, message: json(message) } }, signer);
  assert.equal(other.intent.kind, 'typed_data.unknown');
});

test('an operation claims its (EntryPoint, sender, nonce) for its signer, whichever route it takes; another nonce or account is another claim', () => {
  const callData = encodeFunctionData({ abi: ACCOUNT, functionName: 'execute', args: [usdc, 0n, transfer(bob, 9n)] });
  const request = (over: Record<string, unknown> = {}, entryPoint = EP08, version = '0.8') =>
    adapter.decode('evm.user_operation', { chainId: 8453, entryPoint, entryPointVersion: version, userOperation: json({ sender, nonce: (1n << 64n) + 2n, callData, ...gasFields, ...over }) }, signer).intent.nonceKeys;
  // The full 256-bit nonce (key << 64 | sequence) names the slot the EntryPoint consumes.
  const key = `user-operation|eip155:8453|${EP08}|${sender}|${signer.address}|${(1n << 64n) + 2n}`;
  assert.deepEqual(request(), [key]);
  // A different operation over the same nonce claims the same key (the service refuses it, nonce_reused).
  assert.deepEqual(request({ callData: encodeFunctionData({ abi: ACCOUNT, functionName: 'execute', args: [usdc, 0n, transfer(bob, 10n)] }), maxFeePerGas: 9n }), [key]);
  // The PackedUserOperation typed-data route claims the same key as POST /v1/sign/user-operation.
  const typedData = getUserOperationTypedData({ chainId: 8453, entryPointAddress: EP08, userOperation: { sender, nonce: (1n << 64n) + 2n, callData, signature: '0x', ...gasFields } as never });
  const { signature: _dropped, ...message } = typedData.message as typeof typedData.message & { signature: string };
  assert.deepEqual(adapter.decode('evm.typed_data', { typedData: { ...typedData, message: json(message) } }, signer).intent.nonceKeys, [key]);
  assert.notDeepEqual(request({ nonce: (2n << 64n) + 2n }), [key], 'another nonce key is another sequence');
  assert.notDeepEqual(request({ sender: bob }), [key]);
  assert.notDeepEqual(request({}, EP07, '0.7'), [key]);
});

test('policy ABIs decode inner calls and the operation sums their declared spends', () => {
  const router = '0x7070707070707070707070707070707070707070';
  const swap = encodeFunctionData({ abi: parseAbi(['function pay(address token, uint256 amount)']), functionName: 'pay', args: [usdc, 11n] });
  const callData = encodeFunctionData({ abi: ACCOUNT, functionName: 'execute', args: [router, 0n, swap] });
  const { intent } = adapter.decode('evm.user_operation', { chainId: 8453, entryPoint: EP08, entryPointVersion: '0.8', userOperation: json({ sender, nonce: 0n, callData, ...gasFields, maxFeePerGas: 0n, maxPriorityFeePerGas: 0n }) }, signer);
  const enriched = adapter.enrich!(intent, [{ name: 'r', contracts: new Set([router]), functions: ['function pay(address token, uint256 amount)'], moves: { pay: { spends: [{ asset: 'token', amount: 'amount' }] } } }]);
  assert.equal(enriched.userOperation?.calls[0]?.call?.functionName, 'pay');
  assert.deepEqual(enriched.spends.map((s) => [s.asset, s.amount, s.to]), [[`eip155:8453/erc20:${usdc}`, 11n, router]]);
});

test('the signature of a user operation is 65 bytes r||s||v and recovers to the agent over the userOpHash', async () => {
  const callData = encodeFunctionData({ abi: ACCOUNT, functionName: 'execute', args: [bob, 1n, '0x'] });
  const decoded = adapter.decode('evm.user_operation', { chainId: 8453, entryPoint: EP08, entryPointVersion: '0.8', userOperation: json({ sender, nonce: 0n, callData, ...gasFields }) }, signer);
  const { signature } = adapter.finalize('evm.user_operation', decoded, signDigest(decoded.digest), signer);
  assert.equal(hexToBytes(signature as `0x${string}`).length, 65);
  assert.equal((await recoverAddress({ hash: decoded.intent.userOperation!.hash as `0x${string}`, signature: signature as `0x${string}` })).toLowerCase(), signer.address);
});
