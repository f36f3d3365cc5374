// `airlock audit verify` against what an agent or the database's owner can put in the audit log:
// - U+2028 and U+2029 in an agent's (refused) request: JSON.stringify writes them unescaped, so the line of
//   its entry holds them raw. The real export still verifies with --file (it once ended a line there, and
//   every later export read as tampered with); an edit of that line or a later one still fails.
// - One row INSERTed at leaf index 10^12 (the append-only triggers allow INSERT): --offline and
//   POST /v1/audit/verify fail at once, naming the missing entry, instead of running out of memory.
// - A tree head no signer writes (size 2.5, time -1.5, root "zz"), in an export or INSERTed as a row:
//   FAILED (exit 2, ok:false), never a crash (exit 1) or a 500.
// - One line longer than the cap (MAX_EXPORT_LINE_BYTES, Node's longest string): FAILED at that line once the
//   cap is read (exit 2), not buffered whole and a crash at V8's string limit (exit 1).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import { listenOnLoopback } from '../../x402-testbed/src/listen.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auditLeaf, canonicalJson, leafHash } from '@airlock/core';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from '../../server/src/testing/harness.ts';
import { cliEnv, NODE, RUN_TS, runCli, type CliResult } from './testing/cli-process.ts';
import { MAX_EXPORT_LINE_BYTES, verifyExport } from './commands/audit.ts';

interface RawStore {
  rawExec(sql: string): Promise<void>;
}

const show = (r: CliResult) => r.stdout + r.stderr;

