// The detectors' arithmetic against hand-made figures: each reads only the windows it declares, trips exactly past
// its threshold and stays quiet at it (the replays over HTTP are in server/src/circuit-breakers*.http.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy } from '../compile.ts';
import { intentFacts } from '../facts.ts';
import { COUNT_ASSET, windowKey, type WindowQuery } from '../../ports/ledger.ts';
import type { DecisionKind } from '../decision.ts';
import { input, intent, NOW_MS, USDC } from '../testing/fixtures.ts';
import type { CompiledDetector, DetectorContext, DetectorReads, DetectorView } from './index.ts';
import type { DestinationPayers } from '../../ports/breakers.ts';

const ALICE = '0x1111111111111111111111111111111111111111';
const HOUR = 3_600_000;

function detector(raw: Record<string, unknown>): CompiledDetector {
  return compilePolicy({ version: 1, rules: [], detectors: [raw] }).detectors[0]!;
}

/** Runs one detector on a payment of `amount` USDC base units to ALICE, with totals by `series|asset|sinceMs`. */
function run(d: CompiledDetector, totals: Record<string, { amount?: bigint; count?: number }>, opts: { decision?: DecisionKind; nowMs?: number; amount?: bigint; payers?: Partial<DestinationPayers> & { agents: string[] } } = {}) {
  const i = intent({ kind: 'erc20.transfer', to: ALICE, spends: [{ asset: USDC, amount: opts.amount ?? 1_000_000n, to: ALICE, kind: 'transfer' }] });
  const ctx: DetectorContext = { input: input(i, { nowMs: opts.nowMs ?? NOW_MS }), facts: intentFacts(i), decision: opts.decision ?? 'allow' };
  const reads: DetectorReads = { windows: [], payers: [] };
  d.reads(ctx, reads);
  const declared = new Set(reads.windows.map(windowKey));
  const view: DetectorView = {
    total(q: WindowQuery) {
      if (!declared.has(windowKey(q))) throw new Error(`undeclared read ${q.series} ${q.sinceMs}`);
      const t = totals[`${q.series}|${q.asset}|${ctx.input.nowMs - q.sinceMs}`] ?? totals[`${q.series}|${q.asset}|${q.sinceMs === 0 ? 'ever' : ctx.input.nowMs - q.sinceMs}`];
      return { amount: t?.amount ?? 0n, count: t?.count ?? 0 };
    },
    payers: () => ({ agents: [], paidBeforeRecorded: false, paidBeforeWindow: false, ...opts.payers }),
  };
  return { finding: d.evaluate(ctx, view), reads };
}

test('request_burst: trips when the window with this request is above max(min_count, factor x baseline rate)', () => {
  const d = detector({ name: 'b', type: 'request_burst', window: '1m', baseline: '1h', factor: 10, min_count: 5 });
  // A quiet agent: min_count decides. 4 before + this one = 5: at the threshold, quiet; 5 + 1 trips.
  assert.equal(run(d, { [`agent:ag_1|${COUNT_ASSET}|60000`]: { count: 4 } }).finding, undefined);
  const tripped = run(d, { [`agent:ag_1|${COUNT_ASSET}|60000`]: { count: 5 } }).finding!;
  assert.deepEqual(tripped.figures, { observed: '6', baseline: '0', threshold: '5', window: '1m' });
  // A busy agent: 120 requests in the hour = 2 a minute; x10 = 20 a minute before it trips.
  const busy = { [`agent:ag_1|${COUNT_ASSET}|${HOUR}`]: { count: 120 } };
  assert.equal(run(d, { ...busy, [`agent:ag_1|${COUNT_ASSET}|60000`]: { count: 19 } }).finding, undefined);
  assert.equal(run(d, { ...busy, [`agent:ag_1|${COUNT_ASSET}|60000`]: { count: 20 } }).finding?.figures.threshold, '20');
  // A refused request is not a burst of signatures: nothing read, nothing found.
  const denied = run(d, { [`agent:ag_1|${COUNT_ASSET}|60000`]: { count: 50 } }, { decision: 'deny' });
  assert.equal(denied.finding, undefined);
  assert.deepEqual(denied.reads.windows, []);
});

