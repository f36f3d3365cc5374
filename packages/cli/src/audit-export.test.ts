// `airlock audit verify --file` on an export that spans the upgrades: entries hashed before RFC 8785
// (version 1, with or without the field) and Merkle leaves after them (version 3) verify as one tree, and
// lines carrying prototype keys or absurd nesting fail verification at that entry instead of crashing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness } from '../../server/src/testing/harness.ts';
import { writeLegacyAuditChain } from '../../server/src/testing/legacy-audit.ts';
import { EXPORT_FORMAT } from './commands/audit.ts';
import { cliEnv, runCli } from './testing/cli-process.ts';

describe('audit verify --file across audit hash versions', () => {
  let h: Harness;
  let dir: string;
  let lines: string[];
  let legacySeqs: number;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'airlock-export-'));
    h = await startHarness();
    legacySeqs = (await writeLegacyAuditChain(h, 'sqlite')).seq;
    const { token } = await provisionAgent(h, { policy: usdcPolicy() });
    for (let i = 0; i < 2; i++) assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, i) })).status, 200);
    await h.airlock.audit.checkpoint();
    // What `airlock audit export` writes: a header with the signed heads, then each entry with `at` in ms.
    const cps = (await h.admin('GET', '/v1/audit/checkpoints')).body;
    const { entries } = (await h.admin('GET', '/v1/audit?limit=1000')).body;
    lines = [JSON.stringify({ format: EXPORT_FORMAT, publicKey: cps.publicKey, treeHeads: cps.treeHeads, checkpoints: cps.checkpoints }), ...entries.map((e: { at: string }) => JSON.stringify({ ...e, at: Date.parse(e.at) }))];
  });
  after(async () => {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const verify = async (name: string, content: string[]) => {
    const path = join(dir, name);
    writeFileSync(path, `${content.join('\n')}\n`);
    return runCli(['audit', 'verify', '--file', path], cliEnv());
  };

  test('an export with version-1 and version-3 entries verifies, also when the old entries carry no version (an old export)', async () => {
    const current = await verify('current.jsonl', lines);
    assert.equal(current.code, 0, current.stdout + current.stderr);
    assert.match(current.stdout, new RegExp(`^OK: ${lines.length - 1} entries, 1 signed tree heads`));
    const withoutVersion = lines.map((l, i) => (i === 0 ? l : JSON.stringify({ ...JSON.parse(l), hashVersion: i <= legacySeqs ? undefined : JSON.parse(l).hashVersion })));
    const old = await verify('old.jsonl', withoutVersion);
    assert.equal(old.code, 0, old.stdout + old.stderr);
  });

  test('a __proto__ member slipped into a version-1 line fails at that entry (the old form would not notice it)', async () => {
    const edited = [...lines];
    edited[2] = edited[2]!.replace('"data":{', '"data":{"__proto__":{"decision":"allow"},');
    const r = await verify('proto.jsonl', edited);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout, /^FAILED at entry 2: line 3 is refused: The line has a "__proto__" key/m);
  });

  test('a line nested 100,000 deep fails at that entry instead of crashing the verifier', async () => {
    const edited = [...lines];
    edited[3] = edited[3]!.replace('"data":{', `"data":{"deep":${'['.repeat(100_000)}${']'.repeat(100_000)},`);
    const r = await verify('deep.jsonl', edited);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout, /^FAILED at entry 3: line 4 is refused: The line nests arrays and objects deeper than 64 levels/m);
  });
});
