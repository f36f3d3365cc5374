// The reference verifier (tools/audit-verifier/verify.mjs, no Airlock code) against a real export: it
// verifies, and catches an edited entry, a deleted entry, reordered entries and a forged head. It also
// checks a receipt's inclusion proof and a consistency proof served over HTTP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness } from '../../server/src/testing/harness.ts';
import { EXPORT_FORMAT } from './commands/audit.ts';
import { cliEnv, runCli } from './testing/cli-process.ts';

const VERIFY_URL = new URL('../../../tools/audit-verifier/verify.mjs', import.meta.url);
const VERIFY_MJS = VERIFY_URL.pathname;
// A plain .mjs file on purpose (it must not depend on Airlock's TypeScript): loaded as untyped.
interface RefResult { ok: boolean; rootHash: string; treeHeads: number; firstBad: { seq: number; reason: string } }
const ref = (await import(VERIFY_URL.href)) as {
  verifyExport(text: string, o: { publicKey: string }): RefResult;
  verifyReceipt(r: unknown, publicKey: string): boolean;
  verifyConsistencyResponse(c: unknown, publicKey: string): boolean;
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
});
