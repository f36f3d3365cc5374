// What one authorized signature writes: ledger rows, and the write-ahead log its durable commit appends.
// Runs the in-process signing path (harness, one store, `--agents` agents with the USDC policy the
// in-process bench uses). Before measuring, each agent signs `--history` times so the ledger spans many
// pages (a fresh database keeps every series in a handful of pages and hides the scattering); the measured
// signatures cycle through the agents, as a fleet does.
// - SQLite (file): a second connection runs `PRAGMA wal_checkpoint(TRUNCATE)` before the measured batch,
//   whose frames are then counted from the WAL file size (32-byte header, then 24 + page-size bytes per
//   frame). The batch stays under SQLite's autocheckpoint (1000 frames) so no frame is recycled meanwhile.
// - PostgreSQL: `pg_current_wal_insert_lsn()` before and after the batch. The server's WAL is shared with
//   anything else running on it, so the smallest of several batches is reported.
// - SQLite, `--batch`: instead, one group-commit batch of K signatures in flight together, first from the K
//   agents, then all from one agent; prints the batch's WAL frames and the pages written per table (dbstat).
//   Many agents scatter their series over more pages than one agent: the gap is what this shows.
// Usage: node bench/ledger-writes.ts [--store=sqlite|postgres] [--signatures=N] [--agents=K] [--history=H] [--batch]
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { ALICE, PG_URL, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type StoreKind } from '../packages/server/src/testing/harness.ts';

const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const store = arg('store', 'sqlite') as StoreKind;
const n = Number(arg('signatures', '12'));
const agents = Number(arg('agents', '16'));
const history = Number(arg('history', '100'));
const h = await startHarness({ store });
try {
  const signers: (() => Promise<void>)[] = [];
  for (let a = 0; a < agents; a++) {
    const { token } = await provisionAgent(h, { policy: usdcPolicy({ daily: (10n ** 30n).toString(), perRequest: '1000000' }) });
    const auth = await h.airlock.signing.authenticate(token);
    let nonce = 0;
    signers.push(async () => {
      const out = await h.airlock.signing.sign(auth, 'evm.transaction', usdcTransfer(ALICE, 1n, nonce++));
      if (out.status !== 200) throw new Error(`unexpected ${out.status}`);
    });
  }
  for (let i = 0; i < history; i++) for (const s of signers) await s();
  let next = 0;
  const sign = () => signers[next++ % signers.length]!();

  if (store === 'sqlite' && process.argv.includes('--batch')) {
    const path = join(h.config.dataDir, 'airlock.db');
    const probe = new DatabaseSync(path);
    const pageSize = Number((probe.prepare('PRAGMA page_size').get() as { page_size: number }).page_size);
    for (const [label, batch] of [[`${agents} agents`, signers], ['1 agent', signers.map(() => signers[0]!)]] as const) {
      probe.exec('PRAGMA wal_checkpoint(TRUNCATE)');
      const owner = new Map<number, string>();
      for (const r of probe.prepare('SELECT name, pageno FROM dbstat').all() as { name: string; pageno: number }[]) owner.set(Number(r.pageno), r.name);
      await Promise.all(batch.map((s) => s()));
      // WAL: a 32-byte header, then frames of a 24-byte header (page number first) and the page.
      const wal = readFileSync(`${path}-wal`);
      const pages = new Map<string, Set<number>>();
      let frames = 0;
      for (let off = 32; off + 24 + pageSize <= wal.length; off += 24 + pageSize, frames++) {
        const page = wal.readUInt32BE(off);
        const table = owner.get(page) ?? '(new pages)';
        pages.set(table, (pages.get(table) ?? new Set()).add(page));
      }
      const byTable = Object.fromEntries([...pages].map(([t, p]) => [t, p.size] as const).sort((a, b) => b[1] - a[1]));
      console.log(JSON.stringify({ store, batch: label, signatures: batch.length, history, walFrames: frames, walKiB: Math.round((frames * (pageSize + 24)) / 1024), pagesByTable: byTable }));
    }
    probe.close();
  } else if (store === 'sqlite') {
    const path = join(h.config.dataDir, 'airlock.db');
    const probe = new DatabaseSync(path);
    const pageSize = Number((probe.prepare('PRAGMA page_size').get() as { page_size: number }).page_size);
    const ledgerRows = () => Number((probe.prepare('SELECT count(*) AS n FROM ledger').get() as { n: number }).n);
    probe.exec('PRAGMA wal_checkpoint(TRUNCATE)');
    const rowsBefore = ledgerRows();
    for (let i = 0; i < n; i++) await sign();
    const walBytes = statSync(`${path}-wal`).size - 32;
    const rows = (ledgerRows() - rowsBefore) / n;
    console.log(JSON.stringify({ store, signatures: n, agents, history, ledgerRowsPerSignature: rows, walFramesPerSignature: +(walBytes / (pageSize + 24) / n).toFixed(1), walKiBPerSignature: +(walBytes / n / 1024).toFixed(1) }));
    probe.close();
  } else {
    const schema = new URL(h.config.storeUrl).searchParams.get('schema')!;
    const probe = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
    await probe.connect();
    const lsn = async () => BigInt((await probe.query("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn AS b")).rows[0].b);
    const ledgerRows = async () => Number((await probe.query('SELECT count(*) AS n FROM ledger')).rows[0].n);
    let best = Infinity;
    const rowsBefore = await ledgerRows();
    for (let batch = 0; batch < 5; batch++) {
      const start = await lsn();
      for (let i = 0; i < n; i++) await sign();
      best = Math.min(best, Number((await lsn()) - start) / n);
    }
    const rows = ((await ledgerRows()) - rowsBefore) / (5 * n);
    console.log(JSON.stringify({ store, signatures: n, agents, history, ledgerRowsPerSignature: rows, walKiBPerSignature: +(best / 1024).toFixed(1) }));
    await probe.end();
  }
} finally {
  await h.close();
}
