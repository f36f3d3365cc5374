// Chain and asset ids a policy or a session scope names must be ids requests carry. Found by review (MEDIUM): the
// validator checked only the CAIP shape, so `eip155:base`, `eip155:0x2105`, `eip155:08453`, `…/erc20:USDC` or a
// 39- or 41-digit token address were valid, warning-free, and inert: a deny of everything on Base, an approval tier
// and a 1-unit cap written with them let a 5,000 USDC transfer be signed, and a session budget of 1 on
// `eip155:8453/erc20:USDC` let a 90 USDC transfer through. Now each is refused at its path, naming the form requests
// use, and nothing is stored; every form an adapter writes (EVM, Bitcoin and Lightning, Nostr) is still accepted.
// Over HTTP, on SQLite and PostgreSQL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, BASE, USDC, USDC_ASSET, provisionAgent, startHarness, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

const U = 1_000_000n;
const BITCOIN_NETWORKS = [
  'bip122:000000000019d6689c085ae165831e93', 'bip122:000000000933ea01ad0ee984209779ba', 'bip122:00000000da84f2bafbbc53dee25a72ae',
  'bip122:00000008819873e925422c1ff0f99f7c', 'bip122:0f9188f13cb7b2c71f2a335e3a4fc328',
];

/** Pays partners in USDC on Base; above 100 USDC a human approves; `freeze` denies a chain; `cap` caps an asset at 1 unit. */
function policy(ids: { tier?: string; freeze?: string; cap?: string } = {}) {
  return {
    version: 1,
    sets: { partners: [ALICE] },
    rules: [
      { name: 'pay', type: 'allow', match: { chains: [BASE], kinds: ['erc20.transfer'], assets: [USDC_ASSET], to: '$partners' } },
      { name: 'per-payment', type: 'max_amount', asset: USDC_ASSET, max: (10_000n * U).toString() },
      { name: 'daily', type: 'budget', asset: USDC_ASSET, max: (20_000n * U).toString(), window: '24h' },
      { name: 'fees', type: 'fee_cap', max_fee_per_gas: '100000000000' },
      ...(ids.tier ? [{ name: 'big-by-hand', type: 'approval_tier', asset: ids.tier, above: (100n * U).toString() }] : []),
      ...(ids.freeze ? [{ name: 'freeze', type: 'deny', match: { chains: [ids.freeze] } }] : []),
      ...(ids.cap ? [{ name: 'tiny-cap', type: 'max_amount', asset: ids.cap, max: '1' }] : []),
    ],
  };
}

