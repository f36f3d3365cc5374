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
    /** Set once this connection's COMMIT met the fault: the server's answers are held back, then the line is cut. */
    let losing: (() => void) | undefined;
    client.on('data', (chunk) => {
      for (const m of fromClient.push(chunk)) {
        if (losing === undefined && armed !== undefined && isCommit(m)) {
          const { fault, done } = armed;
          armed = undefined;
          if (fault === 'drop-before') {
            cut();
            done();
            return;
          }
          losing = done;
        }
        upstream.write(m.raw);
      }
    });
    upstream.on('data', (chunk) => {
      for (const m of fromServer.push(chunk)) {
        if (losing === undefined) {
          client.write(m.raw);
          continue;
        }
        // ReadyForQuery after the COMMIT: PostgreSQL has finished it. Nothing of its answer reaches the client.
        if (m.type === 'Z') {
          cut();
          losing();
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
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
