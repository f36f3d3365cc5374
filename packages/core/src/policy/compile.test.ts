import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AirlockError } from '../errors.ts';
import { compilePolicy, diffPolicies, hashPolicy, parseDuration, parsePolicyText, policyJsonSchema, RULE_TYPES } from './index.ts';

const USDC = 'eip155:8453/erc20:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
const A = '0x1111111111111111111111111111111111111111';

function compileError(doc: unknown): AirlockError {
  try {
    compilePolicy(doc);
  } catch (e) {
    assert.ok(e instanceof AirlockError);
    assert.equal(e.code, 'invalid_policy');
    return e;
  }
  assert.fail('expected invalid_policy');
}

test('validation errors name the exact path of the first problem and list every issue in details', () => {
  const e = compileError({
    version: 1,
    rules: [
      { name: 'ok', type: 'allow', match: {} },
      { name: 'daily', type: 'budget', asset: USDC, max: '5', window: '1 day' },
      { name: 'cap', type: 'max_amount', asset: USDC, max: 1.5 },
    ],
  });
  assert.match(e.message, /^rules\[1\]\.window: expected a duration/);
  assert.deepEqual(
    (e.details!.issues as { path: string }[]).map((i) => i.path),
    ['rules[1].window', 'rules[2].max'],
  );
});

test('amounts: floats, negatives, > 2^256-1 and unsafe numbers are rejected; strings and small integers accepted', () => {
  const cap = (max: unknown) => ({ version: 1, rules: [{ name: 'cap', type: 'max_amount', asset: USDC, max }] });
  assert.match(compileError(cap(1.5)).message, /^rules\[0\]\.max: expected an integer amount/);
  assert.match(compileError(cap(-1)).message, /^rules\[0\]\.max: amount must not be negative/);
  assert.match(compileError(cap('-1')).message, /^rules\[0\]\.max: expected an integer amount/);
  assert.match(compileError(cap('1e6')).message, /^rules\[0\]\.max: expected an integer amount/);
  assert.match(compileError(cap((1n << 256n).toString())).message, /^rules\[0\]\.max: amount exceeds 2\^256-1/);
  assert.match(compileError(cap(2 ** 60)).message, /^rules\[0\]\.max: expected an integer amount/);
  compilePolicy(cap(((1n << 256n) - 1n).toString()));
  compilePolicy(cap(100));
});

test('unknown fields, unknown rule types and missing fields are errors at their path', () => {
  assert.match(compileError({ version: 1, rules: [{ name: 'x', type: 'max_amount', asset: USDC, max: '1', maxx: '2' }] }).message, /^rules\[0\]\.maxx: unknown field/);
  assert.match(compileError({ version: 1, rules: [{ name: 'x', type: 'spend_limit' }] }).message, /^rules\[0\]\.type: unknown rule type; expected one of: allow, deny/);
  assert.match(compileError({ version: 1, rules: [{ name: 'x', type: 'budget', asset: USDC, max: '1' }] }).message, /^rules\[0\]\.window:/);
  assert.match(compileError({ version: 2, rules: [] }).message, /^version: expected version: 1/);
  assert.match(compileError({ version: 1, rules: [{ name: 'Bad Name', type: 'allow', match: {} }] }).message, /^rules\[0\]\.name:/);
  assert.match(compileError({ version: 1, rules: [{ name: 'x', type: 'allow', match: { args: { amount: {} } } }] }).message, /^rules\[0\]\.match\.args\.amount: expected at least one of eq, in, lte, gte/);
  assert.match(compileError({ version: 1, rules: [{ name: 'x', type: 'allow', match: { message: { pattern: '([' } } }] }).message, /^rules\[0\]\.match\.message\.pattern: not a valid regular expression/);
  assert.match(compileError({ version: 1, rules: [{ name: 'd', type: 'destinations' }] }).message, /^rules\[0\]\.allow: expected exactly one of allow or deny/);
  assert.match(compileError({ version: 1, rules: [{ name: 'b', type: 'budget', asset: USDC, max: '1', window: '1h', scope: 'session', per_destination: true }] }).message, /^rules\[0\]\.per_destination:/);
});

test('rule names are unique within a document', () => {
  const e = compileError({ version: 1, rules: [{ name: 'a', type: 'allow', match: {} }, { name: 'a', type: 'deny', match: {} }] });
  assert.match(e.message, /^rules\[1\]\.name: duplicate rule name "a" \(also rules\[0\]\)/);
});

