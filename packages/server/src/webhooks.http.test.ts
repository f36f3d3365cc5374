// Webhooks end to end, on both stores: endpoints managed over HTTP, alerts and approvals produced through the
// public API, delivered signed to a real receiver on loopback that checks the signature with plain node:crypto
// (and with the SDK's verifier), retried with backoff, never in the way of signing, resumed after a restart.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { encodePaymentRequiredHeader } from '@x402/core/http';
import { verifyWebhook } from '@airlock/sdk/webhooks';
import { openStore } from '@airlock/store';
import { ALICE, BASE, provisionAgent, startHarness, USDC, USDC_ASSET, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';
import { startWebhookReceiver, type WebhookReceiver } from './testing/webhook-receiver.ts';
import { loadConfig } from './config.ts';
import { WebhookDispatcher } from './webhooks/dispatcher.ts';

const API = 'https://api.example.com';
const FAST = { pollIntervalMs: 50, timeoutMs: 6_000, maxAttempts: 5, retryBaseMs: 300, retryMaxMs: 5_000 };

/** An x402 payment for `url` (what @x402/express advertises), paid by the agent through POST /v1/x402/pay. */
function pay(h: Harness, token: string, url: string) {
  const accepts = [{ scheme: 'exact', network: BASE, amount: '1000', asset: USDC, payTo: ALICE, maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' } }];
  const paymentRequired = encodePaymentRequiredHeader({ x402Version: 2, error: 'Payment required', resource: { url, description: 'data', mimeType: 'application/json' }, accepts } as never);
  return h.call('POST', '/v1/x402/pay', { token, body: { resource: url, paymentRequired } });
}

/** Pays API twice, the loop guard allowing one: the second payment is refused and `alert.loop_guard` appended. */
async function tripLoopGuard(h: Harness) {
  const { agent, token } = await provisionAgent(h, {
    policy: {
      version: 1,
      rules: [
        { name: 'paid-apis', type: 'allow', match: { chains: [BASE], kinds: ['eip3009.transfer_with_authorization'], to: [ALICE], resources: [`${API}/**`] } },
        { name: 'max-price', type: 'max_amount', asset: USDC_ASSET, max: '5000' },
        { name: 'short-lived', type: 'validity_window', max_seconds: 120 },
        { name: 'no-loops', type: 'loop_guard', max: 1, window: '1m' },
      ],
    },
  });
  assert.equal((await pay(h, token, `${API}/loop`)).status, 200);
  const tripped = await pay(h, token, `${API}/loop`);
  assert.equal(tripped.status, 403);
  assert.equal(tripped.body.error.violations[0].code, 'loop_guard_tripped');
  const [alert] = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=alert.loop_guard`)).body.entries;
  assert.ok(alert, 'alert.loop_guard is in the audit log');
  return { agent, alert };
}

async function addEndpoint(h: Harness, receiver: WebhookReceiver, body: Record<string, unknown> = {}) {
  const res = await h.admin('POST', '/v1/webhooks', { url: receiver.url, ...body });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  receiver.secret = res.body.secret;
  return res.body as { endpoint: { id: string }; secret: string };
}

async function deliveries(h: Harness, endpointId: string) {
  const res = await h.admin('GET', `/v1/webhooks/${endpointId}/deliveries`);
  assert.equal(res.status, 200);
  return res.body.deliveries as any[];
}

/** Polls the delivery log until `done` holds (the dispatcher runs on its own timers). */
async function until<T>(read: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not met in time: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`webhooks (${store})`, () => {
    let h: Harness;
    const receivers: WebhookReceiver[] = [];
    const logged: string[] = [];
    const consoleError = console.error;
    const newReceiver = async () => {
      const r = await startWebhookReceiver();
      receivers.push(r);
      return r;
    };
    before(async () => {
      // The daemon's log lines are kept to check that no secret reaches them.
      console.error = (...args: unknown[]) => void logged.push(args.map(String).join(' '));
      h = await startHarness({ store, webhooks: true, config: { webhooks: FAST } });
    });
    after(async () => {
      console.error = consoleError;
      await h.close();
      for (const r of receivers) await r.close();
    });

    test('an alert raised through signing is delivered signed: node:crypto and the SDK verifier both accept it; signing traffic is not sent', async () => {
      const receiver = await newReceiver();
      const { endpoint, secret } = await addEndpoint(h, receiver);
      assert.match(secret, /^whsec_[A-Za-z0-9_-]{43}$/);
      const { agent, alert } = await tripLoopGuard(h);
      const [got] = await receiver.waitFor(1);
      assert.equal(got!.verified, true, 'the signature verifies with plain node:crypto');
      assert.equal(got!.headers['airlock-event-type'], 'alert.loop_guard');
      assert.equal(got!.headers['airlock-event-id'], got!.event.id);
      assert.match(got!.event.id, /^evt_[0-9a-f]{32}$/);
      assert.equal(got!.headers['content-type'], 'application/json');
      assert.deepEqual(
        { type: got!.event.type, auditType: got!.event.auditType, seq: got!.event.seq, leafIndex: got!.event.leafIndex, agentId: got!.event.agentId, data: got!.event.data, hash: got!.event.hash },
        { type: 'alert.loop_guard', auditType: 'alert.loop_guard', seq: alert.seq, leafIndex: alert.leafIndex, agentId: agent.id, data: alert.data, hash: alert.hash },
      );
      const sdk = verifyWebhook({ secret, signatureHeader: got!.headers['airlock-signature'] as string, body: got!.body });
      assert.equal(sdk.ok, true);
      assert.equal(sdk.ok && sdk.event.type, 'alert.loop_guard');
      // Two payments and a refusal were signed or decided too: none of that is an alert.
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(receiver.received.map((d) => d.event.type), ['alert.loop_guard']);
      const [logged] = await until(() => deliveries(h, endpoint.id), (d) => d[0]?.state === 'delivered');
      assert.deepEqual({ eventId: logged.eventId, eventType: logged.eventType, auditSeq: logged.auditSeq, leafIndex: logged.leafIndex, state: logged.state, attempts: logged.attempts }, {
        eventId: got!.event.id, eventType: 'alert.loop_guard', auditSeq: alert.seq, leafIndex: alert.leafIndex, state: 'delivered', attempts: 1,
      });
      assert.deepEqual(logged.log.map((a: any) => [a.attempt, a.outcome, a.httpStatus]), [[1, 'delivered', 200]]);
      await h.admin('DELETE', `/v1/webhooks/${endpoint.id}`);
    });

    test('approvals: a request held for a human is sent as approval.requested, its denial as approval.denied (log order by leafIndex)', async () => {
      const receiver = await newReceiver();
      const { endpoint } = await addEndpoint(h, receiver, { events: ['approval.*'], description: 'on-call' });
      const { token } = await provisionAgent(h, { policy: usdcPolicy({ approvalAbove: '10000000' }) });
      const held = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 20_000_000n) });
      assert.equal(held.status, 202);
      const denied = await h.admin('POST', `/v1/approvals/${held.body.approvalId}/deny`, { reason: 'not today' });
      assert.equal(denied.status, 200);
      // Sent concurrently, so they may arrive in either order; leafIndex is the log's order.
      const got = [...(await receiver.waitFor(2))].sort((a, b) => a.event.leafIndex - b.event.leafIndex);
      assert.deepEqual(got.map((d) => [d.event.type, d.event.auditType, d.verified]), [['approval.requested', 'sign.request', true], ['approval.denied', 'approval.denied', true]]);
      assert.equal(got[0]!.event.decision, 'require_approval');
      assert.equal(got[1]!.event.data.approvalId, held.body.approvalId);
      await h.admin('DELETE', `/v1/webhooks/${endpoint.id}`);
    });

    test('a receiver failing twice then answering gets three attempts of the same event, with growing waits, and one success in the log', async () => {
      const receiver = await newReceiver();
      receiver.script = [500, 503];
      const { endpoint } = await addEndpoint(h, receiver, { events: ['alert.*'] });
      await tripLoopGuard(h);
      const got = await receiver.waitFor(3);
      assert.deepEqual(got.map((d) => d.answered), [500, 503, 200]);
      assert.ok(got.every((d) => d.verified), 'every attempt is signed');
      assert.equal(new Set(got.map((d) => d.headers['airlock-event-id'])).size, 1, 'one event id on every attempt');
      assert.equal(new Set(got.map((d) => d.body)).size, 1, 'the same body on every attempt');
      const gaps = [got[1]!.receivedAt - got[0]!.receivedAt, got[2]!.receivedAt - got[1]!.receivedAt];
      assert.ok(gaps[0]! >= FAST.retryBaseMs, `first wait ${gaps[0]} ms >= ${FAST.retryBaseMs}`);
      assert.ok(gaps[1]! >= 2 * FAST.retryBaseMs, `second wait ${gaps[1]} ms >= ${2 * FAST.retryBaseMs} (doubled)`);
      const [d] = await until(() => deliveries(h, endpoint.id), (l) => l[0]?.state === 'delivered');
      assert.equal(d.attempts, 3);
      assert.deepEqual(d.log.map((a: any) => [a.attempt, a.outcome, a.httpStatus, a.errorClass]), [[1, 'retry', 500, 'http_status'], [2, 'retry', 503, 'http_status'], [3, 'delivered', 200, undefined]]);
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(receiver.received.length, 3, 'nothing is sent after the success');
      await h.admin('DELETE', `/v1/webhooks/${endpoint.id}`);
    });

    test('a receiver that never answers does not slow signing: signatures keep coming while its delivery hangs, then it times out', async () => {
      const receiver = await newReceiver();
      receiver.otherwise = 'hang';
      const { endpoint } = await addEndpoint(h, receiver, { events: ['alert.*'] });
      await tripLoopGuard(h);
      await receiver.waitFor(1);
      const { token } = await provisionAgent(h, { policy: usdcPolicy() });
      const started = Date.now();
      for (let i = 0; i < 20; i++) {
        const t0 = Date.now();
        const res = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, i) });
        assert.equal(res.status, 200);
        assert.ok(Date.now() - t0 < 1_000, `signature ${i} took ${Date.now() - t0} ms`);
      }
      const elapsed = Date.now() - started;
      const [pending] = await deliveries(h, endpoint.id);
      assert.equal(pending.state, 'pending');
      assert.equal(pending.log.length, 0, `the delivery was still in flight after 20 signatures (${elapsed} ms)`);
      const [timedOut] = await until(() => deliveries(h, endpoint.id), (l) => l[0]?.log.length >= 1, 10_000);
      assert.deepEqual(timedOut.log.map((a: any) => [a.outcome, a.errorClass, a.httpStatus]), [['retry', 'timeout', undefined]]);
      assert.ok(timedOut.log[0].durationMs >= FAST.timeoutMs - 50);
      await h.admin('DELETE', `/v1/webhooks/${endpoint.id}`);
    });

    test('the SDK verifier refuses a replayed (old) delivery, a tampered body, a wrong or rotated secret, and a missing header', async () => {
      const receiver = await newReceiver();
      const { endpoint, secret } = await addEndpoint(h, receiver, { events: ['alert.*'] });
      await tripLoopGuard(h);
      const [got] = await receiver.waitFor(1);
      const header = got!.headers['airlock-signature'] as string;
      const t = Number(/t=(\d+)/.exec(header)![1]);
      assert.equal(verifyWebhook({ secret, signatureHeader: header, body: got!.body, now: t * 1000 }).ok, true);
      assert.deepEqual(verifyWebhook({ secret, signatureHeader: header, body: got!.body, now: (t + 301) * 1000 }), { ok: false, reason: 'stale_timestamp' }, 'replayed six minutes later');
      assert.deepEqual(verifyWebhook({ secret, signatureHeader: header, body: got!.body, now: (t - 301) * 1000 }), { ok: false, reason: 'stale_timestamp' }, 'dated in the future');
      assert.equal(verifyWebhook({ secret, signatureHeader: header, body: got!.body, now: (t + 3600) * 1000, toleranceSeconds: 7200 }).ok, true, 'the tolerance is the receiver\'s choice');
      const tampered = got!.body.replace('"alert.loop_guard"', '"alert.loop_guarb"');
      assert.notEqual(tampered, got!.body);
      assert.deepEqual(verifyWebhook({ secret, signatureHeader: header, body: tampered }), { ok: false, reason: 'signature_mismatch' });
      const retimed = header.replace(/t=\d+/, `t=${t + 60}`);
      assert.deepEqual(verifyWebhook({ secret, signatureHeader: retimed, body: got!.body, now: (t + 60) * 1000 }), { ok: false, reason: 'signature_mismatch' }, 'a fresh timestamp on an old signature');
      assert.deepEqual(verifyWebhook({ secret: `whsec_${'A'.repeat(43)}`, signatureHeader: header, body: got!.body }), { ok: false, reason: 'signature_mismatch' }, 'another endpoint\'s secret');
      assert.deepEqual(verifyWebhook({ secret: `${secret}x`, signatureHeader: header, body: got!.body }), { ok: false, reason: 'invalid_secret' }, 'not a secret Airlock issues');
      assert.deepEqual(verifyWebhook({ secret, signatureHeader: undefined, body: got!.body }), { ok: false, reason: 'missing_signature' });
      assert.deepEqual(verifyWebhook({ secret, signatureHeader: 'v1=abc', body: got!.body }), { ok: false, reason: 'malformed_signature' });

      const rotated = await h.admin('POST', `/v1/webhooks/${endpoint.id}/rotate-secret`);
      assert.equal(rotated.status, 200);
      assert.equal(rotated.body.endpoint.secretVersion, 2);
      assert.notEqual(rotated.body.secret, secret);
      receiver.secret = rotated.body.secret;
      await tripLoopGuard(h);
      const [, next] = await receiver.waitFor(2);
      assert.equal(next!.verified, true, 'signed with the new secret');
      assert.deepEqual(verifyWebhook({ secret, signatureHeader: next!.headers['airlock-signature'] as string, body: next!.body }), { ok: false, reason: 'signature_mismatch' }, 'the old secret no longer verifies');
      await h.admin('DELETE', `/v1/webhooks/${endpoint.id}`);
    });

    test('bad input gets a stable code and creates nothing; errors do not quote the URL', async () => {
      const before = await h.admin('GET', '/v1/webhooks?all=true');
      const cases: [unknown, string][] = [
        [{ url: 'ftp://hooks.example/x' }, 'webhook_url_invalid'],
        [{ url: 'not a url' }, 'webhook_url_invalid'],
        [{ url: `https://hooks.example/${'a'.repeat(2100)}` }, 'webhook_url_invalid'],
        [{ url: 'https://hooks.example/x#frag' }, 'webhook_url_invalid'],
        [{ url: 'https://ops:hunter2secret@hooks.example/x' }, 'webhook_url_credentials'],
        [{ url: 'https://token-only@hooks.example/x' }, 'webhook_url_credentials'],
        [{ url: 'https://hooks.example/x', events: ['sign.*'] }, 'webhook_event_unknown'],
        [{ url: 'https://hooks.example/x', events: ['alert'] }, 'webhook_event_unknown'],
        [{ url: 'https://hooks.example/x', events: ['alerts.*'] }, 'webhook_event_unknown'],
        [{ url: 'https://hooks.example/x', events: ['alert.*', '*'] }, 'webhook_event_unknown'],
        [{ url: 'https://hooks.example/x', events: [] }, 'webhook_event_unknown'],
        [{ url: 'https://hooks.example/x', secret: 'mine' }, 'invalid_request'],
        [{ events: ['alert.*'] }, 'invalid_request'],
      ];
      for (const [body, code] of cases) {
        const res = await h.admin('POST', '/v1/webhooks', body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal(res.body.error.code, code, JSON.stringify(body));
        assert.doesNotMatch(JSON.stringify(res.body), /hunter2secret|token-only/);
      }
      assert.deepEqual((await h.admin('GET', '/v1/webhooks?all=true')).body, before.body, 'nothing was created');
      assert.deepEqual((await h.admin('GET', '/v1/audit?type=webhook.created&limit=1000')).body.entries.length, before.body.endpoints.length, 'nothing was audited');
      for (const path of ['/v1/webhooks/whk_0000000000000000/rotate-secret']) assert.equal((await h.admin('POST', path)).body.error.code, 'not_found');
      assert.equal((await h.admin('DELETE', '/v1/webhooks/whk_0000000000000000')).body.error.code, 'not_found');
      assert.equal((await h.admin('GET', '/v1/webhooks/whk_0000000000000000/deliveries')).body.error.code, 'not_found');
      const agent = await provisionAgent(h, { policy: usdcPolicy() });
      assert.equal((await h.call('GET', '/v1/webhooks', { token: agent.token })).status, 403, 'an agent cannot see endpoints');
      assert.equal((await h.call('POST', '/v1/webhooks', { token: agent.token, body: { url: 'http://127.0.0.1:1/' } })).status, 403);
    });

    test('create, rotate and remove are audited without the secret; the secret is in no listing, delivery log, audit entry or log line', async () => {
      const receiver = await newReceiver();
      const { endpoint, secret } = await addEndpoint(h, receiver, { events: ['alert.*', 'webhook.*'] });
      const rotated = (await h.admin('POST', `/v1/webhooks/${endpoint.id}/rotate-secret`)).body.secret as string;
      receiver.secret = rotated;
      await tripLoopGuard(h);
      await receiver.waitFor(3);
      const removed = await h.admin('DELETE', `/v1/webhooks/${endpoint.id}`);
      assert.equal(removed.status, 200);
      assert.ok(removed.body.endpoint.removedAt);
      // The endpoint follows its own changes: it exists from its creation entry on.
      assert.deepEqual(receiver.received.map((d) => d.event.type).sort(), ['alert.loop_guard', 'webhook.created', 'webhook.secret_rotated']);
      const audit = (await h.admin('GET', '/v1/audit?limit=1000')).body.entries.filter((e: any) => e.data.endpointId === endpoint.id);
      assert.deepEqual(audit.map((e: any) => e.type), ['webhook.created', 'webhook.secret_rotated', 'webhook.removed']);
      assert.equal(audit[0].data.origin, new URL(receiver.url).origin);
      assert.equal(audit[0].data.url, undefined, 'the URL path is not recorded (it can be a credential)');
      const everything = JSON.stringify([
        (await h.admin('GET', '/v1/audit?limit=1000')).body,
        (await h.admin('GET', '/v1/webhooks?all=true')).body,
        await deliveries(h, endpoint.id),
        logged,
      ]);
      for (const s of [secret, rotated]) {
        assert.equal(everything.includes(s), false);
        assert.equal(everything.includes(s.slice('whsec_'.length)), false);
      }
      assert.equal(JSON.stringify((await h.admin('GET', '/v1/webhooks?all=true')).body).includes('whsec_'), false);
      if (store === 'sqlite') {
        const path = h.config.storeUrl.slice('sqlite:'.length);
        const db = [path, `${path}-wal`].filter((p) => existsSync(p)).map((p) => readFileSync(p).toString('latin1')).join('');
        assert.equal(db.includes(secret.slice('whsec_'.length)) || db.includes(rotated.slice('whsec_'.length)), false, 'not in the database file');
      }
    });

    test('a restart resumes pending deliveries: the event failed before the restart is delivered after it, once, with the same id', async () => {
      const receiver = await newReceiver();
      receiver.otherwise = 503;
      const { endpoint } = await addEndpoint(h, receiver, { events: ['alert.*'] });
      await tripLoopGuard(h);
      const [first] = await receiver.waitFor(1);
      await until(() => deliveries(h, endpoint.id), (l) => l[0]?.log.length >= 1);
      await h.restart();
      receiver.otherwise = 200;
      const got = await until(async () => receiver.received, (r) => r.some((d) => d.answered === 200));
      const [d] = await until(() => deliveries(h, endpoint.id), (l) => l[0]?.state === 'delivered');
      assert.equal(new Set(got.map((x) => x.event.id)).size, 1);
      assert.equal(got.at(-1)!.event.id, first!.event.id);
      assert.equal(got.filter((x) => x.answered === 200).length, 1, 'delivered once');
      assert.ok(d.log.at(-1).outcome === 'delivered' && d.log.slice(0, -1).every((a: any) => a.httpStatus === 503));
      await h.admin('DELETE', `/v1/webhooks/${endpoint.id}`);
    });

    test('retention: finished deliveries older than AIRLOCK_WEBHOOK_RETENTION are deleted with their attempts; the audit entry stays', async () => {
      const receiver = await newReceiver();
      const { endpoint } = await addEndpoint(h, receiver, { events: ['alert.*'] });
      const { alert } = await tripLoopGuard(h);
      await receiver.waitFor(1);
      await until(() => deliveries(h, endpoint.id), (d) => d[0]?.state === 'delivered');
      const DAY = 86_400_000;
      // The daemon's retention as loadConfig reads it: 30 days by default, `off` keeps everything, less than a day refused.
      const retentionMs = loadConfig({}, {}).webhooks.retentionMs!;
      assert.equal(retentionMs, 30 * DAY);
      assert.equal(loadConfig({}, { AIRLOCK_WEBHOOK_RETENTION: 'off' }).webhooks.retentionMs, 0);
      assert.throws(() => loadConfig({}, { AIRLOCK_WEBHOOK_RETENTION: '1h' }), (e: { code?: string }) => e.code === 'invalid_request');
      const daysLater = (days: number) => new WebhookDispatcher({ store: h.airlock.store, keys: h.airlock.deps.keys, clock: { now: () => Date.now() + days * DAY }, log: () => undefined }, { ...FAST, retentionMs });
      assert.equal(await daysLater(29).prune(), 0, 'within the retention: kept');
      assert.equal((await deliveries(h, endpoint.id)).length, 1);
      assert.ok((await daysLater(31).prune()) >= 1);
      assert.deepEqual(await deliveries(h, endpoint.id), [], 'the delivery and its attempt log are gone');
      const [kept] = (await h.admin('GET', `/v1/audit?type=alert.loop_guard&limit=1000`)).body.entries.filter((e: any) => e.seq === alert.seq);
      assert.equal(kept.hash, alert.hash, 'the event itself stays in the audit log');
      await h.admin('DELETE', `/v1/webhooks/${endpoint.id}`);
    });

    if (store === 'postgres') {
      test('two instances on one PostgreSQL deliver each event once', async () => {
        const receiver = await newReceiver();
        const { endpoint } = await addEndpoint(h, receiver, { events: ['alert.*'] });
        // A second instance: its own store connection pool and dispatcher, the same vault (keys) and database.
        const second = await openStore(h.config.storeUrl);
        const other = new WebhookDispatcher({ store: second, keys: h.airlock.deps.keys, clock: h.airlock.deps.clock, log: () => undefined }, FAST);
        other.start();
        try {
          for (let i = 0; i < 5; i++) await tripLoopGuard(h);
          await receiver.waitFor(5);
          await until(() => deliveries(h, endpoint.id), (l) => l.length === 5 && l.every((d: any) => d.state === 'delivered'));
          await new Promise((r) => setTimeout(r, 300));
          const ids = receiver.received.map((d) => d.event.id);
          assert.equal(ids.length, 5, `each event once: ${ids.join(', ')}`);
          assert.equal(new Set(ids).size, 5);
          assert.ok(receiver.received.every((d) => d.verified));
        } finally {
          await other.stop();
          await second.close();
        }
        await h.admin('DELETE', `/v1/webhooks/${endpoint.id}`);
      });
    }
  });
}
