// The verifier's column check (leafMatchesFields) gives the answer of the plain definition, "the leaf
// starts with auditLeafPrefix(columns), ends with auditLeafSuffix(columns), with a data object in
// between", on leaves as the writer makes them and on every kind of edit: a changed, added or dropped
// column, a value that JSON escapes, a shifted boundary, a data that is not an object.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { auditLeaf, auditLeafPrefix, auditLeafSuffix, type AuditLeafFields } from './hash.ts';
import { leafMatchesFields } from './leaf-fields.ts';

function reference(leaf: string, e: AuditLeafFields): boolean {
  const prefix = auditLeafPrefix(e);
  const suffix = auditLeafSuffix(e);
  const data = leaf.slice(prefix.length, leaf.length - suffix.length);
  return leaf.length >= prefix.length + suffix.length + 2 && leaf.startsWith(prefix) && leaf.endsWith(suffix) && data.startsWith('{') && data.endsWith('}');
}

// Values a column can hold, including the ones JSON.stringify escapes or that look like JSON punctuation.
const STRINGS = ['', 'agent', 'ag_00000000000000ff', 'a"b', 'a\\b', 'line\nbreak', '\u0000', '\u001f', 'é', '日本', '😀', '\ud800', 'x\udc00y', '","seq":1', '}', 'allow'];
const INTS = [0, 1, 7, 10, 42, 100, 1_767_225_600_000, 999_999_999_999_999, 1e15, -1, -10, Number.MAX_SAFE_INTEGER, 0.5];

