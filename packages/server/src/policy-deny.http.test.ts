// Attacks on policy matching over the real HTTP app, on SQLite and on PostgreSQL: escaping a fleet deny
// by adding a second asset to a Permit2 batch, and a value-moving signature over a chainless EIP-712 domain.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { verifyTypedData } from 'viem';
import { ALICE, BASE, USDC, USDC_ASSET, provisionAgent, startHarness, usdcAuthorization, type Harness, type StoreKind } from './testing/harness.ts';

const PERMIT2 = '0x000000000022d473030f116ddee9f6b43ac78ba3';
const USDT = '0xfde4c96c8593536e31f229ea8f37b2ada2699bb2';
const DAI = '0x50c5725949a6f0c72e6c4a641f24049a917db0cb';
const ROUTER = '0x3333333333333333333333333333333333333333';

const PERMIT_DETAILS = [
  { name: 'token', type: 'address' },
  { name: 'amount', type: 'uint160' },
  { name: 'expiration', type: 'uint48' },
  { name: 'nonce', type: 'uint48' },
];

function permit2(tokens: string[], batch: boolean) {
  const expiration = String(Math.floor(Date.now() / 1000) + 3600);
  const details = tokens.map((token) => ({ token, amount: '1000000', expiration, nonce: '0' }));
  return {
    typedData: {
      domain: { name: 'Permit2', chainId: 8453, verifyingContract: PERMIT2 },
      types: batch
        ? { PermitBatch: [{ name: 'details', type: 'PermitDetails[]' }, { name: 'spender', type: 'address' }, { name: 'sigDeadline', type: 'uint256' }], PermitDetails: PERMIT_DETAILS }
        : { PermitSingle: [{ name: 'details', type: 'PermitDetails' }, { name: 'spender', type: 'address' }, { name: 'sigDeadline', type: 'uint256' }], PermitDetails: PERMIT_DETAILS },
      primaryType: batch ? 'PermitBatch' : 'PermitSingle',
      message: { details: batch ? details : details[0], spender: ROUTER, sigDeadline: expiration },
    },
  };
}

const permit2Policy = {
  version: 1,
  rules: [{ name: 'permits', type: 'allow', match: { chains: [BASE], kinds: ['permit2.permit_single', 'permit2.permit_batch'], to: [ROUTER] } }],
};

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`policy matching attacks over HTTP (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store });
    });
    after(async () => h.close());

    test('a fleet deny on USDT refuses a Permit2 PermitBatch of USDT plus another token, not only a PermitSingle', async () => {
      const { token } = await provisionAgent(h, { policy: permit2Policy });
      await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [{ name: 'no-usdt', type: 'deny', match: { assets: [`${BASE}/erc20:${USDT}`] } }] } });
      try {
        for (const body of [permit2([USDT], false), permit2([USDT, USDC], true), permit2([DAI, USDT, USDC], true)]) {
          const res = await h.call('POST', '/v1/sign/typed-data', { token, body });
          assert.equal(res.status, 403, JSON.stringify(res.body));
          assert.equal(res.body.error.code, 'policy_denied');
          assert.deepEqual(res.body.error.violations.map((v: any) => [v.rule, v.code]), [['fleet/no-usdt', 'denied_by_rule']]);
          assert.equal(res.body.signature, undefined);
        }
        const clean = await h.call('POST', '/v1/sign/typed-data', { token, body: permit2([USDC, DAI], true) });
        assert.equal(clean.status, 200, JSON.stringify(clean.body));
        assert.equal(clean.body.intent.kind, 'permit2.permit_batch');
      } finally {
        await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [] } });
      }
    });

    test('an EIP-3009 authorization over a domain without chainId is refused (chainless_domain) unless an allow rule opts in', async () => {
      const validBefore = Math.floor(Date.now() / 1000) + 600;
      const allow = (optIn: boolean) => ({
        version: 1,
        rules: [{ name: 'pay-alice', type: 'allow', ...(optIn && { allow_chainless_domains: true }), match: { kinds: ['eip3009.transfer_with_authorization'], assets: [USDC_ASSET], to: [ALICE] } }],
      });
      const chainless = (from: string) => {
        const { typedData } = usdcAuthorization(from, ALICE, 1000n, validBefore);
        const { chainId: _chainId, ...domain } = typedData.domain;
        return { chainId: 8453, typedData: { ...typedData, domain } };
      };

      const refused = await provisionAgent(h, { policy: allow(false) });
      const res = await h.call('POST', '/v1/sign/typed-data', { token: refused.token, body: chainless(refused.agent.address) });
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.deepEqual(res.body.error.violations.map((v: any) => [v.rule, v.code]), [['agent/default', 'chainless_domain']]);
      assert.equal(res.body.signature, undefined);
      // The same authorization with the chain in its domain is signed.
      const withChain = await h.call('POST', '/v1/sign/typed-data', { token: refused.token, body: usdcAuthorization(refused.agent.address, ALICE, 1000n, validBefore) });
      assert.equal(withChain.status, 200, JSON.stringify(withChain.body));

      const optedIn = await provisionAgent(h, { policy: allow(true) });
      const body = chainless(optedIn.agent.address);
      const signed = await h.call('POST', '/v1/sign/typed-data', { token: optedIn.token, body });
      assert.equal(signed.status, 200, JSON.stringify(signed.body));
      const td = body.typedData;
      const message = { ...td.message, value: 1000n, validAfter: 0n, validBefore: BigInt(validBefore) };
      assert.ok(await verifyTypedData({ address: optedIn.agent.address, domain: td.domain as never, types: td.types, primaryType: 'TransferWithAuthorization', message: message as never, signature: signed.body.signature }));

      // A session scoped to one chain cannot hold a signature that is valid on every chain.
      const scoped = await provisionAgent(h, { policy: allow(true), chains: [BASE] });
      const scopedRes = await h.call('POST', '/v1/sign/typed-data', { token: scoped.token, body: chainless(scoped.agent.address) });
      assert.equal(scopedRes.status, 403, JSON.stringify(scopedRes.body));
      assert.deepEqual(scopedRes.body.error.violations.map((v: any) => [v.rule, v.code]), [['session/chains', 'chain_not_allowed']]);
    });
  });
}
