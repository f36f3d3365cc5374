// Operator basics, driven through the real `airlock` process as an operator or a supervisor would: metrics
// scraped over HTTP and parsed, JSON request logs read from stdout, liveness and readiness, SIGTERM under
// load, `npm start` and SIGTERM, --version, the config file, and start-up failures that must say why.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALICE, MALLORY, PG_URL, usdcPolicy, usdcTransfer } from '../../server/src/testing/harness.ts';
import {
  createPgDatabase, httpJson, prepareDaemonData, provisionRemoteAgent, readWholeAudit, signedTransactionDigest, type DaemonData,
} from '../../server/src/testing/processes.ts';
import { parseExposition } from '../../server/src/testing/prometheus-text.ts';
import { cliEnv, REPO_ROOT, runCli, startDaemon, waitUnreachable, type Daemon } from './testing/cli-process.ts';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function daemonData(store: 'sqlite' | 'postgres' = 'sqlite'): Promise<DaemonData> {
  const data = await prepareDaemonData(store);
  cleanups.push(() => data.cleanup());
  return data;
}

function envFor(data: DaemonData, extra: Record<string, string> = {}) {
  return cliEnv({ AIRLOCK_DATA_DIR: data.dataDir, AIRLOCK_STORE: data.storeUrl, AIRLOCK_PASSPHRASE: data.passphrase, ...extra });
}

async function started(env: NodeJS.ProcessEnv, args: string[] = []): Promise<Daemon> {
  const daemon = await startDaemon(env, undefined, args);
  cleanups.push(() => daemon.stop());
  return daemon;
}

/** The daemon's metrics address, from its `Metrics on …` line. */
function metricsUrlOf(daemon: Daemon): string {
  const url = /Metrics on (http:\/\/\S+)/.exec(daemon.output())?.[1];
  assert.ok(url, daemon.output());
  return url;
}

/** One Prometheus scrape, parsed. */
async function scrape(metricsUrl: string): Promise<ReturnType<typeof parseExposition>> {
  return parseExposition(await (await fetch(metricsUrl)).text());
}

/** 3,000 health checks, 50 at a time (a request line each), all answered 200; `idPrefix` names them. */
async function healthFlood(url: string, idPrefix?: string): Promise<void> {
  for (let round = 0; round < 60; round++) {
    const answers = await Promise.all(Array.from({ length: 50 }, (_, n) => fetch(`${url}/v1/health/live`, idPrefix ? { headers: { 'x-request-id': `${idPrefix}-${round}-${n}` } } : {})));
    assert.deepEqual([...new Set(answers.map((r) => r.status))], [200]);
  }
}

