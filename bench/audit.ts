// (6) Audit: the durable append rate (one entry per committed transaction, as the service writes them)
// and the `audit verify` rate over 1M entries. The 1M-entry log is built fast but valid: each leaf is
// built with auditLeaf and hashed with leafHash exactly as appendAudit does, then rows are bulk-inserted
// with direct SQL; verifyStoredAudit (what `airlock audit verify` runs, in worker threads) then re-reads
// every entry, checks its columns against its stored leaf, re-hashes the leaf and rebuilds the tree, in a
// process of its own (bench/audit-verify-child.ts), as the CLI runs it: not in this one, whose heap holds
// what it just generated and whose collector would share the two cores. Its rate depends on what else the
// machine runs; the CPU time per entry it reports does not.
//
// Verify runs twice over the same log: first with no signed tree head (every leaf's data must show it is
// the canonical JSON of one object, which verify checks for leaves no signed head covers), then with a head
// over the whole log signed by the audit key, as the checkpointer leaves a log every 10 s (the leaves under it
// are pinned by their hashes and that signature, and their data is not read as JSON).
import { schnorr } from '@noble/curves/secp256k1.js';
import { AUDIT_HASH_VERSION, auditLeaf, canonicalJson, leafHash, MerkleFrontier, treeHeadDigest, type AuditEntryInput } from '../packages/core/src/index.ts';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { insertAll, scratchStore, type StoreKind } from './lib/scratch-store.ts';
import { figure, fmt, type BenchOptions, type Figure } from './lib/stats.ts';

/** An entry shaped like the service's `sign.request` (intent summary, digest, request hash). */
function signRequestEntry(i: number, at: number): AuditEntryInput {
  const to = `0x${(i % 5000).toString(16).padStart(40, '0')}`;
  return {
    at,
    type: 'sign.request',
    actor: 'agent',
    agentId: `ag_${(i % 1000).toString(16).padStart(16, '0')}`,
    sessionId: `ses_${(i % 3000).toString(16).padStart(16, '0')}`,
    action: 'evm.transaction',
    decision: 'allow',
    data: {
      intent: { action: 'evm.transaction', chain: 'eip155:8453', kind: 'erc20.transfer', to, spends: [{ asset: 'eip155:8453/erc20:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913', amount: String(1000 + i), to, kind: 'transfer' }], summary: `transfer ${1000 + i} USDC units` },
      violations: [],
      allowedBy: ['agent@1:usdc-to-partners'],
      policyVersion: 1,
      digest: i.toString(16).padStart(64, '0'),
      requestHash: (i * 7).toString(16).padStart(64, '0'),
    },
  };
}

export interface AuditResult {
  /** key = store: entries/s, one durable transaction per entry. */
  append: Record<string, Figure>;
  /**
   * key = store: whole-run rate of verifyStoredAudit over `verifyEntries`, entries/s (each run in a fresh process),
   * the log ending in a tree head the audit key signed, as a running log does.
   */
  verify: Record<string, Figure>;
  /** The same log before its head was signed: every leaf's data checked as canonical JSON. */
  verifyUnsigned?: Record<string, Figure>;
  verifyUnsignedCpuMicros?: Record<string, Figure>;
  /**
   * key = store: CPU time of this process (every thread: the workers and the main thread) per entry
   * verified, µs. Unlike the rate it does not depend on what else the machine runs; PostgreSQL's own
   * server time is not in it.
   */
  verifyCpuMicros?: Record<string, Figure>;
  verifyEntries: number;
  verifyRuns: number;
  /** Seconds to hash the chain and bulk-insert it into both stores. */
  generateSeconds: number;
}

const run = promisify(execFile);

/**
 * One verify in a fresh process (bench/audit-verify-child.ts): its wall time and CPU time. The process and its
 * worker threads use Node's compile cache in `cacheDir`, as the CLI's do (its data directory's compile-cache).
 */
async function verifyInChild(url: string, entries: number, cacheDir: string, auditKey?: string): Promise<{ ms: number; cpuMicros: number }> {
  const { stdout } = await run(process.execPath, [new URL('./audit-verify-child.ts', import.meta.url).pathname, url, ...(auditKey ? [auditKey] : [])], { maxBuffer: 1 << 20, env: { ...process.env, NODE_COMPILE_CACHE: cacheDir } });
  const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as { ok: boolean; entries: number; ms: number; cpuMicros: number };
  if (!r.ok || r.entries !== entries) throw new Error(`audit verify failed on the generated log: ${stdout}`);
  return r;
}

async function appendRate(kind: StoreKind, o: BenchOptions): Promise<Figure> {
  const a = await scratchStore(kind);
  try {
    const appendCount = o.quick ? 200 : 1000;
    const rates: number[] = [];
    let i = 0;
    for (let r = 0; r < o.rounds; r++) {
      const t = performance.now();
      for (let k = 0; k < appendCount; k++) {
        const entry = signRequestEntry(i++, Date.now());
        await a.store().transaction((tx) => tx.appendAudit(entry));
      }
      rates.push((appendCount / (performance.now() - t)) * 1000);
    }
    return figure(rates);
  } finally {
    await a.close();
  }
}

