// A lifecycle transfer planned before a crash (AIRLOCK_FAULT=lifecycle_before_sign) and left `planned` is judged
// again against the agent and the fleet as they are when it would be signed, not as they were planned
// (threat-model "a rotation or retirement racing a sweep to the agent's `current` address"):
//   - rotated again before the resume: the sweep key 0 -> key 1 would pay a key rotated away; it fails
//     `not_signed: lifecycle_current_key_unavailable` (at the rotation), and a fresh sweep pays key 2;
//   - retired before the resume: the same sweep would pay a retired agent's key; it fails the same way (at the
//     retirement), and a fresh sweep pays the treasury;
//   - the fleet treasury changed before the resume: the tracker's resume refuses the transfer to the old treasury
//     (`not_signed: lifecycle_kind_refused`), and a fresh sweep pays the new one.
// Each time the refused recipient receives nothing, nothing is signed for the refused job, the fresh sweep takes
// the nonce it held, and the funds move exactly once.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicClient, http, type Address } from 'viem';
import { startAnvil, type Anvil } from '../../sdk/src/testing/anvil.ts';
import { balanceOf, deployToken, mint, rpc } from '../../x402-testbed/src/token.ts';
import { adminClient, killAllDaemons, prepareDaemonData, sleep, startDaemon, type DaemonData } from './testing/processes.ts';

const CHAIN = 'eip155:31337';
const TREASURY = '0x7ea5000000000000000000000000000000000002';
const NEW_TREASURY = '0x7ea5000000000000000000000000000000000003';
const TOKENS = 5_000_000n;
const ETH = 10n ** 18n;

