// A trivial HTTP server in its own process, to measure the load generator itself: it reads the body and
// answers 200 at once, so what the generator reports against it is the generator's (and loopback's) own
// latency floor. For the generator's tests it can also answer another status, hold every answer back
// (`delayMs`) or block its event loop for `stallMs` once, `stallAfterMs` after its first request (a
// server-side stall).
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';

export interface TrivialServerBehaviour {
  /** Status of every answer. Default 200. */
  status?: number;
  delayMs?: number;
  stallMs?: number;
  stallAfterMs?: number;
}

export interface TrivialServer {
  url: string;
  close(): Promise<void>;
}

export async function startTrivialServer(behaviour: TrivialServerBehaviour = {}): Promise<TrivialServer> {
  const child = spawn(process.execPath, [new URL(import.meta.url).pathname, JSON.stringify(behaviour)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`trivial server exited (code ${code}) before listening`)));
  });
  return {
    url,
    close: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

function serve(behaviour: TrivialServerBehaviour): void {
  let firstRequestAt: number | undefined;
  let stalled = false;
  const server = createServer((req, res) => {
    firstRequestAt ??= performance.now();
    if (behaviour.stallMs && !stalled && performance.now() - firstRequestAt >= (behaviour.stallAfterMs ?? 0)) {
      stalled = true;
      const until = performance.now() + behaviour.stallMs;
      while (performance.now() < until); // block the event loop, as a long synchronous fsync would
    }
    req.resume();
    req.on('end', () => {
      const answer = () => res.writeHead(behaviour.status ?? 200, { 'content-type': 'application/json', 'content-length': '2' }).end('{}');
      if (behaviour.delayMs) setTimeout(answer, behaviour.delayMs);
      else answer();
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as { port: number };
    process.stdout.write(`listening on http://127.0.0.1:${port}\n`);
  });
  process.once('SIGTERM', () => process.exit(0));
}

if (import.meta.main) serve(JSON.parse(process.argv[2] ?? '{}') as TrivialServerBehaviour);