export async function benchAudit(o: BenchOptions): Promise<AuditResult> {
  const verifyEntries = o.quick ? 200_000 : 1_000_000;
  // A 1M-entry verify takes 2 to 4 s here: three runs per store give the spread.
  const verifyRuns = Number(process.env.BENCH_VERIFY_RUNS ?? 3);
  const append: Record<string, Figure> = {};
  for (const kind of ['sqlite', 'postgres'] as StoreKind[]) {
    append[kind] = await appendRate(kind, o);
    o.log(`  audit append ${kind}: ${fmt(append[kind])} entries/s (durable, one transaction each)`);
  }

  const stores = [await scratchStore('sqlite'), await scratchStore('postgres')];
  let cacheDir: string | undefined;
  try {
    const started = performance.now();
    const raws = await Promise.all(stores.map((s) => s.openRaw()));
    const BATCH = 10_000;
    const t0 = Date.now() - verifyEntries;
    const tree = new MerkleFrontier();
    for (let from = 1; from <= verifyEntries; from += BATCH) {
      const rows: (string | number)[][] = [];
      for (let seq = from; seq < from + BATCH && seq <= verifyEntries; seq++) {
        const input = signRequestEntry(seq, t0 + seq);
        // The leaf and hash appendAudit would store (buildAuditEntry): data passes through canonical JSON once.
        const leaf = auditLeaf({ ...input, seq }, canonicalJson(input.data ?? {}));
        const hashBytes = leafHash(leaf);
        tree.push(hashBytes);
        const hash = Buffer.from(hashBytes).toString('hex');
        rows.push([seq, input.at, input.type, input.actor, input.agentId!, input.sessionId!, input.action!, input.decision!, hash, AUDIT_HASH_VERSION, seq - 1, leaf]);
      }
      for (const raw of raws) {
        if (raw.kind === 'sqlite') {
          insertAll(raw.db, 'INSERT INTO audit_entries (seq, at, type, actor, agent_id, session_id, action, decision, hash, hash_version, leaf_index, leaf) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', rows);
        } else {
          const columns = Array.from({ length: 12 }, (_, c) => rows.map((row) => row[c]));
          await raw.client.query(
            `INSERT INTO audit_entries (seq, at, type, actor, agent_id, session_id, action, decision, hash, hash_version, leaf_index, leaf)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::smallint[], $11::bigint[], $12::text[])`,
            columns,
          );
        }
      }
    }
    for (const raw of raws) await raw.close();
    const generateSeconds = (performance.now() - started) / 1000;
    o.log(`  audit chain of ${verifyEntries} entries hashed and loaded into both stores in ${generateSeconds.toFixed(1)} s`);

    // PostgreSQL's first reader of a million new rows sets their hint bits (writing every page) and
    // autovacuum would visit them during the first verify, on the same two cores; a log that has grown over
    // months has long been vacuumed, so the bench measures that state. (SQLite's bulk load ended with its
    // connection closed, which checkpoints the WAL into the database file.)
    const pgRaw = await stores[1]!.openRaw();
    if (pgRaw.kind === 'postgres') {
      await pgRaw.client.query('VACUUM ANALYZE audit_entries');
      // The load left over 2 GB of dirty pages (both stores); written back by PostgreSQL's checkpointer and the
      // kernel while the first verifies ran, they took CPU from them (bench figures 15-20% below the same
      // verify on the same log run a minute later). A log that has grown over months is on disk.
      await pgRaw.client.query('CHECKPOINT');
    }
    await pgRaw.close();
    await run('sync', []);
    // A private compile cache, filled by one verify that is not counted: the CLI's cache persists in its data
    // directory, so every verify but the first after an upgrade starts warm.
    cacheDir = mkdtempSync(join(tmpdir(), 'airlock-bench-cache-'));
    await verifyInChild(stores[0]!.url, verifyEntries, cacheDir);
    const verifyAll = async (label: string, auditKey?: string) => {
      const rates: Record<string, Figure> = {};
      const cpuMicros: Record<string, Figure> = {};
      for (const s of stores) {
        const runs: number[] = [];
        const cpu: number[] = [];
        for (let r = 0; r < verifyRuns; r++) {
          const { ms, cpuMicros: micros } = await verifyInChild(s.url, verifyEntries, cacheDir!, auditKey);
          runs.push(verifyEntries / (ms / 1000));
          cpu.push(micros / verifyEntries);
        }
        rates[s.kind] = figure(runs);
        cpuMicros[s.kind] = figure(cpu);
        o.log(`  audit verify ${s.kind}, ${verifyEntries} entries, ${label}: ${fmt(rates[s.kind])} entries/s (${verifyRuns} runs, each in a fresh process); CPU ${fmt(cpuMicros[s.kind], 2)} µs per entry`);
      }
      return { rates, cpuMicros };
    };
    const unsigned = await verifyAll('no signed head');
    // The head the checkpointer would have signed over the whole log, with a key of the bench's own.
    const secret = schnorr.utils.randomSecretKey();
    const publicKey = Buffer.from(schnorr.getPublicKey(secret)).toString('hex');
    const head = { treeSize: verifyEntries, rootHash: Buffer.from(tree.root()).toString('hex'), at: t0 + verifyEntries };
    const signedHead = { ...head, publicKey, signature: Buffer.from(schnorr.sign(treeHeadDigest(head), secret)).toString('hex') };
    for (const s of stores) await s.store().appendTreeHead(signedHead);
    const signed = await verifyAll('signed head', publicKey);
    const verify = signed.rates;
    const verifyCpuMicros = signed.cpuMicros;
    const verifyUnsigned = unsigned.rates;
    const verifyUnsignedCpuMicros = unsigned.cpuMicros;
    return { append, verify, verifyCpuMicros, verifyUnsigned, verifyUnsignedCpuMicros, verifyEntries, verifyRuns, generateSeconds };
  } finally {
    if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
    for (const s of stores) await s.close();
  }
}
