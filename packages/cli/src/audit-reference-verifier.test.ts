// The reference verifier (tools/audit-verifier/verify.mjs, no Airlock code) against a real export: it
// verifies, and catches an edited entry, a deleted entry, reordered entries and a forged head; with the
// audit key, an export whose entries no signed head covers, and one that misses a pinned size or root. It
// also checks a receipt (its entry's fields against the proven leaf) and a consistency proof served over HTTP,
// an export with many signed heads, and an upgraded store's export: version-1 entries (integer-like keys)
// anchored by a legacy checkpoint, which it verifies as `airlock audit verify --file` does. A head or checkpoint
// not as the signer writes it (a time as a JSON string, an upper-case root) is malformed to both verifiers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from '../../server/src/testing/harness.ts';
import { auditLeaf, canonicalJson, checkpointDigest, leafHash, MerkleFrontier, treeHeadDigest } from '@airlock/core';
import { EXPORT_FORMAT, verifyExport as airlockVerifyExport } from './commands/audit.ts';
import { signedAuditLog } from '../../server/src/testing/signed-audit-log.ts';
import { legacyEntryHash, writeLegacyAuditChain } from '../../server/src/testing/legacy-audit.ts';
import { cliEnv, runCli } from './testing/cli-process.ts';

const VERIFY_URL = new URL('../../../tools/audit-verifier/verify.mjs', import.meta.url);
const VERIFY_MJS = VERIFY_URL.pathname;
// A plain .mjs file on purpose (it must not depend on Airlock's TypeScript): loaded as untyped.
interface RefResult { ok: boolean; rootHash: string; treeHeads: number; checkpoints: number; unanchored: number; firstBad: { seq: number; reason: string }; anchoring?: { code: string; reason: string } }
const ref = (await import(VERIFY_URL.href)) as {
  verifyExport(text: string, o: { publicKey?: string; allowUnanchored?: boolean; minTreeSize?: number; expectRoot?: string }): RefResult;
  verifyReceipt(r: unknown, publicKey: string): boolean;
  verifyConsistencyResponse(c: unknown, publicKey: string, pins?: { fromSize?: number; fromRoot?: string; toSize?: number; toRoot?: string }): boolean;
};

