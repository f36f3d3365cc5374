// An EIP-7702 authorization with chain id 0 is valid on every chain; the chainId on the request is only the
// agent's label for it. Found by review: a session scoped to a testnet and a fleet deny of mainnet both let
// such an authorization through (the policy saw only the label), so a testnet session delegated the agent's
// whole account on mainnet too. It now counts as on every chain, as chainless typed data does: no `chains`
// list covers it (an allow rule listing chains included: a second review found a fleet granting only testnet
// requests granted one labelled so) and a deny naming any chain refuses it. Over HTTP on both stores.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { recoverAuthorizationAddress } from 'viem/utils';
import { provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

const DELEGATE = '0xe6cae83bde06e4c305530e199d7217f42808555b';
const SEPOLIA_BASE = 84532;

const anyChainPolicy = {
  version: 1,
  rules: [
    { name: 'delegate', type: 'allow', match: { actions: ['evm.authorization'] } },
    { name: 'simple7702-anywhere', type: 'delegations', allow: [DELEGATE], allow_any_chain: true },
  ],
};

const codes = (res: { body: any }) => (res.body.error?.violations ?? []).map((v: any) => `${v.rule} ${v.code}`);

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`EIP-7702 authorizations with chain id 0 and chain limits (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store });
    });
    after(async () => h.close());

    const sign = (token: string, authChainId: number, label: number, nonce = 0) =>
      h.call('POST', '/v1/sign/authorization', { token, body: { chainId: label, authorization: { address: DELEGATE, chainId: authChainId, nonce } } });

    test('a session scoped to one chain cannot sign a chain-id-0 authorization under that chain as its label', async () => {
      const { token, agent } = await provisionAgent(h, { policy: anyChainPolicy, actions: ['evm.authorization'], chains: [`eip155:${SEPOLIA_BASE}`] });
      const attack = await sign(token, 0, SEPOLIA_BASE);
      assert.equal(attack.status, 403, JSON.stringify(attack.body).slice(0, 300));
      assert.deepEqual(codes(attack), ['session/chains chain_not_allowed']);
      assert.match(attack.body.error.violations[0].message, /chain id 0 is valid on every chain/);
      assert.equal(attack.body.error.code, 'policy_denied');
      assert.equal(attack.body.signature, undefined);
      const entry = (await h.admin('GET', `/v1/audit?agent=${agent.id}&order=newest&limit=1`)).body.entries[0];
      assert.equal(entry.decision, 'deny');
      // The same delegation bound to the session's chain is signed.
      const ok = await sign(token, SEPOLIA_BASE, SEPOLIA_BASE, 1);
      assert.equal(ok.status, 200, JSON.stringify(ok.body).slice(0, 300));
    });

    /** Under a fleet policy of `rules`: a chain-0 authorization labelled with the testnet is refused with `code`, the testnet-bound one signed. */
    async function refusedUnderFleet(rules: unknown[], code: string) {
      const fleet = await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules } });
      assert.equal(fleet.status, 200, JSON.stringify(fleet.body));
      try {
        const { token } = await provisionAgent(h, { policy: anyChainPolicy, actions: ['evm.authorization'] });
        const attack = await sign(token, 0, SEPOLIA_BASE);
        assert.equal(attack.status, 403, JSON.stringify(attack.body).slice(0, 300));
        assert.deepEqual(codes(attack), [code]);
        assert.equal((await sign(token, SEPOLIA_BASE, SEPOLIA_BASE)).status, 200);
      } finally {
        assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [] } })).status, 200);
      }
    }

    test('a fleet deny of mainnet refuses a chain-id-0 authorization labelled with a testnet', async () => {
      await refusedUnderFleet([{ name: 'no-mainnet', type: 'deny', match: { chains: ['eip155:1'] } }], 'fleet/no-mainnet denied_by_rule');
    });

    test('a fleet that grants only testnet requests (an allow rule listing the chain) does not grant it', async () => {
      await refusedUnderFleet([{ name: 'testnet-only', type: 'allow', match: { chains: [`eip155:${SEPOLIA_BASE}`] } }], 'fleet/default no_matching_allow_rule');
    });

    test('with no chain limit, allow_any_chain still signs it, over chain id 0', async () => {
      const { token, agent } = await provisionAgent(h, { policy: anyChainPolicy, actions: ['evm.authorization'] });
      const ok = await sign(token, 0, SEPOLIA_BASE);
      assert.equal(ok.status, 200, JSON.stringify(ok.body).slice(0, 300));
      const authority = await recoverAuthorizationAddress({ authorization: { address: DELEGATE, chainId: 0, nonce: 0 }, signature: ok.body.signature });
      assert.equal(authority.toLowerCase(), agent.address.toLowerCase());
    });
  });
}
