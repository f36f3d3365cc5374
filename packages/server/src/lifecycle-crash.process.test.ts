// A sweep interrupted by `kill -9` (issue 14, section 4): the daemon dies after the sweep was signed and
// committed and before it reached the chain (AIRLOCK_FAULT=lifecycle_before_broadcast). After a restart the
// stored bytes are broadcast, never a new transaction: exactly one sweep transaction lands, nothing is lost.
// Or it dies after the sweep was planned and committed and before it was signed (lifecycle_before_sign): after a
// restart the tracker signs the planned job from its `lifecycle.planned` entry, records and broadcasts it; the
// same for a retirement's sweep, after which the retired agent's key is retired.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicClient, http, parseTransaction, type Address } from 'viem';
import { startAnvil, type Anvil } from '../../sdk/src/testing/anvil.ts';
import { balanceOf, deployToken, mint, rpc } from '../../x402-testbed/src/token.ts';
import { adminClient, killAllDaemons, prepareDaemonData, sleep, startDaemon, type DaemonData } from './testing/processes.ts';

const CHAIN = 'eip155:31337';
const TREASURY = '0x7ea5000000000000000000000000000000000002';
const ETH = 10n ** 18n;

describe('a sweep interrupted by kill -9', () => {
  const cleanups: (() => Promise<void>)[] = [];

  /**
   * A chain, a daemon started with `fault`, a fleet policy sweeping a token to the treasury, and one agent holding
   * 1 ETH and `tokens` of that token: what both crash scenarios start from.
   */
  async function doomedSweep(store: 'sqlite' | 'postgres', fault: string, name: string, tokens: bigint) {
    const anvil: Anvil = await startAnvil();
    cleanups.push(() => anvil.stop());
    const data: DaemonData = await prepareDaemonData(store);
    cleanups.push(() => data.cleanup());
    const client = createPublicClient({ transport: http(anvil.rpcUrl) });
    const token = (await deployToken(anvil.rpcUrl)).toLowerCase() as Address;
    const env = { AIRLOCK_EVM_RPC: `${CHAIN}=${anvil.rpcUrl}`, AIRLOCK_LIFECYCLE_INTERVAL: '1s' };
    const doomed = await startDaemon(data, { ...env, AIRLOCK_FAULT: fault });
    const admin = adminClient(doomed.url, data.adminToken);
    const set = await admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [], lifecycle: { treasury: { [CHAIN]: TREASURY }, sweep_assets: { [CHAIN]: [`${CHAIN}/erc20:${token}`] } } } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const agent = (await admin('POST', '/v1/agents', { names: [name] })).body.agents[0];
    await rpc(anvil.rpcUrl, 'anvil_setBalance', [agent.address, `0x${ETH.toString(16)}`]);
    await mint(anvil.rpcUrl, token, agent.address, tokens);
    return { anvil, data, client, token, env, doomed, admin, agent };
  }
  after(async () => {
    await killAllDaemons();
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  for (const store of ['sqlite', 'postgres'] as const) {
    test(`${store}: a sweep planned but not signed when the daemon died is signed from its plan after the restart, once`, async () => {
      const { anvil, data, client, token, env, doomed, agent, ...rest } = await doomedSweep(store, 'lifecycle_before_sign', 'crashy-plan', 5_000_000n);
      let admin = rest.admin;
      // The token sweep is planned and committed; the process kills itself before asking for the signature.
      await assert.rejects(admin('POST', `/v1/agents/${agent.id}/sweep`, {}));
      await doomed.kill();

      const daemon = await startDaemon(data, env);
      admin = adminClient(daemon.url, data.adminToken);
      const [planned, ...none] = (await admin('GET', `/v1/lifecycle/jobs?agent=${agent.id}`)).body.jobs;
      assert.equal(none.length, 0);
      assert.deepEqual([planned.kind, planned.state, planned.rawTransaction], ['erc20_transfer', 'planned', undefined]);
      assert.equal(await client.getTransactionCount({ address: agent.address }), 0, 'nothing was signed or sent');

      // The tracker leaves a planned job to its first try for 10 s, then signs it from the plan.
      let job: any = planned;
      for (let i = 0; i < 120 && job.state !== 'mined'; i++) {
        await sleep(250);
        job = (await admin('GET', `/v1/lifecycle/jobs/${planned.id}`)).body;
      }
      assert.equal(job.state, 'mined', JSON.stringify(job));
      assert.equal(await balanceOf(anvil.rpcUrl, token, TREASURY), 5_000_000n);
      const signed = (await admin('GET', `/v1/audit?type=lifecycle.signed&agent=${agent.id}`)).body.entries;
      assert.deepEqual(signed.map((e: any) => [e.seq, e.data.jobId, e.data.plannedSeq, e.data.transactionHash]), [[job.signedAuditSeq, job.id, job.auditSeq, job.transactionHash]]);
      const plan = (await admin('GET', `/v1/audit?type=lifecycle.planned&agent=${agent.id}`)).body.entries;
      assert.deepEqual(plan.map((e: any) => [e.seq, e.data.jobId, e.data.nonce]), [[job.auditSeq, job.id, 0]]);
      assert.equal(parseTransaction(job.rawTransaction).nonce, 0);
      // The native coin, never planned before the crash, is swept now on the next nonce.
      const again = await admin('POST', `/v1/agents/${agent.id}/sweep`, {});
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.deepEqual(again.body.jobs.map((j: any) => j.kind), ['native_transfer']);
      for (let i = 0; i < 60 && (await client.getTransactionCount({ address: agent.address })) < 2; i++) await sleep(250);
      assert.equal(await client.getTransactionCount({ address: agent.address }), 2);
      await daemon.kill('SIGTERM');
    });

    test(`${store}: retire with sweep, the daemon dead between plan and signature: the agent stays retired, the plan is signed after the restart, the key retires once mined`, async () => {
      const { anvil, data, client, token, env, doomed, agent, ...rest } = await doomedSweep(store, 'lifecycle_before_sign', 'crashy-retire', 3_000_000n);
      let admin = rest.admin;
      // The retirement commits (sessions revoked, status retired), its token sweep is planned, then the process dies.
      await assert.rejects(admin('POST', `/v1/agents/${agent.id}/retire`, {}));
      await doomed.kill();

      const daemon = await startDaemon(data, env);
      admin = adminClient(daemon.url, data.adminToken);
      assert.equal((await admin('GET', `/v1/agents/${agent.id}`)).body.status, 'retired', 'the retirement committed before the crash stands');
      const [planned, ...none] = (await admin('GET', `/v1/lifecycle/jobs?agent=${agent.id}`)).body.jobs;
      assert.equal(none.length, 0);
      assert.deepEqual([planned.kind, planned.state, planned.purpose], ['erc20_transfer', 'planned', 'retire']);
      assert.deepEqual((await admin('GET', `/v1/agents/${agent.id}/keys`)).body.keys.map((k: any) => k.state), ['active'], 'not retired while its sweep is open');

      // The tracker signs the plan (a transfer to the treasury, still a lifecycle destination for a retired agent).
      let job: any = planned;
      for (let i = 0; i < 120 && job.state !== 'mined'; i++) {
        await sleep(250);
        job = (await admin('GET', `/v1/lifecycle/jobs/${planned.id}`)).body;
      }
      assert.equal(job.state, 'mined', JSON.stringify(job));
      assert.equal(await balanceOf(anvil.rpcUrl, token, TREASURY), 3_000_000n);
      assert.equal(await client.getTransactionCount({ address: agent.address }), 1, 'one transaction left the key');
      // The native coin was never planned before the crash (the orphan listing shows the retired agent's balance):
      // a sweep now moves it; the key is retired once its sweeps are mined.
      const again = await admin('POST', `/v1/agents/${agent.id}/sweep`, {});
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.deepEqual(again.body.jobs.map((j: any) => j.kind), ['native_transfer']);
      let keys: any[] = [];
      for (let i = 0; i < 120; i++) {
        keys = (await admin('GET', `/v1/agents/${agent.id}/keys`)).body.keys;
        if (keys.every((k) => k.state === 'retired')) break;
        await sleep(250);
      }
      assert.deepEqual(keys.map((k) => k.state), ['retired'], 'the key is retired');
      assert.equal((await admin('GET', `/v1/audit?type=agent.key_retired&agent=${agent.id}`)).body.entries.length, 1);
      assert.equal(await client.getTransactionCount({ address: agent.address }), 2);
      await daemon.kill('SIGTERM');
    });

    test(`${store}: the committed sweep is re-broadcast after the restart; exactly one sweep transaction per asset, treasury exact`, async () => {
      const { anvil, data, client, token, env, doomed, agent, ...rest } = await doomedSweep(store, 'lifecycle_before_broadcast', 'crashy', 7_000_000n);
      let admin = rest.admin;
      // The token sweep is signed and committed, then the process kills itself before broadcasting it.
      await assert.rejects(admin('POST', `/v1/agents/${agent.id}/sweep`, {}));
      await doomed.kill();
      assert.equal(await client.getTransactionCount({ address: agent.address }), 0, 'nothing reached the chain before the crash');
      assert.equal(await balanceOf(anvil.rpcUrl, token, TREASURY), 0n);

      const daemon = await startDaemon(data, env);
      admin = adminClient(daemon.url, data.adminToken);
      // Both sweeps were committed before the crash (the startup tracker may already have sent their bytes).
      const survived = (await admin('GET', `/v1/lifecycle/jobs?agent=${agent.id}`)).body.jobs;
      assert.deepEqual(survived.map((j: any) => j.kind).sort(), ['erc20_transfer', 'native_transfer']);
      // Asked again at once: an open sweep is not built a second time (and a mined one left nothing to sweep).
      const again = await admin('POST', `/v1/agents/${agent.id}/sweep`, {});
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.deepEqual(again.body.jobs, [], JSON.stringify(again.body));

      let jobs: any[] = [];
      for (let i = 0; i < 60; i++) {
        jobs = (await admin('GET', `/v1/lifecycle/jobs?agent=${agent.id}`)).body.jobs;
        if (jobs.length > 0 && jobs.every((j) => j.state === 'mined')) break;
        await sleep(250);
      }
      const tokenJobs = jobs.filter((j) => j.kind === 'erc20_transfer');
      const nativeJobs = jobs.filter((j) => j.kind === 'native_transfer');
      assert.equal(tokenJobs.length, 1, JSON.stringify(jobs));
      for (const job of jobs) {
        const before = survived.find((j: any) => j.id === job.id);
        assert.equal(job.rawTransaction, before?.rawTransaction, 'the bytes committed before the crash are the ones mined');
      }
      assert.equal(nativeJobs.length, 1, JSON.stringify(jobs));
      assert.ok(jobs.every((j) => j.state === 'mined'), JSON.stringify(jobs.map((j) => j.state)));
      assert.equal(tokenJobs[0].broadcasts >= 1, true);
      // Exactly one transaction per job ever left the agent's key, and the treasury holds exactly what moved.
      assert.equal(await client.getTransactionCount({ address: agent.address }), 2);
      assert.equal(await balanceOf(anvil.rpcUrl, token, TREASURY), 7_000_000n);
      assert.equal(await balanceOf(anvil.rpcUrl, token, agent.address), 0n);
      assert.equal(await client.getBalance({ address: TREASURY }), BigInt(nativeJobs[0].amount));
      const receipt = await client.getTransactionReceipt({ hash: tokenJobs[0].transactionHash });
      assert.equal(receipt.status, 'success');
      const mined = (await admin('GET', `/v1/audit?type=lifecycle.mined&agent=${agent.id}`)).body.entries;
      assert.equal(mined.length, 2);
      await daemon.kill('SIGTERM');
    });
  }
});
