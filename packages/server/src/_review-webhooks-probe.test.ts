// SCRATCH (security review) — delete before finishing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness } from './testing/harness.ts';
import { startWebhookReceiver } from './testing/webhook-receiver.ts';

const mode = process.env.PROBE ?? 'all';

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
}

describe('probe', () => {
  let h: Harness;
  const logged: string[] = [];
  const consoleError = console.error;
  before(async () => {
    console.error = (...args: unknown[]) => void logged.push(args.map(String).join(' '));
    h = await startHarness({ store: 'sqlite', webhooks: true, config: { webhooks: { pollIntervalMs: 50, timeoutMs: Number(process.env.TMO ?? 8000), maxAttempts: 3, retryBaseMs: 1000, retryMaxMs: 5000 } } });
  });
  after(async () => {
    console.error = consoleError;
    await h.close();
  });

  test('SSRF forms accepted at creation (by design?)', { skip: mode !== 'all' && mode !== 'ssrf' }, async () => {
    const urls = ['http://169.254.169.254/latest/meta-data/', 'http://2130706433/', 'http://0x7f.1/', 'http://017700000001/', 'http://[::ffff:127.0.0.1]/', 'http://[fd00::1]/', 'http://[::1]:22/', 'http://localhost:6379/', 'http://metadata.google.internal/computeMetadata/v1/'];
    for (const url of urls) {
      const res = await h.admin('POST', '/v1/webhooks', { url, events: ['alert.*'] });
      consoleError(url, '->', res.status, res.body.endpoint?.url ?? JSON.stringify(res.body));
      if (res.status === 201) await h.admin('DELETE', `/v1/webhooks/${res.body.endpoint.id}`);
    }
  });

  test('payload content: all families; no secret; independent HMAC', { skip: mode !== 'all' && mode !== 'payload' }, async () => {
    const r = await startWebhookReceiver();
    const created = await h.admin('POST', '/v1/webhooks', { url: r.url, events: ['agent.*', 'approval.*', 'alert.*', 'breaker.*', 'audit.*', 'webhook.*'] });
    r.secret = created.body.secret;
    const { agent, token } = await provisionAgent(h, { name: 'evil\u202enoisrev', policy: usdcPolicy({ approvalAbove: '10000000' }) }).catch(async () => provisionAgent(h, { policy: usdcPolicy({ approvalAbove: '10000000' }) }));
    const held = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 20_000_000n) });
    consoleError('held', held.status, JSON.stringify(held.body).slice(0, 300));
    const denied = await h.admin('POST', `/v1/approvals/${held.body.approvalId}/deny`, { reason: '<!channel> *pwned* \u001b[31m red' });
    consoleError('denied', denied.status, JSON.stringify(denied.body).slice(0, 200));
    await h.admin('POST', `/v1/webhooks/${created.body.endpoint.id}/rotate-secret`);
    await new Promise((res) => setTimeout(res, 2000));
    for (const d of r.received) {
      consoleError('----', d.headers['airlock-event-type'], d.verified, d.headers['airlock-signature']);
      consoleError(d.body);
      // Independent HMAC
      const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(d.headers['airlock-signature']))!;
      const mac = createHmac('sha256', Buffer.from(created.body.secret, 'utf8')).update(Buffer.concat([Buffer.from(`${m[1]}.`), Buffer.from(d.body, 'utf8')])).digest('hex');
      consoleError('independent hmac ok (old secret):', mac === m[2]);
    }
    const all = JSON.stringify(r.received.map((d) => [d.headers, d.body])) + logged.join('\n');
    for (const s of [h.adminToken, token, created.body.secret, created.body.secret.slice(6)]) assert.equal(all.includes(s), false, 'secret leaked');
    consoleError('agent', agent.id, 'received', r.received.length);
    await r.close();
  });

  test('agent-controlled text in approval.requested', { skip: mode !== 'all' && mode !== 'inject' }, async () => {
    const r = await startWebhookReceiver();
    const created = await h.admin('POST', '/v1/webhooks', { url: r.url, events: ['approval.*'] });
    r.secret = created.body.secret;
    const policy = { version: 1, rules: [
      { name: 'msgs', type: 'allow', match: { chains: ['eip155:8453'], kinds: ['message.personal'], message: { pattern: '^[\\s\\S]*$' } } },
      { name: 'hold', type: 'approval_tier', match: { kinds: ['message.personal'] } },
    ] };
    const { token } = await provisionAgent(h, { policy });
    const text = 'hi\n*APPROVED by admin* <!channel> <https://evil.example|approve here>\u001b[2J\u202e';
    const held = await h.call('POST', '/v1/sign/message', { token, body: { chainId: 8453, message: text } });
    consoleError('held', held.status, JSON.stringify(held.body).slice(0, 300));
    const [got] = await r.waitFor(1, 5000);
    consoleError(got!.headers['airlock-event-type'], got!.body);
    await r.close();
  });

  test('huge answer body is fully buffered', { skip: mode !== 'all' && mode !== 'huge' }, async () => {
    const MB = Number(process.env.MB ?? 1024);
    const chunk = Buffer.alloc(1 << 20, 0x61);
    let served = 0;
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        served++;
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(MB * chunk.length) });
        let sent = 0;
        const pump = () => {
          while (sent < MB) {
            sent++;
            if (!res.write(chunk)) return res.once('drain', pump);
          }
          res.end();
        };
        pump();
      });
    });
    const url = process.env.EXT_URL ?? await listen(server);
    const created = await h.admin('POST', '/v1/webhooks', { url, events: ['webhook.*'] });
    for (let i = 0; i < Number(process.env.EXTRA ?? 0); i++) await h.admin('POST', '/v1/webhooks', { url, events: ['webhook.*'] });
    const base = process.memoryUsage();
    let peakRss = base.rss;
    let peakAb = base.arrayBuffers;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakAb = Math.max(peakAb, m.arrayBuffers);
    }, 20);
    if (process.env.SIGN) {
      const { token } = await provisionAgent(h, { policy: usdcPolicy() });
      const lat: number[] = [];
      const until = Date.now() + 6000;
      for (let i = 0; Date.now() < until; i++) {
        const t0 = performance.now();
        const res = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, i) });
        assert.equal(res.status, 200);
        lat.push(performance.now() - t0);
      }
      lat.sort((x, y) => x - y);
      consoleError(`signing during stream: n=${lat.length} p50=${lat[lat.length >> 1]!.toFixed(1)} p99=${lat[Math.floor(lat.length * 0.99)]!.toFixed(1)} max=${lat.at(-1)!.toFixed(1)} ms`);
    }
    // its own webhook.created is delivered to it
    const deadline = Date.now() + 30_000;
    let d: any;
    for (;;) {
      d = (await h.admin('GET', `/v1/webhooks/${created.body.endpoint.id}/deliveries`)).body.deliveries[0];
      if (d?.log?.length >= 1 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    clearInterval(sampler);
    consoleError(`served=${served} body=${MB} MiB; rss ${Math.round(base.rss / 2 ** 20)} -> peak ${Math.round(peakRss / 2 ** 20)} MiB; arrayBuffers ${Math.round(base.arrayBuffers / 2 ** 20)} -> peak ${Math.round(peakAb / 2 ** 20)} MiB`);
    consoleError(JSON.stringify(d));
    await h.admin('DELETE', `/v1/webhooks/${created.body.endpoint.id}`);
    server.closeAllConnections();
    server.close();
  });

  test('head-of-line: one hanging receiver delays another endpoint\'s alert', { skip: mode !== 'all' && mode !== 'hol' }, async () => {
    const N = Number(process.env.N ?? 40);
    const A = await startWebhookReceiver();
    A.otherwise = 'hang';
    const B = await startWebhookReceiver();
    const a = await h.admin('POST', '/v1/webhooks', { url: A.url, events: ['approval.*'] });
    A.secret = a.body.secret;
    const { token } = await provisionAgent(h, { policy: usdcPolicy({ approvalAbove: '10000000' }) });
    const t0 = Date.now();
    for (let i = 0; i < N; i++) {
      const held = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 20_000_000n, 1000 + i) });
      assert.equal(held.status, 202, JSON.stringify(held.body));
    }
    consoleError(`${N} approval requests by the agent in ${Date.now() - t0} ms`);
    await new Promise((r) => setTimeout(r, 300));
    // Now the on-call endpoint B and one event for it: webhook.created of B itself.
    const b = await h.admin('POST', '/v1/webhooks', { url: B.url, events: ['webhook.*'] });
    B.secret = b.body.secret;
    const t1 = Date.now();
    await B.waitFor(1, 120_000);
    consoleError(`B got its first event after ${Date.now() - t1} ms; A has received ${A.received.length} requests`);
    await h.admin('DELETE', `/v1/webhooks/${a.body.endpoint.id}`);
    await h.admin('DELETE', `/v1/webhooks/${b.body.endpoint.id}`);
    await A.close();
    await B.close();
  });
});
