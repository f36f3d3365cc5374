// The reconciler on a real chain (issue 7, items 5 and 1). Airlock runs on a ManualClock, so the test owns
// the wall clock Airlock judges validBefore by, and moves anvil's chain time on its own (anvil_mine with an
// interval): a chain that runs ahead of the wall clock must not release holds; a genuinely expired
// authorization is released once both clocks and the finalized block agree; and when a larger
// authorization with the same nonce settles, the ledger is charged what actually moved.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { HDKey } from '@scure/bip32';
import { mnemonicToSeedSync } from '@scure/bip39';
import { bytesToHex, createWalletClient, http, parseSignature, type Address, type Hex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { ManualClock } from '@airlock/core';
import { createAirlockHttp, type AirlockHttp } from '@airlock/sdk';
import { compiledContracts } from './compile.ts';
import { x402Policy } from './policy.ts';
import { startTestbed, type Testbed } from './testbed.ts';
import { localChain, publicClientFor, rpc } from './token.ts';

const API_OWNER = '0x6666666666666666666666666666666666666666' as Address;
const ONE_USDC = 1_000_000n;
const HOUR = 3600;
/** The default release margin (AIRLOCK_RECONCILE_MARGIN). */
const MARGIN = 300;
/** anvil's finalized block trails the latest by 64 blocks. */
const FINALITY_DEPTH = 64;

interface PayAnswer {
  decision: string;
  paymentId: string;
  authorization: { from: Address; to: Address; value: string; validBefore: string; nonce: Hex };
}

async function withTestbed(routes: Parameters<typeof startTestbed>[0]['routes'], fn: (tb: Testbed, clock: ManualClock) => Promise<void>): Promise<void> {
  const clock = new ManualClock(Date.now());
  // Background rounds off: the test runs each round itself and counts what it did.
  const tb = await startTestbed({ routes, clock, airlockEnv: { AIRLOCK_RECONCILE_INTERVAL: '24h' } });
  try {
    await fn(tb, clock);
  } finally {
    await tb.close();
  }
}

async function paymentRequired(tb: Testbed, path: string): Promise<string> {
  const res = await fetch(`${tb.api.url}${path}`);
  assert.equal(res.status, 402);
  return res.headers.get('payment-required')!;
}

async function latestBlock(tb: Testbed): Promise<{ number: number; timestamp: number }> {
  const block = (await rpc(tb.anvil.rpcUrl, 'eth_getBlockByNumber', ['latest', false])) as { number: Hex; timestamp: Hex };
  return { number: Number(BigInt(block.number)), timestamp: Number(BigInt(block.timestamp)) };
}

/** A refusal from the SDK (it throws on non-2xx), or a failure if the request was allowed. */
async function refused(p: Promise<unknown>): Promise<{ status?: number; violations?: { code: string; used?: string }[] }> {
  return p.then(
    () => assert.fail('the payment was allowed'),
    (e: { status?: number; violations?: { code: string; used?: string }[] }) => e,
  );
}

describe('x402 reconciler on anvil', () => {
  test('a chain running an hour ahead of the wall clock keeps the hold (alert, budget still counted); past validBefore + margin on both clocks it is released', async () => {
    await withTestbed({ '/data/hour': { price: ONE_USDC, payTo: API_OWNER, maxTimeoutSeconds: HOUR } }, async (tb, clock) => {
      const policy = x402Policy({ chain: tb.caip2, asset: tb.asset, payees: [API_OWNER], perCall: ONE_USDC, daily: ONE_USDC, maxValiditySeconds: HOUR });
      const agent = await tb.provisionAgent({ policy, funds: 3n * ONE_USDC });
      const airlock = createAirlockHttp({ url: tb.airlock.url, token: agent.token });
      const resource = `${tb.api.url}/data/hour`;

      const first = await airlock.request<PayAnswer>('POST', '/v1/x402/pay', { resource, paymentRequired: await paymentRequired(tb, '/data/hour') });
      assert.equal(first.body.decision, 'allow');
      const validBefore = Number(first.body.authorization.validBefore);
      assert.equal(validBefore, Math.floor(clock.now() / 1000) + HOUR, 'valid for another hour');

      // The chain runs ahead: 100 blocks two minutes apart, so even the finalized block is past validBefore
      // and the nonce is unused there. The wall clock is still an hour before validBefore.
      await rpc(tb.anvil.rpcUrl, 'anvil_mine', ['0x64', '0x78']);
      const head = await latestBlock(tb);
      assert.ok(head.timestamp - (FINALITY_DEPTH * 120) > validBefore, 'the finalized block is past validBefore');

      const round = await tb.admin.request<{ expired: number; alerts: number }>('POST', '/v1/x402/reconcile', {});
      assert.equal(round.body.expired, 0, 'chain time alone never releases a hold');
      assert.equal(round.body.alerts, 1);
      const alerts = await tb.admin.request<{ entries: { data: Record<string, unknown> }[] }>('GET', `/v1/audit?agent=${agent.name}&type=alert.reconciler`);
      assert.equal(alerts.body.entries.length, 1);
      assert.equal(alerts.body.entries[0]!.data.reason, 'chain_clock_skew');
      assert.equal(alerts.body.entries[0]!.data.paymentId, first.body.paymentId);

      // Reproduction from the issue: with the hold released, a second 1-USDC authorization would be signed.
      const second = await refused(airlock.request('POST', '/v1/x402/pay', { resource, paymentRequired: await paymentRequired(tb, '/data/hour') }));
      assert.equal(second.status, 403);
      assert.ok(second.violations?.some((v) => v.code === 'budget_exceeded'), JSON.stringify(second.violations));

      // Now the wall clock catches up with the chain: past validBefore + margin on both, finalized past validBefore.
      clock.set(head.timestamp * 1000);
      assert.ok(head.timestamp >= validBefore + MARGIN);
      const released = await tb.admin.request<{ expired: number; alerts: number }>('POST', '/v1/x402/reconcile', {});
      assert.deepEqual([released.body.expired, released.body.alerts], [1, 0]);
      const payments = await tb.admin.request<{ payments: { id: string; state: string }[] }>('GET', `/v1/x402/payments?agent=${agent.name}`);
      assert.equal(payments.body.payments.find((p) => p.id === first.body.paymentId)?.state, 'expired');
      const expired = await tb.admin.request<{ entries: { data: Record<string, unknown> }[] }>('GET', `/v1/audit?agent=${agent.name}&type=x402.expired`);
      assert.equal(expired.body.entries[0]!.data.pinnedBlock, String(head.number - FINALITY_DEPTH), 'decided at the finalized block');

      // The budget is free again (a new session: the first one expired when the clock moved).
      const session = await tb.admin.request<{ token: string }>('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.typed_data'], chains: [tb.caip2] });
      const again = createAirlockHttp({ url: tb.airlock.url, token: session.body.token });
      const third = await again.request<PayAnswer>('POST', '/v1/x402/pay', { resource, paymentRequired: await paymentRequired(tb, '/data/hour') });
      assert.equal(third.body.decision, 'allow');
      assert.equal(await tb.balanceOf(agent.address), 3n * ONE_USDC, 'nothing moved on chain');
    });
  });

  test('a larger authorization with the same nonce settles: the ledger charges the larger amount, the budget sees it, alert.settlement_mismatch', async () => {
    const SMALL = 50_000n;
    const LARGE = 900_000n;
    const NEXT = 150_000n;
    await withTestbed({ '/data/small': { price: SMALL, payTo: API_OWNER }, '/data/next': { price: NEXT, payTo: API_OWNER } }, async (tb) => {
      const policy = x402Policy({ chain: tb.caip2, asset: tb.asset, payees: [API_OWNER], perCall: 200_000n, daily: ONE_USDC });
      const agent = await tb.provisionAgent({ policy, funds: ONE_USDC });
      const airlock: AirlockHttp = createAirlockHttp({ url: tb.airlock.url, token: agent.token });
      const small = await airlock.request<PayAnswer>('POST', '/v1/x402/pay', { resource: `${tb.api.url}/data/small`, paymentRequired: await paymentRequired(tb, '/data/small') });
      assert.equal(small.body.decision, 'allow');
      const nonce = small.body.authorization.nonce;

      // A signature made with the agent's key outside Airlock (a leaked key, or one signed before the fix):
      // same nonce, 18 times the value. Derived from the vault's phrase at the agent's own path.
      const { body: record } = await tb.admin.request<{ accountIndex: number; address: string }>('GET', `/v1/agents/${agent.name}`);
      const key = HDKey.fromMasterSeed(mnemonicToSeedSync(tb.mnemonic)).derive(`m/44'/60'/${record.accountIndex}'/0/0`).privateKey!;
      const leaked = privateKeyToAccount(bytesToHex(key));
      assert.equal(leaked.address.toLowerCase(), agent.address.toLowerCase());
      const head = await latestBlock(tb);
      const message = { from: leaked.address, to: API_OWNER, value: LARGE, validAfter: 0n, validBefore: BigInt(head.timestamp + 600), nonce };
      const signature = await leaked.signTypedData({
        domain: { name: 'USD Coin', version: '2', chainId: tb.anvil.chainId, verifyingContract: tb.token },
        types: { TransferWithAuthorization: [
          { name: 'from', type: 'address' }, { name: 'to', type: 'address' }, { name: 'value', type: 'uint256' },
          { name: 'validAfter', type: 'uint256' }, { name: 'validBefore', type: 'uint256' }, { name: 'nonce', type: 'bytes32' },
        ] },
        primaryType: 'TransferWithAuthorization',
        message,
      });
      const { v, r, s } = parseSignature(signature);
      // Anyone may submit an authorization: a fresh account funded for gas, which nothing else in the testbed uses.
      const submitter = privateKeyToAccount(generatePrivateKey());
      await rpc(tb.anvil.rpcUrl, 'anvil_setBalance', [submitter.address, '0xde0b6b3a7640000']);
      const wallet = createWalletClient({ account: submitter, chain: localChain(tb.anvil.rpcUrl, tb.anvil.chainId), transport: http(tb.anvil.rpcUrl) });
      const hash = await wallet.writeContract({
        address: tb.token, abi: compiledContracts().TestUSDC.abi, functionName: 'transferWithAuthorization',
        args: [message.from, message.to, message.value, message.validAfter, message.validBefore, message.nonce, Number(v), r, s],
      });
      const receipt = await publicClientFor(tb.anvil.rpcUrl, tb.anvil.chainId).waitForTransactionReceipt({ hash });
      assert.equal(receipt.status, 'success');
      assert.equal(await tb.balanceOf(agent.address), ONE_USDC - LARGE);

      const round = await tb.admin.request<{ settled: number; alerts: number }>('POST', '/v1/x402/reconcile', {});
      assert.deepEqual([round.body.settled, round.body.alerts], [1, 1]);
      const payments = await tb.admin.request<{ payments: { id: string; state: string; value: string; settledValue?: string; settlementTx?: string }[] }>('GET', `/v1/x402/payments?agent=${agent.name}`);
      const payment = payments.body.payments.find((p) => p.id === small.body.paymentId)!;
      assert.deepEqual([payment.state, payment.value, payment.settledValue, payment.settlementTx], ['settled', SMALL.toString(), LARGE.toString(), hash.toLowerCase()]);
      const mismatch = await tb.admin.request<{ entries: { data: Record<string, unknown> }[] }>('GET', `/v1/audit?agent=${agent.name}&type=alert.settlement_mismatch`);
      assert.equal(mismatch.body.entries.length, 1);
      assert.deepEqual([mismatch.body.entries[0]!.data.heldValue, mismatch.body.entries[0]!.data.settledValue, mismatch.body.entries[0]!.data.chargedValue], [SMALL.toString(), LARGE.toString(), LARGE.toString()]);

      // 900000 charged: 150000 more exceeds the 1 USDC day (charged as signed, 50000 + 150000 would fit).
      const next = await refused(airlock.request('POST', '/v1/x402/pay', { resource: `${tb.api.url}/data/next`, paymentRequired: await paymentRequired(tb, '/data/next') }));
      assert.equal(next.status, 403);
      const budget = next.violations?.find((v) => v.code === 'budget_exceeded');
      assert.equal(budget?.used, LARGE.toString(), JSON.stringify(next.violations));
    });
  });
});