/** Ids of the review's finding: none names what a request on Base carries. */
const INERT: [label: string, ids: { tier?: string; freeze?: string; cap?: string }, path: string, expected: RegExp][] = [
  ['a token symbol', { tier: 'eip155:8453/erc20:USDC' }, 'rules[4].asset', /erc20:0x<token address: 40 hex digits>/],
  ['a lowercase token symbol', { cap: 'eip155:8453/erc20:usdc' }, 'rules[4].asset', /erc20:0x<token address: 40 hex digits>/],
  ['a 39-digit token address', { tier: `eip155:8453/erc20:${USDC.slice(0, -1)}` }, 'rules[4].asset', /erc20:0x<token address: 40 hex digits>/],
  ['a 41-digit token address', { cap: `eip155:8453/erc20:${USDC}0` }, 'rules[4].asset', /erc20:0x<token address: 40 hex digits>/],
  ['a leading-zero chain in an asset', { cap: `eip155:08453/erc20:${USDC}` }, 'rules[4].asset', /without leading zeros/],
  ['a chain name', { freeze: 'eip155:base' }, 'rules[4].match.chains[0]', /eip155:<chain id>, the decimal EIP-155 chain id/],
  ['a hex chain id', { freeze: 'eip155:0x2105' }, 'rules[4].match.chains[0]', /eip155:<chain id>, the decimal EIP-155 chain id/],
  ['a leading-zero chain id', { freeze: 'eip155:08453' }, 'rules[4].match.chains[0]', /without leading zeros/],
  ['a chain id above 2^53-1', { freeze: 'eip155:9999999999999999' }, 'rules[4].match.chains[0]', /at most 2\^53-1/],
  ['an EVM native coin by its own coin type', { cap: 'eip155:8453/slip44:966' }, 'rules[4].asset', /slip44:60, whatever the coin/],
  ['an uppercase Bitcoin network', { freeze: BITCOIN_NETWORKS[0]!.toUpperCase().replace('BIP122', 'bip122') }, 'rules[4].match.chains[0]', /bip122:000000000019d6689c085ae165831e93 \(bitcoin\)/],
  ['bitcoin by the EVM coin type', { cap: `${BITCOIN_NETWORKS[0]}/slip44:60` }, 'rules[4].asset', /slip44:0/],
  ['a Nostr asset', { cap: 'nostr:mainnet/slip44:0' }, 'rules[4].asset', /Nostr requests move no asset/],
  ['a namespace no adapter writes', { freeze: 'eip15:8453' }, 'rules[4].match.chains[0]', /nostr:mainnet/],
];

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`policy ids: chain and asset ids no request carries are refused (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store });
    });
    after(async () => h.close());

    test('validate refuses each inert id at its path, naming the form requests use and not echoing the id', async () => {
      for (const [label, ids, path, expected] of INERT) {
        const v = await h.admin('POST', '/v1/policies/validate', { document: policy(ids) });
        assert.equal(v.status, 200, label);
        assert.equal(v.body.valid, false, `${label}: refused`);
        assert.equal(v.body.error.code, 'invalid_policy', label);
        assert.deepEqual(v.body.error.details.issues.map((i: any) => i.path), [path], label);
        assert.match(v.body.error.details.issues[0].message, expected, label);
        assert.ok(!v.body.error.message.includes(Object.values(ids)[0]!), `${label}: the id is not echoed`);
      }
    });

    test('a policy freezing Base, tiering and capping USDC with inert ids is refused by PUT; the stored policy still holds the 5,000 USDC transfer', async () => {
      const { agent, token } = await provisionAgent(h, { policy: policy({ tier: USDC_ASSET }) });
      const before = await h.admin('GET', `/v1/policies/${agent.name}`);
      for (const ids of [{ tier: 'eip155:8453/erc20:USDC', freeze: 'eip155:base' }, { tier: `eip155:08453/erc20:${USDC}`, freeze: 'eip155:0x2105', cap: `eip155:8453/erc20:${USDC}0` }]) {
        const put = await h.admin('PUT', `/v1/policies/${agent.name}`, { document: policy(ids) });
        assert.equal(put.status, 400);
        assert.equal(put.body.error.code, 'invalid_policy');
      }
      assert.equal((await h.admin('GET', `/v1/policies/${agent.name}`)).body.version, before.body.version, 'nothing stored');
      const res = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 5_000n * U, 0) });
      assert.equal(res.status, 202, 'held for a human: the tier written with the real id applies');
      assert.equal(res.body.decision, 'require_approval');
    });

    test('a session budget on a token symbol is refused and no session is issued; written as requests name it, it binds', async () => {
      const { agent } = await provisionAgent(h, { policy: policy() });
      const sessions = async () => (await h.admin('GET', `/v1/sessions?agent=${agent.name}`)).body.sessions.length;
      const count = await sessions();
      for (const asset of ['eip155:8453/erc20:USDC', `eip155:8453/erc20:${USDC.slice(0, -1)}`, 'eip155:base/slip44:60']) {
        const issued = await h.admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'], budgets: [{ asset, max: '1', window: '24h' }] });
        assert.equal(issued.status, 400, asset);
        assert.equal(issued.body.error.code, 'invalid_request', asset);
        assert.match(issued.body.error.message, /^budgets\[0\]\.asset: expected eip155:<chain id>\/erc20:0x<token address: 40 hex digits>/, asset);
      }
      assert.equal(await sessions(), count, 'no session issued');
      const issued = await h.admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'], budgets: [{ asset: USDC_ASSET, max: '1', window: '24h' }] });
      assert.equal(issued.status, 201);
      const res = await h.call('POST', '/v1/sign/transaction', { token: issued.body.token, body: usdcTransfer(ALICE, 90n * U, 0) });
      assert.equal(res.status, 403);
      assert.deepEqual(res.body.error.violations.map((v: any) => v.code), ['budget_exceeded']);
    });

    test('every form an adapter writes is accepted: EVM chains, tokens (any case) and native coins; Bitcoin and Lightning networks and bitcoin; Nostr', async () => {
      const doc = {
        version: 1,
        rules: [
          { name: 'evm', type: 'chains', allow: [BASE, 'eip155:1', 'eip155:9007199254740991', ...BITCOIN_NETWORKS, 'nostr:mainnet'] },
          { name: 'usdc', type: 'max_amount', asset: `eip155:8453/erc20:0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913`, max: '1' },
          { name: 'eth', type: 'budget', asset: 'eip155:1/slip44:60', max: '1', window: '24h' },
          ...BITCOIN_NETWORKS.map((chain, i) => ({ name: `btc-${i}`, type: 'max_amount', asset: `${chain}/slip44:0`, max: '1' })),
        ],
      };
      const v = await h.admin('POST', '/v1/policies/validate', { document: doc });
      assert.equal(v.body.valid, true, JSON.stringify(v.body.error));
      const { agent } = await provisionAgent(h, { policy: policy() });
      const issued = await h.admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction', 'lightning.pay'], budgets: [{ asset: `${BITCOIN_NETWORKS[4]}/slip44:0`, max: '1', window: '24h' }, { asset: 'eip155:8453/slip44:60', max: '1', window: '24h' }] });
      assert.equal(issued.status, 201, JSON.stringify(issued.body));
    });
  });
}