describe('reference audit verifier (no Airlock code)', () => {
  let h: Harness;
  let dir: string;
  let lines: string[];
  let publicKey: string;
  let token: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'airlock-refverify-'));
    h = await startHarness();
    ({ token } = await provisionAgent(h, { policy: usdcPolicy() }));
    for (let i = 0; i < 5; i++) assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, i) })).status, 200);
    assert.ok(await h.airlock.audit.checkpoint());
    for (let i = 5; i < 9; i++) assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, i) })).status, 200);
    assert.ok(await h.airlock.audit.checkpoint());
    // Exactly what `airlock audit export` writes (commands/audit.ts exportLog).
    const heads = (await h.admin('GET', '/v1/audit/checkpoints')).body;
    publicKey = heads.publicKey;
    const { entries } = (await h.admin('GET', '/v1/audit?limit=1000')).body;
    lines = [JSON.stringify({ format: EXPORT_FORMAT, publicKey, treeHeads: heads.treeHeads, checkpoints: heads.checkpoints }), ...entries.map((e: { at: string }) => JSON.stringify({ ...e, at: Date.parse(e.at) }))];
  });
  after(async () => {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const run = (content: string[]) => ref.verifyExport(`${content.join('\n')}\n`, { publicKey });

  test('a real export verifies, from the command line too, with the same root as Airlock computes', async () => {
    const result = run(lines);
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.treeHeads, 2);
    assert.equal(result.rootHash, (await h.admin('POST', '/v1/audit/verify')).body.rootHash);
    const path = join(dir, 'export.jsonl');
    writeFileSync(path, `${lines.join('\n')}\n`);
    const cli = await runCli([], cliEnv(), [process.execPath, VERIFY_MJS, path, '--public-key', publicKey]);
    assert.equal(cli.code, 0, cli.stdout + cli.stderr);
    assert.match(cli.stdout, /^OK: /);
  });

  test('an edited entry, a deleted entry, reordered entries and a forged head are each caught', () => {
    const last = lines.length - 1; // a sign.request that was allowed
    const edit = (i: number, f: (e: Record<string, unknown>) => void) => lines.map((l, k) => (k === i ? JSON.stringify(((e) => (f(e), e))(JSON.parse(l))) : l));
    const cases: [string, string[], RegExp][] = [
      ['edited data', edit(3, (e) => ((e.data as Record<string, unknown>).digest = '00'.repeat(32))), /data does not match the leaf/],
      ['edited decision', edit(last, (e) => (e.decision = 'deny')), /decision does not match the leaf/],
      ['edited leaf', edit(last, (e) => (e.leaf = String(e.leaf).replace('"allow"', '"deny"'))), /edited/],
      ['deleted entry', lines.filter((_, k) => k !== 3), /deleted or reordered/],
      ['reordered entries', lines.map((l, k) => (k === 3 ? lines[4]! : k === 4 ? lines[3]! : l)), /deleted or reordered|out of order/],
      ['truncated log', lines.slice(0, -2), /truncated/],
    ];
    for (const [name, content, reason] of cases) {
      const r = run(content);
      assert.equal(r.ok, false, name);
      assert.match(r.firstBad.reason, reason, name);
    }
    const header = JSON.parse(lines[0]!);
    const forgedRoot = { ...header, treeHeads: header.treeHeads.map((t: { rootHash: string }, i: number) => (i === 1 ? { ...t, rootHash: 'ab'.repeat(32) } : t)) };
    assert.match(run([JSON.stringify(forgedRoot), ...lines.slice(1)]).firstBad.reason, /not signed by the audit key/);
    const otherKey = { ...header, publicKey: 'cd'.repeat(32), treeHeads: header.treeHeads.map((t: object) => ({ ...t, publicKey: 'cd'.repeat(32) })) };
    assert.equal(run([JSON.stringify(otherKey), ...lines.slice(1)]).ok, false, 'heads are checked against the key the auditor holds');
  });

  test('a tree head as no signer writes it (its time or size a JSON string, which BigInt reads as the signed number; its root in upper case) is malformed to both verifiers (the reference: exit 2)', async () => {
    const header = JSON.parse(lines[0]!);
    const newest = header.treeHeads.at(-1);
    const edits: [string, object][] = [['time as a string', { at: String(newest.at) }], ['size as a string', { treeSize: String(newest.treeSize) }], ['root in upper case', { rootHash: newest.rootHash.toUpperCase() }]];
    for (const [name, edit] of edits) {
      const content = [JSON.stringify({ ...header, treeHeads: [...header.treeHeads.slice(0, -1), { ...newest, ...edit }] }), ...lines.slice(1)];
      const says = { seq: 'treeSize' in edit ? 1 : newest.treeSize, reason: 'tree head 2 of 2 is malformed (a whole size and time, 0 or more, and a 32-byte hash in lowercase hex)' };
      assert.deepEqual([run(content).ok, run(content).firstBad], [false, says], name);
      const path = join(dir, `malformed-head-${name.replace(/\W/g, '-')}.jsonl`);
      writeFileSync(path, `${content.join('\n')}\n`);
      const [airlock, reference] = await Promise.all([airlockVerifyExport(path, publicKey), referenceCommandLine(path, publicKey)]);
      assert.deepEqual([airlock.ok, airlock.firstBad], [false, says], name);
      assert.equal(reference.code, 2, `${name}: ${reference.stdout}${reference.stderr}`);
      assert.match(reference.stdout, /^FAILED at entry \d+: tree head 2 of 2 is malformed/m, name);
    }
  });

  test('with the audit key, an export whose heads were removed (rewritten, or cut to 2 entries) or with entries past its newest head fails with a code and exit 5; --allow-unanchored accepts it; --min-tree-size and --expect-root pin what an earlier export showed', async () => {
    const header = JSON.parse(lines[0]!);
    const [older, newer] = header.treeHeads as { treeSize: number; rootHash: string }[];
    const entries = lines.slice(1).map((l) => JSON.parse(l));
    const last = entries.findLastIndex((e) => e.type === 'sign.request');
    const forged = entries.map((e, i) => {
      if (i !== last) return e;
      const edited = { ...e, data: { ...e.data, intent: { ...e.data.intent, summary: 'FORGED: transfer 999999 USDC' } } };
      const leaf = auditLeaf(edited, canonicalJson(edited.data));
      return { ...edited, leaf, hash: Buffer.from(leafHash(leaf)).toString('hex') };
    });
    const text = (h: object, es: object[]) => [JSON.stringify(h), ...es.map((e) => JSON.stringify(e))];
    const code = (r: RefResult) => r.anchoring?.code;

    const stripped = text({ ...header, treeHeads: [] }, forged);
    assert.equal(run(stripped).firstBad, undefined, 'every entry matches its own hash');
    assert.equal(code(run(stripped)), 'audit_no_signed_head');
    assert.equal(code(run(text({ ...header, treeHeads: [] }, entries.slice(0, 2)))), 'audit_no_signed_head', 'cut to 2 entries');
    assert.equal(code(run(text({ ...header, treeHeads: [older] }, entries))), 'audit_unanchored');
    const allowed = ref.verifyExport(`${stripped.join('\n')}\n`, { publicKey, allowUnanchored: true });
    assert.deepEqual([allowed.ok, allowed.unanchored], [true, entries.length]);
    assert.equal(ref.verifyExport(`${stripped.join('\n')}\n`, {}).ok, true, 'without a key: the header\'s key is trusted anyway');

    const cut = text({ ...header, treeHeads: [older] }, entries.slice(0, older!.treeSize));
    assert.equal(run(cut).ok, true, 'a prefix the key signed');
    const pinned = (content: string[], minTreeSize: number, expectRoot?: string) => ref.verifyExport(`${content.join('\n')}\n`, { publicKey, minTreeSize, ...(expectRoot ? { expectRoot } : {}) });
    assert.equal(code(pinned(cut, newer!.treeSize)), 'audit_below_min_tree_size');
    assert.equal(pinned(lines, newer!.treeSize, newer!.rootHash.toUpperCase()).ok, true);
    assert.equal(code(pinned(lines, newer!.treeSize, older!.rootHash)), 'audit_root_mismatch');

    // The command line: exit 5 and the code, exit 0 with --allow-unanchored, exit 0 with the right pins.
    const cli = (content: string[], ...args: string[]) => {
      const path = join(dir, `ref-${args.join('_').replace(/[^a-z0-9_-]/gi, '') || 'plain'}-${content.length}.jsonl`);
      writeFileSync(path, `${content.join('\n')}\n`);
      return runCli([], cliEnv(), [process.execPath, VERIFY_MJS, path, '--public-key', publicKey, ...args]);
    };
    const [refused, accepted, below, ok] = await Promise.all([cli(stripped), cli(stripped, '--allow-unanchored'), cli(cut, '--min-tree-size', String(newer!.treeSize)), cli(lines, '--min-tree-size', String(newer!.treeSize), '--expect-root', newer!.rootHash)]);
    assert.equal(refused.code, 5, refused.stdout + refused.stderr);
    assert.match(refused.stdout, new RegExp(`^FAILED \\[audit_no_signed_head\\]: no signed tree head covers the log: none of its ${entries.length} entries`));
    assert.equal(accepted.code, 0, accepted.stdout + accepted.stderr);
    assert.match(accepted.stdout, new RegExp(`\\(${entries.length} newest entries not under a signed head\\)$`, 'm'));
    assert.equal(below.code, 5, below.stdout + below.stderr);
    assert.match(below.stdout, /^FAILED \[audit_below_min_tree_size\]: /);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  });

  test('a receipt whose entry says something its proven leaf does not (another seq, type, decision, actor, agent, time or data) is refused', async () => {
    const [a, b] = [await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, 30) }), await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, 31) })];
    await h.airlock.audit.checkpoint();
    const receipt = (await h.call('GET', `/v1/audit/receipts/${a.body.receipt.auditSeq}`, { token })).body;
    assert.equal(ref.verifyReceipt(receipt, publicKey), true);
    const seqB = b.body.receipt.auditSeq;
    const changed: Record<string, unknown>[] = [
      { type: 'sign.failed' }, { decision: 'deny' }, { actor: 'operator' }, { agentId: 'ag_0000000000000000' }, { at: new Date(Date.parse(receipt.entry.at) + 1).toISOString() },
      { data: { ...receipt.entry.data, digest: '00'.repeat(32) } }, { data: { forged: true } }, { sessionId: undefined }, { action: 'evm.message' },
    ];
    for (const change of changed) assert.equal(ref.verifyReceipt({ ...receipt, entry: { ...receipt.entry, ...change } }, publicKey), false, JSON.stringify(change));
    // A's proof shown as entry B (what a lying server could answer for B).
    assert.equal(ref.verifyReceipt({ ...receipt, receipt: { ...receipt.receipt, auditSeq: seqB }, entry: { ...receipt.entry, seq: seqB, decision: 'deny' } }, publicKey), false);
  });

  test('a receipt and a consistency proof from the API verify; a receipt moved to another leaf does not', async () => {
    const signed = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, 20) });
    await h.airlock.audit.checkpoint();
    const receipt = (await h.call('GET', `/v1/audit/receipts/${signed.body.receipt.auditSeq}`, { token })).body;
    assert.equal(ref.verifyReceipt(receipt, publicKey), true);
    assert.equal(ref.verifyReceipt({ ...receipt, receipt: { ...receipt.receipt, leafIndex: receipt.receipt.leafIndex - 1 } }, publicKey), false);
    const heads = (await h.admin('GET', '/v1/audit/checkpoints')).body.treeHeads;
    const c = (await h.admin('GET', `/v1/audit/consistency?from=${heads[0].treeSize}&to=${heads.at(-1).treeSize}`)).body;
    assert.equal(ref.verifyConsistencyResponse(c, publicKey), true);
    assert.equal(ref.verifyConsistencyResponse({ ...c, from: heads[1] }, publicKey), false);
  });

  test('consistency pinned to heads the auditor holds: a response from another view (other heads, each signed and linked) is refused', async () => {
    for (let i = 40; i < 42; i++) assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, i) })).status, 200);
    await h.airlock.audit.checkpoint();
    const heads = (await h.admin('GET', '/v1/audit/checkpoints')).body.treeHeads as { treeSize: number; rootHash: string }[];
    const [held, middle, newest] = [heads[0]!, heads[1]!, heads.at(-1)!];
    // What the auditor held is `held`; the server answers with a proof from `middle` instead, which links fine.
    const other = (await h.admin('GET', `/v1/audit/consistency?from=${middle.treeSize}&to=${newest.treeSize}`)).body;
    assert.equal(ref.verifyConsistencyResponse(other, publicKey), true, 'unpinned: signed and linked');
    assert.equal(ref.verifyConsistencyResponse(other, publicKey, { fromSize: held.treeSize, fromRoot: held.rootHash }), false, 'another from head');
    assert.equal(ref.verifyConsistencyResponse(other, publicKey, { fromRoot: held.rootHash }), false, 'another from root');
    const honest = (await h.admin('GET', `/v1/audit/consistency?from=${held.treeSize}&to=${newest.treeSize}`)).body;
    const pins = { fromSize: held.treeSize, fromRoot: held.rootHash.toUpperCase(), toSize: newest.treeSize, toRoot: newest.rootHash };
    assert.equal(ref.verifyConsistencyResponse(honest, publicKey, pins), true);
    assert.equal(ref.verifyConsistencyResponse(honest, publicKey, { ...pins, toRoot: held.rootHash }), false, 'another to root');
    assert.equal(ref.verifyConsistencyResponse({ ...honest, proof: null }, publicKey, pins), false, 'a malformed proof is false, not an exception');

    const cli = (body: object, ...args: string[]) => {
      const path = join(dir, `consistency-${args.length}-${body === other ? 'other' : 'honest'}.json`);
      writeFileSync(path, JSON.stringify(body));
      return runCli([], cliEnv(), [process.execPath, VERIFY_MJS, 'consistency', path, '--public-key', publicKey, ...args]);
    };
    const [unpinned, refused, accepted] = await Promise.all([cli(other), cli(other, '--from-size', String(held.treeSize), '--from-root', held.rootHash), cli(honest, '--from-size', String(held.treeSize), '--from-root', held.rootHash)]);
    assert.equal(unpinned.code, 0, unpinned.stdout + unpinned.stderr);
    assert.match(unpinned.stderr, /not pinned/);
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.match(refused.stdout, /^FAILED/);
    assert.equal(accepted.code, 0, accepted.stdout + accepted.stderr);
    assert.match(accepted.stdout, new RegExp(`^OK: size ${newest.treeSize} \\(root ${newest.rootHash}\\) extends size ${held.treeSize}`));
    assert.doesNotMatch(accepted.stderr, /not pinned/);
  });
});

