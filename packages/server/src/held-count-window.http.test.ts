// A held request (waiting for a human, 24 h by default) counts as a request in the windows it was made in, and
// its amount counts in every window while held (it may still become spend). Found by review: its count counted
// in every window too, so one agent whose requests wait for approval filled a fleet-wide rate limit for every
// agent until they were decided. The rate limit still binds the grant: the request is counted again when it is
// granted (its holds become ledger entries then), and the grant is judged against the windows of that moment.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

const U = 1_000_000n;

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`held requests and a fleet rate limit (${store})`, () => {
    let h: Harness;
    before(async () => { h = await startHarness({ store, manualClock: true }); });
    after(async () => h.close());

    test('three held requests fill a 3 / 1m fleet limit only for that minute; granted later, the limit binds the grants', async () => {
      const fleet = { version: 1, rules: [{ name: 'fleet-burst', type: 'rate_limit', max: 3, window: '1m', scope: 'fleet' }] };
      assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: fleet })).status, 200);
      const waiting = await provisionAgent(h, { policy: usdcPolicy({ approvalAbove: (1n * U).toString() }), ttl: '24h' });
      const other = await provisionAgent(h, { policy: usdcPolicy(), ttl: '24h' });

      const held = [];
      for (let nonce = 0; nonce < 3; nonce++) {
        const res = await h.call('POST', '/v1/sign/transaction', { token: waiting.token, body: usdcTransfer(ALICE, 2n * U, nonce) });
        assert.equal(res.status, 202, JSON.stringify(res.body));
        held.push(res.body.approvalId as string);
      }
      // In the minute they were made, the three held requests count: the fleet is at its limit.
      const same = await h.call('POST', '/v1/sign/transaction', { token: other.token, body: usdcTransfer(ALICE, 1n * U, 0) });
      assert.equal(same.status, 403, JSON.stringify(same.body));
      assert.equal(same.body.error.violations[0].code, 'rate_limit_exceeded');
      assert.equal(same.body.error.violations[0].rule, 'fleet/fleet-burst');

      h.clock!.advance(61_000);
      // A minute later they no longer count as requests of this minute (on the old code: 403 rate_limit_exceeded,
      // used 3 + requested 1 > 3, until a human decided them).
      const later = await h.call('POST', '/v1/sign/transaction', { token: other.token, body: usdcTransfer(ALICE, 1n * U, 0) });
      assert.equal(later.status, 200, `a minute later the held requests still fill the fleet limit: ${JSON.stringify(later.body)}`);

      // Granted now, each is counted at its grant: the other agent's signature and two grants reach the limit, the
      // third grant is refused naming the rate limit, and its hold is released (nothing signed past the limit).
      assert.equal((await h.admin('POST', `/v1/approvals/${held[0]}/approve`)).status, 200);
      assert.equal((await h.admin('POST', `/v1/approvals/${held[1]}/approve`)).status, 200);
      const third = await h.admin('POST', `/v1/approvals/${held[2]}/approve`);
      assert.equal(third.status, 409, JSON.stringify(third.body));
      assert.equal(third.body.error.code, 'approval_policy_denies');
      assert.ok(third.body.error.violations.some((v: { code: string; rule: string }) => v.code === 'rate_limit_exceeded' && v.rule === 'fleet/fleet-burst'), JSON.stringify(third.body));
      const after = await h.call('POST', '/v1/sign/transaction', { token: other.token, body: usdcTransfer(ALICE, 1n * U, 1) });
      assert.equal(after.status, 403, 'the fleet is at its limit for this minute');
      assert.equal(after.body.error.violations[0].code, 'rate_limit_exceeded');
    });
  });
}
