// DAI's own permit (Permit(holder, spender, nonce, expiry, allowed), older than EIP-2612) over the real HTTP app.
// It was read as unknown typed data with no approval: under a rule granting the Permit primary type on the DAI
// domain, an unlimited DAI allowance to a stranger signed past `spenders`, `allow_unlimited: false` and the
// unlimited default (found by review). It is now an approval like any permit. Both stores: the nonce claim and the
// audit entries live in the store. The signature is checked with viem (an independent EIP-712 implementation).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyTypedData, type Hex } from 'viem';
import { ALICE, MALLORY, provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

const DAI = '0x6b175474e89094c44da98b954eedeac495271d0f';
const DAI_ASSET = `eip155:1/erc20:${DAI}`;
const ROUTER = '0x3333333333333333333333333333333333333333';
const DOMAIN = { name: 'Dai Stablecoin', version: '1', chainId: 1, verifyingContract: DAI };
const TYPES = {
  Permit: [
    { name: 'holder', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'nonce', type: 'uint256' },
    { name: 'expiry', type: 'uint256' }, { name: 'allowed', type: 'bool' },
  ],
} as const;

const permit = (holder: string, spender: string, allowed: boolean, nonce = 0, expiry = 0) => ({
  typedData: { domain: DOMAIN, types: TYPES, primaryType: 'Permit', message: { holder, spender, nonce: String(nonce), expiry: String(expiry), allowed } },
});

/** What the reviewer's operator wrote: DAI permits granted by primary type and domain, approvals only to the router. */
const policy = (allowUnlimited: boolean) => ({
  version: 1,
  rules: [
    { name: 'dai-permits', type: 'allow', match: { actions: ['evm.typed_data'], primary_types: ['Permit'], domains: [{ chain_id: 1, verifying_contract: DAI }] } },
    { name: 'router-only', type: 'approvals', spenders: [ROUTER], allow_unlimited: allowUnlimited },
    { name: 'dai-cap', type: 'max_amount', asset: DAI_ASSET, max: '100000000000000000000' },
    { name: 'dai-daily', type: 'budget', asset: DAI_ASSET, max: '500000000000000000000', window: '24h', scope: 'agent' },
  ],
});

const codes = (body: any) => body.error.violations.map((v: any) => `${v.rule}:${v.code}`).sort();

for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`DAI permit over HTTP (${store})`, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ store });
  });
  after(async () => h.close());

  test('an unlimited DAI permit to a stranger is refused by spenders and allow_unlimited: false; nothing signed, the refusal audited', async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy(false), actions: ['evm.typed_data'] });
    const res = await h.call('POST', '/v1/sign/typed-data', { token, body: permit(agent.address, MALLORY, true) });
    assert.equal(res.status, 403, JSON.stringify(res.body));
    assert.equal(res.body.signature, undefined);
    assert.deepEqual(codes(res.body), ['agent/dai-cap:amount_exceeds_max', 'agent/router-only:spender_not_allowed', 'agent/router-only:unlimited_approval']);
    const audit = await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.request`);
    const entry = audit.body.entries.at(-1);
    assert.equal(entry.decision, 'deny');
    assert.equal(entry.data.intent.kind, 'dai.permit');
    // Even to the router, unlimited is refused while allow_unlimited is false.
    const toRouter = await h.call('POST', '/v1/sign/typed-data', { token, body: permit(agent.address, ROUTER, true) });
    assert.equal(toRouter.status, 403);
    assert.ok(codes(toRouter.body).includes('agent/router-only:unlimited_approval'));
  });

  test('without an approvals rule, the unlimited default refuses it', async () => {
    const bare = { version: 1, rules: [policy(false).rules[0]] };
    const { agent, token } = await provisionAgent(h, { policy: bare, actions: ['evm.typed_data'] });
    const res = await h.call('POST', '/v1/sign/typed-data', { token, body: permit(agent.address, ROUTER, true) });
    assert.equal(res.status, 403, JSON.stringify(res.body));
    assert.deepEqual(codes(res.body), ['agent/default:unlimited_approval']);
  });

  test('a permit naming another holder is refused before policy (the token checks the signature against the holder)', async () => {
    const { token } = await provisionAgent(h, { policy: policy(true), actions: ['evm.typed_data'] });
    const res = await h.call('POST', '/v1/sign/typed-data', { token, body: permit(ALICE, ROUTER, true) });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.signature, undefined);
  });

  test('where an approvals rule allows it (and no DAI cap, which an unlimited approval always exceeds), the permit to the router signs (viem verifies it); a revocation signs too', async () => {
    const allowed = { version: 1, rules: [policy(true).rules[0], policy(true).rules[1]] };
    const { agent, token } = await provisionAgent(h, { policy: allowed, actions: ['evm.typed_data'] });
    const body = permit(agent.address, ROUTER, true, 0, 2_000_000_000);
    const res = await h.call('POST', '/v1/sign/typed-data', { token, body });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(await verifyTypedData({ address: agent.address as Hex, domain: DOMAIN as never, types: TYPES, primaryType: 'Permit', message: { holder: agent.address as Hex, spender: ROUTER, nonce: 0n, expiry: 2_000_000_000n, allowed: true }, signature: res.body.signature as Hex }));
    const revoke = await h.call('POST', '/v1/sign/typed-data', { token, body: permit(agent.address, ROUTER, false, 1) });
    assert.equal(revoke.status, 200, JSON.stringify(revoke.body));
  });

  test('expiry 0 never expires (Dai.sol), so a validity_window refuses it validity_too_long like a far expiry; a near expiry signs', async () => {
    // Found by review: with expiry 0 the permit had no validBefore and the validity_window rule skipped it.
    const shortAuth = { version: 1, rules: [policy(true).rules[0], policy(true).rules[1], { name: 'short-auth', type: 'validity_window', max_seconds: 3600 }] };
    const { agent, token } = await provisionAgent(h, { policy: shortAuth, actions: ['evm.typed_data'] });
    for (const expiry of [0, 99_999_999_999]) {
      const res = await h.call('POST', '/v1/sign/typed-data', { token, body: permit(agent.address, ROUTER, true, 0, expiry) });
      assert.equal(res.status, 403, `expiry ${expiry}: ${JSON.stringify(res.body).slice(0, 300)}`);
      assert.equal(res.body.signature, undefined);
      assert.deepEqual(codes(res.body), ['agent/short-auth:validity_too_long'], `expiry ${expiry}`);
    }
    const soon = Math.floor(Date.now() / 1000) + 600;
    const res = await h.call('POST', '/v1/sign/typed-data', { token, body: permit(agent.address, ROUTER, true, 0, soon) });
    assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
  });

  test('a DAI permit from a rotated key is refused 403 key_rotated (its signer field is `holder`), not a generic 400', async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy(true), actions: ['evm.typed_data'] });
    assert.equal((await h.admin('POST', `/v1/agents/${agent.name}/rotate`)).status, 200);
    const res = await h.call('POST', '/v1/sign/typed-data', { token, body: permit(agent.address, ROUTER, true) });
    assert.equal(res.status, 403, JSON.stringify(res.body).slice(0, 300));
    assert.equal(res.body.signature, undefined);
    assert.equal(res.body.error.code, 'key_rotated');
  });
});