describe('audit verify --file: U+2028 and U+2029 from an agent, and heads no signer writes', () => {
  let h: Harness;
  let dir: string;
  let server: { url: string; close: () => Promise<void> };
  let publicKey: string;
  let lines: string[];
  let files = 0;
  const write = (content: string) => {
    const path = join(dir, `f${files++}.jsonl`);
    writeFileSync(path, content);
    return path;
  };
  const text = (content: string[]) => `${content.join('\n')}\n`;
  const verify = (content: string) => runCli(['audit', 'verify', '--file', write(content), '--public-key', publicKey], cliEnv());

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'airlock-hostile-export-'));
    h = await startHarness();
    const { token } = await provisionAgent(h, { policy: usdcPolicy() });
    assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, 0) })).status, 200);
    // Any agent can have this audited: a typed-data domain no rule allows is refused, and its name recorded.
    const typedData = {
      domain: { name: 'Innocent\u2028Dapp\u2029', version: '1', chainId: 8453, verifyingContract: '0x3333333333333333333333333333333333333333' },
      types: { Hello: [{ name: 'who', type: 'string' }] },
      primaryType: 'Hello',
      message: { who: 'x' },
    };
    const refused = await h.call('POST', '/v1/sign/typed-data', { token, body: { typedData } });
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    for (let i = 1; i < 3; i++) assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, i) })).status, 200);
    assert.ok(await h.airlock.audit.checkpoint());
    publicKey = await h.airlock.audit.auditPublicKey();
    // The harness's app on a socket, so `airlock audit export` reaches it as it reaches a daemon.
    server = await listenOnLoopback(createAdaptorServer({ fetch: (req: Request) => h.fetch(req) }) as Server);
    const url = server.url;
    const out = join(dir, 'export.jsonl');
    const exported = await runCli(['audit', 'export', '--out', out, '--wait', '0'], cliEnv({ AIRLOCK_URL: url, AIRLOCK_ADMIN_TOKEN: h.adminToken }));
    assert.equal(exported.code, 0, show(exported));
    lines = readFileSync(out, 'utf8').split('\n').filter((l) => l !== '');
  });
  after(async () => {
    await server.close();
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the real export, with U+2028 and U+2029 raw in an entry, verifies (LF and CRLF); an edit of that line or of a later one fails at that entry', async () => {
    const i = lines.findIndex((l) => l.includes('\u2028') && l.includes('\u2029'));
    assert.ok(i > 0, 'the exporter writes U+2028 and U+2029 unescaped');
    for (const content of [text(lines), `${lines.join('\r\n')}\r\n`]) {
      const ok = await verify(content);
      assert.equal(ok.code, 0, show(ok));
      assert.match(ok.stdout, new RegExp(`^OK: ${lines.length - 1} entries, 1 signed tree heads`));
    }

    // The two separators swapped, in the data and in the stored leaf alike: the leaf no longer has its hash.
    const swapped = [...lines];
    swapped[i] = lines[i]!.replace(/[\u2028\u2029]/g, (c) => (c === '\u2028' ? '\u2029' : '\u2028'));
    const seq = JSON.parse(lines[i]!).seq;
    const edited = await verify(text(swapped));
    assert.equal(edited.code, 2, show(edited));
    assert.match(edited.stdout, new RegExp(`^FAILED at entry ${seq}: entry content does not match its hash \\(edited\\)`, 'm'));

    // Lines after it are still read as lines: a later denial turned into an approval is caught there.
    const j = lines.findLastIndex((l) => JSON.parse(l).type === 'sign.request');
    assert.ok(j > i);
    const later = [...lines];
    later[j] = JSON.stringify({ ...JSON.parse(lines[j]!), decision: 'deny' });
    const laterEdit = await verify(text(later));
    assert.equal(laterEdit.code, 2, show(laterEdit));
    assert.match(laterEdit.stdout, new RegExp(`^FAILED at entry ${JSON.parse(lines[j]!).seq}: entry fields do not match its stored leaf \\(edited\\)`, 'm'));
  });

  test('a line longer than the cap (one line of 0.5 GB, no LF): FAILED at that line (exit 2) once the cap is read, not a crash at V8\'s string limit (exit 1)', async () => {
    // Sparse: the line's bytes are a hole in the file (zeros), so the test writes nothing and the CLI reads zeros.
    const path = write(text(lines.slice(0, 3)));
    truncateSync(path, statSync(path).size + MAX_EXPORT_LINE_BYTES + 1);
    const huge = await runCli(['audit', 'verify', '--file', path, '--public-key', publicKey], cliEnv());
    assert.equal(huge.code, 2, show(huge).slice(0, 2000));
    assert.match(huge.stdout, new RegExp(`^FAILED at entry ${JSON.parse(lines[2]!).seq + 1}: line 4 is longer than ${MAX_EXPORT_LINE_BYTES} bytes`, 'm'));
    assert.doesNotMatch(huge.stderr, /Cannot create a string|\n\s+at /);

    // The cap as given to verifyExport: a real line one byte over it, the header or an entry, is refused at that line.
    const longest = Math.max(...lines.slice(1).map((l) => Buffer.byteLength(l)));
    const exported = write(text(lines));
    assert.equal((await verifyExport(exported, publicKey, {}, Math.max(longest, Buffer.byteLength(lines[0]!)))).ok, true, 'every line within the cap');
    const i = lines.findIndex((l, k) => k > 0 && Buffer.byteLength(l) === longest);
    assert.ok(i > 1 && Buffer.byteLength(lines[0]!) < longest, 'the header and the entry before it are within the cap');
    const entry = await verifyExport(exported, publicKey, {}, longest - 1);
    assert.deepEqual([entry.ok, entry.firstBad], [false, { seq: JSON.parse(lines[i - 1]!).seq + 1, reason: `line ${i + 1} is longer than ${longest - 1} bytes, longer than any line the exporter writes (not read further)` }]);
    const header = await verifyExport(exported, publicKey, {}, Buffer.byteLength(lines[0]!) - 1);
    assert.deepEqual([header.ok, header.firstBad?.seq, header.anchoring], [false, 1, undefined]);
    assert.match(header.firstBad!.reason, /^line 1 is longer than \d+ bytes/);
  });

  test('a tree head with size 2.5, time -1.5 or root "zz" in the header: FAILED (exit 2, with or without --public-key), not a crash', async () => {
    const header = JSON.parse(lines[0]!);
    for (const edit of [{ treeSize: 2.5 }, { at: -1.5 }, { rootHash: 'zz' }]) {
      const content = text([JSON.stringify({ ...header, treeHeads: header.treeHeads.map((t: object) => ({ ...t, ...edit })) }), ...lines.slice(1)]);
      // Without --public-key the header's own key is used: the same checks.
      const runs = [verify(content), ...('rootHash' in edit ? [runCli(['audit', 'verify', '--file', write(content)], cliEnv())] : [])];
      for (const r of await Promise.all(runs)) {
        assert.equal(r.code, 2, `${JSON.stringify(edit)}: ${show(r)}`);
        assert.match(r.stdout, /^FAILED at entry \d+: tree head 1 of 1 is malformed/m, JSON.stringify(edit));
        assert.doesNotMatch(r.stderr, /BigInt|hex string|\n\s+at /, JSON.stringify(edit));
      }
    }
  });
});

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`audit verify on a store with rows INSERTed behind the log's back (${store})`, () => {
    async function logged(): Promise<Harness> {
      const h = await startHarness({ store });
      const { token } = await provisionAgent(h, { policy: usdcPolicy() });
      for (let i = 0; i < 4; i++) assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, i) })).status, 200);
      assert.ok(await h.airlock.audit.checkpoint());
      return h;
    }
    // A small heap: splitting the log by its largest leaf index ran out of memory, and should fail here, not on the machine.
    const offline = (h: Harness) => runCli(['audit', 'verify', '--offline', '--data-dir', h.config.dataDir, '--store', h.config.storeUrl], cliEnv(), [NODE, '--max-old-space-size=768', RUN_TS]);

    test('one row at leaf index 10^12: --offline exits 2 and POST /v1/audit/verify answers ok:false, naming the missing entry', async () => {
      const h = await logged();
      try {
        const { treeSize } = await h.airlock.store.auditHead();
        const fields = { seq: 900_000_001, at: Date.now(), type: 'note', actor: 'system' as const };
        const leaf = auditLeaf(fields, canonicalJson({}));
        await (h.airlock.store as unknown as RawStore).rawExec(
          `INSERT INTO audit_entries (seq, at, type, actor, hash, hash_version, leaf_index, leaf) VALUES (${fields.seq}, ${fields.at}, 'note', 'system', '${Buffer.from(leafHash(leaf)).toString('hex')}', 3, 1000000000000, '${leaf}')`,
        );
        const missing = new RegExp(`^entry \\d+ \\(leaf ${treeSize}\\) is missing \\(next is entry 900000001, leaf 1000000000000\\)$`);
        const r = await offline(h);
        assert.equal(r.code, 2, show(r));
        assert.match(r.stdout.replace(/^FAILED at entry \d+: /, '').trim(), missing);
        const daemon = await h.admin('POST', '/v1/audit/verify');
        assert.equal(daemon.status, 200, JSON.stringify(daemon.body));
        assert.equal(daemon.body.ok, false);
        assert.match(daemon.body.firstBad.reason, missing);
      } finally {
        await h.close();
      }
    });

    test('a tree head row with root "zz": --offline exits 2 and POST /v1/audit/verify answers ok:false (not a 500)', async () => {
      const h = await logged();
      try {
        const pk = await h.airlock.audit.auditPublicKey();
        await (h.airlock.store as unknown as RawStore).rawExec(`INSERT INTO audit_tree_heads (tree_size, root_hash, at, public_key, signature) VALUES (3, 'zz', 1, '${pk}', '${'00'.repeat(64)}')`);
        const r = await offline(h);
        assert.equal(r.code, 2, show(r));
        assert.match(r.stdout, /^FAILED at entry 3: tree head \d of 2 is malformed/);
        const daemon = await h.admin('POST', '/v1/audit/verify');
        assert.equal(daemon.status, 200, JSON.stringify(daemon.body));
        assert.equal(daemon.body.ok, false);
        assert.match(daemon.body.firstBad.reason, /^tree head \d of 2 is malformed/);
      } finally {
        await h.close();
      }
    });
  });
}