describe('metrics and request logs', () => {
  for (const store of ['sqlite', 'postgres'] as const) {
    test(`${store}: a scrape after real requests counts them by route pattern and decision; every log line is JSON with the request fields and no token`, async () => {
      const data = await daemonData(store);
      // No periodic job meanwhile, so the group-commit counts below are exact between two scrapes: each of the
      // checkpoint, the reconcilers, the approval expiry pass and the webhook retention pass is a store transaction.
      // The retention pass runs on the dispatcher's first tick, a second after start: on a slow run it landed between
      // two scrapes (one commit more; CI, 2026-12-05). The refusal window (60 s) is far off.
      const daemon = await started(envFor(data, { AIRLOCK_METRICS_LISTEN: '127.0.0.1:0', AIRLOCK_CHECKPOINT_INTERVAL: '1h', AIRLOCK_RECONCILE_INTERVAL: '1h', AIRLOCK_APPROVAL_EXPIRY_INTERVAL: '1h', AIRLOCK_LIFECYCLE_INTERVAL: '1h', AIRLOCK_WEBHOOK_RETENTION: 'off' }));
      const metricsUrl = metricsUrlOf(daemon);

      const { agent, token } = await provisionRemoteAgent(daemon.url, data.adminToken, { policy: usdcPolicy({ daily: '10000000', approvalAbove: '5000000' }) });
      const sign = (to: string, amount: bigint, nonce: number) =>
        fetch(`${daemon.url}/v1/sign/transaction`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(usdcTransfer(to, amount, nonce)) });
      const allowed = [await sign(ALICE, 1_000_000n, 1), await sign(ALICE, 2_000_000n, 2), await sign(ALICE, 1_000_000n, 3)];
      for (const r of allowed) assert.equal(r.status, 200);
      const denied = await sign(MALLORY, 1_000_000n, 4);
      assert.equal(denied.status, 403);
      const deniedBody = (await denied.json()) as { error: { violations: { rule: string; code: string }[] } };
      const pending = await sign(ALICE, 6_000_000n, 5);
      assert.equal(pending.status, 202);
      const requestId = allowed[0]!.headers.get('x-request-id');
      assert.match(requestId ?? '', /^[0-9a-f]{16}$/);
      // A client's own request id is kept (and a hostile one replaced).
      const own = await fetch(`${daemon.url}/v1/health/live`, { headers: { 'x-request-id': 'trace-42' } });
      assert.equal(own.headers.get('x-request-id'), 'trace-42');
      const hostile = await fetch(`${daemon.url}/v1/health/live`, { headers: { 'x-request-id': 'a"} {"level":"error' } });
      assert.match(hostile.headers.get('x-request-id') ?? '', /^[0-9a-f]{16}$/);
      assert.notEqual(hostile.headers.get('x-request-id'), requestId);
      const unauth = await fetch(`${daemon.url}/v1/agents`, { headers: { authorization: 'Bearer adm_not-the-token-at-all-0123456789abcdef' } });
      assert.equal(unauth.status, 401);

      const res = await fetch(metricsUrl);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const m = parseExposition(await res.text());
      assert.equal(m.types.get('airlock_decisions_total'), 'counter');
      assert.equal(m.value('airlock_decisions_total', { outcome: 'allow', rule: '', code: '' }), 3);
      const v = deniedBody.error.violations[0]!;
      assert.equal(m.value('airlock_decisions_total', { outcome: 'deny', rule: v.rule, code: v.code }), 1);
      assert.equal(m.find('airlock_decisions_total', { outcome: 'require_approval' }).reduce((n, s) => n + s.value, 0), 1);
      const signRoute = { method: 'POST', route: '/v1/sign/transaction' };
      assert.equal(m.value('airlock_http_request_duration_seconds_count', { ...signRoute, status: '200' }), 3);
      assert.equal(m.value('airlock_http_request_duration_seconds_count', { ...signRoute, status: '403' }), 1);
      assert.equal(m.value('airlock_http_request_duration_seconds_bucket', { ...signRoute, status: '200', le: '+Inf' }), 3);
      // Route patterns only: the agent's name in `/v1/policies/<name>` never becomes a label value.
      assert.ok(m.find('airlock_http_request_duration_seconds_count', { route: '/v1/policies/:scope' }).length > 0);
      assert.ok(!m.samples.some((s) => s.labels.route?.includes(agent.name)), 'no raw path in route labels');
      assert.equal(m.value('airlock_approvals_pending'), 1);
      const head = await httpJson(daemon.url, 'GET', '/v1/audit/head', { token: data.adminToken });
      assert.equal(m.value('airlock_audit_head_seq'), head.body.seq);
      assert.equal(m.value('airlock_sealed'), 0);
      assert.equal(m.find('airlock_store_errors_total').reduce((n, s) => n + s.value, 0), 0);
      // 4 USDC spent + 6 held for the approval, of a 10 USDC daily budget.
      assert.equal(m.value('airlock_budget_utilisation_ratio', { scope: 'agent', agent: agent.name, rule: 'agent/usdc-daily' }), 1);

      // Not on the API port, and the metrics port serves nothing else.
      assert.equal((await fetch(`${daemon.url}/metrics`)).status, 404);
      assert.equal((await fetch(metricsUrl.replace('/metrics', '/v1/agents'))).status, 404);

      // Counters move with further requests.
      assert.equal((await sign(ALICE, 1_000_000n, 6)).status, 403); // over the budget now: denied by usdc-daily
      const again = await scrape(metricsUrl);
      assert.equal(again.value('airlock_decisions_total', { outcome: 'deny', rule: 'agent/usdc-daily', code: 'budget_exceeded' }), 1);
      assert.equal(again.value('airlock_http_request_duration_seconds_count', { ...signRoute, status: '403' }), 2);

      // Group commit, as an operator watches it: _count is commits, _sum the write transactions they carried.
      const commits = (e: typeof m) => ({ count: e.value('airlock_store_group_commit_size_count'), sum: e.value('airlock_store_group_commit_size_sum') });
      assert.equal(again.types.get('airlock_store_group_commit_size'), 'histogram');
      assert.equal(again.value('airlock_store_group_commit_size_bucket', { le: '+Inf' }), commits(again).count);
      assert.ok(again.value('airlock_store_group_commit_size_bucket', { le: '1' }) <= again.value('airlock_store_group_commit_size_bucket', { le: '2' }), 'cumulative buckets');
      // Since the last scrape: that scrape's budget read (one store transaction, counted by the next scrape) and
      // one refused signature (its audit entry), each in a commit of its own.
      assert.deepEqual([commits(again).count - commits(m).count, commits(again).sum - commits(m).sum], [2, 2]);
      // 16 at once (all over the budget, each still audited): 16 transactions, sharing commits.
      const burst = await Promise.all(Array.from({ length: 16 }, (_, i) => sign(ALICE, 1_000_000n, 10 + i)));
      assert.deepEqual(burst.map((r) => r.status), Array(16).fill(403));
      const afterBurst = await scrape(metricsUrl);
      // How many commits they shared depends on when each arrived (the store contract tests a batch exactly);
      // what they carried does not: the 16, and the scrape before them.
      assert.equal(commits(afterBurst).sum - commits(again).sum, 16 + 1);
      assert.equal(afterBurst.value('airlock_store_group_commit_size_bucket', { le: '+Inf' }), commits(afterBurst).count);

      assert.equal(await daemon.stop(), 0);
      // Every line is JSON except the CLI's own plain lines around the daemon (documented in docs/operations.md).
      const cliLines = [/^Airlock listening on /, /^Metrics on /, /^SIGTERM: shutting down/, /^stopped$/];
      const lines = daemon.output().split('\n').filter((l) => l !== '' && !cliLines.some((p) => p.test(l)));
      const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      const requests = entries.filter((e) => e.msg === 'request');
      assert.ok(requests.length >= 12, `request lines: ${requests.length}`);
      for (const r of requests) {
        assert.equal(typeof r.requestId, 'string');
        assert.equal(typeof r.route, 'string');
        assert.equal(typeof r.status, 'number');
        assert.equal(typeof r.latencyMs, 'number');
        assert.equal(r.level, r.status as number >= 500 ? 'error' : 'info');
      }
      const first = requests.find((r) => r.requestId === requestId);
      assert.deepEqual({ route: first?.route, status: first?.status, agent: first?.agent, decision: first?.decision }, { route: '/v1/sign/transaction', status: 200, agent: agent.name, decision: 'allow' });
      const deniedLine = requests.find((r) => r.status === 403 && r.route === '/v1/sign/transaction');
      assert.deepEqual({ decision: deniedLine?.decision, rule: deniedLine?.rule, code: deniedLine?.code }, { decision: 'deny', rule: v.rule, code: v.code });
      assert.ok(requests.some((r) => r.status === 401 && r.error === 'unauthenticated'));
      // No credential anywhere in the output.
      const text = daemon.output();
      for (const secret of [token, token.split('.').at(-1)!, data.adminToken, data.adminToken.slice(4), 'adm_not-the-token-at-all', data.passphrase]) {
        assert.ok(!text.includes(secret), 'a secret reached the log');
      }
    });
  }

  test('an approval past its TTL is expired by the daemon\'s own pass every AIRLOCK_APPROVAL_EXPIRY_INTERVAL: its hold goes back to the budget with no approval action', async () => {
    const data = await daemonData();
    const daemon = await started(envFor(data, { AIRLOCK_METRICS_LISTEN: '127.0.0.1:0', AIRLOCK_APPROVAL_TTL: '1s', AIRLOCK_APPROVAL_EXPIRY_INTERVAL: '1s' }));
    const metricsUrl = metricsUrlOf(daemon);
    const { agent, token } = await provisionRemoteAgent(daemon.url, data.adminToken, { policy: usdcPolicy({ daily: '10000000', approvalAbove: '5000000' }) });
    const held = await fetch(`${daemon.url}/v1/sign/transaction`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(usdcTransfer(ALICE, 6_000_000n, 1)) });
    assert.equal(held.status, 202);
    const utilisation = (e: ReturnType<typeof parseExposition>) => e.value('airlock_budget_utilisation_ratio', { scope: 'agent', agent: agent.name, rule: 'agent/usdc-daily' });
    assert.equal(utilisation(await scrape(metricsUrl)), 0.6);
    // Only scrapes meanwhile (they expire nothing): the pass alone closes it.
    const deadline = Date.now() + 15_000;
    let m = await scrape(metricsUrl);
    while (m.value('airlock_approvals_pending') !== 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      m = await scrape(metricsUrl);
    }
    assert.equal(m.value('airlock_approvals_pending'), 0);
    assert.equal(utilisation(m), 0);
    const expired = (await readWholeAudit(daemon.url, data.adminToken)).filter((e) => e.type === 'approval.expired');
    assert.deepEqual(expired.map((e) => e.actor), ['system']);
    assert.equal(await daemon.stop(), 0);
  });

  test('a log reader that stops reading: the daemon keeps answering, holds back at most AIRLOCK_LOG_QUEUE, counts what it dropped and says so when the reader is back', async () => {
    const data = await daemonData();
    const daemon = await started(envFor(data, { AIRLOCK_METRICS_LISTEN: '127.0.0.1:0', AIRLOCK_LOG_QUEUE: '65536' }));
    const metricsUrl = metricsUrlOf(daemon);
    // The shipper stops: nothing more is read from the daemon's stdout (the pipe, then this side's buffer, fill up).
    daemon.child.stdout!.pause();
    const before = daemon.output().length;
    // Each request line is about 200 bytes: 3,000 of them are far more than the pipe, the reader's buffer and the queue hold.
    await healthFlood(daemon.url, 'stall');
    const stalled = await scrape(metricsUrl);
    const dropped = stalled.value('airlock_log_lines_dropped_total');
    assert.ok(dropped > 1000, `dropped ${dropped}`);
    assert.equal(daemon.output().length, before, 'nothing was read meanwhile');

    daemon.child.stdout!.resume();
    const deadline = Date.now() + 10_000;
    while (!daemon.output().includes('"msg":"log lines dropped"') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const lines = daemon.output().slice(before).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const notice = lines.find((l) => l.msg === 'log lines dropped');
    assert.deepEqual({ level: notice?.level, dropped: notice?.dropped, queueBytes: notice?.queueBytes }, { level: 'error', dropped, queueBytes: 65536 });
    // What was kept and what was dropped add up to the requests, and no line came twice.
    const keptIds = lines.filter((l) => l.msg === 'request').map((l) => String(l.requestId));
    const kept = keptIds.length;
    assert.equal(new Set(keptIds).size, kept);
    assert.ok(keptIds.every((id) => id.startsWith('stall-')));
    assert.equal(kept + dropped, 3000);
    await fetch(`${daemon.url}/v1/health/live`);
    assert.equal(await daemon.stop(), 0);
    assert.equal(daemon.output().slice(before).split('\n').filter((l) => l.includes('"msg":"request"')).length, kept + 1, 'lines flow again');
  });

  test('a log reader that goes away for good (its pipe closed): the daemon keeps signing, counts the lines it lost (those queued too), says so on stderr and stops cleanly', async () => {
    const data = await daemonData();
    const daemon = await started(envFor(data, { AIRLOCK_METRICS_LISTEN: '127.0.0.1:0' }));
    const metricsUrl = metricsUrlOf(daemon);
    const { token } = await provisionRemoteAgent(daemon.url, data.adminToken, { policy: usdcPolicy({ daily: '10000000' }) });
    // The reader stalls first, so lines queue in the daemon (8 MiB allowed by default): 3,000 lines of about
    // 170 bytes are some 500 KB, of which the pipe and this side's buffer hold about 130 KB.
    daemon.child.stdout!.pause();
    await healthFlood(daemon.url);
    const queued = await scrape(metricsUrl);
    assert.equal(queued.value('airlock_log_lines_dropped_total'), 0, 'queued, not dropped yet');
    // Then it goes away: the queued lines fail with EPIPE. Without the logger's handler that error ended the daemon.
    daemon.child.stdout!.destroy();
    for (let nonce = 1; nonce <= 3; nonce++) {
      const res = await fetch(`${daemon.url}/v1/sign/transaction`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(usdcTransfer(ALICE, 1_000n, nonce)) });
      assert.equal(res.status, 200);
      await new Promise((r) => setTimeout(r, 50));
    }
    const closed = await scrape(metricsUrl);
    // The lines still in the daemon's queue (some 2,000 of the 3,000) and the three signatures' lines.
    assert.ok(closed.value('airlock_log_lines_dropped_total') > 1500, String(closed.value('airlock_log_lines_dropped_total')));
    assert.match(daemon.output(), /"msg":"log output failed","code":"EPIPE"/);
    assert.equal(await daemon.stop(), 0);
  });

  test('AIRLOCK_LOG_LEVEL=warn keeps ordinary request lines out; a bad level or log queue size is refused with its name', async () => {
    const data = await daemonData();
    const daemon = await started(envFor(data, { AIRLOCK_LOG_LEVEL: 'warn' }));
    await fetch(`${daemon.url}/v1/health/live`);
    assert.equal(await daemon.stop(), 0);
    assert.ok(!daemon.output().includes('"msg":"request"'), daemon.output());
    const bad = await runCli(['start'], envFor(data, { AIRLOCK_LOG_LEVEL: 'chatty', AIRLOCK_PORT: '0' }));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /AIRLOCK_LOG_LEVEL must be one of debug, info, warn, error, silent/);
    for (const queue of ['1024', 'lots']) {
      const badQueue = await runCli(['start'], envFor(data, { AIRLOCK_LOG_QUEUE: queue, AIRLOCK_PORT: '0' }));
      assert.equal(badQueue.code, 1);
      assert.match(badQueue.stderr, queue === 'lots' ? /AIRLOCK_LOG_QUEUE must be a whole number/ : /AIRLOCK_LOG_QUEUE must be between 65536 and 1073741824 bytes/);
    }
  });
});