test('set references resolve; an unknown set or a bad address is an error at its path', () => {
  compilePolicy({ version: 1, sets: { partners: [A] }, rules: [{ name: 'a', type: 'allow', match: { to: '$partners' } }] });
  assert.match(compileError({ version: 1, sets: { partners: [A] }, rules: [{ name: 'a', type: 'allow', match: { to: [A, '$partner'] } }] }).message, /^rules\[0\]\.match\.to\[1\]: unknown set "\$partner"/);
  assert.match(compileError({ version: 1, rules: [{ name: 'a', type: 'allow', match: { to: '$nobody' } }] }).message, /^rules\[0\]\.match\.to: unknown set/);
  assert.match(compileError({ version: 1, sets: { partners: [A, '0x12'] }, rules: [] }).message, /^sets\.partners\[1\]: expected a 0x address/);
  assert.match(compileError({ version: 1, rules: [{ name: 'a', type: 'approvals', spenders: ['0xzz'] }] }).message, /^rules\[0\]\.spenders\[0\]:/);
  assert.match(compileError({ version: 1, rules: [{ name: 'a', type: 'allow', match: { args: { to: { in: '$nope' } } } }] }).message, /^rules\[0\]\.match\.args\.to\.in: unknown set/);
});

test('parsePolicyText reads YAML and JSON, keeps unquoted 0x addresses as strings, reports line and column', () => {
  const doc = parsePolicyText(`version: 1\nsets:\n  p: [0x833589FCD6EDB6E08F4C7C32D4F71B54BDA02913]\nrules:\n  - { name: a, type: allow, match: { selectors: [0xa9059cbb], to: $p } }\n`) as any;
  assert.equal(doc.sets.p[0], '0x833589FCD6EDB6E08F4C7C32D4F71B54BDA02913');
  assert.equal(doc.rules[0].match.selectors[0], '0xa9059cbb');
  compilePolicy(doc);
  assert.deepEqual(parsePolicyText('{"version": 1, "rules": []}'), { version: 1, rules: [] });
  assert.throws(() => parsePolicyText('version: 1\nrules:\n  - [a,\n b: c\n'), (e: AirlockError) => e.code === 'invalid_policy' && /^line \d+, column \d+: /.test(e.message));
  assert.throws(() => parsePolicyText('version: 1\nversion: 2\n'), (e: AirlockError) => e.code === 'invalid_policy' && /^line 2, column 1: Map keys must be unique/.test(e.message));
});

test('hashPolicy is the sha256 of canonical JSON: key order does not matter, content does', () => {
  const a = { version: 1, rules: [{ name: 'x', type: 'allow', match: {} }] };
  const b = { rules: [{ match: {}, type: 'allow', name: 'x' }], version: 1 };
  assert.equal(hashPolicy(a), hashPolicy(b));
  assert.match(hashPolicy(a), /^[0-9a-f]{64}$/);
  assert.notEqual(hashPolicy(a), hashPolicy({ ...a, version: 2 }));
  assert.equal(compilePolicy(a).hash, hashPolicy(a));
  // sha256("{}")
  assert.equal(hashPolicy({}), '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
});

test('parseDuration is strict', () => {
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('15m'), 900_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('24h'), 86_400_000);
  assert.equal(parseDuration('7d'), 604_800_000);
  for (const bad of ['0s', '1.5h', '1h30m', ' 1h', '1H', '10', 'h', '-1h', '01h', '1w']) {
    assert.throws(() => parseDuration(bad), (e: AirlockError) => e.code === 'invalid_policy', bad);
  }
});

test('policyJsonSchema describes every rule type', () => {
  const schema = JSON.stringify(policyJsonSchema());
  for (const type of RULE_TYPES) assert.ok(schema.includes(`"const":"${type}"`), type);
});

test('diffPolicies shows removed, added and unchanged lines of the sorted YAML', () => {
  const before = { version: 1, rules: [{ name: 'cap', type: 'max_amount', asset: USDC, max: '100' }] };
  const after = { rules: [{ type: 'max_amount', name: 'cap', max: '200', asset: USDC }], version: 1 };
  const diff = diffPolicies(before, after).split('\n');
  assert.deepEqual(diff.filter((l) => !l.startsWith('  ')), ['-     max: "100"', '+     max: "200"']);
  assert.ok(diff.includes('  version: 1'));
  assert.ok(diffPolicies(before, before).split('\n').every((l) => l.startsWith('  ')));
});

test('the example policies in docs/policy.md compile', async () => {
  const { readFileSync } = await import('node:fs');
  const md = readFileSync(new URL('../../../../docs/policy.md', import.meta.url), 'utf8').split('## Examples')[1]!;
  const blocks = [...md.matchAll(/```yaml\n(version: 1[\s\S]*?)```/g)].map((m) => m[1]!);
  assert.equal(blocks.length, 10, 'the examples: fleet, trader, x402 buyer, Nostr agent, Lightning payer, approvals by stakes, Bitcoin payer, smart-account agent, circuit breakers, fleet lifecycle');
  for (const block of blocks) assert.ok(compilePolicy(parsePolicyText(block)).rules.length > 0);
});
