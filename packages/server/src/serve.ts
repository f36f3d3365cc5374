import { existsSync, unlinkSync } from 'node:fs';
import { createAdaptorServer } from '@hono/node-server';
import type { Server } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { createApp, refusalTallyFor } from './http/app.ts';
import { AirlockHolder } from './http/holder.ts';
import type { AirlockConfig } from './config.ts';
import { openAirlock, type Airlock, type OpenOptions } from './runtime.ts';

export interface RunningServer {
  url: string;
  holder: AirlockHolder;
  server: Server;
  close(): Promise<void>;
}

/**
 * Starts the HTTP daemon. With a passphrase it unseals at once; without one it starts sealed and waits
 * for POST /v1/unseal (every signing request answers 503 until then).
 */
export async function serveAirlock(config: AirlockConfig, passphrase: string | undefined, options: OpenOptions = {}): Promise<RunningServer> {
  const unsealer = async (p: string): Promise<Airlock> => {
    const airlock = await openAirlock(config, p, options);
    const { kind, reason } = airlock.keyBackend;
    console.log(`[airlock] key backend: ${kind === 'native' ? 'native (libsecp256k1)' : 'js (noble)'} (${reason})`);
    return airlock;
  };
  const holder = passphrase !== undefined ? new AirlockHolder(await unsealer(passphrase), unsealer) : new AirlockHolder(undefined, unsealer);
  const refusals = refusalTallyFor(holder);
  const app = createApp(holder, {
    bodyLimitBytes: config.bodyLimitBytes,
    allowedOrigins: config.allowedOrigins,
    // A Unix socket has no meaningful Host and no browser can reach it.
    allowedHosts: config.socketPath ? 'any' : [...(isIP(config.host) ? [] : [config.host]), ...config.allowedHosts],
    sessionRate: config.sessionRate,
    refusals,
  });
  // Closes refusal windows when no request comes along to close them.
  const now = () => (holder.sealed ? Date.now() : holder.get().deps.clock.now());
  const flushTimer = setInterval(() => void refusals.flushDue(now()), 10_000);
  flushTimer.unref();
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  server.keepAliveTimeout = 65_000;
  let url: string;
  if (config.socketPath) {
    if (existsSync(config.socketPath)) unlinkSync(config.socketPath);
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(config.socketPath, resolve));
    url = `unix:${config.socketPath}`;
  } else {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(config.port, config.host, resolve));
    const addr = server.address() as AddressInfo;
    url = `http://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}`;
  }
  return {
    url,
    holder,
    server,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      });
      clearInterval(flushTimer);
      await refusals.flushAll(now());
      await holder.close();
    },
  };
}
