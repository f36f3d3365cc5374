// A session label is shown to operators (`airlock session tree`, listings), and an agent writes the labels of the
// child sessions it derives. Found by review: a label holding CR and ESC sequences was stored and printed raw, so a
// rogue sub-agent could redraw its line as a sibling's and the operator would revoke the wrong session. Labels with
// a control or format character are refused 400 invalid_request naming `label`, for child sessions and for
// operator-issued ones, and nothing is created or audited. Over HTTP on both stores.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

// CR, LF, ESC (a CSI sequence), C1 CSI, a bidi override, a zero-width space, a BOM.
const BAD_LABELS = ['\r\x1b[2K├─ ses_other  revoked', 'worker\nses_forged', 'a\x1b[31mred', 'a\u009b2Kb', 'a\u202eb', 'a\u200bb', '\ufeffa'];

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`session labels (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store });
    });
    after(async () => h.close());

    const newest = async (agentId: string) => (await h.admin('GET', `/v1/audit?agent=${agentId}&order=newest&limit=1`)).body.entries[0];

    test('a child session label with a control or format character is refused and no child is created', async () => {
      const { agent, token } = await provisionAgent(h, { actions: ['evm.transaction'] });
      const before = await newest(agent.id);
      const sessionsBefore = (await h.admin('GET', `/v1/sessions?agent=${agent.id}&all=true`)).body;
      for (const label of BAD_LABELS) {
        const res = await h.call('POST', '/v1/session/children', { token, body: { label } });
        assert.equal(res.status, 400, `${JSON.stringify(label)}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'invalid_request');
        assert.match(res.body.error.message, /^label: /);
        assert.equal(res.body.token, undefined);
      }
      assert.equal((await newest(agent.id)).seq, before.seq, 'no session.derived entry');
      assert.deepEqual((await h.admin('GET', `/v1/sessions?agent=${agent.id}&all=true`)).body, sessionsBefore);
      assert.deepEqual((await h.call('GET', '/v1/session/children?includeInactive=true', { token })).body.sessions, []);
      // Printable text, non-ASCII included, is kept as written.
      const ok = await h.call('POST', '/v1/session/children', { token, body: { label: 'sous-agent « recherche » 1 — 検索' } });
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
      assert.equal(ok.body.session.label, 'sous-agent « recherche » 1 — 検索');
    });

    test('an operator-issued session label with a control or format character is refused and no session is issued', async () => {
      const { agent } = await provisionAgent(h, { actions: ['evm.transaction'] });
      const before = await newest(agent.id);
      const sessionsBefore = (await h.admin('GET', `/v1/sessions?agent=${agent.id}&all=true`)).body;
      for (const label of BAD_LABELS) {
        const res = await h.admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'], label });
        assert.equal(res.status, 400, `${JSON.stringify(label)}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'invalid_request');
        assert.match(res.body.error.message, /^label: /);
        assert.equal(res.body.token, undefined);
      }
      assert.equal((await newest(agent.id)).seq, before.seq, 'no session.issued entry');
      assert.deepEqual((await h.admin('GET', `/v1/sessions?agent=${agent.id}&all=true`)).body, sessionsBefore);
      const ok = await h.admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'], label: 'ci runner #4' });
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
      assert.equal(ok.body.session.label, 'ci runner #4');
    });
  });
}
