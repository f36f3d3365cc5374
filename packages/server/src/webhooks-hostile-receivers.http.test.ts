// Webhook receivers that fight back (found by a hostile review), on both stores, through the HTTP API and the
// daemon's own dispatcher:
// - an answer without end, or a gzip bomb, was read whole and decompressed into the daemon's memory
//   (660 MiB per delivery within the timeout; 2 MiB sent became 2.4 GB): the body is no longer read;
// - one endpoint whose receiver hangs took every one of the dispatcher's slots until its timeouts, and one
//   tick's claim (8) was the ceiling per poll, so an agent flooding events delayed every endpoint's alerts:
//   endpoints now take turns, none holds more than half the slots, and a finished send claims again at once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';
import { startWebhookReceiver, type WebhookReceiver } from './testing/webhook-receiver.ts';
import { WebhookDispatcher } from './webhooks/dispatcher.ts';

// A poll of a second, as the default: without the immediate re-claim, 8 deliveries a second was the ceiling.
const CONFIG = { pollIntervalMs: 1_000, timeoutMs: 6_000, maxAttempts: 5, retryBaseMs: 300, retryMaxMs: 5_000 };
const MIB = 1024 * 1024;

/** A server answering every POST 200 with `respond` (which writes the body), counting requests and their headers. */
async function rawReceiver(respond: (res: ServerResponse) => void): Promise<{ url: string; server: Server; requests: Record<string, string | string[] | undefined>[] }> {
  const requests: Record<string, string | string[] | undefined>[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      requests.push(req.headers);
      respond(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, server, requests };
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

async function addEndpoint(h: Harness, url: string, receiver?: WebhookReceiver): Promise<string> {
  const res = await h.admin('POST', '/v1/webhooks', { url, events: ['agent.*'] });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  if (receiver) receiver.secret = res.body.secret;
  return res.body.endpoint.id;
}

async function deliveries(h: Harness, endpointId: string): Promise<any[]> {
  const res = await h.admin('GET', `/v1/webhooks/${endpointId}/deliveries?limit=1000`);
  assert.equal(res.status, 200);
  return res.body.deliveries;
}

async function until<T>(read: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not met in time: ${JSON.stringify(v).slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** `pairs` freezes and unfreezes of one agent: 2 x pairs `agent.*` events, appended in a few milliseconds each. */
async function agentEvents(h: Harness, agentId: string, pairs: number): Promise<void> {
  for (let i = 0; i < pairs; i++) {
    assert.equal((await h.admin('POST', `/v1/agents/${agentId}/freeze`)).status, 200);
    assert.equal((await h.admin('POST', `/v1/agents/${agentId}/unfreeze`)).status, 200);
  }
}

/** Memory outside the JS heap's young objects: what a body read into buffers grows. */
const heldBytes = () => {
  const m = process.memoryUsage();
  return m.arrayBuffers + m.heapUsed;
};

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`webhook receivers that fight back (${store})`, () => {
    let h: Harness;
    let agentId = '';
    const closers: (() => Promise<void>)[] = [];
    before(async () => {
      h = await startHarness({ store, webhooks: true, config: { webhooks: CONFIG } });
      agentId = (await provisionAgent(h)).agent.id;
    });
    after(async () => {
      await h.close();
      for (const close of closers) await close();
    });

    test('an answer without end: delivered on its status at once, the body never read', async () => {
      let written = 0;
      const endless = await rawReceiver((res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const chunk = Buffer.alloc(64 * 1024, 'x');
        const pump = () => {
          while (!res.destroyed && written < 2048 * MIB) {
            written += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
        };
        pump();
      });
      closers.push(() => closeServer(endless.server));
      const id = await addEndpoint(h, endless.url);
      const before = heldBytes();
      const started = Date.now();
      await agentEvents(h, agentId, 1);
      const done = await until(() => deliveries(h, id), (d) => d.length === 2 && d.every((x) => x.state === 'delivered'));
      const took = Date.now() - started;
      // Read until the timeout, each delivery took 6 s (and up to 660 MiB) before it counted as delivered.
      assert.ok(took < CONFIG.timeoutMs / 2, `delivered in ${took} ms`);
      assert.deepEqual(done.map((d) => d.log.map((a: any) => [a.outcome, a.httpStatus])), [[['delivered', 200]], [['delivered', 200]]]);
      assert.ok(heldBytes() - before < 64 * MIB, `the daemon's memory grew by ${Math.round((heldBytes() - before) / MIB)} MiB`);
      assert.equal(endless.requests[0]!['accept-encoding'], 'identity');
      await h.admin('DELETE', `/v1/webhooks/${id}`);
    });

    test('a gzip bomb (256 MiB of zeros in a quarter of a MiB): never decompressed', async () => {
      const bomb = gzipSync(Buffer.alloc(256 * MIB));
      assert.ok(bomb.length < MIB);
      const bomber = await rawReceiver((res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': String(bomb.length) });
        res.end(bomb);
      });
      closers.push(() => closeServer(bomber.server));
      const id = await addEndpoint(h, bomber.url);
      const before = heldBytes();
      await agentEvents(h, agentId, 1);
      await until(() => deliveries(h, id), (d) => d.length === 2 && d.every((x) => x.state === 'delivered'));
      assert.ok(heldBytes() - before < 64 * MIB, `the daemon's memory grew by ${Math.round((heldBytes() - before) / MIB)} MiB`);
      await h.admin('DELETE', `/v1/webhooks/${id}`);
    });

    test('a receiver that hangs holds at most half the slots: a healthy endpoint gets its 40 events in well under the timeout', async () => {
      const hanging: WebhookReceiver = await startWebhookReceiver();
      hanging.otherwise = 'hang';
      const healthy = await startWebhookReceiver();
      closers.push(() => hanging.close(), () => healthy.close());
      const hangingId = await addEndpoint(h, hanging.url, hanging);
      const healthyId = await addEndpoint(h, healthy.url, healthy);
      const started = Date.now();
      await agentEvents(h, agentId, 20);
      await healthy.waitFor(40, 15_000);
      const took = Date.now() - started;
      // Before: the hanging endpoint's deliveries filled all 8 slots by the second poll, and the healthy one
      // waited for their 6 s timeouts, 8 deliveries per poll after.
      assert.ok(took < CONFIG.timeoutMs / 2, `the healthy endpoint got 40 events in ${took} ms`);
      assert.ok(hanging.received.length <= 4, `the hanging endpoint holds ${hanging.received.length} requests`);
      assert.ok(healthy.received.every((d) => d.verified));
      await until(() => deliveries(h, healthyId), (d) => d.length === 40 && d.every((x) => x.state === 'delivered'));
      await h.admin('DELETE', `/v1/webhooks/${hangingId}`);
      await h.admin('DELETE', `/v1/webhooks/${healthyId}`);
    });

    test('a backlog drains at the receiver\'s pace, not 8 per poll', async () => {
      const fast = await startWebhookReceiver();
      closers.push(() => fast.close());
      const id = await addEndpoint(h, fast.url, fast);
      const started = Date.now();
      await agentEvents(h, agentId, 30);
      await fast.waitFor(60, 15_000);
      const took = Date.now() - started;
      // 60 deliveries at 8 per 1 s poll took over 7 s; a finished send now claims the next at once.
      assert.ok(took < 3_000, `60 deliveries in ${took} ms`);
      assert.ok(fast.received.every((d) => d.verified));
      await h.admin('DELETE', `/v1/webhooks/${id}`);
    });
  });
}

// Attempts that are never recorded, and a key backend that cannot derive the secret: driven through the daemon's
// store with a dispatcher of the test's own (the harness runs none here), so each claim is the test's to make.
describe('webhook attempts that go unrecorded (sqlite)', () => {
  let h: Harness;
  let receiver: WebhookReceiver;
  before(async () => {
    h = await startHarness({ store: 'sqlite' });
    receiver = await startWebhookReceiver();
  });
  after(async () => {
    await h.close();
    await receiver.close();
  });

  /** An endpoint and one delivery of its own `webhook.created` entry, enqueued as the dispatcher would. */
  async function oneDelivery(): Promise<{ endpointId: string; eventId: string }> {
    const endpointId = await addEndpoint(h, receiver.url, receiver);
    const [created] = (await h.admin('GET', '/v1/audit?type=webhook.created&limit=1')).body.entries;
    const eventId = `evt_${randomBytes(16).toString('hex')}`;
    await h.airlock.deps.store.enqueueWebhookDeliveries([{ eventId, endpointId, auditSeq: created.seq, leafIndex: created.leafIndex, eventType: 'webhook.created' }], [], Date.now());
    return { endpointId, eventId };
  }

  const dispatcher = (keys = h.airlock.deps.keys) =>
    new WebhookDispatcher({ store: h.airlock.deps.store, keys, clock: h.airlock.deps.clock, log: () => undefined }, { ...CONFIG, maxAttempts: 2 });

  test('claimed more than twice maxAttempts times and never recorded (a daemon ended mid-request each time): failed as not_recorded, not sent again', async () => {
    const { endpointId, eventId } = await oneDelivery();
    // Five claims whose leases lapse at once, none recorded: what a daemon killed during each request leaves.
    for (let i = 0; i < 5; i++) assert.equal((await h.airlock.deps.store.claimWebhookDeliveries(Date.now(), Date.now(), 10)).length, 1);
    const d = dispatcher();
    await d.tick();
    await d.settled();
    const [delivery] = (await deliveries(h, endpointId)).filter((x) => x.eventId === eventId);
    assert.equal(delivery.state, 'failed');
    assert.deepEqual(delivery.log.map((a: any) => [a.attempt, a.outcome, a.errorClass]), [[6, 'failed', 'not_recorded']]);
    assert.equal(receiver.received.length, 0, 'nothing sent');
    await d.stop();
    await h.admin('DELETE', `/v1/webhooks/${endpointId}`);
  });

  test('a key backend that cannot derive the secret: a failed attempt (key_unavailable), retried, nothing sent unsigned', async () => {
    const { endpointId, eventId } = await oneDelivery();
    const real = h.airlock.deps.keys;
    const failing = new Proxy(real, {
      get(target, prop, receiverArg) {
        if (prop === 'deriveSecret') return async () => { throw new Error('key process unavailable'); };
        const value = Reflect.get(target, prop, receiverArg);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const d = dispatcher(failing);
    await d.tick();
    await d.settled();
    const [delivery] = (await deliveries(h, endpointId)).filter((x) => x.eventId === eventId);
    assert.equal(delivery.state, 'pending');
    assert.deepEqual(delivery.log.map((a: any) => [a.attempt, a.outcome, a.errorClass]), [[1, 'retry', 'key_unavailable']]);
    assert.equal(receiver.received.length, 0);
    await d.stop();
    await h.admin('DELETE', `/v1/webhooks/${endpointId}`);
  });
});