describe('a planned lifecycle transfer resumed after a crash is judged against the agent and fleet as they are now', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    await killAllDaemons();
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  /**
   * A chain, a fleet policy sweeping a token to TREASURY, an agent holding 1 ETH and TOKENS on key 0, and a daemon
   * that died after planning the first transfer of `start` (before signing it). Then `meanwhile` runs on a daemon
   * without an RPC (no tracker: the planned job cannot be resumed before it, however slow the machine), and the
   * daemon is started again with its RPC, where the tracker resumes what is still planned.
   */
  async function crashedAfterPlanning(name: string, start: Step, meanwhile: Step) {
    const anvil: Anvil = await startAnvil();
    cleanups.push(() => anvil.stop());
    const data: DaemonData = await prepareDaemonData('sqlite');
    cleanups.push(() => data.cleanup());
    const token = (await deployToken(anvil.rpcUrl)).toLowerCase() as Address;
    const env = { AIRLOCK_EVM_RPC: `${CHAIN}=${anvil.rpcUrl}`, AIRLOCK_LIFECYCLE_INTERVAL: '1s' };
    const doomed = await startDaemon(data, { ...env, AIRLOCK_FAULT: 'lifecycle_before_sign' });
    let admin = adminClient(doomed.url, data.adminToken);
    const set = await admin('PUT', '/v1/policies/fleet', { document: fleetPolicy(token, TREASURY) });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const agent = (await admin('POST', '/v1/agents', { names: [name] })).body.agents[0];
    const key0 = agent.address as Address;
    await rpc(anvil.rpcUrl, 'anvil_setBalance', [key0, `0x${ETH.toString(16)}`]);
    await mint(anvil.rpcUrl, token, key0, TOKENS);
    await assert.rejects(start(admin, agent.id, token)); // the process kills itself before asking for the signature
    await doomed.kill();

    const offline = await startDaemon(data, {});
    admin = adminClient(offline.url, data.adminToken);
    const [planned, ...none] = (await admin('GET', `/v1/lifecycle/jobs?agent=${agent.id}`)).body.jobs;
    assert.equal(none.length, 0);
    assert.deepEqual([planned.kind, planned.state, planned.nonce], ['erc20_transfer', 'planned', 0]);
    const meant: any = await meanwhile(admin, agent.id, token);
    await offline.kill('SIGTERM');

    const daemon = await startDaemon(data, env);
    admin = adminClient(daemon.url, data.adminToken);
    const client = createPublicClient({ transport: http(anvil.rpcUrl) });
    return { anvil, client, token, daemon, admin, agent, key0, planned, meant };
  }

  type Step = (admin: ReturnType<typeof adminClient>, agentId: string, token: string) => Promise<unknown>;
  const fleetPolicy = (token: string, treasury: string) => ({ version: 1, rules: [], lifecycle: { treasury: { [CHAIN]: treasury }, sweep_assets: { [CHAIN]: [`${CHAIN}/erc20:${token}`] } } });

  /** Polls the job until it leaves `planned` (the tracker resumes a planned job after 10 s) and is final. */
  async function settled(admin: ReturnType<typeof adminClient>, id: string): Promise<any> {
    let job: any;
    for (let i = 0; i < 120; i++) {
      job = (await admin('GET', `/v1/lifecycle/jobs/${id}`)).body;
      if (job.state === 'mined' || job.state === 'failed') return job;
      await sleep(250);
    }
    return job;
  }

  /** Polls until every job of the agent is final; returns them. */
  async function allSettled(admin: ReturnType<typeof adminClient>, agentId: string): Promise<any[]> {
    let jobs: any[] = [];
    for (let i = 0; i < 120; i++) {
      jobs = (await admin('GET', `/v1/lifecycle/jobs?agent=${agentId}`)).body.jobs;
      if (jobs.every((j) => j.state === 'mined' || j.state === 'failed')) break;
      await sleep(250);
    }
    return jobs;
  }

  test('rotated again before the resume: key 1 receives nothing, a fresh sweep pays key 2 once', async () => {
    const rotate: Step = (a, id) => a('POST', `/v1/agents/${id}/rotate`);
    const { anvil, client, token, daemon, admin, agent, key0, planned, meant: second } = await crashedAfterPlanning('rotated-twice', rotate, rotate);
    const key1 = planned.recipient as Address;
    assert.equal(second.status, 200, JSON.stringify(second.body));
    const key2 = second.body.current.address as Address;
    assert.equal(second.body.previous.address, key1);

    const refused = await settled(admin, planned.id);
    assert.deepEqual([refused.state, refused.failure, refused.rawTransaction], ['failed', 'not_signed: lifecycle_current_key_unavailable', undefined]);
    const failedEntries = (await admin('GET', `/v1/audit?type=lifecycle.failed&agent=${agent.id}`)).body.entries;
    assert.deepEqual(failedEntries.map((e: any) => [e.data.jobId, e.data.reason]), [[planned.id, 'not_signed: lifecycle_current_key_unavailable']]);
    assert.equal(await client.getTransactionCount({ address: key0 }), 0, 'nothing was signed with key 0');

    // The failed job no longer holds the asset or the nonce: a fresh sweep of key 0 pays the current key, from nonce 0.
    const fresh = await admin('POST', `/v1/agents/${agent.id}/sweep`, { keyIndex: 0, to: 'current' });
    assert.equal(fresh.status, 200, JSON.stringify(fresh.body));
    assert.deepEqual(fresh.body.jobs.map((j: any) => [j.kind, j.recipient, j.nonce]), [['erc20_transfer', key2, 0], ['native_transfer', key2, 1]]);
    const jobs = await allSettled(admin, agent.id);
    assert.deepEqual(jobs.map((j) => [j.id, j.state]).sort(), [[planned.id, 'failed'], ...fresh.body.jobs.map((j: any) => [j.id, 'mined'])].sort());
    assert.equal(await balanceOf(anvil.rpcUrl, token, key1), 0n);
    assert.equal(await balanceOf(anvil.rpcUrl, token, key2), TOKENS);
    assert.equal(await balanceOf(anvil.rpcUrl, token, key0), 0n);
    assert.equal(await client.getTransactionCount({ address: key0 }), 2);
    await daemon.kill('SIGTERM');
  });

  test('retired before the resume: the retired agent\'s key receives nothing, a fresh sweep pays the treasury once', async () => {
    const { anvil, client, token, daemon, admin, agent, key0, planned, meant: retired } = await crashedAfterPlanning('rotated-then-retired',
      (a, id) => a('POST', `/v1/agents/${id}/rotate`), (a, id) => a('POST', `/v1/agents/${id}/retire?sweep=false`));
    const key1 = planned.recipient as Address;
    assert.equal(retired.status, 200, JSON.stringify(retired.body));

    const refused = await settled(admin, planned.id);
    assert.deepEqual([refused.state, refused.failure, refused.rawTransaction], ['failed', 'not_signed: lifecycle_current_key_unavailable', undefined]);
    assert.equal(await client.getTransactionCount({ address: key0 }), 0, 'nothing was signed with key 0');
    assert.equal((await admin('GET', `/v1/agents/${agent.id}`)).body.lifecycle.keyState, 'sweep_failed');

    // Swept again to the treasury (a sweep to the retired agent's current address is refused as before).
    const toCurrent = await admin('POST', `/v1/agents/${agent.id}/sweep`, { keyIndex: 0, to: 'current' });
    assert.deepEqual([toCurrent.status, toCurrent.body.error?.code], [409, 'lifecycle_current_key_unavailable']);
    const fresh = await admin('POST', `/v1/agents/${agent.id}/sweep`, { keyIndex: 0 });
    assert.equal(fresh.status, 200, JSON.stringify(fresh.body));
    assert.deepEqual(fresh.body.jobs.map((j: any) => [j.kind, j.recipient, j.nonce]), [['erc20_transfer', TREASURY, 0], ['native_transfer', TREASURY, 1]]);
    const jobs = await allSettled(admin, agent.id);
    assert.deepEqual(jobs.map((j) => [j.id, j.state]).sort(), [[planned.id, 'failed'], ...fresh.body.jobs.map((j: any) => [j.id, 'mined'])].sort());
    assert.equal(await balanceOf(anvil.rpcUrl, token, key1), 0n);
    assert.equal(await balanceOf(anvil.rpcUrl, token, TREASURY), TOKENS);
    assert.equal(await balanceOf(anvil.rpcUrl, token, key0), 0n);
    assert.equal(await client.getTransactionCount({ address: key0 }), 2);
    // The failed sweep is replaced by the mined one: the key is retired, not `sweep_failed`.
    assert.equal((await admin('GET', `/v1/agents/${agent.id}`)).body.lifecycle.keyState, 'retired');
    await daemon.kill('SIGTERM');
  });

  test('the fleet treasury changed before the resume: the tracker refuses the old treasury, a fresh sweep pays the new one', async () => {
    const { anvil, client, token, daemon, admin, agent, key0, planned, meant: moved } = await crashedAfterPlanning('treasury-moved',
      (a, id) => a('POST', `/v1/agents/${id}/sweep`, {}), (a, _id, t) => a('PUT', '/v1/policies/fleet', { document: fleetPolicy(t, NEW_TREASURY) }));
    assert.equal(planned.recipient, TREASURY);
    assert.equal(moved.status, 200, JSON.stringify(moved.body));

    const refused = await settled(admin, planned.id);
    assert.deepEqual([refused.state, refused.failure, refused.rawTransaction], ['failed', 'not_signed: lifecycle_kind_refused', undefined]);
    assert.equal(await client.getTransactionCount({ address: key0 }), 0, 'nothing was signed with key 0');

    const fresh = await admin('POST', `/v1/agents/${agent.id}/sweep`, {});
    assert.equal(fresh.status, 200, JSON.stringify(fresh.body));
    assert.deepEqual(fresh.body.jobs.map((j: any) => [j.kind, j.recipient, j.nonce]), [['erc20_transfer', NEW_TREASURY, 0], ['native_transfer', NEW_TREASURY, 1]]);
    const jobs = await allSettled(admin, agent.id);
    assert.deepEqual(jobs.map((j) => [j.id, j.state]).sort(), [[planned.id, 'failed'], ...fresh.body.jobs.map((j: any) => [j.id, 'mined'])].sort());
    assert.equal(await balanceOf(anvil.rpcUrl, token, TREASURY), 0n);
    assert.equal(await balanceOf(anvil.rpcUrl, token, NEW_TREASURY), TOKENS);
    assert.equal(await balanceOf(anvil.rpcUrl, token, key0), 0n);
    await daemon.kill('SIGTERM');
  });
});
