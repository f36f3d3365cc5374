// Crashes and outages: `kill -9` of a real daemon under load, and a PostgreSQL store that goes away
// and comes back. Whatever a client was told (a signature) must be durable in the audit log, and no
// crash may let spend exceed a budget or reuse an account index.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { recoverTransactionAddress, type Hex } from 'viem';
import { ALICE, USDC_ASSET, usdcPolicy, usdcTransfer, type StoreKind } from './testing/harness.ts';
import {
  adminClient, createPgDatabase, httpJson, killAllDaemons, prepareDaemonData, provisionRemoteAgent, readWholeAudit,
  signedTransactionDigest, sleep, startDaemon, type DaemonData, type HttpResult, type PgDatabase,
} from './testing/processes.ts';

const CRASHES = 4;
const IN_FLIGHT = 16;
const UNIT = 1_000_000n; // 1 USDC per request
// Small enough to run out during or right after the crashes (about 50 signatures/s per process here).
const BUDGET = 12_000_000n;

interface Received {
  nonce: number;
  auditSeq: number;
  signedTransaction: Hex;
}

/**
 * Keeps IN_FLIGHT signing requests going against `url()` until `stop` is set; one worker creates agents
 * instead, so provisioning is also interrupted by the crash. Network errors (the daemon died) are expected.
 */
