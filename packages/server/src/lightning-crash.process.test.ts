// Lightning payments across `kill -9` and backend outages, on a real daemon process (`airlock start`) paying
// through the LND REST backend into the LND REST double (testing/lnd-rest-double: LND's REST API over HTTPS,
// its streams, errors and payment table) on the simulated network (testing/lightning-network.ts). The double
// runs in this test process, so it outlives every crash of the daemon, as a real LND would. Between them is a
// TCP cable this file can unplug: nothing listens on LND's address then (connection refused) and open
// connections are cut.
//
// What must hold whatever happens: a payment that may be in flight keeps its hold (amount + fee limit); a
// payment that succeeded is charged once, amount + the real fee; a hold is released only on a definite failure
// or on LND's "payment isn't initiated" once the pay timeout plus the not-found grace has passed.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { LightningNetwork } from '../../../testing/lightning-network.ts';
import { startLndRestDouble, type LndRestDouble } from '../../../testing/lnd-rest-double/server.ts';
import type { StoreKind } from './testing/harness.ts';
import { adminClient, httpJson, killAllDaemons, prepareDaemonData, readWholeAudit, sleep, startDaemon, type Daemon, type DaemonData } from './testing/processes.ts';

const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
const PAY_TIMEOUT_S = 2;
const NOT_FOUND_GRACE_S = 3;
const BUDGET = 12_000n;
const AMOUNT = 10_000n;
// No maxFeeMsat in the requests: the default limit, 1 % of 10 000 msat, at least 1000 msat.
const FEE_LIMIT = 1_000n;
const REAL_FEE = 37n;
const sha256hex = (hex: string) => createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex');

/**
 * A TCP cable in front of the LND double. `unplug()` stops listening (new connections are refused) and cuts
 * every open connection; `plug()` listens on the same port again. TLS runs end to end through it, so the
 * daemon still checks the double's certificate.
 */
async function lndCable(targetPort: number) {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(a);
      a.on('error', () => undefined); // a cut or a killed daemon: the other end is closed below
      a.on('close', () => {
        sockets.delete(a);
        b.destroy();
      });
      a.pipe(b);
    }
  });
  const listen = (port: number) => new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as { port: number }).port);
    });
  });
  const port = await listen(0);
  return {
    url: `https://127.0.0.1:${port}`,
    async unplug() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
    async plug() {
      // The port was free a moment ago; an outgoing connection may briefly hold it as its local port.
      for (let attempt = 0; ; attempt++) {
        try {
          return void (await listen(port));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 50) throw e;
          await sleep(100);
        }
      }
    },
  };
}

