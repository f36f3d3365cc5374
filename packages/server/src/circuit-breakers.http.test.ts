// Anomaly detectors and circuit breakers over the real HTTP API, on SQLite and PostgreSQL, under replayed traffic:
// a steady fleet (seeded Poisson arrivals) learns its baselines in the ledger, then detectors are switched on
// (a new policy version) and must stay quiet on more steady traffic (the false-positive figure printed below);
// then one agent turns hostile (a burst to a new payee; a run of refusals) and a wave of agents pays one new
// payee (lateral movement). Each breaker must trip within the stated number of requests, and nothing of its
// agents may be signed after that point (replies, audit entries and ledger charges agree); an operator reset
// restores signing and is audited.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { COUNT_ASSET, seriesFor } from '@airlock/core';
import { startHarness, USDC_ASSET, type Harness, type StoreKind } from './testing/harness.ts';
import { findings, provisionFleet, replay, steadyTraffic, transfer, type FleetAgent, type SentRequest, type TrafficEvent } from './testing/traffic-replay.ts';

const BASE = 'eip155:8453';
const VENDORS = ['0x1111111111111111111111111111111111111111', '0x3333333333333333333333333333333333333333', '0x4444444444444444444444444444444444444444'];
const MALLORY = '0x2222222222222222222222222222222222222222';
const EVE = '0x5555555555555555555555555555555555555555';
const MINUTE = 60_000;

/** The fleet pays any payee in USDC, 20 USDC at most per request: open-ended enough for a drain to pass policy. */
const rules = [
  { name: 'usdc-anywhere', type: 'allow', match: { chains: [BASE], kinds: ['erc20.transfer'], assets: [USDC_ASSET] } },
  { name: 'usdc-cap', type: 'max_amount', asset: USDC_ASSET, max: '20000000' },
  { name: 'fees', type: 'fee_cap', max_fee_per_gas: '100000000000' },
];

// The stated bounds: a burst trips within BURST_WITHIN requests of its start, a refusal run on its PROBE_MAX-th
// refusal, a wave on its WAVE_AGENTS-th agent.
const BURST_WITHIN = 12;
const PROBE_MAX = 5;
const WAVE_AGENTS = 3;

const detectors = [
  { name: 'burst', type: 'request_burst', window: '5m', baseline: '2h', factor: 5, min_count: BURST_WITHIN, action: 'freeze' },
  { name: 'probing', type: 'refusal_run', max: PROBE_MAX, window: '10m', action: 'freeze' },
  { name: 'first-payee', type: 'new_destination', action: 'alert' },
  { name: 'lateral', type: 'destination_wave', agents: WAVE_AGENTS, window: '1h', action: 'freeze' },
  { name: 'fleet-spend', type: 'fleet_spend_burst', asset: USDC_ASSET, window: '5m', baseline: '2h', factor: 4, min_amount: '200000000', action: 'alert' },
];

const DETECTOR_CODES = ['breaker_tripped', 'breaker_open', 'anomaly_detected'];

async function ledgerCount(h: Harness, agentId: string): Promise<number> {
  const [total] = await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: seriesFor.agent(agentId), asset: COUNT_ASSET, sinceMs: 0 }]));
  return total!.count;
}

async function auditOf(h: Harness, type: string): Promise<any[]> {
  return (await h.admin('GET', `/v1/audit?type=${type}&limit=1000`)).body.entries;
}