describe('liveness and readiness', () => {
  test('sealed: alive, not ready; unsealed: ready and audited (vault.unsealed, via passphrase, no secret); /v1/health as before', async () => {
    const data = await daemonData();
    const daemon = await started(envFor(data), ['--sealed']);
    assert.deepEqual(await httpJson(daemon.url, 'GET', '/v1/health/live'), { status: 200, body: { status: 'alive' } });
    assert.deepEqual(await httpJson(daemon.url, 'GET', '/v1/health/ready'), { status: 503, body: { status: 'sealed' } });
    assert.deepEqual(await httpJson(daemon.url, 'GET', '/v1/health'), { status: 503, body: { status: 'sealed' } });
    const unsealed = await httpJson(daemon.url, 'POST', '/v1/unseal', { body: { passphrase: data.passphrase } });
    assert.equal(unsealed.status, 200);
    assert.deepEqual(await httpJson(daemon.url, 'GET', '/v1/health/ready'), { status: 200, body: { status: 'ready', store: 'sqlite' } });
    assert.deepEqual(await httpJson(daemon.url, 'GET', '/v1/health'), { status: 200, body: { status: 'ok', store: 'sqlite' } });
    // A passphrase unseal over HTTP is audited as a share unseal is (it left no entry: found by review).
    const audit = await httpJson(daemon.url, 'GET', '/v1/audit?type=vault.unsealed', { token: data.adminToken });
    assert.equal(audit.status, 200);
    assert.equal(audit.body.entries.length, 1);
    const entry = audit.body.entries[0];
    assert.deepEqual({ via: entry.data.via, source: entry.data.source, actor: entry.actor }, { via: 'passphrase', source: '127.0.0.1', actor: 'operator' });
    assert.match(entry.data.fingerprint, /^[0-9a-f]+$/);
    assert.ok(!JSON.stringify(audit.body).includes(data.passphrase), 'the passphrase is never audited');
  });

  test('store down (PostgreSQL refusing connections): alive, not ready with store_unavailable; back up: ready', async () => {
    const db = await createPgDatabase();
    cleanups.push(() => db.drop());
    const data = await prepareDaemonData({ url: db.url });
    cleanups.push(() => data.cleanup());
    const daemon = await started(envFor(data, { AIRLOCK_METRICS_LISTEN: '127.0.0.1:0' }));
    const metricsUrl = metricsUrlOf(daemon);
    assert.equal((await httpJson(daemon.url, 'GET', '/v1/health/ready')).status, 200);
    await db.block();
    const ready = await httpJson(daemon.url, 'GET', '/v1/health/ready');
    assert.equal(ready.status, 503);
    assert.equal(ready.body.error.code, 'store_unavailable');
    assert.deepEqual(await httpJson(daemon.url, 'GET', '/v1/health/live'), { status: 200, body: { status: 'alive' } });
    const m = await scrape(metricsUrl);
    assert.ok(m.value('airlock_store_errors_total', { source: 'request' }) >= 1);
    assert.ok(m.value('airlock_store_errors_total', { source: 'scrape' }) >= 1);
    await db.unblock();
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await httpJson(daemon.url, 'GET', '/v1/health/ready')).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(status, 200);
  });
});

