// `match.message.pattern` is an operator's regular expression run over the text of a personal message (EIP-191) an
// agent sends, on the daemon's one event loop. The EVM decoder caps no message text (only the 256 KiB request body
// does), so a compromised agent could send a huge message to stall every agent's signing on a pattern with
// super-linear backtracking. As Nostr content patterns: a pattern never runs over more than 16,384 characters
// (MAX_MESSAGE_PATTERN_INPUT), and a rule whose pattern would have to is refused `message_too_large`, naming the
// rule, with limit and requested: a deny is never bypassed by size, an allow never grants by size, and a message at
// the bound is judged as before. Checked by what the refusal names (no timing). Over HTTP, on SQLite.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyMessage, type Hex } from 'viem';
import { provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const BOUND = 16_384;
const EVIL = ' http://evil.example/app.exe';
/** Text of exactly `length` characters: `head`, filler, `tail`. */
const text = (length: number, head: string, tail = '') => `${head}${'x'.repeat(length - head.length - tail.length)}${tail}`;
const violations = (res: { body: any }) => (res.body.error?.violations ?? []).map((v: any) => [v.rule, v.code]);

describe('message patterns judge at most 16,384 characters; longer messages are refused where a pattern would run', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h?.close());

  const sign = (token: string, message: string | { raw: Hex }) => h.call('POST', '/v1/sign/message', { token, body: { chainId: 1, message } });
  const audit = async (agent: string) => (await h.admin('GET', `/v1/audit?agent=${agent}&type=sign.request&limit=1000`)).body.entries as any[];

  // An allow rule with a prefix only (no pattern) grants every message starting `Sign`; the deny rule's pattern
  // forbids links to executables.
  const denyPolicy = {
    version: 1,
    rules: [
      { name: 'sign-texts', type: 'allow', match: { actions: ['evm.message'], message: { prefix: 'Sign' } } },
      { name: 'no-malware', type: 'deny', match: { actions: ['evm.message'], message: { pattern: 'https?://\\S*\\.(exe|apk)' } } },
    ],
  };

  test('oversize against a deny pattern: 403 message_too_large naming the rule, nothing signed, audited deny', async () => {
    const { token, agent } = await provisionAgent(h, { policy: denyPolicy });
    // The forbidden link sits past the bound: a deny must not be bypassed by size.
    const message = text(BOUND + 1, 'Sign ', EVIL);
    const res = await sign(token, message);
    assert.equal(res.status, 403, JSON.stringify(res.body).slice(0, 300));
    assert.equal(res.body.error.code, 'policy_denied');
    assert.deepEqual(violations(res), [['agent/no-malware', 'message_too_large']]);
    const [v] = res.body.error.violations;
    assert.equal(v.limit, String(BOUND));
    assert.equal(v.requested, String(BOUND + 1));
    assert.match(v.message, /16384/);
    assert.equal(res.body.signature, undefined);
    // The same text sent as raw UTF-8 bytes, and a message with no forbidden text at all: refused alike.
    const raw = await sign(token, { raw: `0x${Buffer.from(message).toString('hex')}` });
    assert.deepEqual(violations(raw), [['agent/no-malware', 'message_too_large']]);
    const clean = await sign(token, text(200_000, 'Sign '));
    assert.equal(clean.status, 403);
    assert.deepEqual(clean.body.error.violations.map((x: any) => [x.code, x.requested]), [['message_too_large', '200000']]);

    const entries = await audit(agent.name);
    const denied = entries.filter((e) => e.decision === 'deny' && e.data.violations?.some((x: any) => x.code === 'message_too_large'));
    assert.equal(denied.length, 3, JSON.stringify(entries.map((e) => [e.decision, e.data.violations])).slice(0, 500));
    assert.equal(entries.filter((e) => e.decision === 'allow').length, 0, 'nothing signed');
  });

  test('oversize against an allow rule whose pattern would match: refused, never granted by size', async () => {
    const policy = { version: 1, rules: [{ name: 'login', type: 'allow', match: { actions: ['evm.message'], message: { pattern: '^Sign in to example\\.com[\\s\\S]*$' } } }] };
    const { token, agent } = await provisionAgent(h, { policy });
    const res = await sign(token, text(BOUND + 1, 'Sign in to example.com\n'));
    assert.equal(res.status, 403, JSON.stringify(res.body).slice(0, 300));
    assert.deepEqual(violations(res), [['agent/login', 'message_too_large'], ['agent/default', 'message_not_allowed']]);
    assert.equal(res.body.error.violations[0].limit, String(BOUND));
    assert.equal(res.body.signature, undefined);
    const entries = await audit(agent.name);
    assert.equal(entries.filter((e) => e.decision === 'allow').length, 0, 'nothing signed');
    assert.equal(entries.filter((e) => e.decision === 'deny').length, 1);
  });

  test('a message of exactly 16,384 characters is judged by the pattern as before', async () => {
    const deny = await provisionAgent(h, { policy: denyPolicy });
    const clean = text(BOUND, 'Sign ');
    const signed = await sign(deny.token, clean);
    assert.equal(signed.status, 200, JSON.stringify(signed.body).slice(0, 300));
    assert.ok(await verifyMessage({ address: deny.agent.address, message: clean, signature: signed.body.signature }));
    const forbidden = await sign(deny.token, text(BOUND, 'Sign ', EVIL));
    assert.equal(forbidden.status, 403);
    assert.deepEqual(violations(forbidden), [['agent/no-malware', 'denied_by_rule']]);

    const allow = await provisionAgent(h, { policy: { version: 1, rules: [{ name: 'login', type: 'allow', match: { actions: ['evm.message'], message: { pattern: '^Sign in to example\\.com[\\s\\S]*$' } } }] } });
    const login = text(BOUND, 'Sign in to example.com\n');
    const granted = await sign(allow.token, login);
    assert.equal(granted.status, 200, JSON.stringify(granted.body).slice(0, 300));
    assert.ok(await verifyMessage({ address: allow.agent.address, message: login, signature: granted.body.signature }));
    const other = await sign(allow.token, text(BOUND, 'Sign in to evil.example\n'));
    assert.deepEqual(violations(other), [['agent/default', 'message_not_allowed']]);
  });

  test('a rule whose match is scoped elsewhere (another chain) never judges the message, so its size does not refuse it', async () => {
    const policy = {
      version: 1,
      rules: [
        { name: 'sign-texts', type: 'allow', match: { actions: ['evm.message'], message: { prefix: 'Sign' } } },
        // Both pattern rules name Base only: a message signed for chain 1 is never judged by them.
        { name: 'no-malware-on-base', type: 'deny', match: { chains: ['eip155:8453'], message: { pattern: 'https?://\\S*\\.(exe|apk)' } } },
        { name: 'login-on-base', type: 'allow', match: { actions: ['evm.message'], chains: ['eip155:8453'], message: { pattern: '^Sign in to example\\.com' } } },
      ],
    };
    const { token, agent } = await provisionAgent(h, { policy });
    const message = text(BOUND + 1, 'Sign ', EVIL);
    const signed = await sign(token, message);
    assert.equal(signed.status, 200, JSON.stringify(signed.body).slice(0, 300));
    assert.ok(await verifyMessage({ address: agent.address, message, signature: signed.body.signature }));
    // On Base, where they apply: refused for size as before, by each rule whose pattern would have to run.
    const onBase = await h.call('POST', '/v1/sign/message', { token, body: { chainId: 8453, message } });
    assert.equal(onBase.status, 403);
    assert.deepEqual(violations(onBase), [['agent/no-malware-on-base', 'message_too_large'], ['agent/login-on-base', 'message_too_large']]);
  });

  test('any rule type with a message pattern refuses; a rule whose other fields leave the message out does not run it', async () => {
    const policy = {
      version: 1,
      rules: [
        { name: 'sign-texts', type: 'allow', match: { actions: ['evm.message'], message: { prefix: 'Sign' } } },
        // A restriction scoped by a pattern: applies (fail closed), refused for size.
        { name: 'few-links', type: 'rate_limit', max: 100, window: '1h', match: { message: { pattern: 'https?://' } } },
        // The prefix is judged first: a message not starting with it never reaches this pattern.
        { name: 'no-transfer-links', type: 'deny', match: { message: { prefix: 'Transfer', pattern: 'https?://' } } },
      ],
    };
    const { token } = await provisionAgent(h, { policy });
    const res = await sign(token, text(BOUND + 1, 'Sign '));
    assert.equal(res.status, 403);
    assert.deepEqual(violations(res), [['agent/few-links', 'message_too_large']]);
    assert.equal((await sign(token, text(BOUND, 'Sign '))).status, 200);
  });
});