/** The shared signed log (testing/signed-audit-log.ts), with its export as text. */
function signedLog() {
  const { publicKey, entries, treeHead, receiptAt } = signedAuditLog();
  const exportText = [{ format: EXPORT_FORMAT, publicKey, treeHeads: [treeHead], checkpoints: [] }, ...entries].map((l) => JSON.stringify(l)).join('\n') + '\n';
  return { publicKey, receiptAt, exportText };
}

describe('reference audit verifier: edits that canonicalise like the original, and malformed receipts', () => {
  const { publicKey, receiptAt, exportText } = signedLog();
  const receipt = (text: string) => ref.verifyReceipt(JSON.parse(text), publicKey);

  test('1e999 for a null (versions 1 and 3) and an added __proto__ member (version 1) are refused in a receipt and in an export', () => {
    assert.equal(ref.verifyExport(exportText, { publicKey }).ok, true, 'the log as written');
    // JSON.parse reads 1e999 as Infinity, which JSON.stringify writes as null: the edit would hash like the original.
    // In an export, a 1e999 line is not what the exporter writes (JSON.stringify would write null): refused before any hash.
    const edits: [string, (text: string) => string, RegExp][] = [
      ['1e999 in a version-1 entry', (t) => t.replace('"note":null', '"note":1e999'), /line 2 is not as the exporter writes it/],
      ['1e999 in a version-3 entry', (t) => t.replace('"data":{"amount":null', '"data":{"amount":1e999'), /line 4 is not as the exporter writes it/],
      // The version-1 form drops __proto__ members (assignment sets the prototype instead): an added one is unseen by the hash.
      ['__proto__ added to a version-1 entry', (t) => t.replace('"note":null', '"note":null,"__proto__":{"approvedBy":"someone"}'), /chain hash/],
      ['__proto__ nested in a version-1 entry', (t) => t.replace('"note":null', '"note":{"__proto__":1}'), /chain hash/],
    ];
    for (const [name, edit, reason] of edits) {
      const leaf = name.includes('version-3') ? 4 : 1;
      assert.equal(receipt(receiptAt(leaf)), true, `${name}: as written`);
      assert.notEqual(edit(receiptAt(leaf)), receiptAt(leaf));
      assert.equal(receipt(edit(receiptAt(leaf))), false, `${name}: receipt`);
      const r = ref.verifyExport(edit(exportText), { publicKey });
      assert.equal(r.ok, false, `${name}: export`);
      assert.match(r.firstBad.reason, reason, name);
    }
  });

  test('a malformed proof or a fractional leaf index does not verify (false), never an exception', () => {
    const honest = JSON.parse(receiptAt(4));
    assert.equal(ref.verifyReceipt(honest, publicKey), true);
    const edits: [string, (r: any) => void][] = [
      ['proof: null', (r) => (r.proof = null)],
      ['a proof element that is not hex', (r) => (r.proof[0] = 'zz')],
      ['a proof element that is not a string', (r) => (r.proof[0] = 7)],
      ['rootHash with a tail that is not hex', (r) => (r.treeHead.rootHash += 'zz')],
      // BigInt("1733…") is the signed time, so only the well-formedness rule refuses it.
      ['the head\'s time as a JSON string', (r) => (r.treeHead.at = String(r.treeHead.at))],
      ['no entry', (r) => delete r.entry],
      // The RFC 9162 walk halves the index, so leaf 4.5 would be taken for leaf 4 and proven.
      ['leaf 4.5 for the entry at leaf 4', (r) => (r.receipt.leafIndex = r.entry.leafIndex = 4.5)],
    ];
    for (const [name, edit] of edits) {
      const r = structuredClone(honest);
      edit(r);
      assert.equal(ref.verifyReceipt(r, publicKey), false, name);
    }
  });
});

