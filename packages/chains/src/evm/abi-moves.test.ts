import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AirlockError, type AbiDeclaration } from '@airlock/core';
import { encodeFunctionData, parseAbi } from 'viem';
import { checkAbiDeclarations, enrichCall } from './abi-moves.ts';
import { createEvmAdapter } from './adapter.ts';

const ROUTER = '0x7a250d5630b4cf539739df2c5dacb4c659f2488d';
const USDC = '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
const WETH = '0x4200000000000000000000000000000000000006';
const AGENT = '0x9999999999999999999999999999999999999999';
const V2 = 'function swapExactTokensForTokens(uint256 amountIn, uint256 amountOutMin, address[] path, address to, uint256 deadline) returns (uint256[] amounts)';

const decl = (over: Partial<AbiDeclaration> = {}): AbiDeclaration => ({
  name: 'agent/abis.v2',
  contracts: new Set([ROUTER]),
  functions: [V2],
  moves: { swapExactTokensForTokens: { spends: [{ asset: 'path.0', amount: 'amountIn', to: 'to' }] } },
  ...over,
});

function swapIntent(data: string) {
  return createEvmAdapter().decode('evm.transaction', { chainId: 8453, transaction: { to: ROUTER, data, nonce: 0, gas: '200000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1' } }, { address: AGENT }).intent;
}
const v2Data = (to: string, amountIn = 7n) => encodeFunctionData({ abi: parseAbi([V2]), args: [amountIn, 1n, [USDC, WETH], to as `0x${string}`, 0n] });

test('a declared array item (path.0) is the token, amountIn the amount, `to` the receiver', () => {
  const bare = swapIntent(v2Data(AGENT));
  assert.equal(bare.call?.args, undefined);
  const intent = enrichCall(bare, [decl()]);
  assert.equal(intent.call?.functionName, 'swapExactTokensForTokens');
  assert.deepEqual((intent.call?.args as { path: string[] }).path, [USDC, WETH]);
  assert.deepEqual(intent.spends.filter((s) => s.kind === 'transfer'), [{ asset: `eip155:8453/erc20:${USDC}`, amount: 7n, to: AGENT, kind: 'transfer' }]);
  assert.equal(intent.spends.at(-1)?.kind, 'fee');
});

test('first declaration wins; contracts not listed and functions without moves are left as declared', () => {
  const nothing = decl({ name: 'fleet/abis.v2', moves: {} });
  const first = enrichCall(swapIntent(v2Data(AGENT)), [nothing, decl()]);
  assert.equal(first.call?.functionName, 'swapExactTokensForTokens');
  assert.equal(first.spends.filter((s) => s.kind === 'transfer').length, 0);
  const elsewhere = decl({ contracts: new Set(['0x1111111111111111111111111111111111111111']) });
  const bare = swapIntent(v2Data(AGENT));
  assert.equal(enrichCall(bare, [elsewhere]), bare);
});

test('calldata that is not the canonical encoding of the registered function fails closed, naming the declaration', () => {
  assert.throws(
    () => enrichCall(swapIntent(`${v2Data(AGENT)}00`), [decl()]),
    (e: unknown) => e instanceof AirlockError && e.code === 'undecodable_payload' && e.details?.abi === 'agent/abis.v2',
  );
});

test('checkAbis: fragments parse, moves name one function and real arguments of the right type', () => {
  assert.deepEqual(checkAbiDeclarations([decl()]), []);
  const paths = (d: AbiDeclaration[]) => checkAbiDeclarations(d).map((i) => i.path);
  assert.deepEqual(paths([decl({ name: 'x', functions: ['function swap(adress token)'] })]), ['abis.x.functions[0]', 'abis.x.moves.swapExactTokensForTokens']);
  assert.deepEqual(paths([decl({ name: 'x', moves: { swap: { spends: [{ asset: 'path.0', amount: 'amountIn' }] } } })]), ['abis.x.moves.swap']);
  assert.deepEqual(paths([decl({ name: 'x', moves: { swapExactTokensForTokens: { spends: [{ asset: 'to', amount: 'path', to: 'amountIn' }] } } })]), [
    'abis.x.moves.swapExactTokensForTokens.spends[0].amount',
    'abis.x.moves.swapExactTokensForTokens.spends[0].to',
  ]);
  assert.deepEqual(paths([decl({ name: 'x', moves: { swapExactTokensForTokens: { spends: [{ asset: 'path.x', amount: 'nope' }] } } })]), [
    'abis.x.moves.swapExactTokensForTokens.spends[0].asset',
    'abis.x.moves.swapExactTokensForTokens.spends[0].amount',
  ]);
  const overloaded = decl({ name: 'x', functions: ['function f(uint256 a)', 'function f(address b, uint256 a)'], moves: { f: { spends: [{ asset: `eip155:8453/erc20:${USDC}`, amount: 'a' }] } } });
  assert.deepEqual(paths([overloaded]), ['abis.x.moves.f']);
  assert.deepEqual(paths([{ ...overloaded, moves: { 'f(uint256)': overloaded.moves.f! } }]), []);
  assert.deepEqual(paths([decl({ name: 'a' }), decl({ name: 'b' })]), ['abis.b.functions[0]']);
});

