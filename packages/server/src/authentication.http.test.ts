// Authentication at the HTTP edge, driven as an attacker would: floods of missing and wrong tokens, guesses at
// the admin token, web pages (foreign Origin, DNS rebinding), a session over its rate, a flood of unseal
// guesses. Each refusal carries its stable code, and none of them may lock the operator out.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from './config.ts';
import { createApp } from './http/app.ts';
import { AirlockHolder } from './http/holder.ts';
import { initAirlock, openAirlock } from './runtime.ts';
import { ALICE, TEST_PASSPHRASE, TEST_VAULT, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';
import { openVault, splitSecret } from '@airlock/keys';
import { encodeShare } from '../../keys/src/slip39/share.ts';
import { randomBytes } from 'node:crypto';

/** Well-formed tokens that are not valid: a wrong secret for a session id, a wrong admin token. */
const wrongSecret = (sessionId: string) => `${sessionId}.${'B'.repeat(43)}`;
const ADMIN_GUESS = `adm_${'A'.repeat(43)}`;

describe('authentication failures never lock out a genuine credential', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => h.close());

  test('40 requests without a token from one address are all 401; the admin can still freeze from that address', async () => {
    const p = await provisionAgent(h, { policy: usdcPolicy() });
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await h.call('POST', `/v1/agents/${p.agent.name}/freeze`)).status);
    assert.deepEqual(statuses, Array(40).fill(401));
    const frozen = await h.call('POST', `/v1/agents/${p.agent.name}/freeze`, { token: h.adminToken });
    assert.equal(frozen.status, 200, JSON.stringify(frozen.body));
    assert.equal(frozen.body.status, 'frozen');
  });

  test('35 wrong secrets for one session id: 429 after 30; that session, another session and the admin still pass', async () => {
    const victim = await provisionAgent(h, { policy: usdcPolicy() });
    const other = await provisionAgent(h, { policy: usdcPolicy() });
    const statuses: number[] = [];
    for (let i = 0; i < 35; i++) statuses.push((await h.call('POST', '/v1/sign/transaction', { token: wrongSecret(victim.session.id), body: usdcTransfer(ALICE, 1n) })).status);
    assert.deepEqual(statuses, [...Array(30).fill(401), ...Array(5).fill(429)]);

    const limited = await h.call('GET', '/v1/session', { token: wrongSecret(victim.session.id) });
    assert.equal(limited.body.error.code, 'rate_limited');
    assert.ok(Number(limited.headers.get('retry-after')) > 0);

    assert.equal((await h.call('GET', '/v1/session', { token: victim.token })).status, 200, 'the genuine token of the throttled session id');
    assert.equal((await h.call('POST', '/v1/sign/transaction', { token: other.token, body: usdcTransfer(ALICE, 1n) })).status, 200);
    assert.equal((await h.call('POST', `/v1/agents/${victim.agent.name}/freeze`, { token: h.adminToken })).status, 200);
  });

  test('guesses at the admin token are throttled per address; the genuine admin and other addresses are not', async () => {
    const from = (remoteAddress: string, token: string) => h.call('GET', '/v1/agents', { token, remoteAddress });
    for (let i = 0; i < 30; i++) assert.equal((await from('10.0.0.7', ADMIN_GUESS)).status, 401);
    const throttled = await from('10.0.0.7', ADMIN_GUESS);
    assert.equal(throttled.status, 429);
    assert.equal(throttled.body.error.code, 'rate_limited');
    assert.match(throttled.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    assert.equal((await from('10.0.0.7', h.adminToken)).status, 200, 'the operator at the guessing address');
    assert.equal((await from('10.0.0.8', ADMIN_GUESS)).status, 401, 'another address has its own count');
  });
});

