// A TCP proxy between Airlock and PostgreSQL that can lose the answer to a COMMIT: the fault a daemon meets when
// its connection breaks (network, failover, a killed pooler) after PostgreSQL got the COMMIT. It reads the
// wire protocol's framing (protocol 3.0: after the untyped startup message, every message is a type byte and
// an int32 length that counts itself) and forwards everything unchanged until armed.
import { createServer, connect, type Server, type Socket } from 'node:net';

export type CommitFault =
  /** Forward the COMMIT, let PostgreSQL answer (so it committed), then cut the connection without relaying the answer. */
  | 'lose-answer'
  /** Cut the connection instead of forwarding the COMMIT (so PostgreSQL rolls the transaction back). */
  | 'drop-before';

export interface PgFaultProxy {
  /** host:port to put in a PostgreSQL URL. */
  hostPort: string;
  /** The next COMMIT sent on any connection meets `fault`; resolves once it has (and the connection is cut). */
  armNextCommit(fault: CommitFault): Promise<void>;
  /** Takes back an armed fault that no COMMIT met (a test that failed before one was sent). */
  disarm(): void;
  close(): Promise<void>;
}

/** Splits a byte stream into protocol messages; `untypedFirst`: the client's startup message has no type byte. */
class MessageFramer {
  #buffer: Buffer = Buffer.alloc(0);
  #untyped: boolean;
  constructor(untypedFirst: boolean) {
    this.#untyped = untypedFirst;
  }
  push(chunk: Buffer): { type: string; body: Buffer; raw: Buffer }[] {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const out: { type: string; body: Buffer; raw: Buffer }[] = [];
    for (;;) {
      const head = this.#untyped ? 0 : 1;
      if (this.#buffer.length < head + 4) break;
      const length = this.#buffer.readInt32BE(head);
      if (length < 4) throw new Error(`not the PostgreSQL wire protocol (message length ${length}); SSL/GSS negotiation is not supported`);
      if (this.#buffer.length < head + length) break;
      const raw = this.#buffer.subarray(0, head + length);
      out.push({ type: this.#untyped ? '' : String.fromCharCode(raw[0]!), body: raw.subarray(head + 4), raw });
      this.#buffer = this.#buffer.subarray(head + length);
      this.#untyped = false;
    }
    return out;
  }
}

/** A simple-protocol Query ('Q') whose text is COMMIT (node-postgres sends COMMIT that way). */
const isCommit = (m: { type: string; body: Buffer }) => m.type === 'Q' && m.body.toString('utf8').replace(/\0$/, '').trim().toUpperCase() === 'COMMIT';

export async function startPgFaultProxy(target: { host: string; port: number }): Promise<PgFaultProxy> {
  const sockets = new Set<Socket>();
  let armed: { fault: CommitFault; done: () => void } | undefined;
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    const fromClient = new MessageFramer(true);
    const fromServer = new MessageFramer(false);
    // Every Query ('Q') and Sync ('S') is answered by exactly one ReadyForQuery ('Z'), in order, and so is the
    // startup message (counted here): counting both tells which answer is the COMMIT's even with earlier
    // statements still unanswered (pipelining).
    let syncsSent = 1;
    let readyReceived = 0;
    /** Set once this connection's COMMIT met the fault: its answer (the `syncsSent`-th) is held back, then the line cut. */
    let losing: { answer: number; done: () => void } | undefined;
    client.on('data', (chunk) => {
      for (const m of fromClient.push(chunk)) {
        if (m.type === 'Q' || m.type === 'S') syncsSent++;
        if (losing === undefined && armed !== undefined && isCommit(m)) {
          const { fault, done } = armed;
          armed = undefined;
          if (fault === 'drop-before') {
            cut();
            done();
            return;
          }
          losing = { answer: syncsSent, done };
        }
        upstream.write(m.raw);
      }
    });
    upstream.on('data', (chunk) => {
      for (const m of fromServer.push(chunk)) {
        // The answers before the COMMIT's go through; from the first message of its answer on, nothing does.
        if (losing === undefined || readyReceived < losing.answer - 1) client.write(m.raw);
        if (m.type !== 'Z') continue;
        readyReceived++;
        // ReadyForQuery after the COMMIT: PostgreSQL has finished it (durably). Nothing of its answer got through.
        if (losing !== undefined && readyReceived === losing.answer) {
          cut();
          losing.done();
          return;
        }
      }
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    hostPort: `127.0.0.1:${port}`,
    armNextCommit: (fault) => new Promise<void>((resolve) => (armed = { fault, done: resolve })),
    disarm: () => {
      armed = undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
