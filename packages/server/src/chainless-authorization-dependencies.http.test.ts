// An EIP-3009 authorization over a domain without chainId (granted by `allow_chainless_domains`) is valid on every
// chain whose token has that domain. It is charged when signed, not held as a payment, so the dependency map, which
// read authorizations only from held payments, did not list it, and revoke-all never cancelled it (found by review:
// an 800 USDC authorization valid 30 days was missing). It is now a grant of kind `eip3009.authorization`, read on
// the chain the request named. revoke-all then reported its cancellation unplanned (the lifecycle path signed only
// typed data naming a chain), which left it usable, since the operator cannot sign with the agent's key by hand
// (found by review): it now signs the CancelAuthorization under the same chainless domain and sends it on the chain
// the request named, and reports the other chains. On anvil (as Base, chain id 8453), SQLite and PostgreSQL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeFunctionData, parseAbi, parseTransaction, recoverTypedDataAddress, serializeSignature, type Hex } from 'viem';
import type { ChainReader } from '@airlock/core';
import { startAnvil, type Anvil } from '../../sdk/src/testing/anvil.ts';
import { ALICE, BASE, USDC, USDC_ASSET, provisionAgent, startHarness, usdcAuthorization, type Harness, type StoreKind } from './testing/harness.ts';

const policy = {
  version: 1,
  rules: [
    { name: 'pay-alice', type: 'allow', allow_chainless_domains: true, match: { kinds: ['eip3009.transfer_with_authorization'], assets: [USDC_ASSET], to: [ALICE] } },
    { name: 'usdc-daily', type: 'budget', asset: USDC_ASSET, max: '10000000000', window: '24h', scope: 'agent' },
  ],
};
const BOUND_NONCE = `0x${'0a'.repeat(32)}`;
const CHAINLESS_NONCE = `0x${'0b'.repeat(32)}`;
const CANCEL_ABI = parseAbi(['function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s)']);
const CANCEL_TYPES = { CancelAuthorization: [{ name: 'authorizer', type: 'address' }, { name: 'nonce', type: 'bytes32' }] } as const;

/** Base, where no authorization nonce is used yet. */
const baseReader = {
  supports: (chain: string) => chain === BASE,
  async latestBlockTimestamp() { return Math.floor(Date.now() / 1000); },
  async pinnedBlock() { return { tag: 'finalized', number: 1n, timestamp: Math.floor(Date.now() / 1000) }; },
  async authorizationState() { return false; },
} as unknown as ChainReader;