describe('requests from web pages', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ app: { allowedOrigins: ['https://console.example'], allowedHosts: ['airlock.internal'] } });
  });
  after(async () => h.close());

  test('a foreign Origin is refused 403 origin_not_allowed even with the admin token, and nothing changes', async () => {
    const p = await provisionAgent(h, { policy: usdcPolicy() });
    for (const origin of ['https://evil.example', 'null', 'https://console.example.evil.example']) {
      const res = await h.call('POST', `/v1/agents/${p.agent.name}/freeze`, { token: h.adminToken, headers: { origin } });
      assert.equal(res.status, 403, origin);
      assert.equal(res.body.error.code, 'origin_not_allowed');
    }
    assert.equal((await h.admin('GET', `/v1/agents/${p.agent.name}`)).body.status, 'active');
    const signed = await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n), headers: { origin: 'https://evil.example' } });
    assert.equal(signed.body.error.code, 'origin_not_allowed');
    assert.equal(signed.body.signedTransaction, undefined);
    const allowed = await h.call('GET', '/v1/agents', { token: h.adminToken, headers: { origin: 'https://console.example' } });
    assert.equal(allowed.status, 200);
  });

  test('a Host that is not a listed name is refused 421 host_not_allowed (DNS rebinding); IP literals, localhost and listed names are served', async () => {
    for (const host of ['rebind.evil.example:8420', 'rebind.evil.example', 'localhost.evil.example', 'airlock.internal.evil.example:8420', 'evil.example@127.0.0.1']) {
      const res = await h.call('GET', '/v1/agents', { token: h.adminToken, headers: { host } });
      assert.equal(res.status, 421, host);
      assert.equal(res.body.error.code, 'host_not_allowed');
    }
    for (const host of ['127.0.0.1:8420', 'localhost:8420', '[::1]:8420', '10.1.2.3', 'airlock.internal:8420', 'AIRLOCK.internal']) {
      assert.equal((await h.call('GET', '/v1/agents', { token: h.adminToken, headers: { host } })).status, 200, host);
    }
  });
});

describe('per-session rate limit', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ manualClock: true, app: { sessionRate: { perSecond: 2, burst: 5 } } });
  });
  after(async () => h.close());

  test('a session over its burst gets 429 session_rate_limited with Retry-After; other sessions and the admin do not', async () => {
    const busy = await provisionAgent(h, { policy: usdcPolicy() });
    const quiet = await provisionAgent(h, { policy: usdcPolicy() });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await h.call('GET', '/v1/session', { token: busy.token })).status);
    assert.deepEqual(statuses, Array(5).fill(200));
    const limited = await h.call('POST', '/v1/sign/transaction', { token: busy.token, body: usdcTransfer(ALICE, 1n) });
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error.code, 'session_rate_limited');
    assert.equal(limited.headers.get('retry-after'), '1');
    assert.equal(limited.body.signedTransaction, undefined);
    // An admin route is no way around it: the session is limited before it is refused there.
    assert.equal((await h.call('GET', '/v1/agents', { token: busy.token })).body.error.code, 'session_rate_limited');

    assert.equal((await h.call('GET', '/v1/session', { token: quiet.token })).status, 200);
    assert.equal((await h.call('GET', '/v1/agents', { token: h.adminToken })).status, 200);

    h.clock!.advance(1000); // two tokens back at 2/s
    assert.equal((await h.call('GET', '/v1/session', { token: busy.token })).status, 200);
    assert.equal((await h.call('GET', '/v1/session', { token: busy.token })).status, 200);
    assert.equal((await h.call('GET', '/v1/session', { token: busy.token })).status, 429);
  });
});

