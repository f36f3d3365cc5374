// Numbers in a policy text (YAML or JSON) whose value is an integer must be written as one: docs/policy.md says
// amounts are decimal strings or plain integers, and `1e6`, `2.0`, `-0`, `+5` or `010` read as 1000000, 2, 0, 5
// and 10 (YAML) would otherwise pass the schema, which only sees the value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AirlockError } from '../errors.ts';
import { compilePolicy, parsePolicyText } from './index.ts';

const U = 'eip155:8453/erc20:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
const yamlWith = (max: string) => `version: 1\nrules:\n  - { name: c, type: max_amount, asset: ${U}, max: ${max} }\n`;
const jsonWith = (max: string) => `{"version": 1, "rules": [{"name": "c", "type": "max_amount", "asset": "${U}", "max": ${max}}]}`;

const refused = (text: string, path: string, source: string) =>
  assert.throws(() => compilePolicy(parsePolicyText(text)), (e: AirlockError) => {
    assert.equal(e.code, 'invalid_policy');
    assert.ok(e.message.startsWith(`${path}: a number written as ${JSON.stringify(source)}`), e.message);
    assert.deepEqual((e.details as { issues: { path: string }[] }).issues.map((i) => i.path), [path]);
    return true;
  }, text);

test('an integer written with an exponent, a fraction, a sign or a leading zero is refused at its path (YAML)', () => {
  for (const form of ['1e6', '1.5e1', '2.0', '-0', '0.0', '+5', '010', '1E3', '1e21', '-0.0']) refused(yamlWith(form), 'rules[0].max', form);
});

test('the same in JSON text (valid JSON forms), which goes through the same parser', () => {
  for (const form of ['1e6', '1.5e1', '2.0', '-0', '0.0', '1E+3']) refused(jsonWith(form), 'rules[0].max', form);
});

test('plain integers and decimal strings still parse; fractions are left to the schema', () => {
  for (const [text, max] of [[yamlWith('1000000'), 1_000_000], [yamlWith('0'), 0], [yamlWith('"1000000"'), '1000000'], [jsonWith('1000000'), 1_000_000], [jsonWith('"10"'), '10']] as const) {
    const doc = parsePolicyText(text) as { rules: { max: unknown }[] };
    assert.equal(doc.rules[0]!.max, max);
    assert.equal(compilePolicy(doc).rules.length, 1);
  }
  // A fraction is not an integer written oddly: the amount schema refuses it as before, a percentage takes it.
  assert.throws(() => compilePolicy(parsePolicyText(yamlWith('1.5'))), (e: AirlockError) => e.code === 'invalid_policy' && /^rules\[0\]\.max: expected an integer amount/.test(e.message));
  const pct = parsePolicyText(`version: 1\nrules:\n  - { name: f, type: bitcoin, max_fee_percent: 0.5 }\n`);
  assert.equal(compilePolicy(pct).rules.length, 1);
  // A negative integer is written as one: the schema's own message says why it is refused.
  assert.throws(() => compilePolicy(parsePolicyText(yamlWith('-5'))), (e: AirlockError) => /^rules\[0\]\.max: amount must not be negative/.test(e.message));
});

test('every such number anywhere in the document is listed, in document order; strings that look like numbers are untouched', () => {
  const text = `version: 1.0\nrules:\n  - { name: r, type: rate_limit, max: 1e1, window: 1h }\n  - { name: c, type: max_amount, asset: ${U}, max: "1e6" }\n`;
  assert.throws(() => parsePolicyText(text), (e: AirlockError) => {
    assert.equal(e.code, 'invalid_policy');
    assert.deepEqual((e.details as { issues: { path: string }[] }).issues.map((i) => i.path), ['version', 'rules[0].max']);
    assert.match(e.message, /^version: a number written as "1\.0".* \(and 1 more issue\)$/);
    return true;
  });
});
