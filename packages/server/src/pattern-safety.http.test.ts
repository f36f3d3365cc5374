// Operator patterns (`match.message.pattern`, nostr_event `content_pattern` / `deny_content_pattern`) run over an
// agent's text on the daemon's one event loop. A pattern that backtracks super-linearly (`^(a+)+$`, `(\w+\s?)*$`)
// over a few dozen agent-chosen characters froze the whole signer for every agent. Now:
// - setting (or validating) a policy with such a pattern is refused: 400 `invalid_policy`, the issue coded
//   `pattern_unsafe` with its path; nothing is stored;
// - a policy stored before the check (written to the store directly here, then a restart) keeps loading, and a rule
//   holding such a pattern never runs it: it refuses `pattern_unsafe` wherever the pattern would judge the request
//   (a deny denies, an allow never grants), answered at once; where the rule's match is scoped elsewhere it stays out
//   of the way. Over HTTP, on SQLite.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyMessage } from 'viem';
import { hashPolicy } from '@airlock/core';
import { provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const violations = (res: { body: any }) => (res.body.error?.violations ?? []).map((v: any) => [v.rule, v.code]);
// ^(a+)+$ takes seconds over this (doubling with each further `a`) in V8's backtracking matcher.
const STALLING_TEXT = `Sign ${'a'.repeat(40)}!`;

describe('operator patterns that could stall the signer', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h?.close());

  const sign = (token: string, message: string, chainId = 1) => h.call('POST', '/v1/sign/message', { token, body: { chainId, message } });
  /** Stores `document` as the agent's policy the way an earlier version would have (no pattern check), then restarts. */
  const storeUnchecked = async (agentName: string, document: unknown) => {
    const scope = await h.airlock.operator.resolveScope(agentName);
    await h.airlock.store.putPolicy({ scope, hash: hashPolicy(document), document, author: 'test', createdAt: Date.now() });
    await h.restart();
  };

  test('setting or validating a policy with an unsafe pattern: 400 invalid_policy naming the path, pattern_unsafe; nothing stored', async () => {
    const { agent } = await provisionAgent(h, { policy: { version: 1, rules: [{ name: 'texts', type: 'allow', match: { actions: ['evm.message'], message: { prefix: 'Sign' } } }] } });
    const cases: [unknown, string][] = [
      [{ name: 'no-a', type: 'deny', match: { message: { pattern: '^Sign (a+)+$' } } }, 'rules[1].match.message.pattern'],
      [{ name: 'words', type: 'allow', match: { actions: ['evm.message'], message: { pattern: '^Sign(\\s?\\w+)*$' } } }, 'rules[1].match.message.pattern'],
      [{ name: 'twice', type: 'deny', match: { message: { pattern: '(\\w+) \\1' } } }, 'rules[1].match.message.pattern'],
      [{ name: 'notes', type: 'nostr_event', content_pattern: '(a|aa)*b' }, 'rules[1].content_pattern'],
      [{ name: 'links', type: 'nostr_event', deny_content_pattern: '.*http.*\\.exe' }, 'rules[1].deny_content_pattern'],
      // Found by review: a lookaround's own search (3.7 s on a 105-character message, accepted), and many loops.
      [{ name: 'behind', type: 'deny', match: { message: { pattern: `(?<=c${'(?:a|[ab])'.repeat(20)})` } } }, 'rules[1].match.message.pattern'],
      [{ name: 'codes', type: 'deny', match: { message: { pattern: '[a-z]+0A|[a-z]+1A|[a-z]+2A|[a-z]+3A|[a-z]+4A' } } }, 'rules[1].match.message.pattern'],
    ];
    for (const [rule, path] of cases) {
      const document = { version: 1, rules: [{ name: 'texts', type: 'allow', match: { actions: ['evm.message'], message: { prefix: 'Sign' } } }, rule] };
      const set = await h.admin('PUT', `/v1/policies/${agent.name}`, { document });
      assert.equal(set.status, 400, `${path}: ${JSON.stringify(set.body).slice(0, 300)}`);
      assert.equal(set.body.error.code, 'invalid_policy');
      assert.ok(set.body.error.message.startsWith(`${path}: pattern_unsafe: `), set.body.error.message);
      assert.deepEqual(set.body.error.details.issues.map((i: any) => [i.path, i.code]), [[path, 'pattern_unsafe']]);
      const validated = await h.admin('POST', '/v1/policies/validate', { document });
      assert.equal(validated.body.valid, false);
      assert.match(validated.body.error.message, /pattern_unsafe/);
    }
    const versions = await h.admin('GET', `/v1/policies/${agent.name}/versions`);
    assert.equal(versions.body.versions?.length ?? versions.body.length, 1, 'nothing stored');
    // A safe pattern in the same places is set as before.
    const safe = { version: 1, rules: [{ name: 'login', type: 'allow', match: { actions: ['evm.message'], message: { pattern: '^Sign in to example\\.com\\b' } } }, { name: 'notes', type: 'nostr_event', deny_content_pattern: 'https?://\\S*\\.(exe|apk)' }] };
    assert.equal((await h.admin('PUT', `/v1/policies/${agent.name}`, { document: safe })).status, 200);
  });

  test('a stored deny rule with an unsafe pattern: refused pattern_unsafe at once, the pattern never run; scoped elsewhere: signed', async () => {
    const { agent, token } = await provisionAgent(h, { policy: { version: 1, rules: [{ name: 'texts', type: 'allow', match: { actions: ['evm.message'], message: { prefix: 'Sign' } } }] } });
    await storeUnchecked(agent.name, {
      version: 1,
      rules: [
        { name: 'texts', type: 'allow', match: { actions: ['evm.message'], message: { prefix: 'Sign' } } },
        { name: 'no-a', type: 'deny', match: { chains: ['eip155:1'], message: { pattern: '^Sign (a+)+$' } } },
      ],
    });
    const started = Date.now();
    const res = await sign(token, STALLING_TEXT);
    assert.ok(Date.now() - started < 2_000, `answered in ${Date.now() - started} ms`);
    assert.equal(res.status, 403, JSON.stringify(res.body).slice(0, 300));
    assert.deepEqual(violations(res), [['agent/no-a', 'pattern_unsafe']]);
    assert.match(res.body.error.violations[0].message, /never run/);
    assert.equal(res.body.signature, undefined);
    // Fail closed: a text the pattern would not even match is refused alike (a deny is never escaped).
    assert.deepEqual(violations(await sign(token, 'Sign hello')), [['agent/no-a', 'pattern_unsafe']]);
    // The deny names chain 1 only: on Base it never judges the message, and the allow rule grants it.
    const base = await sign(token, STALLING_TEXT, 8453);
    assert.equal(base.status, 200, JSON.stringify(base.body).slice(0, 300));
    assert.ok(await verifyMessage({ address: agent.address, message: STALLING_TEXT, signature: base.body.signature }));
  });

  test('a stored allow rule with an unsafe pattern never grants: refused pattern_unsafe', async () => {
    const { agent, token } = await provisionAgent(h, { policy: { version: 1, rules: [{ name: 'texts', type: 'allow', match: { actions: ['evm.message'], message: { prefix: 'Sign' } } }] } });
    await storeUnchecked(agent.name, { version: 1, rules: [{ name: 'words', type: 'allow', match: { actions: ['evm.message'], message: { pattern: '^Sign(\\s?\\w+)*$' } } }] });
    const started = Date.now();
    const res = await sign(token, `Sign ${'word '.repeat(8)}aaaaaaaaaaaaaaaaaaaaaaaa!`);
    assert.ok(Date.now() - started < 2_000, `answered in ${Date.now() - started} ms`);
    assert.equal(res.status, 403, JSON.stringify(res.body).slice(0, 300));
    assert.deepEqual(violations(res), [['agent/words', 'pattern_unsafe'], ['agent/default', 'message_not_allowed']]);
    // A text the pattern would have matched: not granted either.
    assert.equal((await sign(token, 'Sign in now')).status, 403);
  });

  test('a stored nostr_event rule with an unsafe pattern: every event it would judge is refused pattern_unsafe, at once', async () => {
    const { agent, token } = await provisionAgent(h, { actions: ['nostr.event'], policy: { version: 1, rules: [{ name: 'notes', type: 'allow', match: { actions: ['nostr.event'], nostr_kinds: [1] } }] } });
    await storeUnchecked(agent.name, {
      version: 1,
      rules: [
        { name: 'notes', type: 'allow', match: { actions: ['nostr.event'], nostr_kinds: [1] } },
        { name: 'no-spam', type: 'nostr_event', deny_content_pattern: '^(\\w+\\s?)*$' },
      ],
    });
    const started = Date.now();
    const res = await h.call('POST', '/v1/sign/nostr-event', { token, body: { kind: 1, tags: [], content: `${'a'.repeat(40)}!`, created_at: Math.floor(Date.now() / 1000) } });
    assert.ok(Date.now() - started < 2_000, `answered in ${Date.now() - started} ms`);
    assert.equal(res.status, 403, JSON.stringify(res.body).slice(0, 300));
    assert.deepEqual(violations(res), [['agent/no-spam', 'pattern_unsafe']]);
    assert.equal(res.body.event, undefined);
  });
});