/** Requests of one agent sent at or after `fromAt`. */
const ofAgent = (sent: readonly SentRequest[], agent: number, fromAt = 0) => sent.filter((s) => s.agent === agent && s.at >= fromAt);

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`circuit breakers under replayed traffic (${store})`, () => {
    let h: Harness;
    let fleet: FleetAgent[];
    let t0: number;
    const sentAll: SentRequest[] = [];
    before(async () => {
      h = await startHarness({ store, manualClock: true });
      fleet = await provisionFleet(h, 16, (i) => ({ team: i < 8 ? 'red' : 'blue' }));
      t0 = h.clock!.now();
    });
    after(async () => h.close());

    test('steady fleet: baselines learned without detectors, then detectors (policy v2) stay quiet: false positives 0', async () => {
      assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules } })).status, 200);
      const common = { agents: fleet.length, meanGapMs: 3 * MINUTE, vendors: VENDORS, oddShare: 0.03, oddAmount: 50_000_000n };
      const learning = await replay(h, fleet, steadyTraffic({ ...common, seed: 1, start: t0, durationMs: 60 * MINUTE }));
      sentAll.push(...learning);
      const v2 = await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules, detectors } });
      assert.equal(v2.status, 200, JSON.stringify(v2.body));
      assert.equal(v2.body.record.version, 2);
      const steady = await replay(h, fleet, steadyTraffic({ ...common, seed: 2, start: t0 + 60 * MINUTE, durationMs: 180 * MINUTE }));
      sentAll.push(...steady);

      const refused = steady.filter((s) => s.status === 403).length;
      const falsePositives = findings(steady, DETECTOR_CODES).length;
      const alerts = (await auditOf(h, 'breaker.tripped')).length + (await h.admin('GET', '/v1/audit?limit=1000')).body.entries.filter((e: any) => e.type.startsWith('alert.')).length;
      console.log(`# ${store}: steady traffic ${steady.length} requests (${refused} refused by policy, ${steady.length - refused} signed) after ${learning.length} learning requests; detector findings ${falsePositives}, alerts and trips ${alerts}: false-positive rate ${(falsePositives / steady.length * 100).toFixed(2)}%`);
      assert.ok(steady.length > 800, `enough steady traffic (${steady.length})`);
      assert.ok(refused > 0, 'the steady traffic holds policy refusals (the refusal detector must tell them from a run)');
      assert.equal(falsePositives, 0);
      assert.equal(alerts, 0);
      assert.deepEqual((await h.admin('GET', '/v1/breakers')).body.breakers, []);
      // Every signature the fleet saw is one request count in its ledger.
      for (const [i, a] of fleet.entries()) assert.equal(await ledgerCount(h, a.id), sentAll.filter((s) => s.agent === i && s.signed).length);
    });

    test(`a hostile burst to a new payee is frozen within ${BURST_WITHIN} requests; nothing of it is signed after the trip`, async () => {
      const start = t0 + 240 * MINUTE;
      const hostile: TrafficEvent[] = Array.from({ length: 40 }, (_, i) => ({ at: start + i * 4000, agent: 0, to: MALLORY, amount: 2_000_000n }));
      const background = steadyTraffic({ seed: 3, agents: fleet.length, start, durationMs: 3 * MINUTE, meanGapMs: 3 * MINUTE, vendors: VENDORS, oddShare: 0, oddAmount: 0n }).filter((e) => e.agent !== 0);
      const sent = await replay(h, fleet, [...hostile, ...background].sort((a, b) => a.at - b.at || a.agent - b.agent));
      sentAll.push(...sent);
      const burst = ofAgent(sent, 0);
      const tripIndex = burst.findIndex((s) => s.body?.error?.violations?.some((v: any) => v.code === 'breaker_tripped'));
      console.log(`# ${store}: burst breaker tripped on request ${tripIndex + 1} of the burst (bound ${BURST_WITHIN}); signed before: ${burst.slice(0, tripIndex).filter((s) => s.signed).length}`);
      assert.ok(tripIndex >= 0 && tripIndex < BURST_WITHIN, `tripped at ${tripIndex + 1}`);
      const trip = burst[tripIndex]!;
      assert.equal(trip.status, 403);
      assert.equal(trip.body.error.code, 'policy_denied');
      const violation = trip.body.error.violations.find((v: any) => v.code === 'breaker_tripped');
      assert.equal(violation.rule, 'detector/fleet/burst');
      assert.equal(Number(violation.used), Number(violation.limit) + 1);
      // Nothing after the trip: refused as frozen, no signature.
      for (const s of burst.slice(tripIndex + 1)) {
        assert.equal(s.status, 403);
        assert.equal(s.body.error.code, 'agent_frozen');
      }
      assert.equal(burst.slice(tripIndex).filter((s) => s.signed).length, 0);
      // The rest of the fleet kept signing.
      assert.ok(sent.filter((s) => s.agent !== 0 && s.signed).length > 0);
      // The first payment to MALLORY was a new payee for the fleet: an alert, the decision unchanged.
      const alerts = await auditOf(h, 'alert.new_destination');
      assert.equal(alerts.length, 1);
      assert.equal(alerts[0].data.figures.destination, MALLORY);
      assert.equal(burst[0]!.signed, true);

      const tripped = await auditOf(h, 'breaker.tripped');
      assert.equal(tripped.length, 1);
      assert.equal(tripped[0].data.detector, 'detector/fleet/burst');
      assert.deepEqual(tripped[0].data.agents, [fleet[0]!.id]);
      assert.deepEqual(Object.keys(tripped[0].data.figures).sort(), ['baseline', 'observed', 'threshold', 'window']);
      const agent = await h.admin('GET', `/v1/agents/${fleet[0]!.name}`);
      assert.equal(agent.body.status, 'frozen');
      // The ledger charged exactly what was signed, and the audit log holds no allow for it after the trip.
      assert.equal(await ledgerCount(h, fleet[0]!.id), sentAll.filter((s) => s.agent === 0 && s.signed).length);
      const allowsAfter = (await h.admin('GET', `/v1/audit?agent=${fleet[0]!.name}&type=sign.request&decision=allow&limit=1000`)).body.entries.filter((e: any) => e.seq > tripped[0].seq);
      assert.equal(allowsAfter.length, 0);

      const list = await h.admin('GET', '/v1/breakers');
      assert.equal(list.body.breakers.length, 1);
      const b = list.body.breakers[0];
      assert.equal(b.detector, 'detector/fleet/burst');
      assert.equal(b.action, 'freeze');
      assert.equal(b.state, 'tripped');
      assert.equal(b.trippedSeq, tripped[0].seq);
    });

    test(`a prompt-injected agent's run of refusals freezes it on refusal ${PROBE_MAX}; the allowed request it tries next is refused`, async () => {
      const start = t0 + 260 * MINUTE;
      const probes: TrafficEvent[] = Array.from({ length: 8 }, (_, i) => ({ at: start + i * 20_000, agent: 1, to: MALLORY, amount: 500_000_000n }));
      const sent = await replay(h, fleet, probes);
      sentAll.push(...sent);
      const tripIndex = sent.findIndex((s) => s.body?.error?.violations?.some((v: any) => v.code === 'breaker_tripped'));
      console.log(`# ${store}: refusal-run breaker tripped on probe ${tripIndex + 1} (bound ${PROBE_MAX})`);
      assert.ok(tripIndex >= 0 && tripIndex < PROBE_MAX, `tripped at ${tripIndex + 1}`);
      const codes = sent[tripIndex]!.body.error.violations.map((v: any) => [v.rule, v.code]);
      assert.deepEqual(codes, [['fleet/usdc-cap', 'amount_exceeds_max'], ['detector/fleet/probing', 'breaker_tripped']]);
      for (const s of sent.slice(tripIndex + 1)) assert.equal(s.body.error.code, 'agent_frozen');
      h.clock!.set(start + 10 * MINUTE);
      const small = await h.call('POST', '/v1/sign/transaction', { token: fleet[1]!.token, body: transfer(VENDORS[0]!, 1_000_000n) });
      assert.equal(small.status, 403);
      assert.equal(small.body.error.code, 'agent_frozen');
      assert.equal(small.body.signature, undefined);
    });

    let waveBreaker: string;
    test(`a lateral-movement wave (${WAVE_AGENTS} agents paying one new payee) freezes the wave on the payment of agent number ${WAVE_AGENTS}`, async () => {
      const start = t0 + 280 * MINUTE;
      const wave: TrafficEvent[] = [2, 3, 4, 5].map((agent, i) => ({ at: start + i * 2 * MINUTE, agent, to: EVE, amount: 3_000_000n }));
      const sent = await replay(h, fleet, wave);
      sentAll.push(...sent);
      assert.deepEqual(sent.map((s) => s.status), [200, 200, 403, 403]);
      const violation = sent[2]!.body.error.violations.find((v: any) => v.code === 'breaker_tripped');
      assert.equal(violation.rule, 'detector/fleet/lateral');
      assert.equal(violation.used, String(WAVE_AGENTS));
      // A fourth agent joining the wave later trips the detector again: it is frozen too.
      assert.equal(sent[3]!.body.error.violations.some((v: any) => v.rule === 'detector/fleet/lateral'), true);
      const tripped = (await auditOf(h, 'breaker.tripped')).filter((e: any) => e.data.detector === 'detector/fleet/lateral');
      assert.deepEqual([...tripped[0].data.agents].sort(), [fleet[2]!.id, fleet[3]!.id, fleet[4]!.id].sort());
      waveBreaker = tripped[0].data.breakerId;
      // Every agent of the wave is frozen, including the two whose payments were signed before the trip.
      for (const i of [2, 3, 4]) {
        h.clock!.advance(1000);
        const next = await h.call('POST', '/v1/sign/transaction', { token: fleet[i]!.token, body: transfer(VENDORS[1]!, 1_000_000n) });
        assert.equal(next.status, 403);
        assert.equal(next.body.error.code, 'agent_frozen');
      }
      assert.equal(sent.filter((s) => s.signed).length, WAVE_AGENTS - 1);
    });

    test('an operator reset re-opens the breaker (audited breaker.reset), unfreezes the wave and signing resumes; a second reset is refused', async () => {
      const reset = await h.admin('POST', `/v1/breakers/${waveBreaker}/reset`);
      assert.equal(reset.status, 200, JSON.stringify(reset.body));
      assert.equal(reset.body.state, 'reset');
      assert.deepEqual([...reset.body.unfrozen].sort(), [fleet[2]!.id, fleet[3]!.id, fleet[4]!.id].sort());
      const entries = await auditOf(h, 'breaker.reset');
      assert.equal(entries.length, 1);
      assert.equal(entries[0].data.breakerId, waveBreaker);
      assert.equal(entries[0].actor, 'operator');
      h.clock!.advance(MINUTE);
      const resumed = await h.call('POST', '/v1/sign/transaction', { token: fleet[2]!.token, body: transfer(VENDORS[2]!, 1_000_000n) });
      assert.equal(resumed.status, 200, JSON.stringify(resumed.body));
      const again = await h.admin('POST', `/v1/breakers/${waveBreaker}/reset`);
      assert.equal(again.status, 409);
      assert.equal(again.body.error.code, 'breaker_not_tripped');
      assert.equal((await h.admin('POST', '/v1/breakers/brk_0000000000000000/reset')).status, 404);
      const all = await h.admin('GET', '/v1/breakers?state=all');
      assert.ok(all.body.breakers.some((b: any) => b.id === waveBreaker && b.state === 'reset' && b.resetBy === 'admin'));
    });
  });
}
