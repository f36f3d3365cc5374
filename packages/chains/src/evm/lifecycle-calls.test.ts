// The lifecycle path's allow list (core/lifecycle/lifecycle-calls.ts) over transactions decoded by the real EVM
// adapter: what it lets through (transfers to the treasury or the current address, revocations that grant
// nothing) and, default deny, everything close to them that would grant or move value elsewhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyLifecycleCall, PERMIT2_ADDRESS, type LifecycleCall } from '@airlock/core';
import { encodeFunctionData, parseAbi, type Hex } from 'viem';
import { createEvmAdapter } from './adapter.ts';

const adapter = createEvmAdapter();
const FROM = '0x00000000000000000000000000000000000000f0';
const CURRENT = '0x00000000000000000000000000000000000000c0';
const TREASURY = '0x00000000000000000000000000000000000000d0';
const MALLORY = '0x2222222222222222222222222222222222222222';
const TOKEN = '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
const who = { from: FROM, current: CURRENT, treasury: TREASURY };

const erc20 = parseAbi(['function transfer(address,uint256)', 'function approve(address,uint256)', 'function increaseAllowance(address,uint256)', 'function transferFrom(address,address,uint256)', 'function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)', 'function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s)']);
const permit2 = parseAbi(['function lockdown((address token, address spender)[] approvals)', 'function invalidateNonces(address token, address spender, uint48 newNonce)', 'function invalidateUnorderedNonces(uint256 wordPos, uint256 mask)', 'function approve(address token, address spender, uint160 amount, uint48 expiration)', 'function transferFrom(address from, address to, uint160 amount, address token)']);
const R = `0x${'11'.repeat(32)}` as Hex;

function classify(call: LifecycleCall) {
  const { intent } = adapter.decode('evm.transaction', { chainId: 8453, transaction: { type: 'legacy', to: call.to, value: call.value, data: call.data, nonce: 0, gas: 100000, gasPrice: 1 } }, { address: FROM });
  return classifyLifecycleCall(intent, call, who);
}
const refused = (call: LifecycleCall) => assert.throws(() => classify(call), (e: any) => e.code === 'lifecycle_kind_refused', call.data);

test('transfers go only to the treasury or the current address', () => {
  assert.equal(classify({ to: TREASURY, value: 5n, data: '0x' }).kind, 'native_transfer');
  assert.equal(classify({ to: CURRENT, value: 5n, data: '0x' }).recipient, CURRENT);
  const token = classify({ to: TOKEN, value: 0n, data: encodeFunctionData({ abi: erc20, functionName: 'transfer', args: [TREASURY, 7n] }) });
  assert.deepEqual([token.kind, token.asset, token.amount, token.recipient], ['erc20_transfer', `eip155:8453/erc20:${TOKEN}`, 7n, TREASURY]);
  refused({ to: MALLORY, value: 5n, data: '0x' });
  refused({ to: FROM, value: 5n, data: '0x' }); // to itself: moves nothing
  refused({ to: TREASURY, value: 0n, data: '0x' });
  refused({ to: TOKEN, value: 0n, data: encodeFunctionData({ abi: erc20, functionName: 'transfer', args: [MALLORY, 7n] }) });
  refused({ to: TOKEN, value: 1n, data: encodeFunctionData({ abi: erc20, functionName: 'transfer', args: [TREASURY, 7n] }) });
  refused({ to: TOKEN, value: 0n, data: encodeFunctionData({ abi: erc20, functionName: 'transferFrom', args: [FROM, TREASURY, 7n] }) });
  assert.throws(() => classifyLifecycleCall({ kind: 'contract.deploy', chain: 'eip155:8453', action: 'evm.transaction', from: FROM, spends: [], approvals: [], summary: '' }, { value: 0n, data: '0x60' }, who), (e: any) => e.code === 'lifecycle_kind_refused');
});

