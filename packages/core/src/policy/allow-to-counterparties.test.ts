// An allow rule's `to` covers every party an EVM request pays or lets spend, not only its main counterparty
// (found by review: native value riding on transfer(partner, 1) calldata to an address the agent chose). What comes
// back to the agent itself is no counterparty. The HTTP attack is server/src/evm-review-value-to-target.http.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AGENT, decide, ETH, input, intent, layer, USDC } from './testing/fixtures.ts';

const ROUTER = '0x3333333333333333333333333333333333333333';
const PARTNER = '0x1111111111111111111111111111111111111111';
const STRANGER = '0x2222222222222222222222222222222222222222';
const WETH = 'eip155:8453/erc20:0x4200000000000000000000000000000000000006';
const policy = layer('agent', { version: 1, rules: [{ name: 'router', type: 'allow', match: { kinds: ['contract.call', 'erc20.transfer'], contracts: [ROUTER, USDC.split(':').pop()!], to: [ROUTER, PARTNER] } }] });
const decision = (spends: { asset: string; amount: bigint; to?: string }[], over: object = {}) =>
  decide([policy], input(intent({ kind: 'contract.call', to: ROUTER, call: { contract: ROUTER, selector: '0x12345678' }, spends: spends.map((s) => ({ ...s, kind: 'transfer' as const })), ...over } as never))).decision;

test('a swap whose declared spends go to the router and back to the agent is granted by `to: [router]`', () => {
  assert.equal(decision([{ asset: USDC, amount: 1_000n, to: ROUTER }, { asset: WETH, amount: 1n, to: AGENT }]), 'allow');
  assert.equal(decision([{ asset: USDC, amount: 1_000n, to: ROUTER }, { asset: WETH, amount: 1n, to: AGENT.toUpperCase().replace('0X', '0x') }]), 'allow');
});

test('a spend to anyone else, native value to a target beside a token transfer included, is not', () => {
  assert.equal(decision([{ asset: USDC, amount: 1_000n, to: ROUTER }, { asset: WETH, amount: 1n, to: STRANGER }]), 'deny');
  const riding = decide([policy], input(intent({ kind: 'erc20.transfer', to: PARTNER, spends: [{ asset: USDC, amount: 1n, to: PARTNER, kind: 'transfer' }, { asset: ETH, amount: 10n ** 19n, to: STRANGER, kind: 'value' }] } as never)));
  assert.equal(riding.decision, 'deny');
  // Control: the same request where the rule lists the target too.
  const listing = layer('agent', { version: 1, rules: [{ name: 'router', type: 'allow', match: { kinds: ['contract.call', 'erc20.transfer'], to: [ROUTER, PARTNER, STRANGER] } }] });
  assert.equal(decide([listing], input(intent({ kind: 'erc20.transfer', to: PARTNER, spends: [{ asset: USDC, amount: 1n, to: PARTNER, kind: 'transfer' }, { asset: ETH, amount: 10n ** 19n, to: STRANGER, kind: 'value' }] } as never))).decision, 'allow');
  // The agent's own address as the main counterparty still has to be listed.
  assert.equal(decide([policy], input(intent({ kind: 'erc20.transfer', to: AGENT, spends: [{ asset: USDC, amount: 1n, to: AGENT, kind: 'transfer' }] } as never))).decision, 'deny');
});