describe('unseal floods', () => {
  /** A sealed app whose unsealer counts its argon2id runs. */
  async function sealedApp() {
    const dataDir = mkdtempSync(join(tmpdir(), 'airlock-unseal-'));
    const config = loadConfig({ dataDir }, {});
    await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT);
    const runs = { count: 0 };
    const holder = new AirlockHolder(undefined, async (passphrase) => {
      runs.count++;
      return openAirlock(config, passphrase, { vault: TEST_VAULT, timers: false });
    });
    const app = createApp(holder);
    const unseal = async (passphrase: string, remoteAddress?: string) => {
      const env = remoteAddress ? { incoming: { socket: { remoteAddress } } } : undefined;
      const res = await app.request('/v1/unseal', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ passphrase }) }, env);
      return { status: res.status, body: (await res.json()) as any };
    };
    const share = async (text: string, remoteAddress?: string) => {
      const env = remoteAddress ? { incoming: { socket: { remoteAddress } } } : undefined;
      const res = await app.request('/v1/unseal/shares', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ share: text }) }, env);
      return { status: res.status, body: (await res.json()) as any };
    };
    /** SLIP-39 shares of this vault, 2 of 3. */
    const shares = async () => {
      const vault = await openVault(config.vaultPath, TEST_PASSPHRASE, TEST_VAULT);
      try {
        return vault.splitIntoShares({ groupThreshold: 1, groups: [{ memberThreshold: 2, memberCount: 3 }], iterationExponent: 0 }).groups[0]!;
      } finally {
        vault.wipe();
      }
    };
    const progress = async () => (await (await app.request('/v1/unseal/shares')).json()) as any;
    const resetShares = async () => (await app.request('/v1/unseal/shares/reset', { method: 'POST' })).status;
    return {
      runs,
      unseal,
      share,
      shares,
      progress,
      resetShares,
      sealed: () => holder.sealed,
      async close() {
        await holder.close();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }

  test('200 concurrent wrong passphrases: one argon2id run, the other 199 get 429 rate_limited at once; the operator then unseals', async () => {
    const s = await sealedApp();
    try {
      const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => s.unseal(`wrong passphrase number ${i}`)));
      const wrong = answers.filter((a) => a.status === 400);
      const limited = answers.filter((a) => a.status === 429);
      assert.ok(s.runs.count <= 2, `${s.runs.count} argon2id runs`);
      assert.equal(wrong.length, s.runs.count);
      assert.equal(limited.length, 200 - s.runs.count);
      assert.ok(wrong.every((a) => a.body.error.code === 'vault_wrong_passphrase'));
      assert.ok(limited.every((a) => a.body.error.code === 'rate_limited'));
      assert.equal((await s.unseal(TEST_PASSPHRASE)).status, 200);
    } finally {
      await s.close();
    }
  });

  test('attempts count before argon2id runs: the 11th from one address in a minute is refused without a run', async () => {
    const s = await sealedApp();
    try {
      for (let i = 0; i < 10; i++) assert.equal((await s.unseal(`wrong ${i} wrong wrong`, '10.0.0.9')).status, 400);
      const eleventh = await s.unseal(TEST_PASSPHRASE, '10.0.0.9');
      assert.equal(eleventh.status, 429);
      assert.equal(eleventh.body.error.code, 'rate_limited');
      assert.equal(s.runs.count, 10);
      assert.equal((await s.unseal(TEST_PASSPHRASE, '10.0.0.10')).status, 200, 'another address');
      assert.equal(s.runs.count, 11);
    } finally {
      await s.close();
    }
  });

  test('shares count against the same limit: after 10 refused shares and passphrases from one address the 11th, a good share, is refused and not counted', async () => {
    const s = await sealedApp();
    try {
      const [one, two] = await s.shares();
      const words = one!.split(' ');
      const corrupt = [...words.slice(0, -1), words.at(-1) === 'academic' ? 'acid' : 'academic'].join(' ');
      for (let i = 0; i < 5; i++) assert.equal((await s.share(corrupt, '10.0.0.7')).body.error.code, 'slip39_invalid_checksum');
      for (let i = 0; i < 5; i++) assert.equal((await s.unseal(`wrong ${i} wrong wrong`, '10.0.0.7')).status, 400);
      const eleventh = await s.share(one!, '10.0.0.7');
      assert.equal(eleventh.status, 429);
      assert.equal(eleventh.body.error.code, 'rate_limited');
      // Nothing was counted: from another address the set starts empty, and two shares unseal.
      assert.deepEqual((await s.share(one!, '10.0.0.8')).body.groups, [{ index: 0, have: 1, need: 2 }]);
      assert.equal((await s.share(two!, '10.0.0.8')).body.status, 'unsealed');
      assert.equal(s.sealed(), false);
    } finally {
      await s.close();
    }
  });

  test('shares entered before a passphrase unseal are wiped by it, not kept in memory and listed for the daemon\'s life', async () => {
    const s = await sealedApp();
    try {
      const [one] = await s.shares();
      assert.deepEqual((await s.share(one!, '10.0.3.1')).body.groups, [{ index: 0, have: 1, need: 2 }]);
      assert.equal((await s.unseal(TEST_PASSPHRASE, '10.0.3.2')).status, 200);
      assert.equal(s.sealed(), false);
      const after = await s.progress();
      assert.equal(after.status, 'unsealed');
      assert.deepEqual(after.groups, [], 'the share entered before is forgotten');
    } finally {
      await s.close();
    }
  });

  /** A forged share: well-formed words (checksum and all) with the parameters an attacker picks, no encryption behind them. */
  const forgedShare = (iterationExponent: number, memberThreshold: number) =>
    encodeShare({ identifier: 1234, extendable: true, iterationExponent, groupIndex: 0, groupThreshold: 1, groupCount: 1, memberIndex: 0, memberThreshold, value: new Uint8Array(randomBytes(32)) });

  test('a forged share asking for more PBKDF2 work than `vault split` writes (exponent 2..15) is refused at once, before any PBKDF2; nothing counted', async () => {
    const s = await sealedApp();
    try {
      // Exponent 15 is 10000 << 15 PBKDF2 iterations: a 1-of-1 set of it held the sealed daemon's event loop ~90 s.
      for (const [i, share] of [forgedShare(15, 2), forgedShare(2, 2), forgedShare(15, 1)].entries()) {
        const started = performance.now();
        const refused = await s.share(share, `10.0.1.${i}`);
        assert.equal(refused.status, 400);
        assert.equal(refused.body.error.code, 'slip39_invalid_share', JSON.stringify(refused.body));
        assert.match(refused.body.error.message, /iteration exponent (15|2); shares are accepted up to 1/);
        assert.ok(performance.now() - started < 1000, `answered in ${(performance.now() - started).toFixed(0)} ms`);
      }
      assert.deepEqual((await s.share(forgedShare(1, 2), '10.0.1.9')).body.groups, [{ index: 0, have: 1, need: 2 }], 'exponent 1, what vault split writes, is collected');
      await s.resetShares();
      const [one, two] = await s.shares();
      assert.deepEqual((await s.share(one!, '10.0.1.10')).body.groups, [{ index: 0, have: 1, need: 2 }]);
      assert.equal((await s.share(two!, '10.0.1.10')).body.status, 'unsealed');
    } finally {
      await s.close();
    }
  });

  test('a self-made set that one share recovers is refused with slip39_layout_too_weak before it combines; nothing counted', async () => {
    const s = await sealedApp();
    try {
      // `vault split` refuses this layout; a share of it, entered at unseal, would combine on its own.
      const alone = splitSecret(new Uint8Array(randomBytes(32)), { groupThreshold: 1, groups: [{ memberThreshold: 1, memberCount: 1 }] }).groups[0]![0]!;
      const refused = await s.share(alone, '10.0.2.1');
      assert.equal(refused.status, 400);
      assert.equal(refused.body.error.code, 'slip39_layout_too_weak', JSON.stringify(refused.body));
      assert.equal(s.runs.count, 0, 'no unseal ran');
      assert.deepEqual((await s.progress()).groups, []);
      const [one, two] = await s.shares();
      await s.share(one!, '10.0.2.2');
      assert.equal((await s.share(two!, '10.0.2.2')).body.status, 'unsealed');
    } finally {
      await s.close();
    }
  });
});

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`refusals at the edge are audited (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store, manualClock: true, app: { sessionRate: { perSecond: 1, burst: 3 } } });
    });
    after(async () => h.close());

    const audit = async (type: string) => (await h.admin('GET', `/v1/audit?type=${type}&limit=1000`)).body.entries as any[];

    test('a session token on an admin route and the admin token on an agent route are recorded as auth.forbidden, without the token', async () => {
      const p = await provisionAgent(h, { policy: usdcPolicy() });
      assert.equal((await h.call('POST', '/v1/agents', { token: p.token, body: { names: ['escalated'] } })).status, 403);
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token: h.adminToken, body: usdcTransfer(ALICE, 1n) })).status, 403);
      const entries = await audit('auth.forbidden');
      const bySession = entries.find((e) => e.sessionId === p.session.id);
      assert.deepEqual(
        { actor: bySession?.actor, agentId: bySession?.agentId, decision: bySession?.decision, data: bySession?.data },
        { actor: 'agent', agentId: p.agent.id, decision: 'error', data: { errorCode: 'forbidden', principal: 'agent', route: 'POST /v1/agents' } },
      );
      const byAdmin = entries.find((e) => e.actor === 'operator');
      assert.deepEqual(byAdmin?.data, { errorCode: 'forbidden', principal: 'admin', route: 'POST /v1/sign/transaction' });
      const text = JSON.stringify(entries);
      assert.ok(!text.includes(p.token.split('.')[1]!) && !text.includes(h.adminToken.slice(4)), 'no token material in the log');
    });

    test('an authenticated request refused by the schema is recorded as request.rejected with its code and route, never the body', async () => {
      const p = await provisionAgent(h, { policy: usdcPolicy() });
      const secretish = 'do-not-log-this-value-7f3a';
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token: p.token, body: { chainId: 8453, transaction: secretish } })).body.error.code, 'invalid_request');
      assert.equal((await h.call('POST', '/v1/sign/message', { token: p.token, raw: `{"message": "${secretish}"` })).body.error.code, 'invalid_json');
      assert.equal((await h.call('POST', '/v1/agents', { token: h.adminToken, body: { names: 'not-a-list', note: secretish } })).body.error.code, 'invalid_request');
      const entries = await audit('request.rejected');
      const mine = entries.filter((e) => e.sessionId === p.session.id).map((e) => e.data);
      assert.deepEqual(mine, [
        { errorCode: 'invalid_request', principal: 'agent', route: 'POST /v1/sign/transaction' },
        { errorCode: 'invalid_json', principal: 'agent', route: 'POST /v1/sign/message' },
      ]);
      assert.ok(entries.some((e) => e.actor === 'operator' && e.data.route === 'POST /v1/agents' && e.data.errorCode === 'invalid_request'));
      assert.ok(!JSON.stringify(entries).includes(secretish), 'the body never reaches the log');
    });

    test('a flood of bad and missing tokens from one source is one auth.failures entry per minute, with the count', async () => {
      const source = '203.0.113.9';
      const p = await provisionAgent(h, { policy: usdcPolicy() });
      const headBefore = (await h.admin('GET', '/v1/audit/head')).body.seq;
      for (let i = 0; i < 25; i++) assert.equal((await h.call('GET', '/v1/agents', { remoteAddress: source })).status, 401);
      for (let i = 0; i < 15; i++) assert.equal((await h.call('GET', '/v1/session', { token: wrongSecret(p.session.id), remoteAddress: source })).status, 401);
      for (let i = 0; i < 5; i++) assert.equal((await h.call('GET', '/v1/agents', { token: ADMIN_GUESS, remoteAddress: source })).status, 401);
      for (let i = 0; i < 2; i++) assert.equal((await h.call('GET', '/v1/agents', { token: h.adminToken, remoteAddress: source, headers: { origin: 'https://evil.example' } })).status, 403);
      assert.equal((await h.admin('GET', '/v1/audit/head')).body.seq, headBefore, '47 refusals and not one entry yet');

      h.clock!.advance(61_000);
      await h.admin('GET', '/v1/agents'); // any request closes the windows that ended
      const entries = (await audit('auth.failures')).filter((e) => e.data.source === source);
      assert.equal(entries.length, 1);
      assert.equal(entries[0].actor, 'system');
      assert.equal(entries[0].data.count, 47);
      assert.deepEqual(entries[0].data.codes, { unauthenticated: 45, origin_not_allowed: 2 });
      assert.equal((await h.admin('GET', '/v1/audit/head')).body.seq, headBefore + 1, 'the whole flood cost one entry');
    });

    test('a session flooding past its rate is one session.rate_limited entry per minute, naming the session', async () => {
      const p = await provisionAgent(h, { policy: usdcPolicy() });
      const statuses: number[] = [];
      for (let i = 0; i < 13; i++) statuses.push((await h.call('GET', '/v1/session', { token: p.token })).status);
      assert.deepEqual(statuses, [...Array(3).fill(200), ...Array(10).fill(429)]);
      h.clock!.advance(61_000);
      await h.admin('GET', '/v1/agents');
      const entries = (await audit('session.rate_limited')).filter((e) => e.sessionId === p.session.id);
      assert.equal(entries.length, 1);
      assert.equal(entries[0].agentId, p.agent.id);
      assert.equal(entries[0].data.count, 10);
      assert.deepEqual(entries[0].data.codes, { session_rate_limited: 10 });
    });
  });
}
