// Part 2, race: 2 to 4 daemons on one PostgreSQL hammer a shared fleet budget and per-agent budgets, with
// idempotent retries (same key, same payload) sent to different daemons at the same moment. Total signed
// spend never exceeds the fleet limit, no agent exceeds its own, and a retried request is counted once.
// Rounds without a fleet budget let the daemons run side by side (no lock shared by all agents: the fleet
// series are striped, docs/architecture.md): every agent then spends exactly its cap, and a fleet budget
// set afterwards at exactly the total signed must read the striped total to the unit.
import { ALICE, BASE, USDC_ASSET, usdcPolicy, usdcTransfer } from '../packages/server/src/testing/harness.ts';
import {
  adminClient, httpJson, prepareDaemonData, provisionRemoteAgent, startDaemon, type Daemon, type HttpResult,
} from '../packages/server/src/testing/processes.ts';
import { allowedSpendByAgent, checkAuditVerifies, checkReceivedAudited, signRequestEntries, sum } from './checks.ts';
import { brief, Tally, Violations, type Mode, type Part, type PartReport } from './lib.ts';
import type { Received } from './load.ts';

const UNIT = 1_000_000n;

interface RoundFigures {
  requests: number;
  retryGroups: number;
  signed: bigint;
  fleetLimit: bigint;
  statuses: string;
}