function startLoad(url: () => string, token: string, adminToken: string, nextNonce: () => number, received: Received[], agentsCreated: any[]) {
  let stopped = false;
  const statuses = new Map<number | string, number>();
  const count = (k: number | string) => statuses.set(k, (statuses.get(k) ?? 0) + 1);
  const signer = async () => {
    while (!stopped) {
      const nonce = nextNonce();
      let res: HttpResult;
      try {
        res = await httpJson(url(), 'POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, UNIT, nonce) });
      } catch {
        count('network');
        await sleep(5);
        continue;
      }
      count(res.status);
      if (res.status === 200) received.push({ nonce, auditSeq: res.body.auditSeq, signedTransaction: res.body.signedTransaction });
      else if (res.status !== 403) throw new Error(`unexpected ${res.status}: ${JSON.stringify(res.body)}`);
    }
  };
  const provisioner = async () => {
    while (!stopped) {
      try {
        const res = await httpJson(url(), 'POST', '/v1/agents', { token: adminToken, body: { count: 1 } });
        if (res.status !== 201) throw new Error(`create agent: ${res.status} ${JSON.stringify(res.body)}`);
        agentsCreated.push(...res.body.agents);
      } catch (e) {
        if (!(e instanceof TypeError)) throw e; // fetch failed: the daemon died
        await sleep(5);
      }
    }
  };
  let failure: unknown;
  // The first unexpected answer stops the whole load and is reported by stop(), never as an unhandled rejection.
  const workers = [provisioner(), ...Array.from({ length: IN_FLIGHT - 1 }, signer)].map((w) =>
    w.catch((e) => {
      failure ??= e;
      stopped = true;
    }),
  );
  const load = {
    statuses,
    async stop() {
      stopped = true;
      await Promise.all(workers);
      runningLoads.delete(load);
      if (failure) throw failure;
    },
  };
  runningLoads.add(load);
  return load;
}

// Loads still running when a test fails mid-crash are stopped in `after`, so the file can exit.
const runningLoads = new Set<{ stop(): Promise<void> }>();
async function stopAllLoads() {
  await Promise.all([...runningLoads].map((l) => l.stop().catch(() => undefined)));
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`kill -9 under load (${store})`, () => {
    let data: DaemonData | undefined;
    after(async () => {
      await stopAllLoads();
      await killAllDaemons();
      await data?.cleanup();
    });

    test(`${CRASHES} crashes at random moments: every signature received is audited, budget and account indexes hold`, async () => {
      data = await prepareDaemonData(store);
      const adminToken = data.adminToken;
      let daemon = await startDaemon(data);
      const { agent, token } = await provisionRemoteAgent(daemon.url, adminToken, { policy: usdcPolicy({ perRequest: BUDGET.toString(), daily: BUDGET.toString() }) });
      const received: Received[] = [];
      const agentsCreated: any[] = [agent];
      let nonce = 0;

      for (let crash = 0; crash < CRASHES; crash++) {
        // An agent created after each (re)start gets an index above every index handed out before.
        const before = Math.max(...agentsCreated.map((a) => a.accountIndex));
        const fresh = await httpJson(daemon.url, 'POST', '/v1/agents', { token: adminToken, body: { count: 1 } });
        assert.equal(fresh.status, 201);
        assert.ok(fresh.body.agents[0].accountIndex > before, `index ${fresh.body.agents[0].accountIndex} after ${before}`);
        agentsCreated.push(...fresh.body.agents);

        const current = daemon;
        const signedBefore = received.length;
        const load = startLoad(() => current.url, token, adminToken, () => nonce++, received, agentsCreated);
        // A random moment once the load is signing: on a busy machine the first signature after a restart can
        // take longer than any fixed delay, and a kill before it would test nothing.
        for (const deadline = Date.now() + 30_000; received.length === signedBefore && Date.now() < deadline; ) await sleep(10);
        await sleep(Math.random() * 400);
        await current.kill('SIGKILL');
        await load.stop();
        // The kill really landed under load: requests were in flight and lost their connection.
        assert.ok((load.statuses.get('network') ?? 0) > 0, JSON.stringify(Object.fromEntries(load.statuses)));
        daemon = await startDaemon(data);
      }

      const admin = adminClient(daemon.url, adminToken);
      const verify = await admin('POST', '/v1/audit/verify');
      assert.equal(verify.body.ok, true, JSON.stringify(verify.body));

      // Every signature a client received is backed by an allow entry for exactly what it signed.
      assert.ok(received.length > 0, 'the load produced signatures before the crashes');
      const entries = new Map((await readWholeAudit(daemon.url, adminToken, 'type=sign.request')).map((e) => [e.seq, e]));
      for (const r of received) {
        const entry = entries.get(r.auditSeq);
        assert.ok(entry, `signature with auditSeq ${r.auditSeq} has no audit entry`);
        assert.equal(entry.decision, 'allow');
        assert.equal(entry.agentId, agent.id);
        assert.equal(entry.data.digest, signedTransactionDigest(r.signedTransaction));
      }
      assert.equal(new Set(received.map((r) => r.auditSeq)).size, received.length, 'no audit entry backs two signatures');
      for (const r of received.slice(0, 3)) {
        assert.equal((await recoverTransactionAddress({ serializedTransaction: r.signedTransaction as never })).toLowerCase(), agent.address);
      }

      // Allowed spend in the audit log never exceeds the budget, and the ledger agrees with the log.
      const allowedSpend = [...entries.values()]
        .filter((e) => e.decision === 'allow' && e.agentId === agent.id)
        .flatMap((e) => e.data.intent.spends)
        .filter((s: any) => s.asset === USDC_ASSET && s.kind === 'transfer')
        .reduce((sum: bigint, s: any) => sum + BigInt(s.amount), 0n);
      assert.ok(allowedSpend <= BUDGET, `allowed ${allowedSpend} > budget ${BUDGET}`);
      assert.ok(allowedSpend >= BigInt(received.length) * UNIT);
      const probe = await admin('POST', '/v1/policies/dry-run', { agent: agent.name, action: 'evm.transaction', payload: usdcTransfer(ALICE, BUDGET - allowedSpend + 1n) });
      const budget = probe.body.decision.violations.find((v: any) => v.code === 'budget_exceeded');
      assert.equal(budget?.used, allowedSpend.toString(), JSON.stringify(probe.body.decision));
      // Whatever the crashes left, a burst gets exactly the remainder and not one unit more.
      const remaining = Number((BUDGET - allowedSpend) / UNIT);
      const burst = await Promise.all(Array.from({ length: remaining + 8 }, () => httpJson(daemon.url, 'POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, UNIT, nonce++) })));
      assert.equal(burst.filter((r) => r.status === 200).length, remaining);
      assert.equal(burst.filter((r) => r.status === 403 && r.body.error.violations[0].code === 'budget_exceeded').length, 8);

      // No account index was handed out twice, and every acknowledged agent survived the crashes.
      // Every agent, however many the provisioner made while the load ran: read page by page.
      const listed: any[] = [];
      for (let after = ''; ; ) {
        const page = (await admin('GET', `/v1/agents?limit=1000${after ? `&after=${after}` : ''}`)).body.agents as any[];
        listed.push(...page);
        if (page.length < 1000) break;
        after = page.at(-1).id;
      }
      const indexes = listed.map((a: any) => a.accountIndex);
      assert.equal(new Set(indexes).size, indexes.length, 'account indexes are unique');
      const byId = new Map(listed.map((a: any) => [a.id, a]));
      for (const a of agentsCreated) assert.equal((byId.get(a.id) as any)?.accountIndex, a.accountIndex, `agent ${a.name} lost or changed`);
      const last = await admin('POST', '/v1/agents', { count: 1 });
      assert.ok(last.body.agents[0].accountIndex > Math.max(...indexes));
    });
  });
}

describe('PostgreSQL store down and back (one process)', () => {
  let db: PgDatabase | undefined;
  let data: DaemonData | undefined;
  after(async () => {
    await killAllDaemons();
    await db?.unblock().catch(() => undefined);
    await data?.cleanup();
    await db?.drop();
  });

  test('signing answers 503 store_unavailable with no signature, then recovers by itself with nothing lost', async () => {
    db = await createPgDatabase();
    data = await prepareDaemonData({ url: db.url });
    const daemon = await startDaemon(data);
    const { token } = await provisionRemoteAgent(daemon.url, data.adminToken, { policy: usdcPolicy() });
    const sign = (nonce: number) => httpJson(daemon.url, 'POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, UNIT, nonce) });
    const acknowledged: number[] = [];
    const first = await sign(0);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    acknowledged.push(first.body.auditSeq);

    await db.block();
    const during = await Promise.all(Array.from({ length: 8 }, (_, i) => sign(100 + i)));
    for (const r of during) {
      assert.equal(r.status, 503, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'store_unavailable');
      assert.equal(r.body.signedTransaction, undefined);
      assert.equal(r.body.signature, undefined);
    }
    assert.equal((await httpJson(daemon.url, 'GET', '/v1/health')).status, 503);

    await db.unblock();
    // No restart, no operator action: the next requests go through once the database answers again.
    let back: HttpResult | undefined;
    for (let attempt = 0; attempt < 50 && back?.status !== 200; attempt++) {
      back = await sign(200 + attempt);
      if (back.status !== 200) await sleep(100);
    }
    assert.equal(back?.status, 200, JSON.stringify(back?.body));
    acknowledged.push(back!.body.auditSeq);

    const verify = await adminClient(daemon.url, data.adminToken)('POST', '/v1/audit/verify');
    assert.equal(verify.body.ok, true, JSON.stringify(verify.body));
    const allowed = await readWholeAudit(daemon.url, data.adminToken, 'decision=allow&type=sign.request');
    assert.deepEqual(allowed.map((e) => e.seq), acknowledged, 'exactly the acknowledged signatures are recorded');
  });
});