describe('SIGTERM', () => {
  test('drains in-flight signing requests: each is answered or refused cleanly, every signature is in the audit log, final tree head written, exit 0', async () => {
    const data = await daemonData();
    const env = envFor(data, { AIRLOCK_SESSION_RATE: '0', AIRLOCK_SHUTDOWN_TIMEOUT: '120s', AIRLOCK_LOG_LEVEL: 'warn' });
    const daemon = await startDaemon(env);
    const { token } = await provisionRemoteAgent(daemon.url, data.adminToken, { policy: usdcPolicy({ daily: '100000000000000' }) });
    const REQUESTS = 600;
    let answered = 0;
    let signalled: () => void;
    const signalSent = new Promise<void>((r) => (signalled = r));
    // While the daemon drains, readiness says so (hundreds of signing requests are still running then). The
    // signal is handled asynchronously: readiness is polled until it changes.
    const readyWhileDraining = signalSent.then(async () => {
      for (let i = 0; i < 100; i++) {
        const ready = await httpJson(daemon.url, 'GET', '/v1/health/ready');
        if (ready.status !== 200) return ready;
        await new Promise((r) => setTimeout(r, 10));
      }
      return { status: 200, body: 'still ready 1 s after SIGTERM' };
    });
    const outcomes = await Promise.all(
      Array.from({ length: REQUESTS }, async (_, i) => {
        try {
          const res = await fetch(`${daemon.url}/v1/sign/transaction`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify(usdcTransfer(ALICE, 1000n, i)),
          });
          const body = (await res.json()) as { signedTransaction?: `0x${string}`; auditSeq?: number; error?: { code: string } };
          if (++answered === 50) {
            daemon.child.kill('SIGTERM');
            signalled();
          }
          return { kind: 'answered' as const, status: res.status, body };
        } catch (e) {
          return { kind: 'failed' as const, code: ((e as Error).cause as NodeJS.ErrnoException | undefined)?.code ?? String(e) };
        }
      }),
    );
    assert.equal(await daemon.stop(), 0, daemon.output());
    const signed = outcomes.filter((o) => o.kind === 'answered' && o.status === 200);
    const refused = outcomes.filter((o) => o.kind === 'answered' && o.status === 503);
    const failed = outcomes.filter((o) => o.kind === 'failed');
    const other = outcomes.filter((o) => o.kind === 'answered' && o.status !== 200 && o.status !== 503);
    console.log(`SIGTERM drain: ${signed.length} signed, ${refused.length} refused 503, ${failed.length} failed (${[...new Set(failed.map((f) => f.code))].join(', ')})`);
    assert.deepEqual(other, []);
    for (const r of refused) assert.equal((r as { body: { error?: { code: string } } }).body.error?.code, 'shutting_down');
    // Only a connection the daemon never accepted may fail, and only by being refused.
    for (const f of failed) assert.equal(f.code, 'ECONNREFUSED', `a request failed with ${f.code}`);
    assert.ok(signed.length >= 50, `${signed.length} signed`);

    assert.deepEqual(await readyWhileDraining, { status: 503, body: { status: 'shutting_down' } });

    const restarted = await started(envFor(data));
    const entries = await readWholeAudit(restarted.url, data.adminToken);
    const bySeq = new Map(entries.map((e) => [e.seq, e]));
    for (const s of signed) {
      const body = (s as { body: { signedTransaction: `0x${string}`; auditSeq: number } }).body;
      const entry = bySeq.get(body.auditSeq);
      assert.ok(entry, `signature at audit seq ${body.auditSeq} has no entry`);
      assert.equal(entry.data.digest, signedTransactionDigest(body.signedTransaction));
    }
    // The final checkpoint: the newest signed tree head covers every entry written before the stop.
    const head = await httpJson(restarted.url, 'GET', '/v1/audit/head', { token: data.adminToken });
    const heads = await httpJson(restarted.url, 'GET', '/v1/audit/checkpoints', { token: data.adminToken });
    const newest = Math.max(...heads.body.treeHeads.map((h: { treeSize: number }) => h.treeSize));
    assert.equal(newest, head.body.treeSize);
  });

  test('`npm start` then SIGTERM to npm: the daemon stops and frees its port', async () => {
    const data = await daemonData();
    const child = spawn('npm', ['start'], {
      cwd: REPO_ROOT,
      env: { ...envFor(data), AIRLOCK_PORT: '0', PATH: process.env.PATH },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanups.push(async () => void child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`npm start did not listen:\n${out}`)), 60_000);
      child.stdout.on('data', () => {
        const m = /Airlock listening on (http:\/\/\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
    });
    assert.equal((await fetch(`${url}/v1/health/live`)).status, 200);
    child.kill('SIGTERM');
    await exited;
    assert.ok(await waitUnreachable(url), `the daemon still answers at ${url} after npm exited:\n${out}`);
    assert.match(out, /SIGTERM: shutting down[\s\S]*stopped/);
  });
});