async function raceRound(daemons: number, agents: number, fleetBudget: boolean, v: Violations): Promise<RoundFigures> {
  const data = await prepareDaemonData('postgres');
  const servers: Daemon[] = [];
  try {
    servers.push(...(await Promise.all(Array.from({ length: daemons }, () => startDaemon(data)))));
    const urls = servers.map((s) => s.url);
    const admin = adminClient(urls[0]!, data.adminToken);
    const label = `${daemons} daemons${fleetBudget ? '' : ', no fleet budget'}`;

    // Per-agent caps differ (10, 20, 30, ... units); the fleet cap is below their sum, so both bind.
    const caps = Array.from({ length: agents }, (_, i) => BigInt(10 * (i + 1)) * UNIT);
    const fleetLimit = fleetBudget ? (sum(caps) * 7n) / 10n / UNIT * UNIT : sum(caps);
    const fleetPolicy = (limit: bigint | undefined) => admin('PUT', '/v1/policies/fleet', {
      document: {
        version: 1,
        sets: { partners: [ALICE] },
        rules: [
          { name: 'usdc-to-partners', type: 'allow', match: { chains: [BASE], kinds: ['erc20.transfer'], to: '$partners' } },
          ...(limit !== undefined ? [{ name: 'fleet-usdc', type: 'budget', asset: USDC_ASSET, max: limit.toString(), window: '24h', scope: 'fleet' }] : []),
        ],
      },
    });
    const fleet = await fleetPolicy(fleetBudget ? fleetLimit : undefined);
    if (fleet.status !== 200) throw new Error(`set fleet policy: ${brief(fleet.body)}`);
    const provisioned = await Promise.all(caps.map((cap, i) => provisionRemoteAgent(urls[i % urls.length]!, data.adminToken, { policy: usdcPolicy({ daily: cap.toString() }) })));

    // Twice the demand each cap allows; every fifth request is a retry group: one key, one payload, sent to
    // every daemon at once.
    const statuses = new Tally();
    const received: Received[] = [];
    const jobs: (() => Promise<void>)[] = [];
    let nonce = 0;
    let retryGroups = 0;
    let requests = 0;
    provisioned.forEach((p, a) => {
      const demand = Number((caps[a]! * 2n) / UNIT);
      for (let i = 0; i < demand; i++) {
        const n = nonce++;
        const body = usdcTransfer(ALICE, UNIT, n);
        const keep = (r: HttpResult) => {
          statuses.add(`${r.status}${r.body?.error ? `/${r.body.error.violations?.[0]?.code ?? r.body.error.code}` : ''}`);
          if (r.status === 200) received.push({ agentId: p.agent.id, amount: UNIT, auditSeq: r.body.auditSeq, signedTransaction: r.body.signedTransaction });
          else v.check(r.status === 403 && r.body?.error?.violations?.[0]?.code === 'budget_exceeded', () => `${label}: unexpected ${r.status} ${brief(r.body)}`);
        };
        if (i % 5 === 0) {
          retryGroups++;
          jobs.push(async () => {
            const headers = { 'idempotency-key': `race-${n}` };
            const answers = await Promise.all(urls.map((url) => httpJson(url, 'POST', '/v1/sign/transaction', { token: p.token, body, headers })));
            requests += answers.length;
            answers.forEach(keep);
            const first = answers[0]!;
            for (const r of answers) {
              v.check(r.status === first.status && r.body?.auditSeq === first.body?.auditSeq && r.body?.signedTransaction === first.body?.signedTransaction,
                () => `${label}: retry group race-${n} answered differently: ${brief(answers.map((x) => [x.status, x.body?.auditSeq, x.body?.error?.code]))}`);
            }
            v.check(answers.filter((r) => !r.body?.replayed).length === 1, () => `${label}: retry group race-${n}: ${answers.filter((r) => !r.body?.replayed).length} answers were not replays (want exactly 1)`);
          });
        } else {
          jobs.push(async () => {
            requests++;
            keep(await httpJson(urls[n % urls.length]!, 'POST', '/v1/sign/transaction', { token: p.token, body }));
          });
        }
      }
    });
    // Shuffled, so the agents and the retry groups interleave; 32 in flight across the daemons.
    jobs.sort(() => Math.random() - 0.5);
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next < jobs.length) await jobs[next++]!();
    }));

    const entries = await signRequestEntries(urls[0]!, data.adminToken);
    checkReceivedAudited(entries, received, v, label);
    const spend = allowedSpendByAgent(entries);
    const total = sum(spend.values());
    v.check(total <= fleetLimit, () => `${label}: fleet spend ${total} exceeds the fleet limit ${fleetLimit}`);
    provisioned.forEach((p, a) => v.check((spend.get(p.agent.id) ?? 0n) <= caps[a]!, () => `${label}: agent ${a} spent ${spend.get(p.agent.id)} over its cap ${caps[a]}`));
    // Retries counted once: the log's allowed spend is exactly the distinct signatures clients hold.
    const distinct = new Set(received.map((r) => r.auditSeq)).size;
    v.check(total === BigInt(distinct) * UNIT, () => `${label}: log allows ${total}, clients hold ${distinct} distinct signatures`);
    // Demand exceeded every cap, so the fleet limit is used to the unit: nothing was reserved and lost.
    v.check(total === fleetLimit, () => `${label}: fleet spend ${total} short of the limit ${fleetLimit} though demand exceeded it`);
    if (!fleetBudget) {
      provisioned.forEach((p, a) => v.check(spend.get(p.agent.id) === caps[a], () => `${label}: agent ${a} spent ${spend.get(p.agent.id)}, not its cap ${caps[a]} though demand exceeded it`));
      // The fleet total, as a fleet budget reads it (every stripe): one more unit fits a limit of total + 1
      // and not a limit of total.
      const probe = async (limit: bigint) => {
        const set = await fleetPolicy(limit);
        if (set.status !== 200) throw new Error(`set fleet policy: ${brief(set.body)}`);
        const dry = await httpJson(urls[0]!, 'POST', '/v1/dry-run', { token: provisioned[0]!.token, body: { action: 'evm.transaction', payload: usdcTransfer(ALICE, UNIT, nonce++) } });
        if (dry.status !== 200) throw new Error(`dry-run: ${dry.status} ${brief(dry.body)}`);
        const rules: string[] = (dry.body.decision.violations ?? []).map((x: { rule: string }) => x.rule);
        return rules.some((r) => r.endsWith('fleet-usdc'));
      };
      v.check(await probe(total), () => `${label}: a fleet budget of exactly the ${total} signed let one more unit through`);
      v.check(!(await probe(total + UNIT)), () => `${label}: a fleet budget of ${total + UNIT} refused one more unit after ${total} signed`);
    }
    for (const url of urls) await checkAuditVerifies(url, data.adminToken, v, `${label} @${url}`);
    return { requests, retryGroups, signed: total / UNIT, fleetLimit: fleetLimit / UNIT, statuses: statuses.toString() };
  } finally {
    await Promise.all(servers.map((s) => s.kill('SIGKILL')));
    await data.cleanup();
  }
}

export const racePart: Part = {
  name: 'race',
  summary: '2-4 daemons on one PostgreSQL, shared fleet budget (or none), per-agent budgets, idempotent retries across daemons',
  async run(mode: Mode): Promise<PartReport> {
    const v = new Violations();
    const figures: PartReport['figures'] = {};
    const rounds: [daemons: number, agents: number, fleetBudget: boolean][] = mode === 'full'
      ? [[2, 6, true], [3, 8, true], [4, 8, true], [4, 10, true], [4, 8, false], [4, 16, false]]
      : [[3, 4, true], [4, 6, false]];
    let i = 0;
    for (const [daemons, agents, fleetBudget] of rounds) {
      const r = await raceRound(daemons, agents, fleetBudget, v);
      const key = `round${++i}(${daemons} daemons, ${agents} agents${fleetBudget ? '' : ', no fleet budget'})`;
      figures[`${key}.requests`] = r.requests;
      figures[`${key}.retryGroups`] = r.retryGroups;
      figures[`${key}.signedUnits/fleetLimit`] = `${r.signed}/${r.fleetLimit}`;
      figures[`${key}.answers`] = r.statuses;
    }
    return { figures, violations: v.done() };
  },
};
