// Part 1, crash: `kill -9` of a real daemon at a random moment under signing and provisioning load, many
// times, on SQLite and PostgreSQL. After every restart: the audit chain verifies, every signature a client
// received is backed by its allow entry, no budget is exceeded, and no account index is handed out twice.
import { ALICE, usdcPolicy, usdcTransfer, type StoreKind } from '../packages/server/src/testing/harness.ts';
import {
  adminClient, httpJson, prepareDaemonData, provisionRemoteAgent, startDaemon, type Daemon, type DaemonData,
} from '../packages/server/src/testing/processes.ts';
import { allowedSpendByAgent, checkAuditVerifies, checkReceivedAudited, signRequestEntries } from './checks.ts';
import { brief, sleep, Tally, Violations, type Mode, type Part, type PartReport } from './lib.ts';
import { startLoad, type Received } from './load.ts';

const UNIT = 1_000_000n; // 1 USDC per request

async function crashTrials(store: StoreKind, trials: number, v: Violations) {
  const data: DaemonData = await prepareDaemonData(store);
  let daemon: Daemon | undefined;
  const statuses = new Tally();
  let killsUnderLoad = 0;
  try {
    daemon = await startDaemon(data);
    const adminToken = data.adminToken;
    // About 8 signatures' worth per trial: the budget runs out part-way, so "never exceeded" is tested under crashes.
    const budget = BigInt(trials * 8) * UNIT;
    const { agent, token } = await provisionRemoteAgent(daemon.url, adminToken, { policy: usdcPolicy({ perRequest: budget.toString(), daily: budget.toString() }) });
    const received: Received[] = [];
    const agentsCreated: any[] = [agent];
    let nonce = 0;

    for (let trial = 0; trial < trials; trial++) {
      const label = `${store} trial ${trial + 1}`;
      // An agent created after each (re)start gets an index above every index handed out before.
      const before = Math.max(...agentsCreated.map((a) => a.accountIndex));
      const fresh = await httpJson(daemon.url, 'POST', '/v1/agents', { token: adminToken, body: { count: 1 } });
      if (v.check(fresh.status === 201, () => `${label}: create agent ${fresh.status} ${brief(fresh.body)}`)) {
        v.check(fresh.body.agents[0].accountIndex > before, () => `${label}: account index ${fresh.body.agents[0].accountIndex} not above ${before}`);
        agentsCreated.push(...fresh.body.agents);
      }

      const current = daemon;
      let provisioning = true;
      // Provisioning runs alongside signing so the kill can also land inside an agent creation.
      const provisioner = (async () => {
        while (provisioning) {
          try {
            const res = await httpJson(current.url, 'POST', '/v1/agents', { token: adminToken, body: { count: 1 } });
            if (res.status === 201) agentsCreated.push(...res.body.agents);
            else v.add(`${label}: create agent under load ${res.status} ${brief(res.body)}`);
          } catch {
            await sleep(5);
          }
        }
      })();
      const load = startLoad({
        urls: () => [current.url], signers: [{ agentId: agent.id, token }], concurrency: 12, amount: UNIT, nextNonce: () => nonce++, received,
        onAnswer: ({ result }) => {
          if (result && result.status !== 200 && !(result.status === 403 && result.body?.error?.violations?.[0]?.code === 'budget_exceeded')) {
            v.add(`${label}: unexpected answer ${result.status} ${brief(result.body)}`);
          }
        },
      });
      await sleep(80 + Math.random() * 600);
      await current.kill('SIGKILL');
      provisioning = false;
      await Promise.all([load.stop(), provisioner]);
      for (const [k, n] of load.statuses.counts) statuses.add(k, n);
      if (load.statuses.get('network') > 0) killsUnderLoad++;

      daemon = await startDaemon(data);
      await checkAuditVerifies(daemon.url, adminToken, v, label);
      checkReceivedAudited(await signRequestEntries(daemon.url, adminToken), received, v, label);
    }

    // Budget: the allowed spend never exceeds it, the ledger agrees with the log, and the rest is exactly usable.
    const entries = await signRequestEntries(daemon.url, adminToken);
    const allowed = allowedSpendByAgent(entries).get(agent.id) ?? 0n;
    v.check(allowed <= budget, () => `${store}: allowed spend ${allowed} exceeds budget ${budget}`);
    v.check(allowed >= BigInt(received.length) * UNIT, () => `${store}: allowed ${allowed} below what clients received`);
    const admin = adminClient(daemon.url, adminToken);
    const probe = await admin('POST', '/v1/policies/dry-run', { agent: agent.name, action: 'evm.transaction', payload: usdcTransfer(ALICE, budget - allowed + 1n) });
    const used = probe.body?.decision?.violations?.find((x: any) => x.code === 'budget_exceeded')?.used;
    v.check(used === allowed.toString(), () => `${store}: ledger says used ${used}, audit log says ${allowed}`);
    const remaining = Number((budget - allowed) / UNIT);
    const burst = await Promise.all(Array.from({ length: remaining + 4 }, () => httpJson(daemon!.url, 'POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, UNIT, nonce++) })));
    const burstSigned = burst.filter((r) => r.status === 200).length;
    v.check(burstSigned === remaining, () => `${store}: after the crashes a burst signed ${burstSigned}, the budget left room for exactly ${remaining}`);

    // Account indexes: unique, every acknowledged agent survived with its index.
    const listed: any[] = (await admin('GET', '/v1/agents?limit=10000')).body.agents;
    const indexes = listed.map((a) => a.accountIndex);
    v.check(new Set(indexes).size === indexes.length, () => `${store}: an account index was handed out twice`);
    const byId = new Map(listed.map((a) => [a.id, a]));
    for (const a of agentsCreated) v.check(byId.get(a.id)?.accountIndex === a.accountIndex, () => `${store}: acknowledged agent ${a.name} lost or changed after a crash`);
    return { received: received.length, agents: agentsCreated.length, killsUnderLoad, statuses: statuses.toString() };
  } finally {
    await daemon?.kill('SIGKILL');
    await data.cleanup();
  }
}

export const crashPart: Part = {
  name: 'crash',
  summary: 'kill -9 under signing + provisioning load, SQLite and PostgreSQL',
  async run(mode: Mode): Promise<PartReport> {
    const trials = mode === 'full' ? 20 : 3;
    const v = new Violations();
    const figures: PartReport['figures'] = {};
    for (const store of ['sqlite', 'postgres'] as const) {
      const r = await crashTrials(store, trials, v);
      figures[`${store}.kills`] = trials;
      figures[`${store}.killsUnderLoad`] = r.killsUnderLoad;
      figures[`${store}.signaturesChecked`] = r.received;
      figures[`${store}.agentsChecked`] = r.agents;
      figures[`${store}.answers`] = r.statuses;
    }
    return { figures, violations: v.done() };
  },
};
