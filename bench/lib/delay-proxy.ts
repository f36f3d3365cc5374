// A TCP proxy that delays every chunk by a fixed time in each direction, to give loopback PostgreSQL the
// round trip of a database on another machine (scale-out measurements: on one 2-core box the CPU, not the
// locks, would otherwise decide). Order within a direction is kept: equal-delay timers fire in creation order.
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface DelayProxy {
  port: number;
  /** Round trip added to every request/response exchange, ms. */
  addedRttMs: number;
  close(): Promise<void>;
}

export async function startDelayProxy(target: { host: string; port: number }, addedRttMs: number): Promise<DelayProxy> {
  const oneWay = addedRttMs / 2;
  const sockets = new Set<Socket>();
  const pipeDelayed = (from: Socket, to: Socket) => {
    from.on('data', (chunk) => setTimeout(() => to.writable && to.write(chunk), oneWay));
    from.on('end', () => setTimeout(() => to.end(), oneWay));
    from.on('error', () => to.destroy());
    from.on('close', () => setTimeout(() => to.destroy(), oneWay));
  };
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    }
    pipeDelayed(client, upstream);
    pipeDelayed(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    addedRttMs,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
