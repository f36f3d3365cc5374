// An EIP-3009 authorization over a domain without chainId (signed under an allow rule with
// `allow_chainless_domains: true`) is valid on every chain whose token has such a domain. Held as an x402 payment
// under the request's chain label, the reconciler asked only that chain whether its nonce was used: the payee
// submitted it on another chain, the label chain said "unused", the hold was released as expired and the budget
// handed back (found by review: 800 USDC moved, nothing stayed charged, and the next 800 signed against a 1,000 USDC
// daily budget). It is charged when signed, for good, as Permit2 is. On SQLite and PostgreSQL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChainReader } from '@airlock/core';
import { ALICE, USDC_ASSET, provisionAgent, startHarness, usdcAuthorization, type Harness, type StoreKind } from './testing/harness.ts';

const OPTIMISM = 'eip155:10';
/** A chain reader that sees two networks: the nonce was used on Optimism, never on Base. */
function twoChains(now: () => number): ChainReader & { reads: string[] } {
  const usedOn = new Map<string, string>();
  const reader = {
    reads: [] as string[],
    use(network: string, nonce: string) { usedOn.set(nonce.toLowerCase(), network); },
    supports: (n: string) => n === 'eip155:8453' || n === OPTIMISM,
    async latestBlockTimestamp() { return Math.floor(now() / 1000); },
    async pinnedBlock() { return { tag: 'finalized', number: 1n, timestamp: Math.floor(now() / 1000) }; },
    async authorizationState(network: string, _token: string, _from: string, nonce: string) {
      reader.reads.push(network);
      return usedOn.get(nonce.toLowerCase()) === network;
    },
    async findAuthorizationUse(network: string, _token: string, _from: string, nonce: string) {
      return usedOn.get(nonce.toLowerCase()) === network ? { transactionHash: `0x${'ee'.repeat(32)}`, blockNumber: 1n, transfer: { to: ALICE, value: 800_000_000n } } : undefined;
    },
  };
  return reader as never;
}

const policy = {
  version: 1,
  rules: [
    { name: 'pay-alice', type: 'allow', allow_chainless_domains: true, match: { kinds: ['eip3009.transfer_with_authorization'], assets: [USDC_ASSET], to: [ALICE] } },
    { name: 'usdc-daily', type: 'budget', asset: USDC_ASSET, max: '1000000000', window: '24h', scope: 'agent' },
  ],
};

for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`a chainless EIP-3009 authorization stays charged whichever chain it is used on (${store})`, () => {
  let h: Harness;
  let chain: ReturnType<typeof twoChains> & { use(network: string, nonce: string): void };
  before(async () => {
    let clockNow = () => Date.now();
    chain = twoChains(() => clockNow()) as never;
    h = await startHarness({ store, manualClock: true, chainReader: chain });
    clockNow = () => h.clock!.now();
  });
  after(async () => h.close());

  test('signed under allow_chainless_domains, used on another chain than the request named: charged once, never released', async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ['evm.typed_data'], ttl: '24h' });
    const chainless = (nonce: string) => {
      const validBefore = Math.floor(h.clock!.now() / 1000) + 600;
      const { typedData } = usdcAuthorization(agent.address, ALICE, 800_000_000n, validBefore, nonce);
      const { chainId: _chainId, ...domain } = typedData.domain;
      return { chainId: 8453, typedData: { ...typedData, domain } };
    };
    const first = `0x${'01'.repeat(32)}`;
    const signed = await h.call('POST', '/v1/sign/typed-data', { token, body: chainless(first) });
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    assert.equal(signed.body.paymentId, undefined, 'not held as a payment the reconciler could release');
    // The payee submits the signature on Optimism (same token address, same chainless domain); Base never sees it.
    chain.use(OPTIMISM, first);
    h.clock!.advance(3_600_000);
    assert.equal((await h.admin('POST', '/v1/x402/reconcile')).status, 200);
    const payments = (await h.admin('GET', `/v1/x402/payments?agent=${agent.name}`)).body.payments;
    assert.deepEqual(payments.filter((p: { nonce: string }) => p.nonce === first), []);
    const second = await h.call('POST', '/v1/sign/typed-data', { token, body: chainless(`0x${'02'.repeat(32)}`) });
    assert.equal(second.status, 403, JSON.stringify(second.body));
    assert.deepEqual(second.body.error.violations.map((v: { rule: string; code: string; used?: string }) => [v.rule, v.code, v.used]), [['agent/usdc-daily', 'budget_exceeded', '800000000']]);
  });
});
