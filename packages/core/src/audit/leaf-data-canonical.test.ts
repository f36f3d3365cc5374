// A version-3 leaf's data is the RFC 8785 canonical JSON of one object (docs/audit-format.md). Framing alone
// (starts with `{`, ends with `}`) let `{"a":1},"decision":"allow","z":{…}` through, signed into the tree and
// failing every third-party verifier from that entry on (found by review). The range verifier parses the data of
// every leaf from `canonicalDataFrom` on (default: all), on both of its paths (`push`, `pushRow`), and spares the
// leaves below it (a signed head's).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson } from '../canonical-json.ts';
import type { AuditLeafRow } from '../ports/audit-leaf-reader.ts';
import { auditLeaf, auditLeafPrefix, auditLeafSuffix, type AuditLeafFields } from './hash.ts';
import { isCanonicalJsonObject, leafDataIfFieldsMatch, leafMatchesFields } from './leaf-fields.ts';
import { AuditLogVerifier, LeafRangeVerifier, type VerifiableEntry } from './log-verifier.ts';
import { leafHashHex } from './merkle.ts';

test('isCanonicalJsonObject: exactly the text canonicalJson writes for an object', () => {
  for (const text of ['{}', '{"a":1}', '{"a":[1,"x",null,true],"b":{"c":-0.5}}', canonicalJson({ z: 'é\u2028', a: 'q"\\', m: 1e21, n: [{}] })]) {
    assert.equal(isCanonicalJsonObject(text), true, text);
  }
  for (const text of [
    '{"a":1},"decision":"allow","z":{"to":"0xEVIL","to":"0xGOOD"}', // members after the object
    '{"a":1}{"b":2}',
    '{"a":1,"a":1}', // a duplicate key (even the same value)
    '{"b":1,"a":2}', // unsorted
    '{ "a":1}',
    '{"a":1.0}',
    '{"a":1e2}',
    '{"a":"\\u00e9"}', // é escaped: canonical JSON writes it as itself
    '{"a":"\\/"}',
    '[]',
    '"{}"',
    'null',
    '1',
    '{',
    '',
  ]) {
    assert.equal(isCanonicalJsonObject(text), false, text);
  }
});

const fields = (seq: number): AuditLeafFields => ({ seq, at: 1_000 + seq, type: 'sign.request', actor: 'agent', agentId: 'ag_1', decision: 'deny' });
const SPLICED = '{"requestHash":"aa"},"decision":"allow","z":{"to":"0xEVIL","to":"0xGOOD"}';

/** Three entries (seq = leaf + 1), the second's leaf framing `data` as given. */
function entries(data: string): VerifiableEntry[] {
  return [1, 2, 3].map((seq) => {
    const f = fields(seq);
    const leaf = seq === 2 ? auditLeafPrefix(f) + data + auditLeafSuffix(f) : auditLeaf(f, canonicalJson({ n: seq }));
    return { ...f, leafIndex: seq - 1, hash: leafHashHex(leaf), hashVersion: 3, leaf };
  });
}

const row = (e: VerifiableEntry): AuditLeafRow => [e.seq, e.leafIndex!, 3, e.hash, e.at, e.type, e.actor, e.agentId ?? null, e.sessionId ?? null, e.action ?? null, e.decision ?? null, e.leaf!, null, null];

test('the spliced leaf frames its columns: only parsing its data shows it is not one object', () => {
  const [, forged] = entries(SPLICED);
  assert.equal(leafMatchesFields(forged!.leaf!, forged!), true);
  assert.equal(leafDataIfFieldsMatch(forged!.leaf!, forged!), SPLICED);
  assert.equal(leafDataIfFieldsMatch(forged!.leaf!, { ...forged!, decision: 'allow' }), undefined);
});

for (const [name, data] of [
  ['spliced members', SPLICED],
  ['a duplicate key', '{"to":"0xEVIL","to":"0xGOOD"}'],
  ['unsorted keys', '{"b":1,"a":2}'],
] as const) {
  test(`a leaf whose data has ${name} fails where no signed head covers it (push and pushRow), and is spared under one`, () => {
    const log = entries(data);
    for (const via of ['push', 'pushRow'] as const) {
      const feed = (v: LeafRangeVerifier) => log.every((e) => (via === 'push' ? v.push(e) : v.pushRow(row(e))));
      const all = new LeafRangeVerifier({ start: 0 });
      assert.equal(feed(all), false, via);
      assert.deepEqual(all.result().firstBad, { seq: 2, reason: 'entry data in its stored leaf is not the canonical JSON of an object (edited)' }, via);
      const from1 = new LeafRangeVerifier({ start: 0, canonicalDataFrom: 1 }); // leaf 1 is the forged one
      assert.equal(feed(from1), false, via);
      assert.equal(from1.result().firstBad?.seq, 2, via);
      const under = new LeafRangeVerifier({ start: 0, canonicalDataFrom: 2 }); // a signed head of size 2 covers it
      assert.equal(feed(under), true, via);
      assert.equal(under.result().end, 3, via);
    }
    // The whole-log verifier (AuditLogVerifier, export lines without data): every leaf by default.
    const v = new AuditLogVerifier();
    assert.equal(log.every((e) => v.push(e)), false);
    assert.equal(v.finish([], [], { verifyTreeHead: () => false, verifyCheckpoint: () => false }).firstBad?.seq, 2);
    const spared = new AuditLogVerifier([], [], undefined, { canonicalDataFrom: 2 });
    assert.equal(log.every((e) => spared.push(e)), true);
  });
}

test('an export line carrying data is held to it: the forged leaf fails whatever data the line claims', () => {
  const log = entries(SPLICED);
  for (const data of [{}, { requestHash: 'aa' }, JSON.parse(SPLICED.slice(0, SPLICED.indexOf('}') + 1))]) {
    const v = new LeafRangeVerifier({ start: 0, canonicalDataFrom: 3 });
    assert.equal(log.every((e) => v.push(e.seq === 2 ? { ...e, data } : e)), false);
    assert.match(v.result().firstBad!.reason, /does not match its stored leaf/);
  }
});
