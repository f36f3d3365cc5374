// The receiver in docs/operations.md ("Alerts and webhooks"), run as written in its own Node process: deliveries
// of a real daemon are accepted and printed once each; a forged delivery and an old one are answered 400.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness } from './testing/harness.ts';
import { receiverFromDocs } from './testing/docs-receiver.ts';

const NODE = new URL('../../../node_modules/.bin/node', import.meta.url).pathname;


async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

let h: Harness;
let child: ChildProcess | undefined;
const dir = mkdtempSync(join(tmpdir(), 'airlock-doc-hook-'));
before(async () => {
  h = await startHarness({ webhooks: true, config: { webhooks: { pollIntervalMs: 50, timeoutMs: 4_000, maxAttempts: 5, retryBaseMs: 300, retryMaxMs: 5_000 } } });
});
after(async () => {
  child?.kill();
  await h.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the receiver of docs/operations.md verifies real deliveries, prints each event once, and refuses forged and old ones', async () => {
  writeFileSync(join(dir, 'receiver.mjs'), receiverFromDocs());
  let out = '';
  const waitFor = async (pattern: RegExp) => {
    for (let i = 0; i < 200 && !pattern.test(out); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(out, pattern);
  };
  // The port is free when freePort() closes it, but the receiver binds it only once its node process has started:
  // meanwhile another process may take it (a listener, or an outgoing connection as its local port). The receiver
  // then exits with EADDRINUSE: its endpoint is removed and the receiver started again on another port.
  let port: number;
  let created: { status: number; body: any };
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    created = await h.admin('POST', '/v1/webhooks', { url: `http://127.0.0.1:${port}/hook`, events: ['approval.*'] });
    assert.equal(created.status, 201);
    const receiver = spawn(NODE, ['receiver.mjs'], { cwd: dir, env: { ...process.env, AIRLOCK_WEBHOOK_SECRET: created.body.secret, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    child = receiver;
    out = '';
    receiver.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    receiver.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    let exited = false;
    receiver.once('exit', () => (exited = true));
    for (let i = 0; i < 200 && !exited && !/listening on \d+/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
    if (!exited || !/EADDRINUSE/.test(out) || attempt === 5) break;
    assert.equal((await h.admin('DELETE', `/v1/webhooks/${created.body.endpoint.id}`)).status, 200);
  }
  const secret = created.body.secret as string;
  await waitFor(/listening on \d+/);

  const { agent, token } = await provisionAgent(h, { policy: usdcPolicy({ approvalAbove: '10000000' }) });
  const held = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 20_000_000n) });
  assert.equal(held.status, 202);
  await h.admin('POST', `/v1/approvals/${held.body.approvalId}/deny`, {});
  await waitFor(/approval\.denied/);
  const deliveries = (await h.admin('GET', `/v1/webhooks/${created.body.endpoint.id}/deliveries`)).body.deliveries;
  assert.deepEqual(deliveries.map((d: any) => [d.eventType, d.state, d.log.at(-1)?.httpStatus]), [['approval.denied', 'delivered', 204], ['approval.requested', 'delivered', 204]]);
  assert.deepEqual(out.trim().split('\n').slice(1).sort(), [`approval.denied agent=${agent.id} seq=${deliveries[0].auditSeq}`, `approval.requested agent=${agent.id} seq=${deliveries[1].auditSeq}`], 'each event once (sent concurrently: any order)');

  const body = JSON.stringify({ id: 'evt_forged', type: 'breaker.reset', seq: 1, data: {} });
  const post = (signature: string) => fetch(`http://127.0.0.1:${port}/hook`, { method: 'POST', headers: { 'airlock-signature': signature, 'airlock-event-id': 'evt_forged' }, body });
  const now = Math.floor(Date.now() / 1000);
  const sign = (t: number, key: string) => `t=${t},v1=${createHmac('sha256', key).update(`${t}.${body}`).digest('hex')}`;
  assert.equal((await post(sign(now, 'whsec_not-the-secret'))).status, 400, 'forged: another key');
  assert.equal((await post(sign(now - 600, secret))).status, 400, 'replayed: ten minutes old');
  assert.equal((await post('')).status, 400, 'unsigned');
  assert.equal((await post(sign(now, secret))).status, 204, 'the same body, properly signed and fresh, is accepted');
  await waitFor(/breaker\.reset/);
  assert.equal((await post(sign(now, secret))).status, 204);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(out.match(/breaker\.reset/g)?.length, 1, 'printed once: deduped by Airlock-Event-Id');
});
