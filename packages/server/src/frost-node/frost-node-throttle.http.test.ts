// A signer node (real HTTP on loopback, port 0) limits wrong bearer tokens per remote address as the daemon does
// (http/auth.ts): NODE_AUTH_FAILURES_PER_MINUTE, then 429 rate_limited with Retry-After; the genuine token always
// passes; one log line when an address starts being throttled, with no token material. Only 127.0.0.1 is
// reachable here, so "another address" is shown by the key being the socket's address, not a forwarding header.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { createNodeState } from '@airlock/keys';
import { AUTH_FAILURES_PER_MINUTE } from '../http/app.ts';
import { NODE_AUTH_FAILURES_PER_MINUTE } from './node-app.ts';
import { NODE_STATE_FILE, startFrostNode, type RunningFrostNode } from './serve-node.ts';

const dir = mkdtempSync(join(tmpdir(), 'airlock-frost-throttle-'));
const WEAK = { kdf: { memoryKiB: 64, passes: 1, parallelism: 1 }, allowWeakKdf: true };
const token = randomBytes(16).toString('hex');
const POLICY = 'version: 1\nrules:\n  - { name: notes, type: allow, match: { nostr_kinds: [1] } }\n';
let clock = 1_000_000_000_000;
const lines: string[] = [];
let node: RunningFrostNode;

before(async () => {
  mkdirSync(join(dir, 'alice'));
  mkdirSync(join(dir, 'bob'));
  const identityKey = await createNodeState(join(dir, 'alice', NODE_STATE_FILE), 'alice', 'passphrase of alice', WEAK);
  // A cluster has two nodes at least; only alice runs here.
  const bobKey = await createNodeState(join(dir, 'bob', NODE_STATE_FILE), 'bob', 'passphrase of bob', WEAK);
  node = await startFrostNode({
    dir: join(dir, 'alice'),
    passphrase: 'passphrase of alice',
    cluster: { threshold: 2, nodes: [{ name: 'alice', identifier: 1, identityKey }, { name: 'bob', identifier: 2, identityKey: bobKey }] },
    policyText: POLICY,
    token,
    now: () => clock,
    log: (line) => lines.push(line),
  });
});

after(async () => {
  await node?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function get(bearer: string | undefined, headers: Record<string, string> = {}) {
  const res = await fetch(`${node.url}/v1/frost/node`, { headers: { ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }), ...headers } });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), text: await res.text() };
}

test('the node throttles at the daemon\'s own threshold', () => {
  assert.equal(NODE_AUTH_FAILURES_PER_MINUTE, AUTH_FAILURES_PER_MINUTE);
});

test('wrong tokens: 401 up to the limit, then 429 rate_limited with Retry-After; the genuine token still passes; expiry lifts it', async () => {
  // No bearer token at all can never succeed: 401, not counted.
  for (let i = 0; i < NODE_AUTH_FAILURES_PER_MINUTE + 5; i++) assert.equal((await get(undefined)).status, 401);
  assert.equal(lines.length, 0);

  const wrong = (i: number) => `guess-${i}-${randomBytes(8).toString('hex')}`;
  const guesses: string[] = [];
  for (let i = 0; i < NODE_AUTH_FAILURES_PER_MINUTE; i++) {
    guesses.push(wrong(i));
    // A forwarding header names no one: the key is the socket's address.
    const r = await get(guesses[i], { 'x-forwarded-for': `10.0.0.${i}` });
    assert.equal(r.status, 401, `attempt ${i + 1}`);
    assert.equal(JSON.parse(r.text).error.code, 'unauthenticated');
  }
  assert.equal(lines.length, 1, 'one line when the address starts being throttled');
  assert.match(lines[0]!, /127\.0\.0\.1/);
  assert.doesNotMatch(lines[0]!, /10\.0\.0\./);

  clock += 10_000;
  const limited = await get(wrong(99), { 'x-forwarded-for': '10.9.9.9' });
  assert.equal(limited.status, 429);
  const body = JSON.parse(limited.text);
  assert.equal(body.error.code, 'rate_limited');
  assert.equal(body.error.details.retryAfterSeconds, 50);
  assert.equal(limited.retryAfter, '50');
  // Nothing about any token, the genuine one or a guess, in the answer or the log.
  for (const t of [token, ...guesses, 'guess-99']) {
    assert.ok(!limited.text.includes(t), 'no token material in the 429 body');
    assert.ok(!lines.join('\n').includes(t), 'no token material in the log');
  }
  assert.ok(!lines.join('\n').includes(token.slice(0, 8)));

  // As in the daemon (auth.ts), the limiter is consulted only after a token failed: the genuine token passes.
  const ok = await get(token);
  assert.equal(ok.status, 200);
  assert.equal(JSON.parse(ok.text).name, 'alice');
  assert.equal((await get(wrong(100))).status, 429);
  assert.equal(lines.length, 1, 'still one line while throttled');

  // A minute after the failures (all at one instant here) they leave the window: wrong tokens are heard again
  // (401) until the limit, and the address starting to be throttled again is logged again.
  clock += 50_000;
  for (let i = 0; i < NODE_AUTH_FAILURES_PER_MINUTE; i++) assert.equal((await get(wrong(200 + i))).status, 401, `after expiry, attempt ${i + 1}`);
  assert.equal(lines.length, 2);
  assert.equal((await get(wrong(300))).status, 429);
});