/** Polls `check` until it returns something truthy (or fails with `what` after `ms`). */
async function until<T>(what: string, check: () => Promise<T> | T, ms = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`Lightning through LND across kill -9 and outages (${store})`, () => {
    const ln = new LightningNetwork();
    ln.feeBaseMsat = 10n; // the route the double picks costs 10 msat + 0.1 %: within the 1000 msat limit
    const shop = ln.payee();
    let lnd: LndRestDouble;
    let cable: Awaited<ReturnType<typeof lndCable>>;
    let dir: string;
    let data: DaemonData;
    let daemon: Daemon;
    let macaroonHex: string;
    let lightningEnv: Record<string, string>;
    const daemons: Daemon[] = [];

    /** `airlock start` with the Lightning settings. */
    const start = async () => {
      daemon = await startDaemon(data, lightningEnv);
      daemons.push(daemon);
      return daemon;
    };
    const restartAfterKill9 = async () => {
      await daemon.kill('SIGKILL');
      return start();
    };
    const admin = (method: string, path: string, body?: unknown) => adminClient(daemon.url, data.adminToken)(method, path, body);
    const reconcile = async () => {
      const res = await admin('POST', '/v1/lightning/reconcile');
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body as { checked: number; succeeded: number; failed: number; errors: number };
    };

    /** An agent that may pay the shop, within a budget of 12 000 msat an hour, and a session for lightning.pay. */
    const payingAgent = async (name: string) => {
      const created = await admin('POST', '/v1/agents', { names: [`${name}-${store}`] });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const agent = created.body.agents[0];
      const policy = {
        version: 1,
        rules: [
          { type: 'allow', name: 'pay-shop', match: { actions: ['lightning.pay'], to: [shop.node.nodeId] } },
          { type: 'budget', name: 'hourly', asset: BTC, max: BUDGET.toString(), window: '1h' },
        ],
      };
      assert.equal((await admin('PUT', `/v1/policies/${agent.name}`, { document: policy })).status, 200);
      const session = await admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['lightning.pay'] });
      assert.equal(session.status, 201, JSON.stringify(session.body));
      const token = session.body.token as string;
      return {
        agent,
        pay: (invoice: string, extra: Record<string, string> = {}) => httpJson(daemon.url, 'POST', '/v1/lightning/pay', { token, body: { invoice, ...extra } }),
        get: (id: string) => httpJson(daemon.url, 'GET', `/v1/lightning/payments/${id}`, { token }),
        /** What the budget counts now (holds and charges), as a dry-run of a payment that can never fit reports it. */
        budgetUsed: async () => {
          const probe = shop.invoice({ amountMsat: BUDGET });
          const dry = await httpJson(daemon.url, 'POST', '/v1/dry-run', { token, body: { action: 'lightning.pay', payload: { invoice: probe.invoice } } });
          assert.equal(dry.status, 200, JSON.stringify(dry.body));
          const over = dry.body.decision.violations.find((v: { code: string }) => v.code === 'budget_exceeded');
          assert.ok(over, JSON.stringify(dry.body.decision));
          return BigInt(over.used);
        },
        payments: async () => (await admin('GET', `/v1/lightning/payments?agent=${agent.name}`)).body.payments as any[],
        audit: (type: string) => readWholeAudit(daemon.url, data.adminToken, `agent=${agent.name}&type=${type}`),
      };
    };
    const sendsOf = (paymentHash: string) => ln.attempts.filter((h) => h === paymentHash).length;

    before(async () => {
      lnd = await startLndRestDouble({ network: ln });
      cable = await lndCable(Number(new URL(lnd.url).port));
      dir = mkdtempSync(join(tmpdir(), 'airlock-ln-crash-'));
      // What lncli bakemacaroon offchain:read offchain:write saves: the binary macaroon. The PostgreSQL run
      // uses its hex form (`xxd -p`), which AIRLOCK_LND_MACAROON also takes.
      macaroonHex = lnd.bakeMacaroon(['offchain:read', 'offchain:write']);
      const macaroonPath = join(dir, 'airlock-pay.macaroon');
      writeFileSync(macaroonPath, store === 'sqlite' ? Buffer.from(macaroonHex, 'hex') : `${macaroonHex}\n`);
      const certPath = join(dir, 'tls.cert');
      writeFileSync(certPath, lnd.certPem);
      lightningEnv = {
        AIRLOCK_LIGHTNING_BACKEND: 'lnd',
        AIRLOCK_LIGHTNING_NETWORK: 'regtest',
        AIRLOCK_LND_URL: cable.url,
        AIRLOCK_LND_MACAROON: macaroonPath,
        AIRLOCK_LND_TLS_CERT: certPath,
        AIRLOCK_LIGHTNING_PAY_TIMEOUT: `${PAY_TIMEOUT_S}s`,
        AIRLOCK_LIGHTNING_NOT_FOUND_GRACE: `${NOT_FOUND_GRACE_S}s`,
        // No background rounds: every reconcile here is the one the test asks for, so each answer is its own.
        AIRLOCK_RECONCILE_INTERVAL: '1h',
      };
      data = await prepareDaemonData(store);
      await start();
    });
    after(async () => {
      await killAllDaemons();
      await data?.cleanup();
      await cable?.unplug().catch(() => undefined);
      await lnd?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    /** Pays a fresh invoice that hangs in the network and kill -9s the daemon once LND is routing it (the agent gets no answer). */
    const killWhileRouting = async (a: Awaited<ReturnType<typeof payingAgent>>) => {
      const invoice = shop.invoice({ amountMsat: AMOUNT });
      ln.script(invoice.paymentHash, { kind: 'hang' });
      const paying = a.pay(invoice.invoice).then((r) => ({ answered: r }), (e: unknown) => ({ lost: e }));
      // LND has the payment and its HTLC is out: the daemon is waiting on LND's stream.
      await until('LND to route the payment', () => lnd.paymentStatus(invoice.paymentHash) === 'IN_FLIGHT');
      await restartAfterKill9();
      assert.ok('lost' in (await paying), 'the agent got no answer from the killed daemon');
      return invoice;
    };

    test('kill -9 while LND routes a payment that then succeeds: held across the restart, charged once (amount + real fee) by the reconciler', async () => {
      const a = await payingAgent('crash-success');
      const invoice = await killWhileRouting(a);

      ln.release(invoice.paymentHash, { succeed: true, feeMsat: REAL_FEE });
      await until('LND to record the success', () => lnd.paymentStatus(invoice.paymentHash) === 'SUCCEEDED');
      // Before anyone asks LND: still held, at the worst case.
      const [held] = await a.payments();
      assert.equal(held.state, 'in_flight');
      assert.equal(await a.budgetUsed(), AMOUNT + FEE_LIMIT);
      // The agent, whose answer was lost, sends the same invoice again: that payment, still in flight, not a second one.
      const retry = await a.pay(invoice.invoice);
      assert.equal(retry.status, 202, JSON.stringify(retry.body));
      assert.deepEqual([retry.body.paymentId, retry.body.status, retry.body.replayed], [held.id, 'in_flight', true]);

      assert.deepEqual(await reconcile(), { checked: 1, succeeded: 1, failed: 0, errors: 0 });
      assert.deepEqual(await reconcile(), { checked: 0, succeeded: 0, failed: 0, errors: 0 }, 'finished once');
      assert.equal(await a.budgetUsed(), AMOUNT + REAL_FEE);
      const [done] = await a.payments();
      assert.equal(done.state, 'succeeded');
      assert.equal(done.feeMsat, REAL_FEE.toString());
      const succeeded = await a.audit('lightning.succeeded');
      assert.equal(succeeded.length, 1);
      assert.equal(succeeded[0].data.paymentId, held.id);
      assert.equal(succeeded[0].data.evidence, 'lookup');
      assert.equal(succeeded[0].data.feeMsat, REAL_FEE.toString());
      // The agent reads its payment back with the proof, which Airlock checked against the hash.
      const read = await a.get(held.id);
      assert.equal(read.status, 200);
      assert.equal(sha256hex(read.body.preimage), invoice.paymentHash);
      assert.equal(sendsOf(invoice.paymentHash), 1, 'paid once: the restarted daemon did not send it again');
      assert.equal((await admin('POST', '/v1/audit/verify')).body.ok, true);
    });

    test('kill -9 while LND routes a payment that then fails: the reconciler releases the hold once the pay call cannot still be arriving, and a payment needing the whole budget fits', async () => {
      const a = await payingAgent('crash-failure');
      const invoice = await killWhileRouting(a);

      ln.release(invoice.paymentHash, { succeed: false, reason: 'no_route' });
      await until('LND to record the failure', () => lnd.paymentStatus(invoice.paymentHash) === 'FAILED');
      assert.equal(await a.budgetUsed(), AMOUNT + FEE_LIMIT, 'held until LND is asked');

      // A failure read by a lookup may be an earlier attempt's of the invoice: believed once the pay timeout and the grace passed.
      const [held] = await a.payments();
      const graceEnds = Date.parse(held.createdAt) + (PAY_TIMEOUT_S + NOT_FOUND_GRACE_S) * 1000;
      const early = await reconcile();
      if (Date.now() < graceEnds) assert.deepEqual(early, { checked: 1, succeeded: 0, failed: 0, errors: 0 });
      await until('the grace to pass and the hold to be released', async () => (await a.payments())[0].state === 'failed' || ((await reconcile()).failed === 1));
      const [failed] = await a.payments();
      assert.equal(failed.state, 'failed');
      assert.equal(failed.failureReason, 'no_route');
      assert.ok(Date.parse(failed.updatedAt) >= graceEnds);
      assert.equal(await a.budgetUsed(), 0n);
      assert.equal((await a.audit('lightning.failed')).length, 1);
      // The whole budget: 11 000 msat and a 1000 msat fee limit.
      const whole = shop.invoice({ amountMsat: BUDGET - FEE_LIMIT });
      const paid = await a.pay(whole.invoice, { maxFeeMsat: FEE_LIMIT.toString() });
      assert.equal(paid.status, 200, JSON.stringify(paid.body));
      assert.equal(paid.body.status, 'succeeded');
    });

    test('LND answers the pay call past the timeout (202 in flight), then cannot be reached: the hold stays; the payment lands; one reconcile charges it once', async () => {
      const a = await payingAgent('slow-backend');
      const invoice = shop.invoice({ amountMsat: AMOUNT });
      ln.script(invoice.paymentHash, { kind: 'hang' });
      const started = Date.now();
      const res = await a.pay(invoice.invoice);
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal(res.body.status, 'in_flight');
      assert.ok(Date.now() - started >= PAY_TIMEOUT_S * 1000, 'answered in flight only after the pay timeout');
      assert.equal(await a.budgetUsed(), AMOUNT + FEE_LIMIT);

      // LND goes away: the pay call's stream is cut, and lookups are refused. Silence releases nothing.
      await cable.unplug();
      try {
        const round = await until('the reconciler to ask about the payment', async () => {
          const r = await reconcile();
          return r.checked === 1 && r;
        });
        assert.deepEqual(round, { checked: 1, succeeded: 0, failed: 0, errors: 1 });
        assert.equal((await a.payments())[0].state, 'in_flight');
        assert.equal(await a.budgetUsed(), AMOUNT + FEE_LIMIT);
        const alerts = await readWholeAudit(daemon.url, data.adminToken, 'type=alert.lightning');
        assert.ok(alerts.some((e) => e.data.reason === 'backend_unavailable'), JSON.stringify(alerts.map((e) => e.data)));
        assert.ok(alerts.some((e) => e.data.reason === 'pay_call_failed' && e.data.paymentId === res.body.paymentId), JSON.stringify(alerts.map((e) => e.data)));

        // The payment lands while LND is unreachable: Airlock cannot know yet, and still holds the worst case.
        ln.release(invoice.paymentHash, { succeed: true, feeMsat: REAL_FEE });
        assert.deepEqual(await reconcile(), { checked: 1, succeeded: 0, failed: 0, errors: 1 });
        assert.equal(await a.budgetUsed(), AMOUNT + FEE_LIMIT);
      } finally {
        await cable.plug();
      }
      assert.deepEqual(await reconcile(), { checked: 1, succeeded: 1, failed: 0, errors: 0 });
      assert.deepEqual(await reconcile(), { checked: 0, succeeded: 0, failed: 0, errors: 0 });
      assert.equal(await a.budgetUsed(), AMOUNT + REAL_FEE);
      assert.equal((await a.audit('lightning.succeeded')).length, 1);
      assert.equal((await a.get(res.body.paymentId)).body.status, 'succeeded');
      assert.equal(sendsOf(invoice.paymentHash), 1);
    });

    test('LND down entirely: 202 with the hold kept across a kill -9; "payment isn\'t initiated" releases it only once the pay timeout plus the grace has passed', async () => {
      const a = await payingAgent('lnd-down');
      const invoice = shop.invoice({ amountMsat: AMOUNT });
      await cable.unplug();
      let paymentId = '';
      try {
        const res = await a.pay(invoice.invoice);
        assert.equal(res.status, 202, JSON.stringify(res.body));
        assert.equal(res.body.status, 'in_flight');
        paymentId = res.body.paymentId;
        assert.deepEqual(await reconcile(), { checked: 1, succeeded: 0, failed: 0, errors: 1 });
      } finally {
        await cable.plug();
      }
      // LND is back and has never heard of the payment. Within the grace that is not an answer: the pay call
      // could still be on its way (it is not, here, but Airlock cannot know that).
      const [record] = await a.payments();
      assert.equal(record.id, paymentId);
      const createdAt = Date.parse(record.createdAt);
      const graceEnds = createdAt + (PAY_TIMEOUT_S + NOT_FOUND_GRACE_S) * 1000;
      assert.deepEqual(await reconcile(), { checked: 1, succeeded: 0, failed: 0, errors: 0 });
      assert.ok(Date.now() < graceEnds, 'the round above ran within the grace (the machine was too slow for this check)');
      assert.equal((await a.payments())[0].state, 'in_flight');
      assert.equal(lnd.paymentStatus(invoice.paymentHash), undefined, 'LND never saw it');

      await restartAfterKill9();
      assert.equal((await a.payments())[0].state, 'in_flight');
      assert.equal(await a.budgetUsed(), AMOUNT + FEE_LIMIT, 'the hold survived the crash');

      const released = await until('the grace to pass and the hold to be released', async () => (await reconcile()).failed === 1);
      assert.ok(released);
      const [failed] = await a.payments();
      assert.equal(failed.state, 'failed');
      assert.equal(failed.failureReason, 'not_found_after_grace');
      assert.ok(Date.parse(failed.updatedAt) >= graceEnds, `released ${Date.parse(failed.updatedAt) - createdAt} ms after the payment was held`);
      assert.equal(await a.budgetUsed(), 0n);
      assert.equal(sendsOf(invoice.paymentHash), 0, 'nothing was paid');
      assert.equal(lnd.paymentStatus(invoice.paymentHash), undefined);
    });

    test('no daemon ever printed the macaroon, and every call to LND carried the pay-only one', () => {
      assert.ok(daemons.length > 0);
      for (const d of daemons) assert.ok(!d.output().toLowerCase().includes(macaroonHex), 'the macaroon is not in the output');
      assert.ok(lnd.requests.length > 0);
      assert.deepEqual([...new Set(lnd.requests.map((r) => r.macaroon))], [macaroonHex]);
    });
  });
}
