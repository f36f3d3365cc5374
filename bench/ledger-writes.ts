// What one authorized signature writes: ledger rows, and on SQLite the WAL pages (frames) its durable
// commit appends. Runs the in-process signing path (harness, SQLite file store, one agent, the USDC
// policy the in-process bench uses) and reads the database through a second connection:
// `PRAGMA wal_checkpoint(TRUNCATE)` empties the WAL before the measured signatures, whose frames are then
// counted from the WAL file size (32-byte header, then 24 + page-size bytes per frame). The batch is kept
// under SQLite's autocheckpoint (1000 frames) so no frame is recycled while counting.
// Before measuring, `--agents` agents sign `--history` times each, so the ledger spans many pages (a
// fresh database keeps every series in a handful of pages and hides the scattering); the measured
// signatures cycle through those agents, as a fleet does.
// Usage: node bench/ledger-writes.ts [--signatures=N] [--agents=K] [--history=H]
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer } from '../packages/server/src/testing/harness.ts';

const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const n = arg('signatures', 12);
const agents = arg('agents', 16);
const history = arg('history', 100);
const h = await startHarness({ store: 'sqlite' });
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

  const path = join(h.config.dataDir, 'airlock.db');
  const probe = new DatabaseSync(path);
  const pageSize = Number((probe.prepare('PRAGMA page_size').get() as { page_size: number }).page_size);
  const ledgerRows = () => Number((probe.prepare('SELECT count(*) AS n FROM ledger').get() as { n: number }).n);
  probe.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  const rowsBefore = ledgerRows();
  const walBefore = statSync(`${path}-wal`).size;
  for (let i = 0; i < n; i++) await sign();
  const walBytes = statSync(`${path}-wal`).size - Math.max(walBefore, 32);
  const frames = walBytes / (pageSize + 24);
  const rows = (ledgerRows() - rowsBefore) / n;
  console.log(JSON.stringify({ signatures: n, agents, history, ledgerRowsPerSignature: rows, walFramesPerSignature: +(frames / n).toFixed(1), walKiBPerSignature: +(walBytes / n / 1024).toFixed(1), pageSize }));
  if (process.env.KEEP_WAL) { console.log(path); await new Promise((r) => setTimeout(r, 600_000)); }
  probe.close();
} finally {
  await h.close();
}