async function rpc(url: string, method: string, params: unknown[]): Promise<unknown> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
  const body = (await res.json()) as { result?: unknown; error?: { message: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result;
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`a chainless EIP-3009 authorization is in the dependency map and cancelled by revoke-all (${store})`, () => {
  let anvil: Anvil;
  let h: Harness;
  before(async () => {
    // The lifecycle path needs an RPC for the chain the request named (nonce, gas, balance): anvil answering as Base.
    anvil = await startAnvil({ chainId: 8453 });
    h = await startHarness({ store, chainReader: baseReader, config: { evmRpc: { [BASE]: anvil.rpcUrl } } });
  });
  after(async () => {
    await h?.close();
    await anvil?.stop();
  });

  test('listed as an eip3009.authorization grant; revoke-all sends its CancelAuthorization, signed by the agent under the chainless domain, on the chain it names', async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ['evm.typed_data'] });
    await rpc(anvil.rpcUrl, 'anvil_setBalance', [agent.address, '0x56BC75E2D63100000']);
    const validBefore = Math.floor(Date.now() / 1000) + 30 * 24 * 3600;
    const bound = await h.call('POST', '/v1/sign/typed-data', { token, body: usdcAuthorization(agent.address, ALICE, 1_000_000n, validBefore, BOUND_NONCE) });
    assert.equal(bound.status, 200, JSON.stringify(bound.body));
    const { typedData } = usdcAuthorization(agent.address, ALICE, 800_000_000n, validBefore, CHAINLESS_NONCE);
    const { chainId: _chainId, ...domain } = typedData.domain;
    const chainless = await h.call('POST', '/v1/sign/typed-data', { token, body: { chainId: 8453, typedData: { ...typedData, domain } } });
    assert.equal(chainless.status, 200, JSON.stringify(chainless.body));
    assert.equal(chainless.body.paymentId, undefined, 'charged when signed, not held as a payment');

    const map = await h.admin('GET', `/v1/agents/${agent.id}/dependencies?reconcile=true`);
    assert.equal(map.status, 200, JSON.stringify(map.body));
    assert.deepEqual(map.body.authorizations.map((a: { nonce: string }) => a.nonce), [BOUND_NONCE]);
    assert.deepEqual(map.body.grants.map(({ kind, auditSeq, chain, token: t, contract, owner, spender, amount, unlimited, deadline, nonce, live }: Record<string, unknown>) => ({ kind, auditSeq, chain, token: t, contract, owner, spender, amount, unlimited, deadline, nonce, live })), [{
      kind: 'eip3009.authorization', auditSeq: chainless.body.auditSeq, chain: BASE, token: USDC, contract: USDC, owner: agent.address.toLowerCase(), spender: ALICE,
      amount: '800000000', unlimited: false, deadline: validBefore, nonce: CHAINLESS_NONCE, live: true,
    }]);
    assert.equal(map.body.grants[0].evidence.reason, 'authorization_unused');

    const report = await h.admin('POST', `/v1/agents/${agent.id}/revoke-all`);
    assert.equal(report.status, 200, JSON.stringify(report.body));
    const ref = { auditSeq: chainless.body.auditSeq, index: 0, kind: 'eip3009.authorization' };
    // Submitted on the chain the request named; only the other chains are left to the operator.
    const step = report.body.steps.find((s: { grants: unknown[] }) => JSON.stringify(s.grants) === JSON.stringify([ref]));
    assert.ok(step, JSON.stringify(report.body));
    assert.deepEqual([step.chain, step.status, step.error], [BASE, 'submitted', undefined]);
    const mine = report.body.unplanned.filter((u: { grants: unknown[] }) => JSON.stringify(u.grants) === JSON.stringify([ref]));
    assert.deepEqual(mine.map((u: { reason: string }) => u.reason), ['chainless_other_chains']);
    // The chain-bound one is cancelled as before.
    assert.deepEqual(report.body.steps.map((s: { grants: { paymentId?: string }[]; status: string }) => [s.status, typeof s.grants[0]!.paymentId]).sort(), [['submitted', 'string'], ['submitted', 'undefined']]);

    // The transaction the lifecycle path signed: cancelAuthorization(agent, nonce, v, r, s) on USDC, whose signature
    // is the agent's CancelAuthorization under the domain the authorization used (no chainId), the only one the
    // token checks it under; under the domain with chainId it recovers to someone else.
    const jobs = await h.admin('GET', `/v1/lifecycle/jobs?agent=${agent.id}`);
    const job = jobs.body.jobs.find((j: { id: string }) => j.id === step.jobId);
    assert.equal(job.to, USDC);
    const tx = parseTransaction(job.rawTransaction as Hex);
    assert.equal(tx.chainId, 8453);
    const { functionName, args } = decodeFunctionData({ abi: CANCEL_ABI, data: tx.data! });
    assert.equal(functionName, 'cancelAuthorization');
    const [authorizer, nonce, v, r, s] = args;
    assert.deepEqual([authorizer.toLowerCase(), nonce], [agent.address.toLowerCase(), CHAINLESS_NONCE]);
    const signature = serializeSignature({ r, s, v: BigInt(v) });
    const cancel = { types: CANCEL_TYPES, primaryType: 'CancelAuthorization', message: { authorizer, nonce } } as const;
    assert.equal((await recoverTypedDataAddress({ ...cancel, domain: domain as { name: string; version: string; verifyingContract: Hex }, signature })).toLowerCase(), agent.address.toLowerCase());
    assert.notEqual((await recoverTypedDataAddress({ ...cancel, domain: typedData.domain as { name: string; version: string; chainId: number; verifyingContract: Hex }, signature })).toLowerCase(), agent.address.toLowerCase());
    // Planned in the audit log like every lifecycle signature, without chainId, and the chain it is sent on beside it.
    const planned = (await h.admin('GET', `/v1/audit?agent=${agent.id}&type=lifecycle.planned&limit=100`)).body.entries
      .filter((e: { agentId: string; data: { kind: string } }) => e.agentId === agent.id && e.data.kind === 'revocation_signature');
    const chainlessPlan = planned.find((e: { data: { payload: { typedData: { message: { nonce: string } } } } }) => e.data.payload.typedData.message.nonce === CHAINLESS_NONCE);
    assert.deepEqual([chainlessPlan.data.chain, chainlessPlan.data.payload.chainId, 'chainId' in chainlessPlan.data.payload.typedData.domain], [BASE, 8453, false]);
  });
});
