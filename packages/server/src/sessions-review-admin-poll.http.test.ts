// A long poll that outlives the admin credential it was opened with (found by the hostile review of agent
// credentials, 2026-12-05). GET /v1/approvals/{id}?wait= re-checked a session credential each time it woke (a
// revoked session gets nothing decided meanwhile), but not the admin token or a console session: an admin token
// the operator rotated away (the incident response to a stolen token), or a console session logged out, kept its
// poll and was handed the signed transaction approved up to 60 s later, though its very next request was 401.
// Over HTTP on both stores; fails without the fix (200 with the signed transaction).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, BASE, USDC_ASSET, provisionAgent, startHarness, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

const CONSOLE = { 'x-airlock-console': '1', origin: 'http://localhost' };

const heldAbove = {
  version: 1,
  rules: [
    { name: 'pay', type: 'allow', match: { chains: [BASE], kinds: ['erc20.transfer'], assets: [USDC_ASSET] } },
    { name: 'big', type: 'approval_tier', asset: USDC_ASSET, above: '1000000' },
  ],
};

async function heldRequest(h: Harness): Promise<string> {
  const { token } = await provisionAgent(h, { policy: heldAbove, actions: ['evm.transaction'] });
  const held = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 5_000_000n) });
  assert.equal(held.status, 202, JSON.stringify(held.body));
  return held.body.approvalId as string;
}

const settle = () => new Promise((r) => setTimeout(r, 150));

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`an admin long poll and its credential (${store})`, () => {
    test('an admin token rotated away while it polls gets 401, not the signed transaction approved meanwhile', async () => {
      const h = await startHarness({ store });
      try {
        const approvalId = await heldRequest(h);
        const stolen = h.adminToken;
        const poll = h.call('GET', `/v1/approvals/${approvalId}?wait=20`, { token: stolen });
        await settle();
        // The operator's incident response: rotate the token, then go on approving with the new one.
        const rotated = await h.call('POST', '/v1/admin/token/rotate', { token: stolen });
        assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
        assert.equal((await h.call('GET', '/v1/agents', { token: stolen })).status, 401, 'the old token is refused from the next request');
        const approved = await h.call('POST', `/v1/approvals/${approvalId}/approve`, { token: rotated.body.token });
        assert.equal(approved.status, 200, JSON.stringify(approved.body));
        assert.match(approved.body.result.signedTransaction, /^0x02/);

        const answer = await poll;
        assert.equal(answer.status, 401, JSON.stringify(answer.body).slice(0, 300));
        assert.equal(answer.body.error.code, 'unauthenticated');
        assert.doesNotMatch(JSON.stringify(answer.body), /signedTransaction/);
      } finally {
        await h.close();
      }
    });

    test('a console session logged out while it polls gets 401, not the signed transaction approved meanwhile', async () => {
      const h = await startHarness({ store });
      try {
        const approvalId = await heldRequest(h);
        const login = await h.call('POST', '/v1/console/session', { body: { token: h.adminToken }, headers: CONSOLE });
        assert.equal(login.status, 201);
        const cookie = /^airlock_console=[^;]+/.exec(login.headers.get('set-cookie') ?? '')![0];
        const asConsole = { ...CONSOLE, 'x-airlock-console': login.body.proof, cookie };
        const poll = h.call('GET', `/v1/approvals/${approvalId}?wait=20`, { headers: asConsole });
        await settle();
        assert.equal((await h.call('DELETE', '/v1/console/session', { headers: asConsole })).status, 200);
        assert.equal((await h.call('GET', '/v1/agents', { headers: asConsole })).status, 401, 'the session ended');
        assert.equal((await h.admin('POST', `/v1/approvals/${approvalId}/approve`)).status, 200);

        const answer = await poll;
        assert.equal(answer.status, 401, JSON.stringify(answer.body).slice(0, 300));
        assert.doesNotMatch(JSON.stringify(answer.body), /signedTransaction/);
      } finally {
        await h.close();
      }
    });

    test('control: the admin token that still holds gets the signed transaction once approved', async () => {
      const h = await startHarness({ store });
      try {
        const approvalId = await heldRequest(h);
        const poll = h.call('GET', `/v1/approvals/${approvalId}?wait=20`, { token: h.adminToken });
        await settle();
        assert.equal((await h.admin('POST', `/v1/approvals/${approvalId}/approve`)).status, 200);
        const answer = await poll;
        assert.equal(answer.status, 200, JSON.stringify(answer.body).slice(0, 300));
        assert.equal(answer.body.state, 'approved');
        assert.match(answer.body.result.signedTransaction, /^0x02/);
      } finally {
        await h.close();
      }
    });
  });
}
