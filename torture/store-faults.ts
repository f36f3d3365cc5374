// Part 3, store faults. PostgreSQL: a dedicated database is made unavailable under load (connections
// refused and terminated; the shared cluster keeps running) and comes back. SQLite: the database lives on a
// small tmpfs that is filled under load, then freed. Either way Airlock answers 503 store_unavailable and
// signs nothing while the store cannot record, recovers by itself, and loses nothing it acknowledged.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, statfsSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { usdcPolicy } from '../packages/server/src/testing/harness.ts';
import {
  createPgDatabase, httpJson, prepareDaemonData, provisionRemoteAgent, startDaemon, type Daemon, type DaemonData, type PgDatabase,
} from '../packages/server/src/testing/processes.ts';
import { checkAuditVerifies, checkReceivedAudited, signRequestEntries } from './checks.ts';
import { brief, sleep, Tally, Violations, type Mode, type Part, type PartReport } from './lib.ts';
import { startLoad, type Answer, type Received } from './load.ts';

const UNIT = 1n;
const RECOVERY_LIMIT_MS = 15_000;
/** The small filesystem SQLite is filled on: larger than the WAL's bound plus the database (see sqliteDiskFull). */
const SQLITE_DISK_MIB = 64;

const isUnavailable = (a: Answer) => a.result?.status === 503 && a.result.body?.error?.code === 'store_unavailable';
const carriesSignature = (a: Answer) => !!(a.result?.body?.signature || a.result?.body?.signedTransaction);

/** Waits for the first 200 from the load after `since`; returns how long recovery took, or undefined. */
async function waitForRecovery(answers: Answer[], since: number): Promise<number | undefined> {
  while (performance.now() - since < RECOVERY_LIMIT_MS) {
    const ok = answers.find((a) => a.startedAt >= since && a.result?.status === 200);
    if (ok) return ok.endedAt - since;
    await sleep(20);
  }
  return undefined;
}

/** What fills the small filesystem (for a violation's text). */
function filesystemState(dir: string): string {
  const fs = statfsSync(dir);
  const files = readdirSync(dir).map((name) => `${name} ${statSync(join(dir, name)).size}`).join(', ');
  return `filesystem: ${fs.bavail * fs.bsize} of ${fs.blocks * fs.bsize} bytes free; files: ${files}`;
}

/** The answers started after `since`, tallied by status and message (for a violation's text). */
function answersSince(answers: Answer[], since: number): string {
  const tally = new Tally();
  for (const a of answers) if (a.startedAt >= since) tally.add(`${a.result?.status ?? 'no answer'} ${a.result?.body?.error?.message ?? ''}`.trim(), 1);
  return `answers since: ${tally.toString() || 'none'}`;
}

/** Shared judgement of one load: only 200 or 503 store_unavailable, and no signature on a 503. */
function judgeAnswers(answers: Answer[], v: Violations, label: string) {
  for (const a of answers) {
    if (!a.result) continue;
    if (a.result.status === 200) continue;
    v.check(isUnavailable(a), () => `${label}: answered ${a.result!.status} ${brief(a.result!.body)} (want 200 or 503 store_unavailable)`);
    v.check(!carriesSignature(a), () => `${label}: a ${a.result!.status} answer carries a signature`);
  }
}

