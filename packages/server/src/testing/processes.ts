// Real daemon processes for multi-instance and crash tests: data initialised in-process with the
// production KDF (a spawned daemon opens its vault with default parameters, so TEST_VAULT cannot be used),
// then `airlock start` spawned as a child and spoken to over real HTTP.
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { keccak256, parseTransaction, serializeTransaction, type Hex } from 'viem';
import { loadConfig } from '../config.ts';
import { initAirlock } from '../runtime.ts';
import { PG_URL, pgSchemaUrl, uniqueName } from './harness.ts';
import { decodeWire, encodeWire } from '../key-process/wire.ts';

const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../..');
const NODE = join(REPO_ROOT, 'node_modules/.bin/node');
const CLI = join(REPO_ROOT, 'packages/cli/src/run.ts');
const DAEMON_PASSPHRASE = 'process test passphrase 0123456789';
// Start-up runs the vault KDF (deliberately slow); on a loaded 2-core machine it has taken 12 s, so 20 s was flaky.
const START_TIMEOUT_MS = 60_000;

export interface DaemonData {
  dataDir: string;
  storeUrl: string;
  passphrase: string;
  adminToken: string;
  /** Removes the data directory and drops the PostgreSQL schema (if one was created here). */
  cleanup(): Promise<void>;
}

/**
 * `airlock init` in-process with the real KDF. `store`: 'sqlite' (file in the data dir), 'postgres'
 * (a fresh schema on the shared test database) or an explicit store URL (owned by the caller).
 */
export async function prepareDaemonData(store: 'sqlite' | 'postgres' | { url: string }): Promise<DaemonData> {
  const dataDir = mkdtempSync(join(tmpdir(), 'airlock-proc-'));
  const schema = store === 'postgres' ? await pgSchemaUrl() : undefined;
  const storeUrl = typeof store === 'object' ? store.url : schema?.url;
  const cleanup = async () => {
    rmSync(dataDir, { recursive: true, force: true });
    await schema?.drop();
  };
  try {
    const config = loadConfig({ dataDir, ...(storeUrl ? { storeUrl } : {}) }, {});
    const init = await initAirlock(config, DAEMON_PASSPHRASE);
    return { dataDir, storeUrl: config.storeUrl, passphrase: DAEMON_PASSPHRASE, adminToken: init.adminToken, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

export interface Daemon {
  url: string;
  pid: number;
  /** Everything the process wrote so far (for failure messages). */
  output(): string;
  /** Sends the signal and waits for the process to be gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

// Every child ever spawned here: killed by killAllDaemons(), and by the exit hook if a test forgot.
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

const isRunning = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

function waitForExit(child: ChildProcess): Promise<void> {
  return isRunning(child) ? new Promise((done) => child.once('exit', () => done())) : Promise.resolve();
}

/**
 * Spawns the CLI with `args`; resolves with the first match of `ready` in its output (`what` names it in errors),
 * or rejects (the child killed) when it exits first or takes longer than START_TIMEOUT_MS. The last `keep`
 * characters of its output stay readable.
 */
async function spawnServing(args: string[], env: NodeJS.ProcessEnv, ready: RegExp, what: string, keep: number): Promise<{ match: RegExpExecArray; child: ChildProcess; output: () => string; kill: Daemon['kill'] }> {
  const child = spawn(NODE, [CLI, ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let output = '';
  const collect = (chunk: Buffer) => void (output = (output + chunk.toString()).slice(-keep));
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (isRunning(child)) child.kill(signal);
    await waitForExit(child);
  };
  try {
    const match = await new Promise<RegExpExecArray>((resolveMatch, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what} did not start within ${START_TIMEOUT_MS} ms:\n${output}`)), START_TIMEOUT_MS);
      const onData = () => {
        const found = ready.exec(output);
        if (!found) return;
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolveMatch(found);
      };
      child.stdout!.on('data', onData);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${what} exited before listening (code ${code}, signal ${signal}):\n${output}`));
      });
    });
    return { match, child, output: () => output, kill };
  } catch (e) {
    await kill();
    throw e;
  }
}

/** Spawns `airlock start` on a data directory; resolves once it prints the URL it listens on. */
/** `env`: settings for this daemon only (e.g. a Lightning backend), on top of this process's environment. */
export async function startDaemon(data: DaemonData, env: Record<string, string> = {}): Promise<Daemon> {
  const { match, child, output, kill } = await spawnServing(
    ['start'],
    {
      ...process.env,
      ...env,
      AIRLOCK_DATA_DIR: data.dataDir,
      AIRLOCK_STORE: data.storeUrl,
      AIRLOCK_PASSPHRASE: data.passphrase,
      // The kernel picks a free port and the daemon prints it: no window in which another process takes it.
      AIRLOCK_PORT: '0',
      AIRLOCK_HOST: '127.0.0.1',
      // Race, crash and load runs drive one session far past an agent's rate; the limit has its own tests.
      AIRLOCK_SESSION_RATE: process.env.AIRLOCK_SESSION_RATE ?? '0',
    },
    /Airlock listening on (http:\/\/\S+)/,
    'daemon',
    20_000,
  );
  return { url: match[1]!, pid: child.pid!, output, kill };
}

/**
 * Spawns `airlock key-process` on a data directory (the vault's KDF runs here); resolves once it listens on
 * `socketPath`. `url` is the socket path. Killed with the daemons by killAllDaemons().
 */