// A module's exec function (Zodiac Roles' execTransactionWithRole): the call it makes its Safe execute.
const ROLES = '0x2222222222222222222222222222222222222222';
const PARTNER = '0x1111111111111111111111111111111111111111';
const EXEC = 'function execTransactionWithRole(address to, uint256 value, bytes data, uint8 operation, bytes32 roleKey, bool shouldRevert) returns (bool success)';
const rolesDecl = (over: Partial<AbiDeclaration> = {}): AbiDeclaration => ({
  name: 'agent/abis.roles',
  contracts: new Set([ROLES]),
  functions: [EXEC],
  moves: { execTransactionWithRole: { executes: { to: 'to', value: 'value', data: 'data', operation: 'operation' } } },
  ...over,
});
const transfer = (to: string, amount: bigint) => encodeFunctionData({ abi: parseAbi(['function transfer(address to, uint256 value)']), args: [to as `0x${string}`, amount] });
const execData = (to: string, data: `0x${string}`, operation = 0, value = 0n) =>
  encodeFunctionData({ abi: parseAbi([EXEC]), args: [to as `0x${string}`, value, data, operation, `0x${'61'.repeat(32)}`, true] });
function moduleIntent(data: string) {
  return createEvmAdapter().decode('evm.transaction', { chainId: 8453, transaction: { to: ROLES, data, nonce: 0, gas: '200000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1' } }, { address: AGENT }).intent;
}

test('executes: the call a module makes its account execute is decoded like a transaction, and its spends are the request\'s', () => {
  const intent = enrichCall(moduleIntent(execData(USDC, transfer(PARTNER, 30_000_000n))), [rolesDecl()]);
  assert.equal(intent.kind, 'contract.call');
  assert.equal(intent.call?.functionName, 'execTransactionWithRole');
  const [call] = intent.module?.calls ?? [];
  assert.equal(intent.module?.contract, ROLES);
  assert.equal(intent.module?.abi, 'agent/abis.roles');
  assert.equal(call?.kind, 'erc20.transfer');
  assert.equal(call?.to, PARTNER);
  assert.equal(call?.from, ROLES);
  const spend = { asset: `eip155:8453/erc20:${USDC}`, amount: 30_000_000n, to: PARTNER, kind: 'transfer' };
  assert.deepEqual(call?.spends, [spend]);
  assert.deepEqual(intent.spends.filter((s) => s.kind !== 'fee'), [spend]);
  assert.match(intent.summary, /^call execTransactionWithRole on 0x2222\S+, which makes its account transfer 30000000 of eip155:8453\/erc20:0x8335\S+ to 0x1111/);
});

test('executes: native value leaves the account; DELEGATECALL is contract.delegatecall; other operations and value with DELEGATECALL fail closed', () => {
  const paid = enrichCall(moduleIntent(execData(PARTNER, '0x', 0, 5n)), [rolesDecl()]);
  assert.deepEqual(paid.module?.calls[0]?.spends, [{ asset: 'eip155:8453/slip44:60', amount: 5n, to: PARTNER, kind: 'value' }]);
  const delegated = enrichCall(moduleIntent(execData(USDC, transfer(PARTNER, 1n), 1)), [rolesDecl()]);
  assert.equal(delegated.module?.calls[0]?.kind, 'contract.delegatecall');
  assert.deepEqual(delegated.module?.calls[0]?.spends, []);
  const refused = (data: string) => assert.throws(() => enrichCall(moduleIntent(data), [rolesDecl()]), (e: unknown) => e instanceof AirlockError && e.code === 'undecodable_payload' && e.details?.abi === 'agent/abis.roles');
  refused(execData(USDC, transfer(PARTNER, 1n), 2));
  refused(execData(USDC, transfer(PARTNER, 1n), 1, 1n));
  refused(execData(USDC, '0x1234'));
});

test('executes: one level only; a call the account executes that is a declared module call again is refused', () => {
  const nested = execData(ROLES, execData(USDC, transfer(PARTNER, 1n)));
  assert.throws(() => enrichCall(moduleIntent(nested), [rolesDecl()]), (e: unknown) => e instanceof AirlockError && e.code === 'undecodable_payload');
  // A call to another declared contract is decoded through its declaration.
  const swap = enrichCall(moduleIntent(execData(ROUTER, v2Data(AGENT))), [rolesDecl(), decl()]);
  assert.deepEqual(swap.module?.calls[0]?.spends.map((s) => s.amount), [7n]);
  assert.deepEqual(swap.spends.filter((s) => s.kind === 'transfer').map((s) => s.amount), [7n]);
});

test('checkAbis: executes names real arguments of the right type', () => {
  assert.deepEqual(checkAbiDeclarations([rolesDecl()]), []);
  const issues = checkAbiDeclarations([rolesDecl({ moves: { execTransactionWithRole: { executes: { to: 'roleKey', value: 'data', data: 'shouldRevert', operation: 'nope' } } } })]);
  assert.deepEqual(issues.map((i) => i.path), [
    'abis.agent/abis.roles.moves.execTransactionWithRole.executes.to',
    'abis.agent/abis.roles.moves.execTransactionWithRole.executes.value',
    'abis.agent/abis.roles.moves.execTransactionWithRole.executes.data',
    'abis.agent/abis.roles.moves.execTransactionWithRole.executes.operation',
  ]);
});
