// The authentication failure limiter (AttemptLimiter, 10,000 keys of (address, credential id)) stays bounded without
// lifting anyone's throttle: when a flood of made-up credentials fills it, it forgets keys under their limit, never
// one at it. Before, it forgot every key at once, so one address that cycled 10,000 well-formed session tokens of
// unknown ids lifted its own admin-token (and console login) throttle and got another 30 guesses.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startHarness, type Harness } from './testing/harness.ts';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => h.close());

const ADDR = '198.51.100.7';
const OTHER = '198.51.100.8';
const wrongAdmin = () => `adm_${randomBytes(32).toString('base64url')}`;
const madeUpSession = () => `ses_${randomBytes(8).toString('hex')}.${randomBytes(32).toString('base64url')}`;
const consoleLogin = (token: string, remoteAddress = ADDR) =>
  h.call('POST', '/v1/console/session', { body: { token }, remoteAddress, headers: { 'x-airlock-console': '1', 'sec-fetch-site': 'same-origin' } });

test('an address throttled on admin-token guesses stays throttled after cycling 10,000 made-up session ids; the limiter still counts new keys', async () => {
  for (let i = 0; i < 30; i++) assert.equal((await consoleLogin(wrongAdmin())).status, 401);
  const throttled = await consoleLogin(wrongAdmin());
  assert.deepEqual([throttled.status, throttled.body.error.code], [429, 'rate_limited'], 'throttled after 30 guesses');
  const bearer = await h.call('GET', '/v1/agents', { token: wrongAdmin(), remoteAddress: ADDR });
  assert.deepEqual([bearer.status, bearer.body.error.code], [429, 'rate_limited'], 'bearer guesses share the throttle');

  // 10,000 well-formed session tokens of unknown ids: 401 each, every one a new limiter key (the map fills).
  for (let i = 0; i < 10_000; i++) {
    const r = await h.call('GET', '/v1/session', { token: madeUpSession(), remoteAddress: ADDR });
    assert.equal(r.status, 401);
  }

  const login = await consoleLogin(wrongAdmin());
  assert.deepEqual([login.status, login.body.error.code], [429, 'rate_limited'], `the admin-token throttle was lifted: the next guess was answered ${login.status}`);
  const bearerAfter = await h.call('GET', '/v1/agents', { token: wrongAdmin(), remoteAddress: ADDR });
  assert.equal(bearerAfter.status, 429);

  // Room was made for new keys: another address's guesses are counted and throttled after 30 as before.
  for (let i = 0; i < 30; i++) assert.equal((await consoleLogin(wrongAdmin(), OTHER)).status, 401);
  assert.equal((await consoleLogin(wrongAdmin(), OTHER)).status, 429);

  // The operator's genuine token always passes, from the throttled address too.
  const genuine = await h.call('GET', '/v1/agents', { token: h.adminToken, remoteAddress: ADDR });
  assert.equal(genuine.status, 200);
});
