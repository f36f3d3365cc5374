// Every route the route table marks `admin` refuses an agent's session token (an operator-issued one and a child
// derived from it: 403) and a console cookie without its proof (401, or 429 once the failures are throttled);
// every `agent` route refuses the admin token (403). Table-driven, so a route added later is swept too. Through
// the HTTP app the daemon serves.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AirlockHolder } from './holder.ts';
import { buildRoutes } from './routes.ts';
import { provisionAgent, startHarness, type Harness } from '../testing/harness.ts';

describe('route authentication, swept over the route table', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => h.close());

  test('every admin route answers 403/401 to a session token, a child session token and a proof-less console cookie', async () => {
    const { token } = await provisionAgent(h, { actions: ['evm.transaction', 'evm.message'] });
    const child = await h.call('POST', '/v1/session/children', { token, body: { ttlSeconds: 600, actions: ['evm.message'] } });
    assert.equal(child.status, 201, JSON.stringify(child.body));
    const routes = buildRoutes(new AirlockHolder(h.airlock), () => ({}));
    const bad: string[] = [];
    for (const r of routes) {
      const path = r.path.replace(/:[a-zA-Z]+/g, 'x1');
      const body = r.method === 'get' ? {} : { body: {} };
      if (r.auth === 'admin') {
        for (const [who, tok] of [['session', token], ['child', child.body.token as string]] as const) {
          const res = await h.call(r.method.toUpperCase(), path, { token: tok, ...body });
          if (res.status !== 403) bad.push(`${who} ${r.method} ${r.path} -> ${res.status} ${JSON.stringify(res.body).slice(0, 120)}`);
        }
        const cookie = await h.call(r.method.toUpperCase(), path, { ...body, headers: { cookie: `airlock_console=cs_${'A'.repeat(43)}`, 'x-airlock-console': `cp_${'B'.repeat(43)}`, 'sec-fetch-site': 'same-origin' } });
        if (cookie.status !== 401 && cookie.status !== 429) bad.push(`cookie ${r.method} ${r.path} -> ${cookie.status}`);
      }
      if (r.auth === 'agent') {
        const res = await h.call(r.method.toUpperCase(), path, { token: h.adminToken, ...body });
        if (res.status !== 403) bad.push(`admin ${r.method} ${r.path} -> ${res.status}`);
      }
    }
    assert.deepEqual(bad, []);
  });
});
