// Drives the real `airlock` command as child processes, the way an operator's shell does.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
/** The project's Node 24; the system node may be older. */
export const NODE = fileURLToPath(new URL('../../../../node_modules/.bin/node', import.meta.url));
export const RUN_TS = fileURLToPath(new URL('../run.ts', import.meta.url));
export const LAUNCHER = fileURLToPath(new URL('../../bin/airlock.js', import.meta.url));
export const SYSTEM_NODE = '/usr/bin/node';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Everything any child printed, so a test can check that no secret ever reached a terminal. */
export const transcript: string[] = [];

/**
 * A minimal environment: nothing AIRLOCK_* leaks in from the developer's shell, and no TTY, so the CLI
 * never waits on a prompt.
 */
export function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/** Runs `airlock <args>` to completion (`node run.ts`, or another launcher given as `command`). */
export function runCli(args: string[], env: NodeJS.ProcessEnv, command: string[] = [NODE, RUN_TS]): Promise<CliResult> {
  const started = performance.now();
  const child = spawn(command[0]!, [...command.slice(1), ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      transcript.push(stdout, stderr);
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}

export interface Daemon {
  url: string;
  child: ChildProcess;
  /** What the daemon has printed so far (stdout and stderr). */
  output(): string;
  /** SIGTERM, then the exit code. Idempotent. */
  stop(): Promise<number | null>;
}

/**
 * `airlock start` on a free port (AIRLOCK_PORT=0: the OS picks one, the daemon prints it), resolved once
 * the daemon prints "Airlock listening on <url>"; rejects with its output if it exits first (or prints nothing of
 * the kind within 60 s).
 */
export function startDaemon(env: NodeJS.ProcessEnv, command: string[] = [NODE, RUN_TS], extraArgs: string[] = []): Promise<Daemon> {
  const child = spawn(command[0]!, [...command.slice(1), 'start', ...extraArgs], { cwd: REPO_ROOT, env: { ...env, AIRLOCK_PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  exited.then(() => transcript.push(out));
  const daemon = (url: string): Daemon => ({
    url,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  });
  return new Promise((resolve, reject) => {
    // A generous bound, not a speed claim: on a loaded 2-core machine (a load of 9, CI beside other test runs) a
    // daemon once printed nothing at all within 30 s of its spawn.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`daemon did not start within 60 s:\n${out}`));
    }, 60_000);
    const onData = (d: Buffer) => {
      out += d;
      const m = /Airlock listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(daemon(m[1]!));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`daemon exited with ${code} before listening:\n${out}`), { code, output: out }));
    });
  });
}

/** The launcher run by an older system Node, when this machine has one; else undefined. */
export function systemNodeLauncher(): string[] | undefined {
  return existsSync(SYSTEM_NODE) ? [SYSTEM_NODE, LAUNCHER] : undefined;
}

/** Waits until nothing answers at `url` (the daemon closed its port). */
export async function waitUnreachable(url: string, timeoutMs = 10_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      await fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(500) });
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