describe('CLI start-up', () => {
  test('--version prints the version', async () => {
    const r = await runCli(['--version'], cliEnv());
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^airlock \d+\.\d+\.\d+ \(node 24\.\d+\.\d+\)\n$/);
  });

  test('a config file supplies settings; the environment overrides it; a bad file is refused with config_invalid', async () => {
    const data = await daemonData();
    const dir = mkdtempSync(join(tmpdir(), 'airlock-config-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'airlock.yaml');
    writeFileSync(file, `# airlock.yaml\ndata_dir: ${data.dataDir}\nstore: ${data.storeUrl}\nhost: 127.0.0.1\nmetrics_listen: 127.0.0.1:0\nlog_level: warn\nallowed_hosts: [signer.internal, airlock.lan]\n`);
    // From the file: data dir, store, metrics listener, log level.
    const daemon = await started(cliEnv({ AIRLOCK_PASSPHRASE: data.passphrase }), ['--config', file]);
    assert.match(daemon.output(), /Metrics on http:\/\/127\.0\.0\.1:\d+\/metrics/);
    assert.equal((await fetch(`${daemon.url}/v1/health/ready`)).status, 200);
    const named = await fetch(`${daemon.url}/v1/health/live`, { headers: { host: 'airlock.lan' } });
    assert.equal(named.status, 200);
    assert.equal(await daemon.stop(), 0);
    assert.ok(!daemon.output().includes('"msg":"request"'), 'log_level from the file applies');
    // The environment wins over the file (AIRLOCK_CONFIG names the file this time).
    const overridden = await started(cliEnv({ AIRLOCK_PASSPHRASE: data.passphrase, AIRLOCK_CONFIG: file, AIRLOCK_METRICS_LISTEN: 'off', AIRLOCK_LOG_LEVEL: 'info' }));
    assert.doesNotMatch(overridden.output(), /Metrics on/);
    await fetch(`${overridden.url}/v1/health/live`);
    assert.equal(await overridden.stop(), 0);
    assert.match(overridden.output(), /"msg":"request"/);

    writeFileSync(file, 'port: 8420\nlisten_everywhere: true\n');
    const unknown = await runCli(['start', '--config', file], cliEnv());
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /error \[config_invalid\]: .*unknown setting `listen_everywhere`/);
    writeFileSync(file, 'passphrase: hunter2-hunter2-hunter2\n');
    const secret = await runCli(['start', '--config', file], cliEnv());
    assert.equal(secret.code, 1);
    assert.match(secret.stderr, /`passphrase` does not belong in a config file[\s\S]*hint: .*passphrase_file/);
    assert.ok(!secret.stderr.includes('hunter2'));
    const missing = await runCli(['status', '--config', join(dir, 'nope.yaml')], cliEnv());
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /error \[config_invalid\]: The config file .*nope\.yaml does not exist/);
  });

  test('an interval past what a timer holds is refused at start (Node would run the job every millisecond); 24 days still starts', async () => {
    const data = await daemonData();
    for (const [name, value, says] of [['AIRLOCK_APPROVAL_EXPIRY_INTERVAL', '30d', /at most 596h/], ['AIRLOCK_CHECKPOINT_INTERVAL', '25d', /at most 596h/], ['AIRLOCK_RECONCILE_INTERVAL', '9999d', /at most 596h/], ['AIRLOCK_LIFECYCLE_INTERVAL', '2d', /at most 29h .*every 20 of these/]] as const) {
      const refused = await runCli(['start'], envFor(data, { [name]: value }));
      assert.equal(refused.code, 1, `${name}=${value}: ${refused.stderr}`);
      assert.match(refused.stderr, new RegExp(`error \\[config_invalid\\]: ${name} is too long`));
      assert.match(refused.stderr, says);
    }
    const daemon = await started(envFor(data, { AIRLOCK_APPROVAL_EXPIRY_INTERVAL: '24d', AIRLOCK_LIFECYCLE_INTERVAL: '29h' }));
    assert.equal((await fetch(`${daemon.url}/v1/health/live`)).status, 200);
    assert.equal(await daemon.stop(), 0);
  });

  test('a port already in use: address_in_use with a hint, exit 1', async () => {
    const data = await daemonData();
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => blocker.close(r)));
    const port = (blocker.address() as { port: number }).port;
    const r = await runCli(['start', '--port', String(port)], envFor(data));
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`error \\[address_in_use\\]: 127\\.0\\.0\\.1:${port} is already in use\\.`));
    assert.match(r.stderr, /hint: .*AIRLOCK_PORT \/ --port/);
  });

  test('PostgreSQL unreachable, unknown database, unknown role: each says why, with a hint, and no password', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'airlock-pgfail-'));
    cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    // The store is opened before the vault is read: any vault file gets `start` that far.
    writeFileSync(join(dataDir, 'vault.json'), '{}');
    const pg = new URL(PG_URL);
    const cases = [
      { store: `postgres://airlock:s3cret-pw@127.0.0.1:1/airlock`, message: /PostgreSQL refused the connection at 127\.0\.0\.1:1\./, hint: /hint: Is PostgreSQL running/ },
      { store: `postgres://${pg.username || 'postgres'}:s3cret-pw@${pg.host}/airlock_no_such_db`, message: /The database "airlock_no_such_db" does not exist/, hint: /hint: Create it \(createdb/ },
      { store: `postgres://no_such_role_x:s3cret-pw@${pg.host}/test`, message: /PostgreSQL (refused user|rejected the password for user) "no_such_role_x"/, hint: /hint: (Create the role|Check the password)/ },
    ];
    for (const c of cases) {
      const r = await runCli(['start'], cliEnv({ AIRLOCK_DATA_DIR: dataDir, AIRLOCK_STORE: c.store, AIRLOCK_PASSPHRASE: 'whatever passphrase 123', AIRLOCK_PORT: '0' }));
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /error \[store_unavailable\]: /);
      assert.match(r.stderr, c.message);
      assert.match(r.stderr, c.hint);
      assert.ok(!`${r.stdout}${r.stderr}`.includes('s3cret-pw'), 'the password leaked');
    }
  });
});
