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
