import { createAdaptorServer } from '@hono/node-server';
import { claimSocketPath } from './socket-path.ts';
import type { Server } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { createApp, refusalTallyFor } from './http/app.ts';
import { AirlockHolder } from './http/holder.ts';
import { AirlockMetrics, listenOrExplain, serveMetrics, type MetricsServer } from './http/metrics.ts';
import { createLogger, type Logger } from './http/request-log.ts';
import type { AirlockConfig } from './config.ts';
import { openAirlock, type Airlock, type OpenOptions, type VaultUnlock } from './runtime.ts';
import { explainStoreFailure } from './store-failure.ts';

// The CLI explains a store it cannot open the same way for `init`, a first-run `start` and `store migrate`.
export { explainStoreFailure };

export interface RunningServer {
  url: string;
  /** Where Prometheus scrapes, when AIRLOCK_METRICS_LISTEN is set. */
  metricsUrl?: string;
  holder: AirlockHolder;
  server: Server;
  logger: Logger;
  /**
   * Graceful stop: refuse new requests (`503 shutting_down`, health still answers), let in-flight ones finish
   * for up to `config.shutdownTimeoutMs`, then close the listener and every connection, write the final
   * signed tree head, wipe the keys and close the store. Resolves with how many requests were cut at the deadline.
   */
  drainAndClose(): Promise<{ cut: number }>;
  /** drainAndClose() without the count. */
  close(): Promise<void>;
}

export interface ServeOptions extends OpenOptions {
  /**
   * The daemon's JSON log (`airlock start` passes one at AIRLOCK_LOG_LEVEL). Without one, start-up and
   * internal errors still go to stdout at the configured level, but requests are not logged: an embedding
   * (the SDK's and the testbed's tests) is not flooded with a line per request.
   */
  logger?: Logger;
}

/**
 * Starts the HTTP daemon. With a passphrase it unseals at once; without one it starts sealed and waits
 * for POST /v1/unseal (every signing request answers 503 until then).
 */