/** The reference verifier's command line (a plain `node verify.mjs`, as a third party runs it). */
const referenceCommandLine = (path: string, publicKey: string, ...args: string[]) => runCli([], cliEnv(), [process.execPath, VERIFY_MJS, path, '--public-key', publicKey, ...args]);

describe('reference audit verifier: an export carrying many signed heads', () => {
  // The checkpointer signs a head every 10 s while the log grows and an export carries them all: the
  // verifier gets every head's root from one pass over the leaves (it used to rebuild the tree per head).
  const secret = schnorr.utils.randomSecretKey();
  const publicKey = bytesToHex(schnorr.getPublicKey(secret));
  const signHead = (treeSize: number, rootHash: string) => {
    const head = { treeSize, rootHash, at: 1_700_000_000_000 + treeSize * 10, publicKey };
    return { ...head, signature: bytesToHex(schnorr.sign(treeHeadDigest(head), secret)) };
  };
  const ENTRIES = 5_000;
  const EVERY = 10;
  const lines: string[] = [];
  const heads: ReturnType<typeof signHead>[] = [];
  let newest: ReturnType<typeof signHead>;
  const exportOf = (treeHeads: object[]) => [JSON.stringify({ format: EXPORT_FORMAT, publicKey, treeHeads, checkpoints: [] }), ...lines].join('\n') + '\n';
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'airlock-refverify-heads-'));
    const tree = new MerkleFrontier();
    for (let seq = 1; seq <= ENTRIES; seq++) {
      const fields = { seq, at: 1_700_000_000_000 + seq, type: 'sign.request', actor: 'agent' as const, agentId: 'ag_1', decision: 'allow' as const };
      const data = { n: seq, digest: 'ab'.repeat(32) };
      const leaf = auditLeaf(fields, canonicalJson(data));
      const hash = leafHash(leaf);
      tree.push(hash);
      lines.push(JSON.stringify({ ...fields, leafIndex: seq - 1, data, hash: bytesToHex(hash), hashVersion: 3, leaf }));
      if (seq % EVERY === 0) heads.push(signHead(seq, bytesToHex(tree.root())));
    }
    newest = heads.at(-1)!;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test(`${ENTRIES} entries under ${ENTRIES / EVERY} signed heads (the newest repeated 100 times) verify, as \`airlock audit verify --file\` says, with the same root`, async () => {
    const treeHeads = [...heads, ...Array.from({ length: 100 }, () => newest)];
    const text = exportOf(treeHeads);
    const result = ref.verifyExport(text, { publicKey });
    assert.deepEqual([result.ok, result.treeHeads, result.unanchored, result.rootHash], [true, treeHeads.length, 0, newest.rootHash], JSON.stringify(result));
    const path = join(dir, 'many-heads.jsonl');
    writeFileSync(path, text);
    const [airlock, reference] = await Promise.all([runCli(['audit', 'verify', '--file', path, '--public-key', publicKey], cliEnv()), referenceCommandLine(path, publicKey)]);
    assert.equal(airlock.code, 0, airlock.stdout + airlock.stderr);
    assert.match(airlock.stdout, new RegExp(`^OK: ${ENTRIES} entries, ${treeHeads.length} signed tree heads, root ${newest.rootHash.slice(0, 16)}`, 'm'));
    assert.equal(reference.code, 0, reference.stdout + reference.stderr);
    assert.match(reference.stdout, new RegExp(`^OK: ${ENTRIES} entries, ${treeHeads.length} signed tree heads, root ${newest.rootHash}$`, 'm'));
  });

  test('among them, one head signed over another root (at a size that is no power of two) is refused by both (the reference: exit 2)', async () => {
    const at = 250; // the head of size 2,500
    const wrong = signHead(heads[at - 1]!.treeSize, heads[at]!.rootHash);
    const path = join(dir, 'wrong-root.jsonl');
    writeFileSync(path, exportOf(heads.map((h, i) => (i === at - 1 ? wrong : h))));
    const [airlock, reference] = await Promise.all([airlockVerifyExport(path, publicKey), referenceCommandLine(path, publicKey)]);
    assert.deepEqual(airlock.firstBad?.seq, 2500, JSON.stringify(airlock));
    assert.equal(reference.code, 2, reference.stdout + reference.stderr);
    assert.match(reference.stdout, /^FAILED at entry 2500: the tree does not match the signed tree head of size 2500$/m);
  });
});

