import { test } from 'node:test';
import assert from 'node:assert/strict';
import { settlementCharges } from './settlement-charges.ts';

const ASSET = 'eip155:8453/erc20:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
const ALICE = '0x1111111111111111111111111111111111111111';
const MALLORY = '0x2222222222222222222222222222222222222222';
const holds = [
  { series: 'agent:ag_1', asset: ASSET, amount: 1000n, count: 1 },
  { series: 'agent:ag_1', asset: '*', amount: 0n, count: 1 },
  { series: `agent:ag_1|to:${ALICE}`, asset: ASSET, amount: 1000n, count: 1 },
  { series: `agent:ag_1|to:${ALICE}`, asset: '*', amount: 0n, count: 1 },
];

test('settled as signed: nothing on top of the converted holds', () => {
  assert.deepEqual(settlementCharges(holds, { value: 1000n, to: ALICE }, { value: 1000n, to: ALICE }), []);
  assert.deepEqual(settlementCharges(holds, { value: 1000n, to: ALICE }, { value: 10n, to: ALICE }), [], 'a smaller transfer keeps the held charge (never under-count)');
});

test('a larger transfer charges the difference to every amount series, no extra count', () => {
  assert.deepEqual(settlementCharges(holds, { value: 1000n, to: ALICE }, { value: 2500n, to: ALICE }), [
    { series: 'agent:ag_1', asset: ASSET, amount: 1500n, count: 0 },
    { series: `agent:ag_1|to:${ALICE}`, asset: ASSET, amount: 1500n, count: 0 },
  ]);
});

test('another recipient is charged the larger amount in its own destination series', () => {
  assert.deepEqual(settlementCharges(holds, { value: 1000n, to: ALICE }, { value: 400n, to: MALLORY.toUpperCase().replace('0X', '0x') }), [
    { series: `agent:ag_1|to:${MALLORY}`, asset: ASSET, amount: 1000n, count: 1 },
    { series: `agent:ag_1|to:${MALLORY}`, asset: '*', amount: 0n, count: 1 },
  ]);
});
