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

    test('unlimited approvals (approve, increaseAllowance, EIP-2612, Permit2) are refused unless an approvals rule allows them, exceed every cap and need the tier\'s human (found by review)', async () => {
      const MAX256 = (1n << 256n) - 1n;
      const MAX160 = (1n << 160n) - 1n;
      const deadline = String(Math.floor(Date.now() / 1000) + 3600);
      const erc20 = (selector: string, amount: bigint) => ({ chainId: 8453, transaction: { type: 'eip1559', to: USDC, value: '0', data: `0x${selector}${ALICE.slice(2).padStart(64, '0')}${amount.toString(16).padStart(64, '0')}`, nonce: 0, gas: '60000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000' } });
      const eip2612 = (owner: string, value: bigint) => ({
        typedData: {
          domain: { name: 'USD Coin', version: '2', chainId: 8453, verifyingContract: USDC },
          types: { Permit: [{ name: 'owner', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'value', type: 'uint256' }, { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' }] },
          primaryType: 'Permit',
          message: { owner, spender: ALICE, value: value.toString(), nonce: '0', deadline },
        },
      });
      const permitSingle = (amount: bigint) => ({
        typedData: {
          domain: { name: 'Permit2', chainId: 8453, verifyingContract: PERMIT2 },
          types: { PermitSingle: [{ name: 'details', type: 'PermitDetails' }, { name: 'spender', type: 'address' }, { name: 'sigDeadline', type: 'uint256' }], PermitDetails: PERMIT_DETAILS },
          primaryType: 'PermitSingle',
          message: { details: { token: USDC, amount: amount.toString(), expiration: deadline, nonce: '0' }, spender: ALICE, sigDeadline: deadline },
        },
      });
      const requests = (owner: string) => [
        ['/v1/sign/transaction', erc20('095ea7b3', MAX256)],
        ['/v1/sign/transaction', erc20('39509351', MAX256)],
        ['/v1/sign/typed-data', eip2612(owner, MAX256)],
        ['/v1/sign/typed-data', permitSingle(MAX160)],
      ] as const;
      const grants = { name: 'grants', type: 'allow', match: { chains: [BASE], kinds: ['erc20.approve', 'erc20.increase_allowance', 'eip2612.permit', 'permit2.permit_single'], assets: [USDC_ASSET], to: [ALICE] } };
      const caps = [
        { name: 'per-request', type: 'max_amount', asset: USDC_ASSET, max: '100000000' },
        { name: 'daily', type: 'budget', asset: USDC_ASSET, max: '500000000', window: '24h' },
      ];
      const attempt = async (policy: unknown) => {
        const { agent, token } = await provisionAgent(h, { policy });
        const before = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.request`)).body.entries.length;
        const answers = [];
        for (const [path, body] of requests(agent.address)) answers.push(await h.call('POST', path, { token, body }));
        const entries = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.request`)).body.entries;
        assert.equal(entries.length, before + requests(agent.address).length, 'each request audited');
        return answers;
      };

      // The reviewer's policy: approval kinds allowed, caps, a budget, no approvals rule. Nothing is signed.
      for (const res of await attempt({ version: 1, rules: [grants, ...caps] })) {
        assert.equal(res.status, 403, JSON.stringify(res.body));
        assert.equal(res.body.signature ?? res.body.signedTransaction, undefined);
        assert.deepEqual(res.body.error.violations.map((v: any) => [v.rule, v.code]), [['agent/per-request', 'amount_exceeds_max'], ['agent/default', 'unlimited_approval']]);
      }
      // Without the cap: still the default deny.
      for (const res of await attempt({ version: 1, rules: [grants, caps[1]] })) {
        assert.deepEqual([res.status, res.body.error.violations.map((v: any) => [v.rule, v.code])], [403, [['agent/default', 'unlimited_approval']]]);
      }
      // Allowed by an approvals rule, under a tier: a human decides, nothing is signed yet.
      const tiered = await attempt({ version: 1, rules: [grants, caps[1], { name: 'unlimited-to-alice', type: 'approvals', allow_unlimited: true, spenders: [ALICE] }, { name: 'big', type: 'approval_tier', asset: USDC_ASSET, above: '1000000' }] });
      for (const res of tiered) assert.deepEqual([res.status, res.body.decision], [202, 'require_approval'], JSON.stringify(res.body));
      // Effectively unlimited (max - 1, or 2^128 and above) is unlimited: it is not a bounded approval of an
      // asset no budget names (found by review: max - 1 of DAI was signed and charged nothing).
      const dai = { ...grants, name: 'grants-dai', match: { ...grants.match, assets: [USDC_ASSET, `${BASE}/erc20:${DAI}`] } };
      const { token: daiToken } = await provisionAgent(h, { policy: { version: 1, rules: [dai, caps[1]] } });
      const daiApprove = (amount: bigint) => ({ chainId: 8453, transaction: { type: 'eip1559', to: DAI, value: '0', data: `0x095ea7b3${ALICE.slice(2).padStart(64, '0')}${amount.toString(16).padStart(64, '0')}`, nonce: 0, gas: '60000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000' } });
      for (const amount of [MAX256 - 1n, 1n << 128n]) {
        const res = await h.call('POST', '/v1/sign/transaction', { token: daiToken, body: daiApprove(amount) });
        assert.deepEqual([res.status, res.body.error?.violations.map((v: any) => [v.rule, v.code])], [403, [['agent/default', 'unlimited_approval']]], JSON.stringify(res.body));
      }
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token: daiToken, body: daiApprove((1n << 128n) - 1n) })).status, 200, 'a bounded approval of an unbudgeted asset is as before');
      // An approvals rule scoped to USDC allows unlimited USDC only, approval by approval: not a DAI entry beside it
      // in one Permit2 PermitBatch (found by review).
      const batchPolicy = { version: 1, rules: [{ name: 'batches', type: 'allow', match: { chains: [BASE], kinds: ['permit2.permit_batch'], to: [ROUTER] } }, { name: 'unlimited-usdc', type: 'approvals', allow_unlimited: true, match: { assets: [USDC_ASSET] } }] };
      const { token: batchToken } = await provisionAgent(h, { policy: batchPolicy });
      const batch = (amounts: [string, bigint][]) => {
        const p = permit2(amounts.map(([t]) => t), true);
        (p.typedData.message as any).details = (p.typedData.message as any).details.map((d: any, i: number) => ({ ...d, amount: String(amounts[i]![1]) }));
        return p;
      };
      const mixed = await h.call('POST', '/v1/sign/typed-data', { token: batchToken, body: batch([[USDC, 1n], [DAI, MAX160 - 1n]]) });
      assert.deepEqual([mixed.status, mixed.body.error?.violations.map((v: any) => [v.rule, v.code])], [403, [['agent/default', 'unlimited_approval']]], JSON.stringify(mixed.body));
      assert.equal((await h.call('POST', '/v1/sign/typed-data', { token: batchToken, body: batch([[USDC, MAX160], [DAI, 1n]]) })).status, 200);
      // `to` in an allow_unlimited rule names the spender, not the token: a vault that is itself an ERC-20 does not
      // get its shares approved to anyone (found by review: the loose reading took the token contract for `to`).
      const VAULT = '0x4444444444444444444444444444444444444444';
      const EVIL = '0x6666666666666666666666666666666666666666';
      const approveOn = (token: string, spender: string) => ({ chainId: 8453, transaction: { type: 'eip1559', to: token, value: '0', data: `0x095ea7b3${spender.slice(2).padStart(64, '0')}${MAX256.toString(16)}`, nonce: 0, gas: '60000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000' } });
      const vaultPolicy = { version: 1, rules: [{ name: 'approve', type: 'allow', match: { chains: [BASE], kinds: ['erc20.approve'], assets: [USDC_ASSET, `${BASE}/erc20:${VAULT}`] } }, { name: 'unlimited-to-vault', type: 'approvals', allow_unlimited: true, match: { to: [VAULT] } }] };
      const { token: vaultToken } = await provisionAgent(h, { policy: vaultPolicy });
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token: vaultToken, body: approveOn(USDC, VAULT) })).status, 200);
      for (const body of [approveOn(VAULT, EVIL), approveOn(USDC, EVIL)]) {
        const res = await h.call('POST', '/v1/sign/transaction', { token: vaultToken, body });
        assert.deepEqual([res.status, res.body.error?.violations.map((v: any) => [v.rule, v.code])], [403, [['agent/default', 'unlimited_approval']]], JSON.stringify(res.body));
      }
      // Allowed by an approvals rule, no tier and no cap: signed (what the operator asked for).
      for (const res of await attempt({ version: 1, rules: [grants, caps[1], { name: 'unlimited-to-alice', type: 'approvals', allow_unlimited: true, spenders: [ALICE] }] })) {
        assert.equal(res.status, 200, JSON.stringify(res.body));
      }
    });
  });
}
