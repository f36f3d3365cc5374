// Policy inputs written the way operators copy them (a checksummed token address, a URL with its default port or
// in Unicode, a fleet-only section in an agent document) must mean what they say, or be refused when the policy
// is set: a detector on a checksummed asset trips, a resource deny on https://host:443/... fires, a treasury with a
// bad EIP-55 checksum or the zero address is refused, and staging a shadow policy refuses what setting it refuses.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodePaymentRequiredHeader } from '@x402/core/http';
import { ALICE, BASE, USDC, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

/** USDC on Base as block explorers and viem write it: EIP-55 mixed case. */
const USDC_CHECKSUMMED_ASSET = `${BASE}/erc20:0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913`;
const API = 'https://api.example.com';

function payRequest(url: string) {
  const accepts = [{ scheme: 'exact', network: BASE, amount: '1000', asset: USDC, payTo: ALICE, maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' } }];
  const paymentRequired = encodePaymentRequiredHeader({ x402Version: 2, error: 'Payment required', resource: { url, description: 'data', mimeType: 'application/json' }, accepts } as never);
  return { resource: url, paymentRequired };
}

/** Pays any resource of the allowed patterns to ALICE, with the deny rules given. */
function x402Policy(denied: string[]) {
  return {
    version: 1,
    rules: [
      { name: 'paid-apis', type: 'allow', match: { chains: [BASE], kinds: ['eip3009.transfer_with_authorization'], to: [ALICE], resources: ['https://**/**'] } },
      { name: 'no-admin', type: 'deny', match: { resources: denied } },
      { name: 'short-lived', type: 'validity_window', max_seconds: 120 },
    ],
  };
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`policy inputs as operators write them (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store, manualClock: true });
    });
    after(async () => h.close());

    test('a spend_burst on a checksummed token address trips on the first burst transfer and freezes the agent', async () => {
      const burst = { name: 'usdc-burst', type: 'spend_burst', asset: USDC_CHECKSUMMED_ASSET, window: '10m', baseline: '24h', factor: 2, min_amount: '1000', action: 'freeze' };
      const { agent, token } = await provisionAgent(h, { policy: { ...usdcPolicy(), detectors: [burst] } });
      const first = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 5000n, 0) });
      assert.equal(first.status, 403, JSON.stringify(first.body));
      assert.equal(first.body.error.code, 'policy_denied');
      const tripped = first.body.error.violations.find((v: any) => v.code === 'breaker_tripped');
      assert.equal(tripped?.rule, 'detector/agent/usdc-burst');
      assert.equal((await h.admin('GET', `/v1/agents/${agent.name}`)).body.status, 'frozen');
      const second = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 5000n, 1) });
      assert.equal(second.status, 403);
      assert.equal(second.body.error.code, 'agent_frozen');
      assert.equal(second.body.signature, undefined);
    });

    test('a fleet_spend_burst on a checksummed token address trips too', async () => {
      const burst = { name: 'fleet-usdc-burst', type: 'fleet_spend_burst', asset: USDC_CHECKSUMMED_ASSET, window: '10m', baseline: '24h', factor: 2, min_amount: '1000', action: 'freeze' };
      const fleetSet = await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [], detectors: [burst] } });
      assert.equal(fleetSet.status, 200, JSON.stringify(fleetSet.body));
      try {
        const { agent, token } = await provisionAgent(h, { policy: usdcPolicy() });
        const first = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 5000n, 0) });
        assert.equal(first.status, 403, JSON.stringify(first.body));
        assert.equal(first.body.error.violations.find((v: any) => v.code === 'breaker_tripped')?.rule, 'detector/fleet/fleet-usdc-burst');
        assert.equal((await h.admin('GET', `/v1/agents/${agent.name}`)).body.status, 'frozen');
      } finally {
        assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [] } })).status, 200);
      }
    });

    test('an x402 resource deny written with the default port (:443) refuses the resource it names, escaped letters included', async () => {
      const { token } = await provisionAgent(h, { policy: x402Policy([`${API}:443/admin/**`, 'https://bücher.example/**', `${API}/café/**`]) });
      // `%61dmin` is `admin` to every server that decodes the path (RFC 3986 §6.2.2); it was paid past the deny.
      for (const url of [`${API}/admin/keys`, 'https://bücher.example/book', `${API}/café/menu`, `https://API.example.com:443/admin/keys?x=1`, `${API}/%61dmin/keys`, `${API}/caf%c3%a9/menu`]) {
        const res = await h.call('POST', '/v1/x402/pay', { token, body: payRequest(url) });
        assert.equal(res.status, 403, `${url}: ${JSON.stringify(res.body)}`);
        assert.deepEqual(res.body.error.requirements[0].violations.map((v: any) => `${v.rule}:${v.code}`), ['agent/no-admin:denied_by_rule'], url);
      }
      const other = await h.call('POST', '/v1/x402/pay', { token, body: payRequest(`${API}/data/prices`) });
      assert.equal(other.status, 200, JSON.stringify(other.body));
    });

    test('a resource pattern whose wildcards cannot be normalised is refused when the policy is set', async () => {
      const { agent } = await provisionAgent(h);
      const set = await h.admin('PUT', `/v1/policies/${agent.name}`, { document: x402Policy(['https://*bücher.example/**']) });
      assert.equal(set.status, 400);
      assert.equal(set.body.error.code, 'invalid_policy');
      assert.match(set.body.error.message, /rules\[1\]\.match\.resources\[0\]/);
    });

    test('the fleet treasury: a bad EIP-55 checksum and the zero address are refused; checksummed and lowercase are taken', async () => {
      const put = (treasury: string) => h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [], lifecycle: { treasury: { [BASE]: treasury } } } });
      // USDC's address with one letter's case flipped (fCD -> fcD): a typo the checksum exists to catch.
      for (const bad of ['0x833589fcD6eDb6E08f4c7C32D4f71b54bdA02913', '0x0000000000000000000000000000000000000000']) {
        const res = await put(bad);
        assert.equal(res.status, 400, bad);
        assert.equal(res.body.error.code, 'invalid_policy');
        assert.match(res.body.error.message, /lifecycle\.treasury\.eip155:8453/);
      }
      for (const good of ['0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913', '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913']) {
        const res = await put(good);
        assert.equal(res.status, 200, `${good}: ${JSON.stringify(res.body)}`);
      }
      assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [] } })).status, 200);
    });

    test('staging a shadow policy refuses a fleet-only lifecycle field in an agent document, as setting it does', async () => {
      const { agent } = await provisionAgent(h, { policy: usdcPolicy() });
      const document = { ...usdcPolicy(), lifecycle: { treasury: { [BASE]: ALICE } } };
      const set = await h.admin('PUT', `/v1/policies/${agent.name}`, { document });
      assert.equal(set.status, 400);
      assert.equal(set.body.error.code, 'invalid_policy');
      const staged = await h.admin('PUT', `/v1/policies/${agent.name}/shadow`, { document });
      assert.equal(staged.status, 400, JSON.stringify(staged.body));
      assert.equal(staged.body.error.code, 'invalid_policy');
      assert.equal(staged.body.error.message, set.body.error.message);
      assert.equal((await h.admin('GET', `/v1/policies/${agent.name}/shadow`)).status, 404, 'nothing staged');
      // The fleet may stage it.
      assert.equal((await h.admin('PUT', '/v1/policies/fleet/shadow', { document })).status, 200);
      assert.equal((await h.admin('DELETE', '/v1/policies/fleet/shadow')).status, 200);
    });
  });
}
