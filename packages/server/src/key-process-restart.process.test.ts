// A key process restarted on a log rewritten while it was down (docs/custody.md, "Across restarts"). The daemon
// owns the store: with the key process stopped it can rewrite a leaf, its hash column and every tree node so that
// all of them agree, and delete the stored heads. A key process that started from the log as it found it would
// then sign from the rewrite. It keeps its own record of the last head it signed (a file beside the vault, which
// the daemon cannot write in the deployment custody.md describes) and, failing that, the newest stored head its
// audit key really signed: the log must still hold them, or it does not start. As real processes, on SQLite.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { canonicalJson, leafHash, MerkleFrontier, storedLeafHash } from '@airlock/core';
import { ALICE, usdcPolicy, usdcTransfer } from './testing/harness.ts';
import { DROP_AUDIT_TRIGGERS } from './testing/forge-audit.ts';
import { adminClient, httpJson, killAllDaemons, prepareDaemonData, waitForCoveringHead, sleep, startDaemon, startKeyProcessChild, type DaemonData } from './testing/processes.ts';

describe('key process restarted on a rewritten log: held to the tree heads it signed before', () => {
  let data: DaemonData;
  let socket: string;
  let headFile: string;
  let db: DatabaseSync;
  let signedSeq: number;
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

  const startKeyProcess = (args: string[] = []) => startKeyProcessChild(data, socket, {}, args);
  /** Starting must fail with `code`: the rejection carries the process's output. */
  const refusesToStart = async (code: string, args: string[] = []) => {
    let started: Awaited<ReturnType<typeof startKeyProcess>> | undefined;
    try {
      started = await startKeyProcess(args);
    } catch (e) {
      assert.match((e as Error).message, /exited before listening/);
      assert.match((e as Error).message, new RegExp(code));
      return (e as Error).message;
    } finally {
      await started?.kill('SIGTERM');
    }
    assert.fail(`the key process started; expected ${code}`);
  };

  const row = (seq: number) => db.prepare('SELECT leaf, hash FROM audit_entries WHERE seq = ?').get(seq) as { leaf: string; hash: string };
  const treeNodes = () => db.prepare('SELECT level, idx, hash FROM audit_tree_nodes').all() as { level: number; idx: number; hash: Uint8Array }[];
  const putTreeNodes = (nodes: { level: number; idx: number; hash: Uint8Array }[]) => {
    db.exec('DELETE FROM audit_tree_nodes');
    const insert = db.prepare('INSERT INTO audit_tree_nodes (level, idx, hash) VALUES (?, ?, ?)');
    for (const n of nodes) insert.run(n.level, n.idx, n.hash);
  };
  const treeHeads = () => db.prepare('SELECT tree_size, root_hash, at, public_key, signature FROM audit_tree_heads').all() as Record<string, string | number>[];
  const putTreeHeads = (heads: Record<string, string | number>[]) => {
    db.exec('DELETE FROM audit_tree_heads');
    const insert = db.prepare('INSERT INTO audit_tree_heads (tree_size, root_hash, at, public_key, signature) VALUES (?, ?, ?, ?, ?)');
    for (const h of heads) insert.run(h.tree_size!, h.root_hash!, h.at!, h.public_key!, h.signature!);
  };

  /**
   * The signed transfer's leaf rewritten to pay another amount, its hash column and every tree node rebuilt to
   * agree (a laundered log: `audit verify` without signed heads finds nothing), and, if asked, the stored heads
   * deleted. Returns a function that puts everything back.
   */
  const launder = ({ dropHeads }: { dropHeads: boolean }) => {
    const original = row(signedSeq);
    const nodes = treeNodes();
    const heads = treeHeads();
    const parsed = JSON.parse(original.leaf);
    parsed.data.note = 'rewritten';
    const leaf = canonicalJson(parsed) as string;
    db.prepare('UPDATE audit_entries SET leaf = ?, hash = ? WHERE seq = ?').run(leaf, hex(leafHash(leaf)), signedSeq);
    const rebuilt: { level: number; idx: number; hash: Uint8Array }[] = [];
    const f = new MerkleFrontier();
    for (const r of db.prepare('SELECT hash, hash_version FROM audit_entries ORDER BY leaf_index').all() as { hash: string; hash_version: number }[]) {
      f.push(storedLeafHash({ hash: r.hash, hashVersion: r.hash_version as 3 }), (id, hash) => rebuilt.push({ level: id.level, idx: id.index, hash }));
    }
    putTreeNodes(rebuilt);
    if (dropHeads) putTreeHeads([]);
    return () => {
      db.prepare('UPDATE audit_entries SET leaf = ?, hash = ? WHERE seq = ?').run(original.leaf, original.hash, signedSeq);
      putTreeNodes(nodes);
      putTreeHeads(heads);
    };
  };

  before(async () => {
    data = await prepareDaemonData('sqlite');
    socket = join(data.dataDir, 'keys.sock');
    headFile = join(data.dataDir, 'key-process-head.json');
    const keyProcess = await startKeyProcess();
    const daemon = await startDaemon(data, { AIRLOCK_KEY_PROCESS_SOCKET: socket, AIRLOCK_CHECKPOINT_INTERVAL: '1s' });
    const admin = adminClient(daemon.url, data.adminToken);
    const agent = (await admin('POST', '/v1/agents', { names: ['kp-restart'] })).body.agents[0];
    assert.equal((await admin('PUT', `/v1/policies/${agent.name}`, { document: usdcPolicy() })).status, 200);
    const token = (await admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'] })).body.token;
    const signed = await httpJson(daemon.url, 'POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, 0) });
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    signedSeq = signed.body.auditSeq;
    await waitForCoveringHead(admin);
    await daemon.kill('SIGTERM');
    await keyProcess.kill('SIGTERM');
    db = new DatabaseSync(join(data.dataDir, 'airlock.db'));
    db.exec('PRAGMA busy_timeout = 5000');
    db.exec(DROP_AUDIT_TRIGGERS.sqlite);
  });
  after(async () => {
    db?.close();
    await killAllDaemons();
    await data?.cleanup();
  });

  test('it recorded the last head it signed, beside the vault, owner-only: the newest stored head', () => {
    assert.ok(existsSync(headFile), 'key-process-head.json exists');
    const record = JSON.parse(readFileSync(headFile, 'utf8'));
    const newest = treeHeads().sort((a, b) => Number(b.tree_size) - Number(a.tree_size))[0]!;
    assert.equal(record.treeSize, newest.tree_size);
    assert.equal(record.rootHash, newest.root_hash);
    assert.equal(statSync(headFile).mode & 0o777, 0o600);
  });

  test('a laundered log with the stored heads deleted: refused at start (key_process_log_rewritten, from its record); put back, it starts', async () => {
    const restore = launder({ dropHeads: true });
    try {
      const out = await refusesToStart('key_process_log_rewritten');
      assert.match(out, /from its record/);
    } finally {
      restore();
    }
    const kp = await startKeyProcess();
    assert.match(kp.output(), /"msg":"held to a signed head"/);
    await kp.kill('SIGTERM');
  });

  test('the same with its record gone but the stored heads kept: refused, held to the newest head its audit key signed', async () => {
    renameSync(headFile, `${headFile}.kept`);
    const restore = launder({ dropHeads: false });
    try {
      const out = await refusesToStart('key_process_log_rewritten');
      assert.match(out, /from the store/);
    } finally {
      restore();
      renameSync(`${headFile}.kept`, headFile);
    }
  });

  test('a stored head the audit key did not sign is not held to (and says so): a forged head cannot wedge the key process', async () => {
    const heads = treeHeads();
    renameSync(headFile, `${headFile}.kept`);
    try {
      const forged = { ...heads[0]!, tree_size: 1, root_hash: 'ab'.repeat(32) };
      putTreeHeads([forged]);
      const kp = await startKeyProcess();
      assert.match(kp.output(), /not signed by this key process's audit key/);
      await kp.kill('SIGTERM');
    } finally {
      putTreeHeads(heads);
      renameSync(`${headFile}.kept`, headFile);
    }
  });

  test('a log shorter than the head it signed (a store restored from an older backup): refused; --forget-signed-head starts it and says so', async () => {
    const last = db.prepare('SELECT * FROM audit_entries ORDER BY leaf_index DESC LIMIT 1').get() as Record<string, unknown>;
    const heads = treeHeads();
    db.prepare('DELETE FROM audit_entries WHERE seq = ?').run(last.seq as number);
    putTreeHeads([]);
    try {
      const out = await refusesToStart('key_process_log_rewritten');
      assert.match(out, /fewer than the tree head/);
      const kp = await startKeyProcess(['--forget-signed-head']);
      assert.match(kp.output(), /signed-head record forgotten/);
      await kp.kill('SIGTERM');
    } finally {
      const columns = Object.keys(last);
      db.prepare(`INSERT INTO audit_entries (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`).run(...(Object.values(last) as never[]));
      putTreeHeads(heads);
    }
    const kp = await startKeyProcess();
    await kp.kill('SIGTERM');
  });

  test('a record in a directory others can write (the daemon could replace it): refused at start, key_process_head_record_invalid', async () => {
    const open = mkdtempSync(join(tmpdir(), 'kp-head-'));
    try {
      chmodSync(open, 0o777);
      const out = await refusesToStart('key_process_head_record_invalid', ['--head-file', join(open, 'head.json')]);
      assert.match(out, /writable by others/);
    } finally {
      rmSync(open, { recursive: true, force: true });
    }
  });

  test('a record it cannot read, or of another vault: key_process_head_record_invalid (never ignored)', async () => {
    const kept = readFileSync(headFile, 'utf8');
    try {
      writeFileSync(headFile, '{"treeSize":');
      await refusesToStart('key_process_head_record_invalid');
      writeFileSync(headFile, JSON.stringify({ ...JSON.parse(kept), fingerprint: 'ffffffff' }));
      const out = await refusesToStart('key_process_head_record_invalid');
      assert.match(out, /another vault/);
    } finally {
      writeFileSync(headFile, kept, { mode: 0o600 });
    }
  });
});

describe('key process: a daemon that stops asking for tree heads gets nothing more signed once the deadline passes', () => {
  // Found by review: the record holds the last head only, so the leaves after it are what a restarted key process
  // takes as found. A compromised daemon that stops asking for heads (here: a checkpoint interval of 1 h) and then
  // rewrites that tail while the key process restarts would keep signatures whose entries it rewrote. The key process
  // refuses to sign once leaves it read longer ago than AIRLOCK_KEY_PROCESS_HEAD_DEADLINE are under no head it signed.
  let data: DaemonData;
  after(async () => {
    await killAllDaemons();
    await data?.cleanup();
  });

  test('signed while the unheaded leaves are young; refused tree_head_overdue past the deadline, nothing signed, audited; a head resumes signing', async () => {
    data = await prepareDaemonData('sqlite');
    const socket = join(data.dataDir, 'keys.sock');
    await startKeyProcessChild(data, socket, { AIRLOCK_KEY_PROCESS_HEAD_DEADLINE: '10s' });
    let daemon = await startDaemon(data, { AIRLOCK_KEY_PROCESS_SOCKET: socket, AIRLOCK_CHECKPOINT_INTERVAL: '1h' });
    let admin = adminClient(daemon.url, data.adminToken);
    const agent = (await admin('POST', '/v1/agents', { names: ['kp-deadline'] })).body.agents[0];
    assert.equal((await admin('PUT', `/v1/policies/${agent.name}`, { document: usdcPolicy() })).status, 200);
    const token = (await admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'] })).body.token;
    let nonce = 0;
    const sign = () => httpJson(daemon.url, 'POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, nonce++) });
    const first = await sign();
    assert.equal(first.status, 200, JSON.stringify(first.body));
    await sleep(11_000);
    const late = await sign();
    assert.notEqual(late.status, 200, JSON.stringify(late.body));
    assert.equal(late.body.error.code, 'key_process_refused', JSON.stringify(late.body));
    assert.equal(late.body.error.details?.reason, 'tree_head_overdue', JSON.stringify(late.body));
    assert.equal(late.body.signedTransaction, undefined);
    const failed = (await admin('GET', `/v1/audit?agent=${agent.name}&type=sign.failed`)).body.entries as any[];
    assert.ok(failed.some((e) => e.data.errorCode === 'key_process_refused'), JSON.stringify(failed));
    // A daemon that asks for heads again: once one covers the leaves, signing resumes.
    await daemon.kill('SIGTERM');
    daemon = await startDaemon(data, { AIRLOCK_KEY_PROCESS_SOCKET: socket, AIRLOCK_CHECKPOINT_INTERVAL: '1s' });
    admin = adminClient(daemon.url, data.adminToken);
    let resumed: Awaited<ReturnType<typeof sign>> | undefined;
    for (let i = 0; i < 50; i++) {
      resumed = await sign();
      if (resumed.status === 200) break;
      await sleep(200);
    }
    assert.equal(resumed!.status, 200, JSON.stringify(resumed!.body));
  });
});