export async function serveAirlock(config: AirlockConfig, passphrase: VaultUnlock | undefined, options: ServeOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? createLogger(config.logLevel, process.stdout, config.logQueueBytes);
  if (config.socketPath) await claimSocketPath(config.socketPath, 'AIRLOCK_SOCKET / --socket');
  const unsealer = async (p: VaultUnlock): Promise<Airlock> => {
    let airlock: Airlock;
    try {
      airlock = await openAirlock(config, p, options);
    } catch (e) {
      throw explainStoreFailure(e, config.storeUrl);
    }
    const { kind, reason } = airlock.keyBackend;
    logger.log('info', 'key backend', { backend: kind === 'native' ? 'native (libsecp256k1)' : kind === 'js' ? 'js (noble)' : kind, reason });
    return airlock;
  };
  const holder = passphrase !== undefined ? new AirlockHolder(await unsealer(passphrase), unsealer) : new AirlockHolder(undefined, unsealer);
  const refusals = refusalTallyFor(holder);
  const metrics = config.metricsListen ? new AirlockMetrics(holder, { budgetTopAgents: config.metricsBudgetAgents, logger }) : undefined;
  let draining = false;
  const app = createApp(holder, {
    bodyLimitBytes: config.bodyLimitBytes,
    allowedOrigins: config.allowedOrigins,
    // A Unix socket's clients send whatever Host their URL names; only a web page's requests (behind a bridge to
    // the socket) must name a served host.
    allowedHosts: config.socketPath ? config.allowedHosts : [...(isIP(config.host) ? [] : [config.host]), ...config.allowedHosts],
    ...(config.socketPath ? { hostCheck: 'browser' as const } : {}),
    sessionRate: config.sessionRate,
    refusals,
    observer: { ...(options.logger ? { logger } : {}), ...(metrics ? { metrics } : {}) },
    draining: () => draining,
    logInternalError: (err) => {
      const cause = err.cause instanceof Error ? (err.cause.stack ?? err.cause.message) : String(err.cause);
      logger.log('error', 'internal error', { code: err.code, cause });
    },
  });
  // Closes refusal windows when no request comes along to close them.
  const now = () => (holder.sealed ? Date.now() : holder.get().deps.clock.now());
  const flushTimer = setInterval(() => void refusals.flushDue(now()), 10_000);
  flushTimer.unref();
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  server.keepAliveTimeout = 65_000;
  const inFlight = trackInFlight(server);
  let url: string;
  if (config.socketPath) {
    try {
      await claimSocketPath(config.socketPath, 'AIRLOCK_SOCKET / --socket');
    } catch (e) {
      await holder.close();
      throw e;
    }
    await listenOrExplain(server, config.socketPath, undefined, 'AIRLOCK_SOCKET / --socket');
    url = `unix:${config.socketPath}`;
  } else {
    await listenOrExplain(server, config.port, config.host, 'AIRLOCK_PORT / --port');
    const addr = server.address() as AddressInfo;
    url = `http://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}`;
  }
  let metricsServer: MetricsServer | undefined;
  if (metrics && config.metricsListen) {
    try {
      // The API's host rule (a rebound name is refused): its listed names, and the name the listener is bound to.
      const metricsHosts = [...(isIP(config.metricsListen.host) ? [] : [config.metricsListen.host]), ...config.allowedHosts];
      metricsServer = await serveMetrics(metrics, config.metricsListen, { allowedHosts: metricsHosts });
    } catch (e) {
      server.close();
      await holder.close();
      throw e;
    }
  }
  let closing: Promise<{ cut: number }> | undefined;
  const running: RunningServer = {
    url,
    ...(metricsServer ? { metricsUrl: metricsServer.url } : {}),
    holder,
    server,
    logger,
    async close() {
      await running.drainAndClose();
    },
    drainAndClose() {
      closing ??= (async () => {
        draining = true;
        holder.draining = true;
        // The listener stays open while requests drain: a connection the kernel has already queued is then
        // answered `503 shutting_down` instead of being reset when the listening socket closes under it.
        const cut = await inFlight.settled(config.shutdownTimeoutMs);
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        clearInterval(flushTimer);
        await metricsServer?.close();
        await refusals.flushAll(now());
        // Writes the final signed tree head (runtime.ts close), wipes the key material, closes the store.
        await holder.close();
        return { cut };
      })();
      return closing;
    },
  };
  return running;
}

/** Quiet time after the last request arrived before a draining daemon closes its listener. */
const DRAIN_QUIET_MS = 300;

/**
 * Counts requests between arrival and the end of their response. `settled(ms)` resolves once none is
 * running and none but health checks has arrived for DRAIN_QUIET_MS (connections the kernel already queued
 * get their `503 shutting_down` instead of a reset), or after `ms`, with the number still running then.
 */
function trackInFlight(server: Server) {
  let count = 0;
  let lastArrival = 0;
  // A connection accepted counts as an arrival too: on a loaded machine its request may not have been read yet
  // when the quiet time would otherwise end (a drain test saw queued connections reset under load 8 on 2 cores).
  server.on('connection', () => {
    lastArrival = performance.now();
  });
  server.on('request', (req, res) => {
    count++;
    // A load balancer polling readiness must not hold the drain open until the deadline.
    if (!req.url?.startsWith('/v1/health')) lastArrival = performance.now();
    res.once('close', () => void count--);
  });
  return {
    settled(timeoutMs: number): Promise<number> {
      const deadline = performance.now() + timeoutMs;
      return new Promise<number>((resolve) => {
        const check = () => {
          const now = performance.now();
          if (count === 0 && now - lastArrival >= DRAIN_QUIET_MS) return resolve(0);
          if (now >= deadline) return resolve(count);
          setTimeout(check, 50);
        };
        check();
      });
    },
  };
}
