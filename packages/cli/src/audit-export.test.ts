// `airlock audit verify --file` on an export that spans the upgrades: entries hashed before RFC 8785
// (version 1, with or without the field) and Merkle leaves after them (version 3) verify as one tree, and
// lines carrying prototype keys or absurd nesting fail verification at that entry instead of crashing. And
// `airlock audit export` over HTTP ends at a signed tree head, so `verify --file --public-key` passes right after.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
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

// `airlock audit export` against a daemon over HTTP: the export ends at a signed tree head, so the same
// export verifies with --public-key (which requires every entry under a signed head) right after it is taken.
describe('airlock audit export: every exported entry is under a signed tree head', () => {
  let h: Harness;
  let dir: string;
  let server: Server;
  let url: string;
  let token: string;
  let publicKey: string;
  let nonce = 0;
  /** Called with each request path the daemon serves (the test's stand-in for watching the export work). */
  let onRequest: (path: string) => void = () => {};
  const airlock = (...args: string[]) => runCli(args, cliEnv({ AIRLOCK_URL: url, AIRLOCK_ADMIN_TOKEN: h.adminToken }));
  const sign = async (n: number) => {
    for (let i = 0; i < n; i++) assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, nonce++) })).status, 200);
  };
  const readExport = (path: string) => {
    const [header, ...entries] = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    return { newestHead: Math.max(0, ...header.treeHeads.map((t: { treeSize: number }) => t.treeSize)), entries };
  };
  const treeSize = async () => (await h.admin('GET', '/v1/audit/head')).body.treeSize as number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'airlock-export-daemon-'));
    h = await startHarness();
    ({ token } = await provisionAgent(h, { policy: usdcPolicy() }));
    publicKey = await h.airlock.audit.auditPublicKey();
    await sign(3);
    assert.ok(await h.airlock.audit.checkpoint());
    // The harness's app on a socket, so the CLI reaches it as it reaches a daemon. Its checkpointer is off:
    // the test signs heads itself, when it wants them.
    server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const r = await h.fetch(`http://127.0.0.1${req.url}`, { method: req.method!, headers: req.headers as Record<string, string>, ...(chunks.length ? { body: Buffer.concat(chunks) } : {}) });
      const body = Buffer.from(await r.arrayBuffer());
      onRequest(req.url!);
      res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((r) => server.close(r));
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('an export taken while the newest entries are unsigned waits for the next signed head, ends at it, and verifies with --public-key right after', async () => {
    await sign(2);
    const size = await treeSize();
    // The checkpointer's next tick, once the export has seen the heads without it.
    let signed: Promise<unknown> | undefined;
    onRequest = (path) => {
      if (path === '/v1/audit/checkpoints') signed ??= h.airlock.audit.checkpoint();
    };
    const out = join(dir, 'fresh.jsonl');
    const exported = await airlock('audit', 'export', '--out', out);
    onRequest = () => {};
    await signed;
    assert.equal(exported.code, 0, exported.stdout + exported.stderr);
    const head = (await h.airlock.store.lastTreeHead())!;
    assert.equal(head.treeSize, size);
    assert.equal(exported.stdout.trim(), `exported ${size} entries and 2 signed tree heads to ${out} (newest head: size ${size}, root ${head.rootHash})`);
    const file = readExport(out);
    assert.equal(file.entries.length, size);
    assert.equal(file.newestHead, size, 'the header carries a head over every exported entry');
    const verified = await airlock('audit', 'verify', '--file', out, '--public-key', publicKey, '--min-tree-size', String(size), '--expect-root', head.rootHash);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, new RegExp(`^OK: ${size} entries, 2 signed tree heads, root ${head.rootHash.slice(0, 16)}…$`, 'm'));
  });

  test('no signed head within --wait: the export ends at the newest head and says what it left out; --include-unanchored exports it all, which verify then accepts only with --allow-unanchored; the daemon\'s verify accepts unsigned entries unless --require-anchored', async () => {
    const signedSize = (await h.airlock.store.lastTreeHead())!.treeSize;
    await sign(2);
    const size = await treeSize();
    const unsigned = size - signedSize;

    const cutOut = join(dir, 'cut.jsonl');
    const cut = await airlock('audit', 'export', '--out', cutOut, '--wait', '1');
    assert.equal(cut.code, 0, cut.stdout + cut.stderr);
    assert.match(cut.stdout, new RegExp(`^exported ${signedSize} entries and \\d+ signed tree heads to `));
    assert.match(cut.stderr, new RegExp(`^warning: no signed tree head covered the log within 1 s; the ${unsigned} entries past the newest head are not in the export\\. .*--include-unanchored`, 'm'));
    assert.equal(readExport(cutOut).entries.length, signedSize);
    assert.equal((await airlock('audit', 'verify', '--file', cutOut, '--public-key', publicKey)).code, 0);

    const allOut = join(dir, 'all.jsonl');
    const all = await airlock('audit', 'export', '--out', allOut, '--wait', '0', '--include-unanchored');
    assert.equal(all.code, 0, all.stdout + all.stderr);
    assert.match(all.stderr, new RegExp(`^note: the newest ${unsigned} entries are not under a signed tree head: verify this export with --allow-unanchored$`, 'm'));
    assert.equal(readExport(allOut).entries.length, size);
    const strict = await airlock('audit', 'verify', '--file', allOut, '--public-key', publicKey);
    assert.equal(strict.code, 5, strict.stdout + strict.stderr);
    assert.match(strict.stdout, /^FAILED \[audit_unanchored\]: /m);
    assert.equal((await airlock('audit', 'verify', '--file', allOut, '--public-key', publicKey, '--allow-unanchored')).code, 0);

    // The live log: its newest entries are always past the last head, so the daemon's verify accepts them.
    const live = await airlock('audit', 'verify');
    assert.equal(live.code, 0, live.stdout + live.stderr);
    assert.match(live.stdout, new RegExp(`\\(${unsigned} newest entries not yet under a signed head\\)$`, 'm'));
    const liveStrict = await airlock('audit', 'verify', '--require-anchored');
    assert.equal(liveStrict.code, 5, liveStrict.stdout + liveStrict.stderr);
    assert.match(liveStrict.stdout, new RegExp(`^FAILED \\[audit_unanchored\\]: the newest ${unsigned} entries \\(from leaf ${signedSize}\\)`, 'm'));
  });
});