async function postgresOutages(cycles: number, v: Violations) {
  const db: PgDatabase = await createPgDatabase('airlock_torture');
  let data: DaemonData | undefined;
  let daemon: Daemon | undefined;
  const statuses = new Tally();
  const recoveries: number[] = [];
  let duringOutage = 0;
  try {
    data = await prepareDaemonData({ url: db.url });
    daemon = await startDaemon(data);
    const { agent, token } = await provisionRemoteAgent(daemon.url, data.adminToken, { policy: usdcPolicy({ daily: '1000000000000' }) });
    const answers: Answer[] = [];
    const received: Received[] = [];
    let nonce = 0;
    const url = daemon.url;
    const load = startLoad({ urls: () => [url], signers: [{ agentId: agent.id, token }], concurrency: 8, amount: UNIT, nextNonce: () => nonce++, received, onAnswer: (a) => answers.push(a) });
    try {
      for (let cycle = 0; cycle < cycles; cycle++) {
        const label = `postgres outage ${cycle + 1}`;
        await sleep(200 + Math.random() * 400);
        await db.block();
        const downSince = performance.now();
        await sleep(300 + Math.random() * 700);
        const health = await httpJson(url, 'GET', '/v1/health');
        v.check(health.status === 503, () => `${label}: health answered ${health.status} while the store was down`);
        const upAt = performance.now();
        await db.unblock();
        // Every request that began and ended while the database refused connections: 503, no signature.
        const inside = answers.filter((a) => a.startedAt >= downSince && a.endedAt <= upAt);
        duringOutage += inside.length;
        v.check(inside.length > 0, () => `${label}: no request fell inside the outage`);
        for (const a of inside) v.check(isUnavailable(a) && !carriesSignature(a), () => `${label}: during the outage answered ${a.result?.status} ${brief(a.result?.body)}`);
        const took = await waitForRecovery(answers, upAt);
        if (v.check(took !== undefined, () => `${label}: no signature within ${RECOVERY_LIMIT_MS} ms after the database came back`)) recoveries.push(took!);
      }
    } finally {
      await load.stop();
    }
    for (const [k, n] of load.statuses.counts) statuses.add(k, n);
    judgeAnswers(answers, v, 'postgres');
    checkReceivedAudited(await signRequestEntries(url, data.adminToken), received, v, 'postgres after outages');
    await checkAuditVerifies(url, data.adminToken, v, 'postgres after outages');
    return { answers: statuses.toString(), duringOutage, recoveries, signatures: received.length };
  } finally {
    await daemon?.kill('SIGKILL');
    await db.unblock().catch(() => undefined);
    await data?.cleanup();
    await db.drop();
  }
}

/** Writes zeros until the filesystem refuses; returns the bytes written. */
function fillUp(path: string): number {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  let written = 0;
  try {
    for (;;) written += writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
  // Whatever is left below one chunk, byte by byte is too slow: a smaller second pass.
  const fd2 = openSync(`${path}.tail`, 'w');
  try {
    for (;;) written += writeSync(fd2, Buffer.alloc(512));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd2);
  }
  return written;
}

