import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AirlockError } from '../errors.ts';
import type { Session } from '../ports/store.ts';
import { checkNarrower, type AncestorBudgetUse } from './session-narrowing.ts';

const USDC = 'eip155:8453/erc20:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
const parent: Session = {
  id: 'ses_parent', agentId: 'ag_1', tokenHash: '', createdAt: 0, expiresAt: 1000,
  scope: { actions: ['evm.transaction', 'evm.typed_data'], chains: ['eip155:8453'], budgets: [{ asset: USDC, max: '100', window: '1d' }] },
};
const use = (used: bigint, sessionId = 'ses_parent'): AncestorBudgetUse[] => [{ sessionId, asset: USDC, max: 100n, window: '1d', used }];

function axisOf(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    assert.ok(e instanceof AirlockError && e.code === 'session_not_narrower', String(e));
    return e.details?.axis as string;
  }
}

test('a child equal to or inside its parent on every axis passes', () => {
  assert.equal(axisOf(() => checkNarrower(parent, { scope: parent.scope, expiresAt: 1000 }, use(0n))), undefined);
  assert.equal(axisOf(() => checkNarrower(parent, { scope: { actions: ['evm.typed_data'], chains: ['eip155:8453'], budgets: [{ asset: USDC.toUpperCase(), max: '60', window: '30d' }] }, expiresAt: 1 }, use(40n))), undefined);
});

test('each axis a child widens is named', () => {
  const scope = parent.scope;
  assert.equal(axisOf(() => checkNarrower(parent, { scope: { ...scope, actions: ['evm.message'] }, expiresAt: 1000 }, [])), 'actions');
  assert.equal(axisOf(() => checkNarrower(parent, { scope: { ...scope, chains: ['eip155:1'] }, expiresAt: 1000 }, [])), 'chains');
  assert.equal(axisOf(() => checkNarrower(parent, { scope: { ...scope, chains: [] }, expiresAt: 1000 }, [])), 'chains', 'no chains = policy decides, wider than a list');
  assert.equal(axisOf(() => checkNarrower(parent, { scope: { ...scope, budgets: [{ asset: USDC, max: '61', window: '1h' }] }, expiresAt: 1000 }, use(40n))), 'budgets');
  assert.equal(axisOf(() => checkNarrower(parent, { scope: { ...scope, budgets: [{ asset: USDC, max: '1', window: '1h' }] }, expiresAt: 1000 }, use(150n))), 'budgets', 'an overspent parent (holds) leaves nothing');
  assert.equal(axisOf(() => checkNarrower(parent, { scope, expiresAt: 1001 }, [])), 'expiry');
});

test("a parent without chains lets a child list some; a budget is checked against every ancestor's", () => {
  const open: Session = { ...parent, scope: { ...parent.scope, chains: [] } };
  assert.equal(axisOf(() => checkNarrower(open, { scope: { ...open.scope, chains: ['eip155:1'] }, expiresAt: 1000 }, [])), undefined);
  const uses = [...use(0n), ...use(95n, 'ses_grandparent')];
  assert.equal(axisOf(() => checkNarrower(parent, { scope: { ...parent.scope, budgets: [{ asset: USDC, max: '6', window: '1d' }] }, expiresAt: 1000 }, uses)), 'budgets');
  assert.equal(axisOf(() => checkNarrower(parent, { scope: { ...parent.scope, budgets: [{ asset: USDC, max: '5', window: '1d' }] }, expiresAt: 1000 }, uses)), undefined);
});
