// `airlock lightning` end to end: the real command, as child processes, against a real daemon (`airlock start`)
// paying through its LND REST backend into the LND REST double (testing/lnd-rest-double: LND's REST API over
// HTTPS) on the simulated network (testing/lightning-network.ts). Asserts exit codes and what the operator reads.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { LightningNetwork } from '../../../testing/lightning-network.ts';
import { startLndRestDouble, type LndRestDouble } from '../../../testing/lnd-rest-double/server.ts';
import { adminClient, httpJson, prepareDaemonData, type DaemonData } from '../../server/src/testing/processes.ts';
import { cliEnv, runCli, startDaemon, transcript, type CliResult, type Daemon } from './testing/cli-process.ts';

const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);

describe('airlock lightning, end to end', () => {
  const ln = new LightningNetwork();
  ln.feeBaseMsat = 10n; // 10 msat + 0.1 %: within the default 1000 msat fee limit
  const shop = ln.payee();
  let lnd: LndRestDouble;
  let lndOpen = false;
  let dir: string;
  let data: DaemonData;
  let daemon: Daemon;
  let macaroonHex: string;
  let lightningEnv: Record<string, string>;
  const started: Daemon[] = [];

  const start = async (extra: Record<string, string>) => {
    daemon = await startDaemon(cliEnv({ AIRLOCK_DATA_DIR: data.dataDir, AIRLOCK_STORE: data.storeUrl, AIRLOCK_PASSPHRASE: data.passphrase, ...extra }));
    started.push(daemon);
  };
  /** Runs the CLI as an operator's shell would: daemon URL and admin token in the environment. */
  const airlock = (...args: string[]) => runCli(['lightning', ...args], cliEnv({ AIRLOCK_URL: daemon.url, AIRLOCK_ADMIN_TOKEN: data.adminToken }));
  const ok = (r: CliResult) => {
    assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout;
  };
  const admin = (method: string, path: string, body?: unknown) => adminClient(daemon.url, data.adminToken)(method, path, body);
  /** Table rows (header and summary left out) whose first cell is a payment id. */
  const rows = (out: string) => out.split('\n').filter((l) => l.startsWith('lnp_')).map((l) => l.split(/\s{2,}/));

  const payingAgent = async (name: string) => {
    const agent = (await admin('POST', '/v1/agents', { names: [name] })).body.agents[0];
    const policy = { version: 1, rules: [{ type: 'allow', name: 'pay-shop', match: { actions: ['lightning.pay'], to: [shop.node.nodeId] } }, { type: 'budget', name: 'daily', asset: BTC, max: '1000000', window: '24h' }] };
    assert.equal((await admin('PUT', `/v1/policies/${agent.name}`, { document: policy })).status, 200);
    const token = (await admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['lightning.pay'] })).body.token as string;
    return { agent, pay: (invoice: string) => httpJson(daemon.url, 'POST', '/v1/lightning/pay', { token, body: { invoice } }) };
  };
  /**
   * A payment left in flight, with no pay call running: LND's stream is cut after its first update (the
   * payment exists in LND, hanging at the network), so the agent is answered 202 at once.
   */
  const leaveInFlight = async (agent: Awaited<ReturnType<typeof payingAgent>>) => {
    const invoice = shop.invoice({ amountMsat: 10_000n });
    ln.script(invoice.paymentHash, { kind: 'hang' });
    lnd.injectFault('send', { kind: 'drop', afterLines: 1 });
    const res = await agent.pay(invoice.invoice);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return invoice;
  };

  let alice: Awaited<ReturnType<typeof payingAgent>>;
  let bob: Awaited<ReturnType<typeof payingAgent>>;

  before(async () => {
    lnd = await startLndRestDouble({ network: ln });
    lndOpen = true;
    dir = mkdtempSync(join(tmpdir(), 'airlock-cli-ln-'));
    macaroonHex = lnd.bakeMacaroon(['offchain:read', 'offchain:write']);
    writeFileSync(join(dir, 'pay.macaroon'), Buffer.from(macaroonHex, 'hex'));
    writeFileSync(join(dir, 'tls.cert'), lnd.certPem);
    lightningEnv = {
      AIRLOCK_LIGHTNING_BACKEND: 'lnd',
      AIRLOCK_LIGHTNING_NETWORK: 'regtest',
      AIRLOCK_LND_URL: lnd.url,
      AIRLOCK_LND_MACAROON: join(dir, 'pay.macaroon'),
      AIRLOCK_LND_TLS_CERT: join(dir, 'tls.cert'),
      // Only the rounds the test asks for, so each answer is its own.
      AIRLOCK_RECONCILE_INTERVAL: '1h',
      // A failure a lookup reads is believed once the pay timeout and this grace passed (it may be an earlier attempt's).
      AIRLOCK_LIGHTNING_PAY_TIMEOUT: '1s',
      AIRLOCK_LIGHTNING_NOT_FOUND_GRACE: '1s',
    };
    data = await prepareDaemonData('sqlite');
    await start(lightningEnv);
    alice = await payingAgent('alice');
    bob = await payingAgent('bob');
  });
  after(async () => {
    for (const d of started) await d.stop();
    if (lndOpen) await lnd.close();
    await data?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('status: the backend, that it answers and its balance; --json is the API answer', async () => {
    const [text, json] = await Promise.all([airlock('status'), airlock('status', '--json')]);
    const out = ok(text);
    assert.match(out, /^backend {4}lnd on regtest; the node enforces the fee limit$/m);
    assert.match(out, /^reachable {2}yes$/m);
    assert.match(out, new RegExp(`^balance {4}${lnd.localBalanceMsat} msat$`, 'm'));
    assert.deepEqual(JSON.parse(ok(json)), { configured: true, backend: 'lnd', network: 'regtest', enforcesMaxFee: true, reachable: true, balanceMsat: lnd.localBalanceMsat.toString() });
  });

  test('payments: one row each, filtered by agent and state; what in-flight payments hold is summed per agent', async () => {
    const paid = await alice.pay(shop.invoice({ amountMsat: 20_000n }).invoice);
    assert.equal(paid.status, 200, JSON.stringify(paid.body));
    const doomed = shop.invoice({ amountMsat: 5_000n });
    ln.script(doomed.paymentHash, { kind: 'fail', reason: 'no_route' });
    assert.equal((await alice.pay(doomed.invoice)).status, 502);
    await leaveInFlight(bob);
    await leaveInFlight(bob);

    const out = ok(await airlock('payments'));
    assert.match(out, /^ID +AGENT +STATE +AMOUNT_MSAT +FEE_MSAT +PAYEE +CREATED$/m);
    const all = rows(out);
    assert.equal(all.length, 4, out);
    const [b2, b1, failed, succeeded] = all; // newest first
    assert.deepEqual(succeeded!.slice(1, 5), [alice.agent.id, 'succeeded', '20000', ln.feeFor(20_000n).toString()]);
    assert.deepEqual(failed!.slice(1, 5), [alice.agent.id, 'failed (no_route)', '5000', '-']);
    for (const row of [b1!, b2!]) assert.deepEqual(row.slice(1, 5), [bob.agent.id, 'in_flight', '10000', 'max 1000']);
    assert.match(succeeded![5]!, new RegExp(`^${shop.node.nodeId.slice(0, 8)}…${shop.node.nodeId.slice(-4)}$`));
    assert.match(succeeded![6]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // Two payments of 10 000 msat, each holding its 1000 msat fee limit too.
    assert.match(out, /^held while in flight \(amount \+ fee limit\):\nAGENT +PAYMENTS +HELD_MSAT\n(\S+) +2 +22000$/m);
    assert.equal(/^held while in flight[^\n]*\n[^\n]*\n(\S+)/m.exec(out)![1], bob.agent.id);

    const [bobs, alices, bad, noSub] = await Promise.all([airlock('payments', '--agent', 'bob', '--state', 'in_flight'), airlock('payments', '--agent', 'alice', '--json'), airlock('payments', '--state', 'paid'), airlock()]);
    assert.deepEqual(rows(ok(bobs)).map((r) => r[0]), [b2![0], b1![0]]);
    const listed = JSON.parse(ok(alices)).payments;
    assert.deepEqual(listed.map((p: { state: string; agentId: string }) => [p.state, p.agentId]), [['failed', alice.agent.id], ['succeeded', alice.agent.id]]);
    assert.ok(!alices.stdout.includes(paid.body.preimage), 'operators do not see the preimage');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--state: expected one of in_flight, succeeded, failed/);
    assert.equal(noSub.code, 2);
    assert.match(noSub.stderr, /usage:\nairlock lightning status/);
  });

  test('reconcile: the backend answers for every payment in flight; the holds go with them', async () => {
    const inFlight = JSON.parse(ok(await airlock('payments', '--state', 'in_flight', '--json'))).payments as { paymentHash: string; createdAt: string }[];
    assert.equal(inFlight.length, 2);
    // Past both payments' pay timeout and grace: LND's failure is believed (until then it could be an earlier attempt's).
    const graceOver = Math.max(...inFlight.map((p) => Date.parse(p.createdAt))) + 2_100;
    await new Promise((r) => setTimeout(r, Math.max(0, graceOver - Date.now())));
    ln.release(inFlight[0]!.paymentHash, { succeed: true, feeMsat: 25n });
    ln.release(inFlight[1]!.paymentHash, { succeed: false, reason: 'incorrect_payment_details' });
    const out = ok(await airlock('reconcile'));
    assert.equal(out, 'checked 2 payment(s) in flight: 1 succeeded, 1 failed, 0 still in flight, 0 not answered\n');
    const [list, again] = await Promise.all([airlock('payments', '--agent', 'bob'), airlock('reconcile')]);
    const after = ok(list);
    assert.deepEqual(rows(after).map((r) => r.slice(2, 5)), [['succeeded', '10000', '25'], ['failed (incorrect_payment_details)', '10000', '-']]);
    assert.doesNotMatch(after, /held while in flight/);
    assert.equal(ok(again), 'checked 0 payment(s) in flight: 0 succeeded, 0 failed, 0 still in flight, 0 not answered\n');
  });

  test('LND unreachable: status and reconcile exit 1 and say why; the hold stays', async () => {
    await leaveInFlight(bob);
    await lnd.close();
    lndOpen = false;
    const status = await airlock('status');
    assert.equal(status.code, 1, status.stdout);
    assert.match(status.stdout, /^reachable {2}no: \[lightning_backend_unavailable\] could not reach LND for the balance request: .*ECONNREFUSED/m);
    const reconcile = await airlock('reconcile');
    assert.equal(reconcile.code, 1);
    assert.equal(reconcile.stdout, 'checked 1 payment(s) in flight: 0 succeeded, 0 failed, 0 still in flight, 1 not answered\n');
    assert.match(reconcile.stderr, /the backend did not answer for 1 payment\(s\); their holds stay\. `airlock lightning status` says why\./);
    assert.match(ok(await airlock('payments', '--state', 'in_flight')), /^held while in flight[^\n]*\n[^\n]*\n\S+ +1 +11000$/m);
  });

  test('a daemon without a backend: status says Lightning is off (exit 1); the payments are still listed', async () => {
    await daemon.stop();
    await start({});
    const [text, json, list] = await Promise.all([airlock('status'), airlock('status', '--json'), airlock('payments')]);
    assert.equal(text.code, 1);
    assert.match(text.stdout, /^backend {4}none: Lightning is off \(set AIRLOCK_LIGHTNING_BACKEND on the daemon; `airlock lightning --help`\)$/m);
    assert.equal(json.code, 1);
    assert.deepEqual(JSON.parse(json.stdout), { configured: false });
    assert.equal(rows(ok(list)).length, 5);
  });

  test('--help lists the settings that configure a backend', async () => {
    const out = ok(await airlock('--help'));
    for (const setting of ['AIRLOCK_LIGHTNING_BACKEND', 'AIRLOCK_LIGHTNING_NETWORK', 'AIRLOCK_LND_URL', 'AIRLOCK_LND_MACAROON', 'AIRLOCK_LND_TLS_CERT', 'AIRLOCK_NWC_URL_FILE', 'AIRLOCK_LIGHTNING_PAY_TIMEOUT', 'AIRLOCK_LIGHTNING_NOT_FOUND_GRACE', 'AIRLOCK_LIGHTNING_DEFAULT_FEE_PERCENT']) {
      assert.match(out, new RegExp(`^  ${setting} `, 'm'), setting);
    }
  });

  test('the macaroon never reached a terminal or a log line', () => {
    assert.ok(transcript.length > 0);
    for (const d of started) assert.ok(!d.output().toLowerCase().includes(macaroonHex));
    assert.ok(!transcript.join('\n').toLowerCase().includes(macaroonHex));
  });
});