test('revocations grant nothing and move nothing', () => {
  const ok = (call: LifecycleCall) => assert.equal(classify(call).kind, 'revocation', call.data);
  ok({ to: TOKEN, value: 0n, data: encodeFunctionData({ abi: erc20, functionName: 'approve', args: [MALLORY, 0n] }) });
  ok({ to: PERMIT2_ADDRESS, value: 0n, data: encodeFunctionData({ abi: permit2, functionName: 'lockdown', args: [[{ token: TOKEN, spender: MALLORY }, { token: TOKEN, spender: TREASURY }]] }) });
  ok({ to: PERMIT2_ADDRESS, value: 0n, data: encodeFunctionData({ abi: permit2, functionName: 'invalidateNonces', args: [TOKEN, MALLORY, 5] }) });
  ok({ to: PERMIT2_ADDRESS, value: 0n, data: encodeFunctionData({ abi: permit2, functionName: 'invalidateUnorderedNonces', args: [0n, 1n] }) });
  ok({ to: PERMIT2_ADDRESS, value: 0n, data: encodeFunctionData({ abi: permit2, functionName: 'approve', args: [TOKEN, MALLORY, 0n, 0] }) });
  ok({ to: TOKEN, value: 0n, data: encodeFunctionData({ abi: erc20, functionName: 'cancelAuthorization', args: [FROM, R, 27, R, R] }) });
  ok({ to: TOKEN, value: 0n, data: encodeFunctionData({ abi: erc20, functionName: 'permit', args: [FROM, MALLORY, 0n, 1n, 27, R, R] }) });
});

test('anything close to a revocation that grants, moves or is not canonical is refused (default deny)', () => {
  refused({ to: TOKEN, value: 0n, data: encodeFunctionData({ abi: erc20, functionName: 'approve', args: [MALLORY, 1n] }) });
  refused({ to: TOKEN, value: 0n, data: encodeFunctionData({ abi: erc20, functionName: 'increaseAllowance', args: [MALLORY, 0n] }) });
  refused({ to: TOKEN, value: 1n, data: encodeFunctionData({ abi: erc20, functionName: 'approve', args: [MALLORY, 0n] }) });
  refused({ to: PERMIT2_ADDRESS, value: 0n, data: encodeFunctionData({ abi: permit2, functionName: 'approve', args: [TOKEN, MALLORY, 1n, 0] }) });
  refused({ to: PERMIT2_ADDRESS, value: 0n, data: encodeFunctionData({ abi: permit2, functionName: 'transferFrom', args: [FROM, MALLORY, 1n, TOKEN] }) });
  // Permit2 calls only on the canonical Permit2 contract: elsewhere the selector means whatever that contract says.
  refused({ to: MALLORY, value: 0n, data: encodeFunctionData({ abi: permit2, functionName: 'lockdown', args: [[{ token: TOKEN, spender: MALLORY }]] }) });
  // Someone else's authorization or permit, and a permit with a value.
  refused({ to: TOKEN, value: 0n, data: encodeFunctionData({ abi: erc20, functionName: 'cancelAuthorization', args: [MALLORY, R, 27, R, R] }) });
  refused({ to: TOKEN, value: 0n, data: encodeFunctionData({ abi: erc20, functionName: 'permit', args: [FROM, MALLORY, 1n, 1n, 27, R, R] }) });
  // Trailing bytes and dirty high bits: not the canonical encoding the check read.
  const lockdown = encodeFunctionData({ abi: permit2, functionName: 'lockdown', args: [[{ token: TOKEN, spender: MALLORY }]] });
  refused({ to: PERMIT2_ADDRESS, value: 0n, data: `${lockdown}${'00'.repeat(32)}` as Hex });
  const invalidate = encodeFunctionData({ abi: permit2, functionName: 'invalidateNonces', args: [TOKEN, MALLORY, 5] });
  refused({ to: PERMIT2_ADDRESS, value: 0n, data: `${invalidate.slice(0, 10)}ff${invalidate.slice(12)}` as Hex });
  refused({ to: TOKEN, value: 0n, data: '0xdeadbeef' });
});
