// The operator console at the HTTP edge, driven as a browser and as an attacker would: its static files and
// their CSP, the login that exchanges the admin token for an HttpOnly cookie, and every way a foreign page or
// a stolen token could try to ride that cookie (CSRF) or the same-origin exception. Then the spend history
// the console charts, on both stores.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createApp } from './http/app.ts';
import { AirlockHolder } from './http/holder.ts';
import { ALICE, provisionAgent, startHarness, USDC_ASSET, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

/** app.request() addresses http://localhost: that is the console's own origin in these tests. */
const OWN = 'http://localhost';
const CONSOLE = { 'x-airlock-console': '1' };
const ADMIN_GUESS = `adm_${'A'.repeat(43)}`;

function cookieOf(setCookie: string | null): string {
  const m = /^airlock_console=([^;]*)/.exec(setCookie ?? '');
  assert.ok(m, `a console cookie in ${setCookie}`);
  return m[1]!;
}

describe('operator console: files, login and the cookie', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ manualClock: true });
  });
  after(async () => h.close());

  const login = async (token = h.adminToken, headers: Record<string, string> = { ...CONSOLE, origin: OWN }) => h.call('POST', '/v1/console/session', { body: { token }, headers });
  /** The proof login answered with each cookie (the page keeps it in sessionStorage). */
  const proofs = new Map<string, string>();
  const loggedIn = async () => {
    const res = await login();
    const cookie = cookieOf(res.headers.get('set-cookie'));
    proofs.set(cookie, res.body.proof);
    return cookie;
  };
  /** A request as the console makes it: cookie, the header with the session's proof, and Origin (POST) or Sec-Fetch-Site (GET). */
  const asConsole = (cookie: string, method: string, path: string, body?: unknown, extra: Record<string, string> = {}) =>
    h.call(method, path, { ...(body !== undefined ? { body } : {}), headers: { cookie: `airlock_console=${cookie}`, 'x-airlock-console': proofs.get(cookie) ?? '1', ...(method === 'GET' ? { 'sec-fetch-site': 'same-origin' } : { origin: OWN }), ...extra } });

  test('the console is served with a CSP that runs no inline script and loads nothing from elsewhere', async () => {
    // Files, not JSON: straight from the app.
    const app = createApp(new AirlockHolder(h.airlock));
    const fetchFile = async (path: string) => {
      const res = await app.request(path);
      return { status: res.status, headers: res.headers, text: await res.text() };
    };
    const page = await fetchFile('/console/');
    assert.match(page.text, /<script type="module" src="\/console\/app.js"><\/script>/);
    assert.equal(page.status, 200);
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self' 'sha256-[A-Za-z0-9+/]+=*'(;|$)/, 'own scripts and the import map by hash, nothing inline');
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
    for (const path of ['/console/app.js', '/console/vendor/preact.mjs', '/console/vendor/preact-hooks.mjs', '/console/vendor/htm.mjs', '/console/vendor/uplot.mjs', '/console/vendor/uplot.css', '/console/style.css']) {
      const res = await fetchFile(path);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('content-type') ?? '', path.endsWith('.css') ? /^text\/css/ : /^text\/javascript/, path);
    }
    // Only the files read at start: no path from a URL reaches the file system.
    for (const path of ['/console/nope.js', '/console/../package.json', '/console/%2e%2e/package.json', '/console/vendor/../../src/index.ts']) {
      assert.equal((await fetchFile(path)).status, 404, path);
    }
  });

  test('login: the admin token once, answered with an HttpOnly SameSite=Strict session cookie and a proof, neither carrying the token', async () => {
    const res = await login();
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const setCookie = res.headers.get('set-cookie') ?? '';
    // A browser-session cookie: no Max-Age or Expires, so it is not written to the browser's disk.
    assert.match(setCookie, /^airlock_console=cs_[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict$/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.deepEqual(Object.keys(res.body).sort(), ['active', 'expiresAt', 'proof']);
    assert.match(res.body.proof, /^cp_[A-Za-z0-9_-]{43}$/);
    assert.ok(!JSON.stringify(res.body).includes(h.adminToken) && !setCookie.includes(h.adminToken.slice(4)));
    const cookie = cookieOf(setCookie);
    proofs.set(cookie, res.body.proof);
    const who = await asConsole(cookie, 'GET', '/v1/console/session');
    assert.equal(who.status, 200);
    assert.equal(who.body.active, true);
    assert.equal((await asConsole(`cs_${'A'.repeat(43)}`, 'GET', '/v1/console/session')).body.active, false, 'an unknown cookie: no session, no error');
    // Recorded, naming the session by a fingerprint: neither the token nor the cookie value is in the log.
    const entries = (await h.admin('GET', '/v1/audit?type=console.session.opened')).body.entries;
    assert.ok(entries.length >= 1);
    const text = JSON.stringify(entries);
    assert.ok(!text.includes(cookie) && !text.includes(h.adminToken.slice(4)));
    assert.match(entries.at(-1).data.session, /^[0-9a-f]{12}$/);
  });

  test('a wrong token at login is 401, and 30 guesses from one address are throttled like bearer guesses; the operator still gets in', async () => {
    const wrong = await login(ADMIN_GUESS);
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error.code, 'unauthenticated');
    assert.equal(wrong.headers.get('set-cookie'), null);
    const from = (token: string) => h.call('POST', '/v1/console/session', { body: { token }, headers: { ...CONSOLE, origin: OWN }, remoteAddress: '10.9.9.9' });
    for (let i = 0; i < 30; i++) assert.equal((await from(ADMIN_GUESS)).status, 401);
    const throttled = await from(ADMIN_GUESS);
    assert.equal(throttled.status, 429);
    assert.equal(throttled.body.error.code, 'rate_limited');
    // The same limiter as bearer authentication: that address's admin guesses over the API are throttled too.
    assert.equal((await h.call('GET', '/v1/agents', { token: ADMIN_GUESS, remoteAddress: '10.9.9.9' })).status, 429);
    assert.equal((await from(h.adminToken)).status, 201, 'the genuine token from the throttled address');
  });

  test('login refuses requests that are not the console\'s: no header, a foreign Origin, a cross-site fetch', async () => {
    const noHeader = await login(h.adminToken, { origin: OWN });
    assert.equal(noHeader.status, 403);
    assert.equal(noHeader.body.error.code, 'csrf_refused');
    const foreign = await login(h.adminToken, { ...CONSOLE, origin: 'https://evil.example' });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.body.error.code, 'origin_not_allowed');
    const crossSite = await login(h.adminToken, { ...CONSOLE, 'sec-fetch-site': 'cross-site' });
    assert.equal(crossSite.status, 403);
    assert.equal(crossSite.body.error.code, 'csrf_refused');
    for (const r of [noHeader, foreign, crossSite]) assert.equal(r.headers.get('set-cookie'), null);
  });

  test('CSRF: the cookie from a foreign origin, without the header, or without a same-origin sign is refused, and nothing changes', async () => {
    const cookie = await loggedIn();
    const p = await provisionAgent(h, { policy: usdcPolicy() });
    const freeze = `/v1/agents/${p.agent.name}/freeze`;
    const attempts: [string, Record<string, string>, string][] = [
      ['foreign Origin with the header', { cookie: `airlock_console=${cookie}`, ...CONSOLE, origin: 'https://evil.example' }, 'origin_not_allowed'],
      ['a sibling port on the same host', { cookie: `airlock_console=${cookie}`, ...CONSOLE, origin: 'http://localhost:8080' }, 'origin_not_allowed'],
      ['own Origin without the header', { cookie: `airlock_console=${cookie}`, origin: OWN }, 'csrf_refused'],
      ['no Origin, cross-site fetch', { cookie: `airlock_console=${cookie}`, ...CONSOLE, 'sec-fetch-site': 'cross-site' }, 'csrf_refused'],
      ['no Origin, no Sec-Fetch-Site', { cookie: `airlock_console=${cookie}`, ...CONSOLE }, 'csrf_refused'],
      ['no header, same-origin fetch', { cookie: `airlock_console=${cookie}`, 'sec-fetch-site': 'same-origin' }, 'csrf_refused'],
    ];
    for (const [what, headers, code] of attempts) {
      const res = await h.call('POST', freeze, { headers });
      assert.equal(res.status, 403, what);
      assert.equal(res.body.error.code, code, what);
    }
    assert.equal((await h.admin('GET', `/v1/agents/${p.agent.name}`)).body.status, 'active', 'no attempt froze the agent');
    assert.equal((await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n) })).status, 200);
    // The console's own request does.
    const ok = await asConsole(cookie, 'POST', freeze);
    assert.equal(ok.status, 200);
    assert.equal(ok.body.status, 'frozen');
  });

  test('the same-origin exception carries only the cookie: a token from the console\'s origin is refused, a foreign page\'s tokens stay refused', async () => {
    const p = await provisionAgent(h, { policy: usdcPolicy() });
    for (const token of [h.adminToken, p.token]) {
      const own = await h.call('GET', '/v1/agents', { token, headers: { ...CONSOLE, origin: OWN } });
      assert.equal(own.status, 403);
      assert.equal(own.body.error.code, 'csrf_refused');
      const foreign = await h.call('GET', '/v1/session', { token, headers: { ...CONSOLE, origin: 'https://evil.example' } });
      assert.equal(foreign.body.error.code, 'origin_not_allowed');
    }
    // DNS rebinding: the attacker's name resolves to the daemon, so its origin "is" the request's origin.
    const rebound = await h.call('GET', 'http://evil.example/v1/agents', { headers: { ...CONSOLE, host: 'evil.example', origin: 'http://evil.example', cookie: `airlock_console=${await loggedIn()}` } });
    assert.equal(rebound.status, 403);
    assert.equal(rebound.body.error.code, 'origin_not_allowed');
  });

  test('the cookie replayed without its proof (a server on another port of the host got it) is not the operator, even with the header and Origin forged', async () => {
    const cookie = await loggedIn();
    const p = await provisionAgent(h, { policy: usdcPolicy() });
    const freeze = `/v1/agents/${p.agent.name}/freeze`;
    // What a process that read the cookie can send from outside the browser: every header the console sends, but
    // it never saw the proof (sessionStorage of the console's origin).
    const forged = (proof: string | undefined) => ({ cookie: `airlock_console=${cookie}`, 'x-airlock-console': proof ?? '1', origin: OWN, 'sec-fetch-site': 'same-origin' });
    const another = (await login()).body.proof as string;
    for (const [what, proof] of [['no proof', undefined], ['a made-up proof', `cp_${'B'.repeat(43)}`], ['the proof of another session', another]] as const) {
      const post = await h.call('POST', freeze, { headers: forged(proof) });
      assert.deepEqual([post.status, post.body.error?.code], [401, 'unauthenticated'], what);
      const read = await h.call('GET', '/v1/agents', { headers: forged(proof) });
      assert.deepEqual([read.status, read.body.error?.code], [401, 'unauthenticated'], what);
      const who = await h.call('GET', '/v1/console/session', { headers: forged(proof) });
      assert.deepEqual([who.status, who.body.active], [200, false], what);
      // Nor can it log the operator out.
      assert.deepEqual((await h.call('DELETE', '/v1/console/session', { headers: forged(proof) })).status, 401, what);
    }
    assert.equal((await h.admin('GET', `/v1/agents/${p.agent.name}`)).body.status, 'active', 'nothing was changed');
    // The console, with its proof, still is the operator: the session was not harmed by the attempts.
    const ok = await asConsole(cookie, 'POST', freeze);
    assert.deepEqual([ok.status, ok.body.status], [200, 'frozen']);
  });

  test('a cookie planted before the real one (a page on another port of the host, Path=/v1) does not end the session', async () => {
    const cookie = await loggedIn();
    const junk = `cs_${'C'.repeat(43)}`;
    // Any number of them: one per path the browser sends first (a review planted four to pass a cap of four).
    const many = Array.from({ length: 40 }, (_, i) => `airlock_console=cs_${String(i).padStart(2, '0')}${'D'.repeat(41)}`).join('; ');
    for (const planted of [`airlock_console=junk; airlock_console=${cookie}`, `airlock_console=${junk}; airlock_console=${cookie}`, `${many}; airlock_console=${cookie}`]) {
      const res = await h.call('GET', '/v1/agents', { headers: { cookie: planted, 'x-airlock-console': proofs.get(cookie)!, 'sec-fetch-site': 'same-origin' } });
      assert.equal(res.status, 200, `${planted}: ${JSON.stringify(res.body)}`);
      const who = await h.call('GET', '/v1/console/session', { headers: { cookie: planted, 'x-airlock-console': proofs.get(cookie)!, 'sec-fetch-site': 'same-origin' } });
      assert.equal(who.body.active, true, planted);
    }
  });

  test('API answers are not cached or sniffed: no-store and nosniff on an authenticated read and on an error', async () => {
    const cookie = await loggedIn();
    for (const res of [await asConsole(cookie, 'GET', '/v1/agents'), await h.call('GET', '/v1/agents', { token: h.adminToken }), await h.call('GET', '/v1/agents')]) {
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    }
  });

  test('the cookie stands for the admin only: an agent route refuses it, an unknown cookie is 401', async () => {
    const cookie = await loggedIn();
    const sign = await asConsole(cookie, 'POST', '/v1/sign/transaction', usdcTransfer(ALICE, 1n));
    assert.equal(sign.status, 403);
    assert.equal(sign.body.error.code, 'forbidden');
    const forged = await asConsole(`cs_${'A'.repeat(43)}`, 'GET', '/v1/agents');
    assert.equal(forged.status, 401);
    assert.equal(forged.body.error.code, 'unauthenticated');
  });

  test('logout ends the session; an idle session ends after 30 minutes, any session after 8 hours', async () => {
    const cookie = await loggedIn();
    const out = await asConsole(cookie, 'DELETE', '/v1/console/session');
    assert.equal(out.status, 200);
    assert.equal(out.body.closed, true);
    assert.match(out.headers.get('set-cookie') ?? '', /^airlock_console=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0$/);
    assert.equal((await asConsole(cookie, 'GET', '/v1/agents')).status, 401);
    assert.equal((await h.admin('GET', '/v1/audit?type=console.session.closed')).body.entries.length, 1);

    const idle = await loggedIn();
    h.clock!.advance(29 * 60_000);
    assert.equal((await asConsole(idle, 'GET', '/v1/agents')).status, 200, 'used within 30 minutes');
    h.clock!.advance(31 * 60_000);
    assert.equal((await asConsole(idle, 'GET', '/v1/agents')).status, 401, 'unused for 31 minutes');

    const busy = await loggedIn();
    for (let i = 0; i < 16; i++) {
      h.clock!.advance(29 * 60_000);
      assert.equal((await asConsole(busy, 'GET', '/v1/agents')).status, 200);
    }
    h.clock!.advance(29 * 60_000);
    assert.equal((await asConsole(busy, 'GET', '/v1/agents')).status, 401, 'past 8 hours, however busy');
    assert.equal((await asConsole(busy, 'GET', '/v1/console/session')).body.active, false);
  });
});

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`spend history for the console's charts (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store, manualClock: true });
      // A fleet-scope budget: the fleet chart shows its use against the limit.
      const fleet = await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [{ name: 'fleet-daily', type: 'budget', asset: USDC_ASSET, max: '900000000', window: '24h', scope: 'fleet' }] } });
      assert.equal(fleet.status, 200, JSON.stringify(fleet.body));
    });
    after(async () => h.close());

    test('spend per bucket and budget use over time match what was signed; the range is bounded', async () => {
      const start = h.clock!.now();
      const p = await provisionAgent(h, { policy: usdcPolicy({ daily: '500000000', approvalAbove: '50000000' }), ttl: '24h' });
      // Hour 0: 10 + 20; hour 2: 30; then a pending approval of 60 (held, not spent).
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 10_000_000n, 0) })).status, 200);
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 20_000_000n, 1) })).status, 200);
      h.clock!.advance(2 * 3_600_000);
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 30_000_000n, 2) })).status, 200);
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 60_000_000n, 3) })).status, 202);
      h.clock!.advance(60_000);

      const since = new Date(start).toISOString();
      const agent = await h.admin('GET', `/v1/spend?agent=${p.agent.name}&bucket=1h&since=${encodeURIComponent(since)}`);
      assert.equal(agent.status, 200, JSON.stringify(agent.body));
      assert.equal(agent.body.scope, 'agent');
      assert.equal(agent.body.agent.name, p.agent.name);
      assert.equal(agent.body.edges.length, 4, '3 buckets: 0-1h, 1-2h, 2h-now');
      const usdc = agent.body.assets.find((a: any) => a.asset === USDC_ASSET);
      assert.deepEqual(usdc.amounts, ['30000000', '0', '30000000']);
      // The request held for approval counts in its bucket while it waits, as a rate limit counts it (docs/console.md).
      assert.deepEqual(usdc.counts, [2, 0, 2]);
      const daily = agent.body.budgets.find((b: any) => b.rule === 'agent/usdc-daily');
      assert.deepEqual({ max: daily.max, window: daily.window }, { max: '500000000', window: '24h' });
      assert.deepEqual(daily.usedAt, ['30000000', '30000000', '60000000']);
      assert.equal(daily.used, '120000000', 'now: 60 charged + the 60 held for approval, as policy counts it');

      const fleet = await h.admin('GET', `/v1/spend?bucket=1h&since=${encodeURIComponent(since)}`);
      assert.equal(fleet.body.scope, 'fleet');
      assert.equal(fleet.body.budgets[0].rule, 'fleet/fleet-daily');
      assert.ok(BigInt(fleet.body.budgets[0].used) >= 120_000_000n);
      assert.ok(fleet.body.assets[0].amounts.reduce((n: bigint, v: string) => n + BigInt(v), 0n) >= 60_000_000n);

      for (const [query, why] of [
        ['bucket=1m&since=2000-01-01T00:00:00Z', 'millions of buckets'],
        ['bucket=30s', 'a bucket under a minute'],
        ['bucket=1h&since=2999-01-01T00:00:00Z', 'since after until'],
        ['bucket=1x', 'not a duration'],
        ['since=yesterday', 'not a time'],
      ] as const) {
        const res = await h.admin('GET', `/v1/spend?${query}`);
        assert.equal(res.status, 400, why);
        assert.equal(res.body.error.code, 'invalid_request', why);
      }
      assert.equal((await h.admin('GET', '/v1/spend?agent=nobody')).status, 404);
    });
  });
}
