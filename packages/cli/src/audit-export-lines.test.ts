// Both export verifiers, driven as a third party drives them (child processes on files): the reference
// verifier (tools/audit-verifier/verify.mjs, no Airlock code) and `airlock audit verify --file`.
// - A line is exactly what `airlock audit export` writes (JSON.stringify of its own parse) with only the
//   documented members: duplicate members (JSON.parse keeps the last), added members, spacing all fail,
//   in entries and in the header; a real export (version-1 and version-3 lines, integer-like keys, CRLF
//   line ends, an old airlock-audit-export/v1 file) still verifies.
// - A version-3 line without `data` fails in both.
// - The reference verifier reads a receipt's `at` (versions 1, 2) only as the API writes it (toISOString).
// - The reference verifier prints FAILED and exits 2 on a truncated or `null` line, never a stack trace.
// - `consistency --from-size` (and `--to-size`) without the root is a usage error: a size pins nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness } from '../../server/src/testing/harness.ts';
import { writeLegacyAuditChain } from '../../server/src/testing/legacy-audit.ts';
import { cliEnv, NODE, runCli, type CliResult } from './testing/cli-process.ts';

const VERIFY_MJS = new URL('../../../tools/audit-verifier/verify.mjs', import.meta.url).pathname;

describe('audit export lines: both verifiers, as a third party runs them', () => {
  let h: Harness;
  let dir: string;
  let server: Server;
  let url: string;
  let publicKey: string;
  let lines: string[];
  let legacySeqs: number;
  let files = 0;
  const airlock = (...args: string[]) => runCli(args, cliEnv({ AIRLOCK_URL: url, AIRLOCK_ADMIN_TOKEN: h.adminToken }));
  const write = (content: string) => {
    const path = join(dir, `f${files++}.jsonl`);
    writeFileSync(path, content);
    return path;
  };
  const text = (content: string[]) => `${content.join('\n')}\n`;
  /** The reference verifier on a file (TZ=UTC: a time with no zone then reads as the same instant). */
  const reference = (...args: string[]) => runCli([], cliEnv({ TZ: 'UTC' }), [NODE, VERIFY_MJS, ...args]);
  /** Both verifiers on an export, with the audit key. */
  const both = async (content: string) => {
    const path = write(content);
    const [ref, cli] = await Promise.all([reference(path, '--public-key', publicKey), runCli(['audit', 'verify', '--file', path, '--public-key', publicKey], cliEnv())]);
    return { ref, cli };
  };
  const show = (r: CliResult) => r.stdout + r.stderr;
  const lineOf = (type: string) => lines.findIndex((l, i) => i > 0 && JSON.parse(l).type === type && JSON.parse(l).hashVersion === 3);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'airlock-export-lines-'));
    h = await startHarness();
    legacySeqs = (await writeLegacyAuditChain(h, 'sqlite')).seq;
    const { token } = await provisionAgent(h, { policy: usdcPolicy() });
    for (let i = 0; i < 3; i++) assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, i) })).status, 200);
    assert.ok(await h.airlock.audit.checkpoint());
    assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, 3) })).status, 200);
    assert.ok(await h.airlock.audit.checkpoint());
    publicKey = await h.airlock.audit.auditPublicKey();
    // The harness's app on a socket, so `airlock audit export` reaches it as it reaches a daemon.
    server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const r = await h.fetch(`http://127.0.0.1${req.url}`, { method: req.method!, headers: req.headers as Record<string, string>, ...(chunks.length ? { body: Buffer.concat(chunks) } : {}) });
      res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' }).end(Buffer.from(await r.arrayBuffer()));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const out = join(dir, 'export.jsonl');
    const exported = await airlock('audit', 'export', '--out', out, '--wait', '0');
    assert.equal(exported.code, 0, show(exported));
    lines = readFileSync(out, 'utf8').trim().split('\n');
  });
  after(async () => {
    await new Promise((r) => server.close(r));
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the real export verifies in both, as written, with CRLF line ends, and an old airlock-audit-export/v1 file in the CLI', async () => {
    assert.ok(legacySeqs >= 2 && JSON.parse(lines[1]!).hashVersion === 1, 'version-1 lines first');
    assert.ok(lines.some((l) => l.includes('"labels":{"9":"nine","10":"ten"}')), 'integer-like keys, as JSON.stringify orders them');
    for (const content of [text(lines), `${lines.join('\r\n')}\r\n`]) {
      const { ref, cli } = await both(content);
      assert.equal(ref.code, 0, show(ref));
      assert.equal(cli.code, 0, show(cli));
      const root = /root ([0-9a-f]{64})/.exec(ref.stdout)![1]!;
      assert.match(cli.stdout, new RegExp(`root ${root.slice(0, 16)}…`));
    }
    // An export from before the tree: header without heads, entries without leaf index or hash version.
    const oldHeader = JSON.stringify({ format: 'airlock-audit-export/v1', publicKey, checkpoints: [] });
    const oldEntries = lines.slice(1, 1 + legacySeqs).map((l) => {
      const { leafIndex: _l, hashVersion: _v, ...e } = JSON.parse(l);
      return JSON.stringify(e);
    });
    const old = await runCli(['audit', 'verify', '--file', write(text([oldHeader, ...oldEntries]))], cliEnv());
    assert.equal(old.code, 0, show(old));
  });

  test('F2: a line with duplicate members in front of a real sign.request line fails in both (exit 2) instead of verifying with the same root', async () => {
    const i = lineOf('sign.request');
    const seq = JSON.parse(lines[i]!).seq;
    const edited = [...lines];
    edited[i] = `{"type":"approval.granted","decision":"allow","approvedBy":"cfo",${lines[i]!.slice(1)}`;
    const { ref, cli } = await both(text(edited));
    assert.equal(ref.code, 2, show(ref));
    assert.match(ref.stdout, new RegExp(`^FAILED at entry ${seq}: line ${i + 1} is not as the exporter writes it`, 'm'));
    assert.equal(cli.code, 2, show(cli));
    assert.match(cli.stdout, new RegExp(`^FAILED at entry ${seq}: line ${i + 1} is not as the exporter writes it`, 'm'));
  });

  test('F2: a member outside the documented set (in an entry, the header or a tree head), a chained member on a version-3 line, or added spacing fails in both', async () => {
    const i = lineOf('sign.request');
    const entry = JSON.parse(lines[i]!);
    const header = JSON.parse(lines[0]!);
    const legacy = JSON.parse(lines[1]!);
    const cases: [string, number, string, RegExp][] = [
      ['an added member', i, JSON.stringify({ ...entry, approvedBy: 'cfo' }), /has a member .*"approvedBy"/],
      ['prevHash on a version-3 line', i, JSON.stringify({ ...entry, prevHash: '00'.repeat(32) }), /has a member .*"prevHash"/],
      ['leaf on a version-1 line', 1, JSON.stringify({ ...legacy, leaf: '{}' }), /has a member .*"leaf"/],
      ['spacing', i, JSON.stringify(entry, null, 1).replace(/\n/g, ''), /is not as the exporter writes it/],
      ['a member added to the header', 0, JSON.stringify({ ...header, note: 'approved by the CFO' }), /has a member .*"note"/],
      ['a member added to a signed tree head', 0, JSON.stringify({ ...header, treeHeads: header.treeHeads.map((t: object) => ({ ...t, note: 'approved by the CFO' })) }), /tree head with a member .*"note"/],
    ];
    for (const [name, at, line, reason] of cases) {
      const edited = [...lines];
      edited[at] = line;
      const { ref, cli } = await both(text(edited));
      assert.equal(ref.code, 2, `${name}: ${show(ref)}`);
      assert.match(ref.stdout, /^FAILED at entry \d+: /m, name);
      assert.match(ref.stdout, reason, name);
      assert.equal(cli.code, 2, `${name}: ${show(cli)}`);
      assert.match(cli.stdout, reason, name);
    }
  });

  test('F1: a version-3 line whose data was removed fails in both with --public-key (exit 2)', async () => {
    const i = lineOf('sign.request');
    const { data: _data, ...entry } = JSON.parse(lines[i]!);
    const edited = [...lines];
    edited[i] = JSON.stringify(entry);
    const { ref, cli } = await both(text(edited));
    assert.equal(ref.code, 2, show(ref));
    assert.equal(cli.code, 2, show(cli));
    assert.match(cli.stdout, new RegExp(`^FAILED at entry ${entry.seq}: line ${i + 1}: a version-3 entry without data`, 'm'));
  });

  test('F3: a version-1 receipt verifies with `at` as the API writes it, not with other text Date.parse reads as the same instant', async () => {
    const receipt = (await h.admin('GET', '/v1/audit/receipts/2')).body;
    assert.equal(receipt.entry.hashVersion, 1);
    const iso = receipt.entry.at as string;
    const withAt = (at: string) => write(JSON.stringify({ ...receipt, entry: { ...receipt.entry, at } }));
    const honest = await reference('receipt', withAt(iso), '--public-key', publicKey);
    assert.equal(honest.code, 0, show(honest));
    assert.equal(honest.stdout.trim(), 'OK');
    const forms = [`(approved by the CFO) ${iso.replace('T', ' ')}`, iso.slice(0, -1), iso.replace('Z', '+00:00')];
    for (const at of forms) {
      assert.equal(Date.parse(at), Date.parse(iso), `${at}: the same instant to Date.parse (TZ=UTC here)`);
      const r = await reference('receipt', withAt(at), '--public-key', publicKey);
      assert.equal(r.code, 2, `${at}: ${show(r)}`);
      assert.equal(r.stdout.trim(), 'FAILED');
    }
  });

  test('F4: a truncated last line, a `null` line, a `null` header or an empty file: FAILED and exit 2 from the reference verifier, never a stack trace', async () => {
    const last = lines.length - 1;
    const cases: [string, string, RegExp][] = [
      ['a truncated last line', text([...lines.slice(0, last), lines[last]!.slice(0, 40)]), new RegExp(`^FAILED at entry \\d+: line ${last + 1} is not an audit entry`, 'm')],
      ['a null line', text([...lines.slice(0, 3), 'null', ...lines.slice(3)]), /^FAILED at entry \d+: line 4 is not an audit entry/m],
      ['a null header', text(['null', ...lines.slice(1)]), /^FAILED at entry 1: line 1 is not an airlock-audit-export\/v2 header/m],
      ['an empty file', '', /^FAILED at entry 1: the file is empty/m],
    ];
    for (const [name, content, reason] of cases) {
      const { ref, cli } = await both(content);
      assert.equal(ref.code, 2, `${name}: ${show(ref)}`);
      assert.match(ref.stdout, reason, name);
      assert.doesNotMatch(ref.stderr, /\n\s+at /, `${name}: no stack trace`);
      if (name !== 'an empty file' && name !== 'a null header') assert.equal(cli.code, 2, `${name}, CLI: ${show(cli)}`);
    }
    const missing = await reference(join(dir, 'nope.jsonl'), '--public-key', publicKey);
    assert.equal(missing.code, 2, show(missing));
    assert.match(missing.stdout, /^FAILED: /);
    assert.doesNotMatch(missing.stderr, /\n\s+at /);
  });

  test('F5: consistency --from-size without --from-root (and --to-size without --to-root) is a usage error: exit 1, nothing verified', async () => {
    const heads = (await h.admin('GET', '/v1/audit/checkpoints')).body.treeHeads as { treeSize: number; rootHash: string }[];
    const [held, newest] = [heads[0]!, heads.at(-1)!];
    const path = write(JSON.stringify((await h.admin('GET', `/v1/audit/consistency?from=${held.treeSize}&to=${newest.treeSize}`)).body));
    const run = (...args: string[]) => reference('consistency', path, '--public-key', publicKey, ...args);
    const [sizeOnly, toSizeOnly, pinned] = await Promise.all([
      run('--from-size', String(held.treeSize)),
      run('--from-size', String(held.treeSize), '--from-root', held.rootHash, '--to-size', String(newest.treeSize)),
      run('--from-size', String(held.treeSize), '--from-root', held.rootHash, '--to-size', String(newest.treeSize), '--to-root', newest.rootHash),
    ]);
    assert.equal(sizeOnly.code, 1, show(sizeOnly));
    assert.match(sizeOnly.stderr, /^--from-size needs --from-root HEX/);
    assert.doesNotMatch(sizeOnly.stdout, /OK/);
    assert.equal(toSizeOnly.code, 1, show(toSizeOnly));
    assert.match(toSizeOnly.stderr, /^--to-size needs --to-root HEX/);
    assert.equal(pinned.code, 0, show(pinned));
    assert.match(pinned.stdout, new RegExp(`^OK: size ${newest.treeSize} \\(root ${newest.rootHash}\\) extends size ${held.treeSize}`));
    assert.doesNotMatch(pinned.stderr, /not pinned/);
  });
});
