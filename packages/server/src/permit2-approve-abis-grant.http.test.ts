// A Permit2 `approve(token, spender, uint160 amount, uint48 expiration)` transaction is a permit2.approve grant in
// the dependency map whether its calldata is read raw or decoded through a policy `abis` declaration (e.g. to
// constrain the spender with match.args). Decoded, viem gives the uint48 `expiration` as a JS number, not a bigint,
// and grants.ts read only a bigint, so no grant row was written: the allowance was missing from the map and from
// revoke-all (found by review). SQLite and PostgreSQL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFunctionData, parseAbi } from 'viem';
import { PERMIT2_ADDRESS } from '@airlock/core';
import { ALICE, BASE, USDC, provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

const APPROVE_FN = 'function approve(address token, address spender, uint160 amount, uint48 expiration)';
const EXPIRATION = 2_000_000_000;
const data = encodeFunctionData({ abi: parseAbi([APPROVE_FN]), functionName: 'approve', args: [USDC, ALICE, 1000n, EXPIRATION] });
const rules = [{ name: 'permit2', type: 'allow', match: { actions: ['evm.transaction'], contracts: [PERMIT2_ADDRESS] } }];

for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`a Permit2 approve is a grant, with or without its ABI in the policy (${store})`, () => {
  let h: Harness;
  before(async () => { h = await startHarness({ store }); });
  after(async () => h.close());

  for (const [label, policy] of [
    ['calldata read raw', { version: 1, rules }],
    ['decoded through abis (uint48 expiration as a number)', { version: 1, abis: { permit2: { contracts: [PERMIT2_ADDRESS], functions: [APPROVE_FN] } }, rules }],
  ] as const) test(`${label}: listed as permit2.approve with its expiration, and revoke-all plans its revocation`, async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ['evm.transaction'] });
    const body = { chainId: 8453, transaction: { type: 'eip1559', to: PERMIT2_ADDRESS, value: '0', data, nonce: 0, gas: '100000', maxFeePerGas: '1000000', maxPriorityFeePerGas: '1000' } };
    const signed = await h.call('POST', '/v1/sign/transaction', { token, body });
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    const map = await h.admin('GET', `/v1/agents/${agent.id}/dependencies`);
    assert.equal(map.status, 200, JSON.stringify(map.body));
    assert.deepEqual(map.body.grants.map(({ kind, auditSeq, chain, token: t, contract, spender, amount, expiresAt }: Record<string, unknown>) => ({ kind, auditSeq, chain, token: t, contract, spender, amount, expiresAt })), [{
      kind: 'permit2.approve', auditSeq: signed.body.auditSeq, chain: BASE, token: USDC, contract: PERMIT2_ADDRESS.toLowerCase(), spender: ALICE, amount: '1000', expiresAt: EXPIRATION,
    }]);
    // No RPC for Base here: the revocation is planned and reported failed with a code, not missing.
    const report = await h.admin('POST', `/v1/agents/${agent.id}/revoke-all`);
    assert.equal(report.status, 200, JSON.stringify(report.body));
    const ref = { auditSeq: signed.body.auditSeq, index: 0, kind: 'permit2.approve' };
    const step = report.body.steps.find((s: { grants: unknown[] }) => s.grants.some((g) => JSON.stringify(g) === JSON.stringify(ref)));
    assert.ok(step, JSON.stringify(report.body));
    assert.deepEqual([step.chain, step.status, step.error?.code], [BASE, 'failed', 'lifecycle_no_rpc']);
  });
});