export async function startKeyProcessChild(data: DaemonData, socketPath: string, env: Record<string, string> = {}, args: string[] = []): Promise<Daemon & { child: ChildProcess }> {
  const { child, output, kill } = await spawnServing(
    ['key-process', '--socket', socketPath, ...args],
    { ...process.env, ...env, AIRLOCK_DATA_DIR: data.dataDir, AIRLOCK_STORE: data.storeUrl, AIRLOCK_PASSPHRASE: data.passphrase },
    /Key process listening on/,
    'key process',
    200_000,
  );
  return { url: socketPath, pid: child.pid!, output, kill, child };
}

/** `airlock <args>` against a daemon, as an operator's shell runs it (only AIRLOCK_URL and the admin token set). */
export function runAirlock(baseUrl: string, adminToken: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(NODE, [CLI, ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR, AIRLOCK_URL: baseUrl, AIRLOCK_ADMIN_TOKEN: adminToken },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolveRun, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolveRun({ code, stdout, stderr }));
  });
}

/** SIGKILLs every daemon still running. Safe to call from `after` whatever happened. */
export async function killAllDaemons(): Promise<void> {
  await Promise.all([...children].map((child) => {
    if (isRunning(child)) child.kill('SIGKILL');
    return waitForExit(child);
  }));
}

export interface HttpResult {
  status: number;
  body: any;
}

/** One JSON request over real HTTP. Network failures (a killed daemon) reject. */
export async function httpJson(
  baseUrl: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<HttpResult> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(`${baseUrl}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

export function adminClient(baseUrl: string, adminToken: string) {
  return (method: string, path: string, body?: unknown) => httpJson(baseUrl, method, path, { token: adminToken, ...(body !== undefined ? { body } : {}) });
}

/** Creates an agent with a policy and a one-hour session through a daemon's admin API. */
export async function provisionRemoteAgent(baseUrl: string, adminToken: string, opts: { policy?: unknown; name?: string } = {}) {
  const admin = adminClient(baseUrl, adminToken);
  const created = await admin('POST', '/v1/agents', { names: [opts.name ?? uniqueName('bot')] });
  if (created.status !== 201) throw new Error(`create agent: ${JSON.stringify(created.body)}`);
  const agent = created.body.agents[0];
  if (opts.policy !== undefined) {
    const set = await admin('PUT', `/v1/policies/${agent.name}`, { document: opts.policy });
    if (set.status !== 200) throw new Error(`set policy: ${JSON.stringify(set.body)}`);
  }
  const issued = await admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'] });
  if (issued.status !== 201) throw new Error(`issue session: ${JSON.stringify(issued.body)}`);
  return { agent, token: issued.body.token as string };
}

/** The whole audit log (or a filtered part of it), paging past the 1,000-entry limit. */
export async function readWholeAudit(baseUrl: string, adminToken: string, filter = ''): Promise<any[]> {
  const entries: any[] = [];
  for (let after = 0; ;) {
    const page = await httpJson(baseUrl, 'GET', `/v1/audit?limit=1000&after=${after}${filter ? `&${filter}` : ''}`, { token: adminToken });
    if (page.status !== 200) throw new Error(`audit query: ${JSON.stringify(page.body)}`);
    entries.push(...page.body.entries);
    if (page.body.entries.length < 1000) return entries;
    after = page.body.entries.at(-1).seq;
  }
}

/** The digest a signed EVM transaction commits to, recomputed independently with viem (no Airlock code). */
export function signedTransactionDigest(signedTransaction: Hex): string {
  const { r: _r, s: _s, v: _v, yParity: _y, ...unsigned } = parseTransaction(signedTransaction);
  return keccak256(serializeTransaction(unsigned)).slice(2);
}

export interface PgDatabase {
  name: string;
  /** Store URL of the database (its public schema). */
  url: string;
  /** Refuses new connections and terminates existing ones: the store is down, the cluster is not. */
  block(): Promise<void>;
  unblock(): Promise<void>;
  drop(): Promise<void>;
}

async function onAdminConnection<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A dedicated database on the shared cluster, so it can be made unavailable without touching anything else. */
export async function createPgDatabase(prefix = 'airlock_t'): Promise<PgDatabase> {
  // 64 random bits: two test processes share the cluster, and eight hex digits could name one database twice.
  const name = `${prefix}_${randomBytes(8).toString('hex')}`;
  await onAdminConnection((c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    block: () =>
      onAdminConnection(async (c) => {
        // Refuse first, then terminate: a pool reconnecting in between would otherwise get back in.
        await c.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
        await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
      }),
    unblock: () => onAdminConnection(async (c) => void (await c.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`))),
    drop: () => onAdminConnection(async (c) => void (await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))),
  };
}

export const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

/**
 * Waits (up to 10 s) until `airlock audit verify` through `admin` passes with every entry under a signed tree head,
 * as a daemon with a short AIRLOCK_CHECKPOINT_INTERVAL soon has it; fails with the last answer otherwise.
 */
export async function waitForCoveringHead(admin: ReturnType<typeof adminClient>): Promise<void> {
  let verify: any;
  for (let i = 0; i < 50; i++) {
    verify = (await admin('POST', '/v1/audit/verify')).body;
    if (verify.treeHeads > 0 && verify.unanchored === 0) break;
    await sleep(200);
  }
  if (!(verify.ok && verify.treeHeads > 0 && verify.unanchored === 0)) throw new Error(`no tree head covers the log: ${JSON.stringify(verify)}`);
}

/** One request to the key process's socket, as any process that can open it would send it. */
export function askKeyProcess(socketPath: string, method: string, params: Record<string, unknown>): Promise<{ status: number; body: any }> {
  const body = encodeWire(params);
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: `/${method}`, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: decodeWire(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
