// Test helper: a real local EVM chain (anvil from the `@foundry-rs/anvil` npm package) on a free
// loopback port. Anvil cannot bind port 0, so we pick a random port and retry when it is taken.
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export interface Anvil {
  rpcUrl: string;
  chainId: number;
  /** Kills the node and waits for it to exit. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartAnvilOptions {
  /** Default 31337 (anvil's own default). */
  chainId?: number;
  /** Ports tried before giving up. Default 5. */
  attempts?: number;
  /** How long one start may take to answer eth_chainId. Default 15 s. */
  readyTimeoutMs?: number;
  /**
   * Lift EIP-170's 24,576-byte limit on contract code, for a contract whose shipped build is larger than the
   * one deployed on public chains (Zodiac Roles from zodiac-roles-sdk). Default false.
   */
  disableCodeSizeLimit?: boolean;
}

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64' };

/**
 * The native binary, spawned directly rather than through the package's node wrapper, so that
 * `stop()` signals anvil itself and no orphan keeps the port.
 */
function anvilCommand(): { command: string; args: string[] } {
  const require = createRequire(import.meta.url);
  const platformPackage = `@foundry-rs/anvil-${process.platform}-${ARCH[process.arch] ?? process.arch}`;
  try {
    return { command: require.resolve(`${platformPackage}/bin/anvil`), args: [] };
  } catch {
    // Unknown layout: go through the wrapper (it forwards SIGTERM to the binary).
    const wrapper = fileURLToPath(new URL('../../../../node_modules/@foundry-rs/anvil/bin.mjs', import.meta.url));
    return { command: process.execPath, args: [wrapper] };
  }
}

export async function startAnvil(options: StartAnvilOptions = {}): Promise<Anvil> {
  const chainId = options.chainId ?? 31337;
  const attempts = options.attempts ?? 5;
  let lastError: unknown;
  for (let i = 0; i < attempts; i++) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    try {
      return await startOn(port, chainId, options.readyTimeoutMs ?? 15_000, options.disableCodeSizeLimit ? ['--disable-code-size-limit'] : []);
    } catch (e) {
      lastError = e;
    }
  }
  throw new Error(`anvil did not start after ${attempts} attempts`, { cause: lastError });
}

/**
 * Binds and releases the port first: a node already listening there (say, another test's anvil with the
 * same chain id) would otherwise answer our readiness probe while our own anvil dies on the busy port.
 */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

async function startOn(port: number, chainId: number, readyTimeoutMs: number, extraArgs: readonly string[]): Promise<Anvil> {
  if (!(await portIsFree(port))) throw new Error(`port ${port} is taken`);
  const { command, args } = anvilCommand();
  const child = spawn(command, [...args, '--host', '127.0.0.1', '--port', String(port), '--chain-id', String(chainId), '--silent', ...extraArgs], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-2000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // A spawn failure (missing binary) arrives as 'error'; record it so the wait below stops early.
  let spawnError: Error | undefined;
  child.once('error', (e) => (spawnError = e));
  // If the test process ends without calling stop() (a crash, process.exit), take anvil down with it.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const stop = async () => {
    process.off('exit', killOnExit);
    await stopChild(child, exited);
  };

  const rpcUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    if (spawnError) break;
    if (child.exitCode !== null || child.signalCode !== null) break; // e.g. the port was taken
    const answered = await chainIdOf(rpcUrl);
    const alive = child.exitCode === null && child.signalCode === null;
    if (answered === chainId && alive) return { rpcUrl, chainId, stop };
    if (answered !== undefined && answered !== chainId) {
      // Something else (another anvil?) owns the port: not ours.
      await stop();
      throw new Error(`port ${port} answers with chain id ${answered}, expected ${chainId}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await stop();
  throw new Error(`anvil on port ${port} did not answer eth_chainId`, { cause: spawnError ?? (stderr ? new Error(stderr.trim()) : undefined) });
}

async function chainIdOf(rpcUrl: string): Promise<number | undefined> {
  try {
    const res = await fetch(rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
      signal: AbortSignal.timeout(1000),
    });
    const body = (await res.json()) as { result?: string };
    return body.result ? Number(BigInt(body.result)) : undefined;
  } catch {
    return undefined; // not listening yet
  }
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}
