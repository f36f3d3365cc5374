import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backtrackingRisk } from './regex-safety.ts';
import { compilePolicy } from './compile.ts';
import { validatePolicy } from './validate.ts';
import { AirlockError } from '../errors.ts';

// Patterns operators write: each must still be accepted.
const SAFE = [
  '^Sign in to example\\.com',
  '\\bnonce: [0-9a-f]{16}\\b',
  '^(GET|POST) /api/',
  '[a-z]+@[a-z]+\\.com',
  'https?://\\S*\\.(exe|apk)',
  '^0x[0-9a-fA-F]{40}$',
  '(\\d{1,3}\\.){3}\\d{1,3}',
  '^Sign in .* nonce: \\d+$',
  '^Sign in to example\\.com[\\s\\S]*$',
  '-?\\d+(\\.\\d+)?',
  'colou?r',
  '\\p{L}+',
  '(?i:airdrop|giveaway)',
  '([a-z]+\\.)+[a-z]+$',
  '(?=Sign)S',
  '[^\\s]+@',
  '^[a-z0-9_-]{3,32}$',
  '\\u{1F600}',
  '(\\.exe|\\.apk)$',
  '(?<=\\$)\\d+',
  '^\\S+ \\S+ \\S+ \\S+ \\S+ \\S+$',
];

// Super-linear backtracking on a short text: exponential, polynomial, or unbounded by any automaton.
const UNSAFE: [string, RegExp][] = [
  ['^(a+)+$', /two different ways/],
  ['(a|aa)*b', /two different ways/],
  ['(\\w+\\s?)*$', /two different ways/],
  ['(a|a)*', /two different ways/],
  ['(x+x+)+y', /two different ways/],
  ['.*.*x', /two different ways/],
  ['.*foo.*bar', /two different ways/],
  ['\\d+\\d+\\d+x', /two different ways/],
  ['a?a?a?a?aaaa', /two different ways/],
  ['(a{1,100}){1,100}', /two different ways/],
  ['(a*)*', /repeated group that can match empty/],
  ['(a?){30}', /repeated group that can match empty/],
  ['(?:|)(?:|)x', /both match empty/],
  ['(a)\\1', /backreference/],
  ['(?<w>a)\\k<w>', /backreference/],
  ['(?=a+)b', /lookaround/],
  ['(?<!x*)y', /lookaround/],
  ['(a{32}b{32}){32}', /too complex/],
  // Found by review: a lookaround runs a search of its own at every position, unseen by the automaton check.
  [`(?=${'(?:a|[ab])'.repeat(22)}c)`, /lookaround holding alternatives/],
  [`(?=${'a?'.repeat(22)}${'a'.repeat(22)}c)`, /lookaround holding alternatives/],
  [`(?<=c${'(?:a|[ab])'.repeat(20)})`, /lookaround holding alternatives/],
  [`(?:(?=${'a'.repeat(300)})[a-z])+!`, /lookaround testing more than 32/],
  // Found by review: the check's own cost, and the paths alive at once in an unanchored search.
  ['a?'.repeat(2000), /longer than 512/],
  [Array.from({ length: 40 }, (_, i) => `[a-z]+${i % 10}${String.fromCharCode(65 + Math.floor(i / 10))}`).join('|'), /longer than 512|more than 4 unbounded loops/],
  ['[a-z]+0A|[a-z]+1A|[a-z]+2A|[a-z]+3A|[a-z]+4A', /more than 4 unbounded loops/],
];

test('common operator patterns are accepted', () => {
  for (const source of SAFE) assert.equal(backtrackingRisk(source), undefined, source);
});

test('patterns that backtrack super-linearly are refused, with why', () => {
  for (const [source, why] of UNSAFE) assert.match(backtrackingRisk(source) ?? 'accepted', why, source);
});

test('what the check accepts takes linear time per start position, even on adversarial text', () => {
  // Sticky (`y`): one start position, which is what the check bounds (RegExp.test tries every start, so an
  // unanchored pattern with a leading loop, [a-z]+@, takes up to quadratic time over the 16,384 bounded characters).
  // ^(a+)+$ takes seconds on 30 characters; these take milliseconds on 16,384.
  const adversarial = ['a'.repeat(16_384), 'ab'.repeat(8_192), `${'Sign in '.repeat(2_000)}!`, `${'x@'.repeat(8_000)}.`];
  for (const source of SAFE) {
    const regex = new RegExp(source, 'uy');
    const started = performance.now();
    for (const text of adversarial) {
      regex.lastIndex = 0;
      regex.test(text);
    }
    assert.ok(performance.now() - started < 500, source);
  }
});

test('a policy set with an unsafe pattern is refused invalid_policy naming the path and pattern_unsafe; a stored one still compiles', () => {
  const doc = {
    version: 1,
    rules: [
      { name: 'ok', type: 'allow', match: { actions: ['evm.message'], message: { pattern: '^Sign in' } } },
      { name: 'bad', type: 'deny', match: { message: { pattern: '^(a+)+$' } } },
      { name: 'notes', type: 'nostr_event', deny_content_pattern: '(\\w+\\s?)*$' },
    ],
  };
  assert.throws(() => validatePolicy(doc), (e: unknown) => {
    assert.ok(e instanceof AirlockError);
    assert.equal(e.code, 'invalid_policy');
    assert.match(e.message, /^rules\[1\]\.match\.message\.pattern: pattern_unsafe: /);
    const issues = (e.details as { issues: { path: string; code: string }[] }).issues;
    assert.deepEqual(issues.map((i) => [i.path, i.code]), [['rules[1].match.message.pattern', 'pattern_unsafe'], ['rules[2].deny_content_pattern', 'pattern_unsafe']]);
    return true;
  });
  assert.deepEqual(compilePolicy(doc).unsafePatterns?.map((i) => i.path), ['rules[1].match.message.pattern', 'rules[2].deny_content_pattern']);
});