async function sqliteDiskFull(cycles: number, v: Violations) {
  const mountPoint = mkdtempSync(join(tmpdir(), 'airlock-torture-full-'));
  // Root in this environment: a real small filesystem, so SQLite meets a genuine ENOSPC (SQLITE_FULL). 64 MiB, not
  // less: under sustained load the WAL grows to the writer's backstop checkpoint (BACKSTOP_CHECKPOINT_PAGES, about
  // 40 MB) before it is reset, and on an 8 MiB disk it filled the disk by itself, leaving no room for the filler or
  // for the checkpoint that would reset it (a wedge only an operator freeing space ends: CI, 2026-12-03). The filler
  // stands for another program filling the disk, which is what this part checks Airlock survives.
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${SQLITE_DISK_MIB}m`, 'tmpfs', mountPoint]);
  let data: DaemonData | undefined;
  let daemon: Daemon | undefined;
  const statuses = new Tally();
  const recoveries: number[] = [];
  const walSizes: number[] = [];
  let duringFull = 0;
  let unavailable = 0;
  try {
    data = await prepareDaemonData({ url: `sqlite:${join(mountPoint, 'airlock.db')}` });
    daemon = await startDaemon(data);
    const { agent, token } = await provisionRemoteAgent(daemon.url, data.adminToken, { policy: usdcPolicy({ daily: '1000000000000' }) });
    const answers: Answer[] = [];
    const received: Received[] = [];
    let nonce = 0;
    const url = daemon.url;
    const load = startLoad({ urls: () => [url], signers: [{ agentId: agent.id, token }], concurrency: 8, amount: UNIT, nextNonce: () => nonce++, received, onAnswer: (a) => answers.push(a) });
    const filler = join(mountPoint, 'filler');
    try {
      for (let cycle = 0; cycle < cycles; cycle++) {
        const label = `sqlite disk full ${cycle + 1}`;
        await sleep(200 + Math.random() * 300);
        fillUp(filler);
        walSizes.push(statSync(join(mountPoint, 'airlock.db-wal'), { throwIfNoEntry: false })?.size ?? 0);
        const fullSince = performance.now();
        // Keep the disk full until the log cannot grow any more (WAL space already allocated, up to the backstop's
        // 40 MB, absorbs commits for a while).
        for (let i = 0; i < 600 && !answers.some((a) => a.startedAt >= fullSince && isUnavailable(a)); i++) await sleep(50);
        await sleep(300);
        const freedAt = performance.now();
        const inside = answers.filter((a) => a.startedAt >= fullSince && a.endedAt <= freedAt);
        duringFull += inside.length;
        unavailable += inside.filter(isUnavailable).length;
        v.check(inside.some(isUnavailable), () => `${label}: never answered 503 store_unavailable with the disk full (${inside.length} answers)`);
        rmSync(filler, { force: true });
        rmSync(`${filler}.tail`, { force: true });
        const took = await waitForRecovery(answers, freedAt);
        // On failure say what the daemon answered and logged since: an intermittent failure is found from this.
        if (v.check(took !== undefined, () => `${label}: no signature within ${RECOVERY_LIMIT_MS} ms after space was freed; ${answersSince(answers, freedAt)}; ${filesystemState(mountPoint)}; daemon log tail:\n${daemon!.output().slice(-4000)}`)) recoveries.push(took!);
      }
    } finally {
      await load.stop();
      rmSync(filler, { force: true });
      rmSync(`${filler}.tail`, { force: true });
    }
    for (const [k, n] of load.statuses.counts) statuses.add(k, n);
    judgeAnswers(answers, v, 'sqlite disk full');
    const health = await httpJson(url, 'GET', '/v1/health');
    v.check(health.status === 200, () => `sqlite: daemon not healthy after space was freed: ${health.status} ${brief(health.body)}`);
    checkReceivedAudited(await signRequestEntries(url, data.adminToken), received, v, 'sqlite after disk full');
    await checkAuditVerifies(url, data.adminToken, v, 'sqlite after disk full');
    // And after a restart on the same file: the log written around the full disk is intact on disk too.
    await daemon.kill('SIGKILL');
    daemon = await startDaemon(data);
    await checkAuditVerifies(daemon.url, data.adminToken, v, 'sqlite after disk full and restart');
    checkReceivedAudited(await signRequestEntries(daemon.url, data.adminToken), received, v, 'sqlite after disk full and restart');
    return { answers: statuses.toString(), duringFull, unavailable, recoveries, signatures: received.length, walSizes };
  } finally {
    await daemon?.kill('SIGKILL');
    await data?.cleanup();
    execFileSync('umount', [mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  }
}

const ms = (xs: number[]) => (xs.length ? `${Math.round(Math.min(...xs))}-${Math.round(Math.max(...xs))} ms` : 'n/a');

export const storeFaultsPart: Part = {
  name: 'store-faults',
  summary: `PostgreSQL unavailable and back under load; SQLite on a full ${SQLITE_DISK_MIB} MiB tmpfs`,
  async run(mode: Mode): Promise<PartReport> {
    const v = new Violations();
    const pg = await postgresOutages(mode === 'full' ? 10 : 2, v);
    const full = await sqliteDiskFull(mode === 'full' ? 5 : 1, v);
    return {
      figures: {
        'postgres.outages': pg.recoveries.length,
        'postgres.answersDuringOutages': pg.duringOutage,
        'postgres.recovery': ms(pg.recoveries),
        'postgres.signaturesChecked': pg.signatures,
        'postgres.answers': pg.answers,
        'sqlite.diskFullEvents': full.recoveries.length,
        'sqlite.answersWhileFull': `${full.duringFull} (503: ${full.unavailable})`,
        'sqlite.recovery': ms(full.recoveries),
        'sqlite.walBytesWhenFilled': full.walSizes.join(', '),
        'sqlite.signaturesChecked': full.signatures,
        'sqlite.answers': full.answers,
      },
      violations: v.done(),
    };
  },
};
