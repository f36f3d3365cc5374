// Circuit breaker modes and the policy side of detectors, over HTTP on SQLite and PostgreSQL: require_approval holds
// the agent's requests until a reset; a group freeze binds the agents sharing a label value and no other; a fleet
// freeze binds every agent; alert-only changes nothing; a dry run reports what a detector would do without tripping;
// detectors are versioned with the policy, and a bad detector is refused with invalid_policy at its exact path.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, USDC_ASSET, type Harness, type StoreKind } from './testing/harness.ts';
import { provisionFleet, transfer } from './testing/traffic-replay.ts';

const BASE = 'eip155:8453';
const VENDOR = '0x1111111111111111111111111111111111111111';
const MALLORY = '0x2222222222222222222222222222222222222222';
const rules = [
  { name: 'usdc-anywhere', type: 'allow', match: { chains: [BASE], kinds: ['erc20.transfer'], assets: [USDC_ASSET] } },
  { name: 'usdc-cap', type: 'max_amount', asset: USDC_ASSET, max: '20000000' },
];
const policy = (detectors: unknown[]) => ({ version: 1, rules, detectors });

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`circuit breaker modes (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store, manualClock: true });
    });
    after(async () => h.close());

    const pay = (token: string, to = VENDOR, amount = 1_000_000n) => {
      h.clock!.advance(1000);
      return h.call('POST', '/v1/sign/transaction', { token, body: transfer(to, amount) });
    };

    test('require_approval: the tripping request and every later one wait for a human until the breaker is reset', async () => {
      const [a] = await provisionFleet(h, 1);
      const set = await h.admin('PUT', `/v1/policies/${a!.name}`, { document: policy([{ name: 'burst', type: 'request_burst', window: '1m', baseline: '1h', min_count: 3, action: 'require_approval' }]) });
      assert.equal(set.status, 200, JSON.stringify(set.body));
      for (let i = 0; i < 3; i++) assert.equal((await pay(a!.token)).status, 200);
      // A dry run says what the fourth would do, and trips nothing.
      const dry = await h.call('POST', '/v1/dry-run', { token: a!.token, body: { action: 'evm.transaction', payload: transfer(VENDOR, 1_000_000n) } });
      assert.equal(dry.status, 200);
      assert.equal(dry.body.decision.decision, 'require_approval');
      assert.deepEqual(dry.body.decision.violations.map((v: any) => [v.rule, v.code]), [['detector/agent/burst', 'breaker_tripped']]);
      assert.deepEqual((await h.admin('GET', '/v1/breakers')).body.breakers, []);

      const held = await pay(a!.token);
      assert.equal(held.status, 202, JSON.stringify(held.body));
      assert.equal(held.body.decision, 'require_approval');
      assert.deepEqual(held.body.violations.map((v: any) => [v.rule, v.code, v.used, v.limit]), [['detector/agent/burst', 'breaker_tripped', '4', '3']]);
      const [breaker] = (await h.admin('GET', '/v1/breakers')).body.breakers;
      assert.equal(breaker.action, 'require_approval');
      assert.deepEqual(breaker.agents, [a!.id]);
      // Much later (the burst long over), the agent's requests are still held: the breaker is open until reset.
      h.clock!.advance(3_600_000);
      const later = await pay(a!.token);
      assert.equal(later.status, 202);
      assert.deepEqual(later.body.violations.map((v: any) => [v.rule, v.code]), [['detector/agent/burst', 'breaker_open']]);
      assert.equal((await h.admin('GET', `/v1/agents/${a!.name}`)).body.status, 'active');
      // The operator can still approve what is held.
      const approved = await h.admin('POST', `/v1/approvals/${later.body.approvalId}/approve`);
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      assert.equal((await h.admin('POST', `/v1/breakers/${breaker.id}/reset`)).status, 200);
      assert.equal((await pay(a!.token)).status, 200);
    });

    test('a concurrent burst of one agent: exactly min_count requests are signed, every later one is refused', async () => {
      const [a] = await provisionFleet(h, 1);
      h.clock!.advance(2 * 3_600_000);
      const doc = policy([{ name: 'burst', type: 'request_burst', window: '1m', baseline: '1h', min_count: 6, action: 'freeze' }]);
      assert.equal((await h.admin('PUT', `/v1/policies/${a!.name}`, { document: doc })).status, 200);
      const replies = await Promise.all(Array.from({ length: 25 }, () => h.call('POST', '/v1/sign/transaction', { token: a!.token, body: transfer(VENDOR, 1_000_000n) })));
      const signed = replies.filter((r) => r.status === 200 && typeof r.body.signature === 'string');
      assert.equal(signed.length, 6);
      const tripped = replies.filter((r) => r.body?.error?.violations?.some((v: any) => v.code === 'breaker_tripped'));
      assert.equal(tripped.length, 1);
      // Every other one is refused: frozen (or, if it was already in its transaction, by the open breaker).
      for (const r of replies.filter((x) => x.status !== 200 && !tripped.includes(x))) {
        assert.equal(r.status, 403);
        assert.ok(r.body.error.code === 'agent_frozen' || r.body.error.violations?.some((v: any) => v.code === 'breaker_open'), JSON.stringify(r.body));
      }
      const allows = (await h.admin('GET', `/v1/audit?agent=${a!.name}&type=sign.request&decision=allow`)).body.entries;
      assert.equal(allows.length, 6);
    });

    test('a group freeze freezes the agents sharing the label value and no other; the reset unfreezes them', async () => {
      const fleet = await provisionFleet(h, 4, (i) => ({ team: i < 3 ? 'red' : 'blue' }));
      const doc = policy([{ name: 'probing', type: 'refusal_run', max: 2, window: '10m', action: 'freeze', scope: 'group', group_label: 'team' }]);
      for (const a of fleet) assert.equal((await h.admin('PUT', `/v1/policies/${a.name}`, { document: doc })).status, 200);
      assert.equal((await pay(fleet[0]!.token, MALLORY, 500_000_000n)).status, 403);
      const trip = await pay(fleet[0]!.token, MALLORY, 500_000_000n);
      assert.deepEqual(trip.body.error.violations.map((v: any) => v.code), ['amount_exceeds_max', 'breaker_tripped']);
      for (const [i, a] of fleet.entries()) {
        const res = await pay(a.token);
        if (i < 3) assert.equal(res.body.error.code, 'agent_frozen', `red agent ${i}`);
        else assert.equal(res.status, 200, 'the blue agent keeps signing');
      }
      const [entry] = (await h.admin('GET', `/v1/audit?type=breaker.tripped&agent=${fleet[0]!.name}`)).body.entries;
      assert.deepEqual(entry.data.group, { label: 'team', value: 'red' });
      assert.deepEqual([...entry.data.agents].sort(), fleet.slice(0, 3).map((a) => a.id).sort());
      const reset = await h.admin('POST', `/v1/breakers/${entry.data.breakerId}/reset`);
      assert.deepEqual([...reset.body.unfrozen].sort(), fleet.slice(0, 3).map((a) => a.id).sort());
      for (const a of fleet) assert.equal((await pay(a.token)).status, 200);
    });

    test('a fleet freeze (fleet_spend_burst) freezes every agent; an alert-only detector never changes a decision', async () => {
      const fleet = await provisionFleet(h, 2);
      // Past the earlier tests' spend: the fleet's windows start empty.
      h.clock!.advance(2 * 3_600_000);
      const fleetPolicy = policy([
        { name: 'first-payee', type: 'new_destination', action: 'alert' },
        { name: 'fleet-spend', type: 'fleet_spend_burst', asset: USDC_ASSET, window: '1m', baseline: '1h', min_amount: '30000000', action: 'freeze', scope: 'fleet' },
      ]);
      assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: fleetPolicy })).status, 200);
      const first = await pay(fleet[0]!.token, '0x6666666666666666666666666666666666666666', 10_000_000n);
      assert.equal(first.status, 200, 'alert only: signed');
      const [alert] = (await h.admin('GET', `/v1/audit?type=alert.new_destination&agent=${fleet[0]!.name}`)).body.entries;
      assert.equal(alert.data.detector, 'detector/fleet/first-payee');
      assert.equal((await pay(fleet[1]!.token, VENDOR, 15_000_000n)).status, 200);
      const trip = await pay(fleet[0]!.token, VENDOR, 15_000_000n);
      assert.equal(trip.status, 403);
      assert.equal(trip.body.error.violations.at(-1).rule, 'detector/fleet/fleet-spend');
      const agents = (await h.admin('GET', '/v1/agents?status=active')).body.agents;
      assert.deepEqual(agents, [], 'no agent left active');
      assert.equal((await pay(fleet[1]!.token)).body.error.code, 'agent_frozen');
      const [breaker] = (await h.admin('GET', '/v1/breakers')).body.breakers.filter((b: any) => b.scope === 'fleet');
      const reset = await h.admin('POST', `/v1/breakers/${breaker.id}/reset`);
      assert.equal(reset.status, 200);
      assert.ok(reset.body.unfrozen.includes(fleet[1]!.id));
      // The breaker is reset, the detector stays: the fleet signs again.
      assert.equal((await pay(fleet[1]!.token)).status, 200);
      assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [] } })).status, 200);
    });

    test('detectors are versioned with the policy; a bad detector is refused with invalid_policy at its exact path and changes nothing', async () => {
      const [a] = await provisionFleet(h, 1);
      const good = policy([{ name: 'burst', type: 'request_burst', action: 'freeze' }]);
      assert.equal((await h.admin('PUT', `/v1/policies/${a!.name}`, { document: good })).status, 200);
      const cases: [unknown[], string][] = [
        [[{ name: 'burst', type: 'request_burst', factor: 0.5 }], 'detectors[0].factor'],
        [[{ name: 'burst', type: 'request_burst', windw: '1m' }], 'detectors[0].windw'],
        [[{ name: 'x', type: 'crystal_ball' }], 'detectors[0].type'],
        [[{ name: 'x', type: 'refusal_run', max: 3, action: 'freeze', scope: 'group' }], 'detectors[0].group_label'],
        [[{ name: 'x', type: 'request_burst', window: '1h', baseline: '1h' }], 'detectors[0].baseline'],
        [[{ name: 'x', type: 'new_destination' }, { name: 'x', type: 'new_destination' }], 'detectors[1].name'],
        [[{ name: 'x', type: 'spend_burst', asset: USDC_ASSET }], 'detectors[0].min_amount'],
      ];
      for (const [detectors, path] of cases) {
        const res = await h.admin('PUT', `/v1/policies/${a!.name}`, { document: policy(detectors) });
        assert.equal(res.status, 400, JSON.stringify(detectors));
        assert.equal(res.body.error.code, 'invalid_policy');
        assert.ok(res.body.error.message.startsWith(`${path}:`), `${res.body.error.message} (expected ${path})`);
      }
      const versions = (await h.admin('GET', `/v1/policies/${a!.name}/versions`)).body.versions;
      assert.equal(versions.length, 1);
      const shown = await h.admin('GET', `/v1/policies/${a!.name}`);
      assert.deepEqual(shown.body.document.detectors, [{ name: 'burst', type: 'request_burst', action: 'freeze' }]);
      assert.equal((await h.admin('PUT', `/v1/policies/${a!.name}`, { document: policy([]) })).body.record.version, 2);
    });
  });
}