// An upgraded store: its version-1 chain (data with integer-like keys, where the old form and RFC 8785 order
// members differently) and the legacy checkpoint the audit key signed over its head, exported as
// `airlock audit export` writes it before any tree head exists.
for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`reference audit verifier: an export anchored by a legacy checkpoint (${store})`, () => {
    let h: Harness;
    let dir: string;
    let publicKey: string;
    let header: { format: string; publicKey: string; treeHeads: unknown[]; checkpoints: { seq: number; headHash: string; at: number; publicKey: string; signature: string }[] };
    let entries: Record<string, unknown>[];
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), `airlock-refverify-legacy-${store}-`));
      h = await startHarness({ store });
      const legacyHead = await writeLegacyAuditChain(h, store);
      const { keys, auditKeyPath } = h.airlock.deps;
      const at = Date.now();
      const signature = bytesToHex(await keys.signSchnorr(auditKeyPath, checkpointDigest({ seq: legacyHead.seq, headHash: legacyHead.hash, at })));
      await h.airlock.store.appendCheckpoint({ seq: legacyHead.seq, headHash: legacyHead.hash, at, publicKey: await h.airlock.audit.auditPublicKey(), signature });
      const heads = (await h.admin('GET', '/v1/audit/checkpoints')).body;
      publicKey = heads.publicKey;
      header = { format: EXPORT_FORMAT, publicKey, treeHeads: heads.treeHeads, checkpoints: heads.checkpoints };
      entries = (await h.admin('GET', '/v1/audit?limit=1000')).body.entries.map((e: { at: string }) => ({ ...e, at: Date.parse(e.at) }));
    });
    after(async () => {
      await h.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const write = (name: string, hdr: object, es: object[]) => {
      const path = join(dir, `${name}.jsonl`);
      writeFileSync(path, [hdr, ...es].map((l) => JSON.stringify(l)).join('\n') + '\n');
      return path;
    };

    test('it verifies with the audit key (version-1 entries with integer-like keys included), exit 0, as `airlock audit verify --file` says, with the same root as Airlock computes', async () => {
      assert.deepEqual([header.treeHeads.length, header.checkpoints.length, entries.map((e) => e.hashVersion)], [0, 1, [1, 1, 1]]);
      assert.match(JSON.stringify(entries[0]!.data), /"labels":\{"9":"nine","10":"ten"\}/, 'data as the v1 form hashed it: integer-like keys first, in numeric order');
      const path = write('legacy', header, entries);
      const result = ref.verifyExport([header, ...entries].map((l) => JSON.stringify(l)).join('\n'), { publicKey });
      assert.deepEqual([result.ok, result.checkpoints, result.unanchored], [true, 1, 0], JSON.stringify(result));
      assert.equal(result.rootHash, (await h.admin('POST', '/v1/audit/verify')).body.rootHash);
      const airlock = await airlockVerifyExport(path, publicKey);
      assert.deepEqual([airlock.ok, airlock.checkpoints, airlock.unanchored, airlock.rootHash], [true, 1, 0, result.rootHash], JSON.stringify(airlock));
      const reference = await referenceCommandLine(path, publicKey);
      assert.equal(reference.code, 0, reference.stdout + reference.stderr);
      assert.match(reference.stdout, new RegExp(`^OK: 3 entries, 0 signed tree heads and 1 legacy checkpoints, root ${result.rootHash}$`, 'm'));
    });

    test('a forged checkpoint, one the log is cut below, or one with its time as a string is refused by both (the reference: exit 2); without it, audit_no_signed_head (exit 5)', async () => {
      const [cp] = header.checkpoints;
      const signCheckpoint = async (c: { seq: number; headHash: string; at: unknown }) => bytesToHex(await h.airlock.deps.keys.signSchnorr(h.airlock.deps.auditKeyPath, checkpointDigest(c as never)));
      const other = schnorr.utils.randomSecretKey();
      const notSigned = (seq: number) => new RegExp(`^FAILED at entry ${seq}: checkpoint at entry ${seq} is not signed by the audit key$`, 'm');
      const cases: [string, object, object[], number, RegExp][] = [
        ['signature of another key', { ...header, checkpoints: [{ ...cp, signature: bytesToHex(schnorr.sign(checkpointDigest(cp!), other)) }] }, entries, 3, notSigned(3)],
        ['its time moved', { ...header, checkpoints: [{ ...cp, at: cp!.at + 1 }] }, entries, 3, notSigned(3)],
        ['a forged one beside the genuine one', { ...header, checkpoints: [{ ...cp, seq: 2, headHash: entries[1]!.hash, signature: '11'.repeat(64) }, cp] }, entries, 2, notSigned(2)],
        ['log cut below it', header, entries.slice(0, 2), 3, /^FAILED at entry 3: log truncated: a signed checkpoint covers 3 entries, 2 present$/m],
        // Signed as it stands (JCS of a string time) by the audit key itself: still no checkpoint the signer writes.
        ['its time a JSON string, signed so', { ...header, checkpoints: [{ ...cp, at: String(cp!.at), signature: await signCheckpoint({ ...cp!, at: String(cp!.at) }) }] }, entries, 3, /^FAILED at entry 3: checkpoint 1 of 1 is malformed \(a whole size and time, 0 or more, and a 32-byte hash in lowercase hex\)$/m],
      ];
      for (const [name, hdr, es, seq, says] of cases) {
        const path = write(name.replace(/\W/g, '-'), hdr, es);
        const [airlock, reference] = await Promise.all([airlockVerifyExport(path, publicKey), referenceCommandLine(path, publicKey)]);
        assert.equal(reference.code, 2, `${name}: ${reference.stdout}${reference.stderr}`);
        assert.match(reference.stdout, says, name);
        assert.deepEqual([airlock.ok, airlock.firstBad?.seq], [false, seq], `${name}: ${JSON.stringify(airlock)}`);
      }
      const path = write('no-checkpoint', { ...header, checkpoints: [] }, entries);
      const [airlock, reference] = await Promise.all([airlockVerifyExport(path, publicKey), referenceCommandLine(path, publicKey)]);
      assert.equal(airlock.anchoring?.code, 'audit_no_signed_head');
      assert.equal(reference.code, 5, reference.stdout + reference.stderr);
      assert.match(reference.stdout, /^FAILED \[audit_no_signed_head\]: /m);
    });

    test('an entry edited under the checkpoint (its chain hashed again) is refused by both, with --allow-unanchored too', async () => {
      const edited = entries.map((e) => ({ ...e }));
      // Entry 2 edited, then entries 2 and 3 hashed again in the version-1 form: the chain holds, the checkpoint does not.
      edited[1]!.data = { ...(edited[1]!.data as object), errorCode: 'none' };
      for (const i of [1, 2]) {
        const e = edited[i]!;
        e.prevHash = edited[i - 1]!.hash;
        e.hash = legacyEntryHash(e.prevHash as string, e.seq as number, e as never);
      }
      const path = write('edited', header, edited);
      const result = ref.verifyExport([header, ...edited].map((l) => JSON.stringify(l)).join('\n'), { publicKey, allowUnanchored: true });
      assert.equal(result.ok, false);
      assert.deepEqual(result.firstBad, { seq: 3, reason: 'entry 3 does not match the signed checkpoint at it' });
      const airlock = await airlockVerifyExport(path, publicKey, { requireAnchored: false });
      assert.deepEqual([airlock.ok, airlock.firstBad?.seq], [false, 3], JSON.stringify(airlock));
      for (const args of [[], ['--allow-unanchored']]) {
        const reference = await referenceCommandLine(path, publicKey, ...args);
        assert.equal(reference.code, 2, reference.stdout + reference.stderr);
        assert.match(reference.stdout, /^FAILED at entry 3: entry 3 does not match the signed checkpoint at it$/m);
      }
    });
  });
}