// mulberry32: a fixed seed, so a failure replays.
let seed = 1;
const random = (n: number) => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return (((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * n | 0;
};
const pick = <T>(xs: readonly T[]) => xs[random(xs.length)]!;
const maybe = (xs: readonly string[]) => (random(3) === 0 ? undefined : pick(xs));

function randomFields(): AuditLeafFields {
  const e: AuditLeafFields = { seq: pick(INTS), at: pick(INTS), type: pick(STRINGS), actor: pick(STRINGS) as AuditLeafFields['actor'] };
  const agentId = maybe(STRINGS);
  const sessionId = maybe(STRINGS);
  const action = maybe(STRINGS);
  const decision = maybe(STRINGS);
  if (agentId !== undefined) e.agentId = agentId;
  if (sessionId !== undefined) e.sessionId = sessionId;
  if (action !== undefined) e.action = action;
  if (decision !== undefined) e.decision = decision as AuditLeafFields['decision'];
  return e;
}

/** One column changed, added or dropped. */
function editedFields(e: AuditLeafFields): AuditLeafFields {
  const out = { ...e } as Record<string, unknown>;
  const key = pick(['seq', 'at', 'type', 'actor', 'agentId', 'sessionId', 'action', 'decision'] as const);
  if (key === 'seq' || key === 'at') out[key] = pick(INTS);
  else if (key === 'type' || key === 'actor' || random(2) === 0) out[key] = pick(STRINGS);
  else delete out[key];
  return out as unknown as AuditLeafFields;
}

/** One character inserted, removed or replaced somewhere in the leaf. */
function editedLeaf(leaf: string): string {
  const at = random(leaf.length + 1);
  const c = pick(['"', ',', '0', '1', 'a', '}', '\\', 'é']);
  const how = random(3);
  return how === 0 ? leaf.slice(0, at) + c + leaf.slice(at) : how === 1 ? leaf.slice(0, at) + leaf.slice(at + 1) : leaf.slice(0, at) + c + leaf.slice(at + 1);
}

test('a leaf as the writer makes it matches its own columns, for every kind of value', () => {
  for (let i = 0; i < 3000; i++) {
    const e = randomFields();
    for (const data of ['{}', '{"a":1}', '{"seq":2,"type":"x"}', '"', '', '[]', '{', '1']) {
      const leaf = auditLeaf(e, data);
      assert.equal(leafMatchesFields(leaf, e), reference(leaf, e), `${JSON.stringify(e)} ${JSON.stringify(leaf)}`);
      assert.equal(leafMatchesFields(leaf, e), data.length >= 2 && data.startsWith('{') && data.endsWith('}'), 'data must be an object');
    }
  }
});

test('an edited column or an edited leaf gives the same answer as comparing the prefix and suffix', () => {
  let mismatches = 0;
  for (let i = 0; i < 20_000; i++) {
    const e = randomFields();
    const leaf = auditLeaf(e, random(2) ? '{"n":1}' : '{}');
    for (const [l, f] of [[leaf, editedFields(e)], [editedLeaf(leaf), e], [editedLeaf(leaf), editedFields(e)]] as const) {
      const expected = reference(l, f);
      assert.equal(leafMatchesFields(l, f), expected, `${JSON.stringify(f)} ${JSON.stringify(l)}`);
      if (!expected) mismatches++;
    }
  }
  assert.ok(mismatches > 30_000, 'most edits are caught (the test exercises failures, not only matches)');
});

test('fields of the wrong type (an export line is untrusted JSON) get the answer of the definition', () => {
  const e: AuditLeafFields = { seq: 3, at: 5, type: 'x', actor: 'agent', agentId: 'ag_1', decision: 'allow' };
  const odd = [5, null, true, { a: 1 }, ['x'], '5'] as unknown as string[];
  for (const key of ['type', 'actor', 'agentId', 'decision', 'seq', 'at'] as const) {
    for (const v of odd) {
      const f = { ...e, [key]: v } as AuditLeafFields;
      for (const leaf of [auditLeaf(e, '{}'), auditLeaf(f, '{}')]) assert.equal(leafMatchesFields(leaf, f), reference(leaf, f), `${key}=${JSON.stringify(v)}`);
    }
  }
});

test('a column set to NULL is caught wherever it sits, the decision included (its member must not pass for the end of the data)', () => {
  const e: AuditLeafFields = { seq: 7, at: 2, type: 'sign.request', actor: 'agent', agentId: 'ag_1', sessionId: 'ses_1', action: 'evm.transaction', decision: 'allow' };
  const leaf = auditLeaf(e, '{"a":1}');
  for (const key of ['agentId', 'sessionId', 'action', 'decision'] as const) {
    const { [key]: _, ...dropped } = e;
    assert.equal(leafMatchesFields(leaf, dropped), false, key);
  }
  const { decision: _, ...noDecision } = e;
  assert.equal(leafMatchesFields(auditLeaf(noDecision, '{"a":1}'), e), false, 'nor a decision set where the leaf has none');
});

test('named cases: a changed decision, a missing session, an agent id written with an escape, a truncated leaf', () => {
  const e: AuditLeafFields = { seq: 12, at: 1_767_225_600_012, type: 'sign.request', actor: 'agent', agentId: 'ag_1', sessionId: 'ses_1', action: 'evm.transaction', decision: 'allow' };
  const leaf = auditLeaf(e, '{"n":1}');
  assert.equal(leafMatchesFields(leaf, e), true);
  assert.equal(leafMatchesFields(leaf, { ...e, decision: 'deny' }), false);
  const { sessionId: _, ...noSession } = e;
  assert.equal(leafMatchesFields(leaf, noSession), false);
  assert.equal(leafMatchesFields(leaf.replace('"ag_1"', '"ag\\u005f1"'), e), false, 'the same string, not as JSON.stringify writes it');
  assert.equal(leafMatchesFields(leaf.slice(0, -1), e), false);
  assert.equal(leafMatchesFields(leaf.replace(',"seq":12', ',"seq":012'), e), false);
  assert.equal(leafMatchesFields(leaf.replace(',"seq":12', ',"seq":-12'), { ...e, seq: -12 }), true, 'a negative seq is compared as JSON writes it');
  assert.equal(leafMatchesFields(leaf.replace('"at":1767225600012', '"at":01767225600012'), e), false);
  assert.equal(leafMatchesFields(leaf.replace('"at":1767225600012', '"at":1767225600012.0'), e), false);
});