test('spend_burst: exact in base units; only requests that move the asset are looked at', () => {
  const d = detector({ name: 's', type: 'spend_burst', asset: USDC, window: '10m', baseline: '24h', factor: 3, min_amount: '10000000' });
  assert.equal(run(d, { [`agent:ag_1|${USDC}|600000`]: { amount: 9_000_000n } }).finding, undefined);
  assert.equal(run(d, { [`agent:ag_1|${USDC}|600000`]: { amount: 9_000_001n } }).finding?.figures.observed, '10000001');
  // 1440 USDC a day = 10 USDC per 10 minutes; x3 = 30 USDC.
  const history = { [`agent:ag_1|${USDC}|${24 * HOUR}`]: { amount: 1_440_000_000n } };
  assert.equal(run(d, { ...history, [`agent:ag_1|${USDC}|600000`]: { amount: 29_000_000n } }).finding, undefined);
  assert.equal(run(d, { ...history, [`agent:ag_1|${USDC}|600000`]: { amount: 29_000_001n } }).finding?.figures.threshold, '30000000');
});

test('refusal_run: looks only at refused requests and trips on the refusal that reaches max', () => {
  const d = detector({ name: 'r', type: 'refusal_run', max: 3, window: '10m' });
  assert.equal(run(d, { [`agent:ag_1|refused|${COUNT_ASSET}|600000`]: { count: 9 } }).finding, undefined, 'an allowed request');
  assert.equal(run(d, { [`agent:ag_1|refused|${COUNT_ASSET}|600000`]: { count: 1 } }, { decision: 'deny' }).finding, undefined);
  assert.equal(run(d, { [`agent:ag_1|refused|${COUNT_ASSET}|600000`]: { count: 2 } }, { decision: 'deny' }).finding?.figures.observed, '3');
  assert.deepEqual(d.records, { refusals: true });
});

test('new_destination: a payee the fleet never paid', () => {
  const d = detector({ name: 'n', type: 'new_destination' });
  assert.equal(run(d, {}).finding?.figures.destination, ALICE);
  assert.equal(run(d, { [`fleet|to:${ALICE}|${COUNT_ASSET}|ever`]: { count: 1 } }).finding, undefined);
  // The ledger's charges only: a request held for approval (or a payment not yet charged) pays no one.
  assert.deepEqual(run(d, {}).reads.windows, [{ series: `fleet|to:${ALICE}`, asset: COUNT_ASSET, sinceMs: 0, chargesOnly: true }]);
});

test('off_hours: a request in an hour with no activity in the lookback, once the history is long enough', () => {
  const d = detector({ name: 'o', type: 'off_hours', lookback: '7d', min_history: 50 });
  const hour = new Date(NOW_MS).getUTCHours();
  const all = `agent:ag_1|hour:*|${COUNT_ASSET}|${7 * 24 * HOUR}`;
  const thisHour = `agent:ag_1|hour:${hour}|${COUNT_ASSET}|${7 * 24 * HOUR}`;
  assert.equal(run(d, { [all]: { count: 49 } }).finding, undefined, 'too little history');
  assert.match(run(d, { [all]: { count: 50 } }).finding!.message, /an hour with no request among the agent's 50/);
  assert.equal(run(d, { [all]: { count: 50 }, [thisHour]: { count: 1 } }).finding, undefined);
  assert.deepEqual(d.records, { hours: true });
});

test('destination_wave: K agents on a payee new to the fleet within the window; not one the fleet knew before', () => {
  const d = detector({ name: 'w', type: 'destination_wave', agents: 3, window: '1h' });
  // Ledger windows are not read: whether the fleet knew the payee is the store's answer from the ledger alone
  // (DestinationPayers.paidBeforeWindow), so counts that include held requests never decide it.
  const { reads, finding: wave } = run(d, {}, { payers: { agents: ['ag_2', 'ag_3'] } });
  assert.deepEqual(reads.windows, []);
  assert.deepEqual(wave!.agents, ['ag_2', 'ag_3']);
  assert.equal(wave!.figures.observed, '3');
  assert.equal(run(d, {}, { payers: { agents: ['ag_2'] } }).finding, undefined, 'two agents');
  assert.equal(run(d, {}, { payers: { agents: ['ag_2', 'ag_3'], paidBeforeWindow: true } }).finding, undefined, 'paid before the window');
  assert.equal(run(d, {}, { payers: { agents: ['ag_2', 'ag_3'], paidBeforeRecorded: true } }).finding, undefined, 'charged before its first recorded payer');
});

test('a policy without detectors compiles to none (the breakers then cost nothing)', () => {
  assert.deepEqual(compilePolicy({ version: 1, rules: [] }).detectors, []);
});
