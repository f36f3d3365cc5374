// (6) Audit: the durable append rate (one entry per committed transaction, as the service writes them)
// and the `audit verify` rate over 1M entries. The 1M-entry log is built fast but valid: each leaf is
// built with auditLeaf and hashed with leafHash exactly as appendAudit does, then rows are bulk-inserted
// with direct SQL; verifyStoredAudit (what `airlock audit verify` runs, in worker threads) then re-reads
// every entry, checks its columns against its stored leaf, re-hashes the leaf and rebuilds the tree. Its
// rate depends on what else the machine runs; the CPU time per entry it reports does not.
import { AUDIT_HASH_VERSION, auditLeaf, canonicalJson, leafHash, verifyStoredAudit, type AuditEntryInput, type Store } from '../packages/core/src/index.ts';
import { auditVerifyOptions, verifySchnorr } from '../packages/server/src/runtime.ts';
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
  /** key = store: whole-run rate of verifyStoredAudit over `verifyEntries`, entries/s (median of full runs). */
  verify: Record<string, Figure>;
  /** key = store: rate of each 100k-entry slice of those runs (the spread within a run). */
  verifySlices: Record<string, Figure>;
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

const SLICE = 100_000;

/** A store whose readAudit notes the time each 100k-entry slice starts (verifyStoredAudit pages through it). */
function timedStore(store: Store, marks: { seq: number; at: number }[]): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'readAudit') {
        return async (fromSeq: number, limit: number) => {
          if ((fromSeq - 1) % SLICE === 0) marks.push({ seq: fromSeq, at: performance.now() });
          return target.readAudit(fromSeq, limit);
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
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
  // A full 1M verify takes over a minute here: one full run per store, cut into ten 100k slices for the spread.
  const verifyRuns = Number(process.env.BENCH_VERIFY_RUNS ?? 1);
  const append: Record<string, Figure> = {};
  for (const kind of ['sqlite', 'postgres'] as StoreKind[]) {
    append[kind] = await appendRate(kind, o);
    o.log(`  audit append ${kind}: ${fmt(append[kind])} entries/s (durable, one transaction each)`);
  }

  const stores = [await scratchStore('sqlite'), await scratchStore('postgres')];
  try {
    const started = performance.now();
    const raws = await Promise.all(stores.map((s) => s.openRaw()));
    const BATCH = 10_000;
    const t0 = Date.now() - verifyEntries;
    for (let from = 1; from <= verifyEntries; from += BATCH) {
      const rows: (string | number)[][] = [];
      for (let seq = from; seq < from + BATCH && seq <= verifyEntries; seq++) {
        const input = signRequestEntry(seq, t0 + seq);
        // The leaf and hash appendAudit would store (buildAuditEntry): data passes through canonical JSON once.
        const leaf = auditLeaf({ ...input, seq }, canonicalJson(input.data ?? {}));
        const hash = Buffer.from(leafHash(leaf)).toString('hex');
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

    // The generated chain has no checkpoints, so no signature is checked against this key.
    const NO_CHECKPOINT_KEY = '0'.repeat(64);
    const verify: Record<string, Figure> = {};
    const verifySlices: Record<string, Figure> = {};
    const verifyCpuMicros: Record<string, Figure> = {};
    for (const s of stores) {
      const runs: number[] = [];
      const slices: number[] = [];
      const cpu: number[] = [];
      for (let r = 0; r < verifyRuns; r++) {
        const marks: { seq: number; at: number }[] = [];
        const t = performance.now();
        const cpuBefore = process.cpuUsage();
        const result = await verifyStoredAudit(timedStore(s.store(), marks), verifySchnorr, NO_CHECKPOINT_KEY, [], auditVerifyOptions(s.url));
        const end = performance.now();
        const used = process.cpuUsage(cpuBefore);
        cpu.push((used.user + used.system) / verifyEntries);
        if (!result.ok || result.entries !== verifyEntries) throw new Error(`audit verify failed on the generated chain: ${JSON.stringify(result)}`);
        runs.push(verifyEntries / ((end - t) / 1000));
        // Workers read the store on their own connections: slices are only timed when verify pages on this thread.
        if (marks.length > 0 && marks.at(-1)!.seq !== verifyEntries + 1) marks.push({ seq: verifyEntries + 1, at: end });
        for (let k = 1; k < marks.length; k++) slices.push((marks[k]!.seq - marks[k - 1]!.seq) / ((marks[k]!.at - marks[k - 1]!.at) / 1000));
        if (slices.length === 0) slices.push(runs.at(-1)!);
      }
      verify[s.kind] = figure(runs);
      verifySlices[s.kind] = figure(slices);
      verifyCpuMicros[s.kind] = figure(cpu);
      o.log(`  audit verify ${s.kind}, ${verifyEntries} entries: ${fmt(verify[s.kind])} entries/s (100k slices: ${fmt(verifySlices[s.kind])}); CPU ${fmt(verifyCpuMicros[s.kind], 2)} µs per entry`);
    }
    return { append, verify, verifySlices, verifyCpuMicros, verifyEntries, verifyRuns, generateSeconds };
  } finally {
    for (const s of stores) await s.close();
  }
}
