import { resolve, join } from 'node:path';
import { AirlockError, BITCOIN_NETWORKS, parseDuration, type BitcoinNetwork } from '@airlock/core';
import { DEFAULT_LOG_QUEUE_BYTES, MIN_LOG_QUEUE_BYTES, parseLogLevel, type LogLevel } from './http/request-log.ts';

export interface AirlockConfig {
  /** Holds vault.json and (by default) airlock.db. */
  dataDir: string;
  vaultPath: string;
  /** `sqlite:<path>` (default: <dataDir>/airlock.db) or `postgres://…[?schema=name]`. */
  storeUrl: string;
  host: string;
  port: number;
  /** Listen on a Unix socket instead of TCP when set. */
  socketPath?: string;
  /** The keys live in a key process reached on this Unix socket (AIRLOCK_KEY_PROCESS_SOCKET, docs/custody.md): the daemon opens no vault. */
  keyProcessSocket?: string;
  approvalTtlMs: number;
  /**
   * How often overdue approvals are expired and their holds released (AIRLOCK_APPROVAL_EXPIRY_INTERVAL, default
   * 30s). An approval past its TTL is never granted whatever this is (approval actions expire it first): this sets
   * how soon its hold goes back to the budget.
   */
  approvalExpiryIntervalMs: number;
  bodyLimitBytes: number;
  checkpointIntervalMs: number;
  /** x402 reconciler: JSON-RPC URL per CAIP-2 network (AIRLOCK_EVM_RPC="eip155:31337=http://127.0.0.1:8545,…"). */
  evmRpc: Record<string, string>;
  /** How often the x402 reconciler runs (AIRLOCK_RECONCILE_INTERVAL, default 30s). */
  reconcileIntervalMs: number;
  /**
   * How often the lifecycle tracker re-broadcasts and polls open jobs, and the hot-balance pass reads new
   * Transfer logs (AIRLOCK_LIFECYCLE_INTERVAL, default 15s). Orphans and full hot-balance reads run every 20 passes.
   */
  lifecycleIntervalMs: number;
  /** Browser origins allowed to call the API (AIRLOCK_ALLOWED_ORIGINS); any other `Origin` header is refused. */
  allowedOrigins: string[];
  /** Host names this daemon answers to besides IP literals and `localhost` (AIRLOCK_ALLOWED_HOSTS). */
  allowedHosts: string[];
  /**
   * The Bitcoin networks this daemon signs for (AIRLOCK_BITCOIN_NETWORKS, default `bitcoin`): a request naming
   * another is refused `bitcoin_network_disabled` (a test network's key can hold mainnet coins; docs/bitcoin.md).
   */
  bitcoinNetworks: BitcoinNetwork[];
  /** Per-session token bucket, per instance (AIRLOCK_SESSION_RATE req/s, 0 = off; AIRLOCK_SESSION_BURST). */
  sessionRate: { perSecond: number; burst: number };
  /** When the reconciler may trust the chain enough to release a hold (docs/x402.md, docs/operations.md). */
  reconcile: ReconcileConfig;
  /** JSON log lines at this level and above (AIRLOCK_LOG_LEVEL: debug, info (default), warn, error, silent). */
  logLevel: LogLevel;
  /** Bytes of log lines that may wait for a stalled reader before lines are dropped and counted (AIRLOCK_LOG_QUEUE). */
  logQueueBytes: number;
  /** Prometheus `/metrics` listener (AIRLOCK_METRICS_LISTEN=host:port); unset: no metrics endpoint. */
  metricsListen?: { host: string; port: number };
  /** Agents whose budget utilisation is exported, the most used first (AIRLOCK_METRICS_BUDGET_AGENTS, default 10). */
  metricsBudgetAgents: number;
  /** How long SIGTERM waits for in-flight requests before closing their connections (AIRLOCK_SHUTDOWN_TIMEOUT, default 10s). */
  shutdownTimeoutMs: number;
  /** Relays the NIP-46 bunker listens on (AIRLOCK_NOSTR_RELAYS, comma-separated ws:// or wss:// URLs); none: no bunker. */
  nostrRelays: string[];
  /** Token bucket per NIP-46 client key (AIRLOCK_NOSTR_BUNKER_RATE req/s, default 5; AIRLOCK_NOSTR_BUNKER_BURST, default 20). */
  nostrBunkerRate: { perSecond: number; burst: number };
  /** The Lightning backend Airlock pays through (AIRLOCK_LIGHTNING_BACKEND=lnd|nwc); unset: Lightning is off. */
  lightning?: LightningConfig;
  /** Webhook delivery: polling, timeout and retries (AIRLOCK_WEBHOOK_*, docs/operations.md "Alerts and webhooks"). */
  webhooks: WebhookConfig;
}

export interface WebhookConfig {
  /** AIRLOCK_WEBHOOK_POLL_INTERVAL (default 1s): how often the audit log is read and due deliveries are sent. */
  pollIntervalMs: number;
  /** AIRLOCK_WEBHOOK_TIMEOUT (default 5s): how long a receiver may take to answer an attempt. */
  timeoutMs: number;
  /** AIRLOCK_WEBHOOK_MAX_ATTEMPTS (default 15): attempts in all before a delivery is `failed`. */
  maxAttempts: number;
  /** AIRLOCK_WEBHOOK_RETRY_BASE (default 1s): the wait after the first failed attempt, doubled after each further one. */
  retryBaseMs: number;
  /** AIRLOCK_WEBHOOK_RETRY_MAX (default 10m): the longest wait between two attempts (before jitter). */
  retryMaxMs: number;
  /** AIRLOCK_WEBHOOK_RETENTION (default 30d; `off`, or absent here, keeps them): how long finished deliveries stay in the delivery log. */
  retentionMs?: number;
}

/** docs/lightning.md. Credentials are read from files (never from the environment or the config file). */
export interface LightningConfig {
  backend: 'lnd' | 'nwc';
  /** AIRLOCK_LIGHTNING_NETWORK: bitcoin (default), testnet, signet or regtest. */
  network: 'bitcoin' | 'testnet' | 'signet' | 'regtest';
  /** AIRLOCK_LND_URL (https://host:8080), AIRLOCK_LND_MACAROON (path of a pay-only macaroon), AIRLOCK_LND_TLS_CERT (path of tls.cert). */
  lnd?: { url: string; macaroonPath: string; tlsCertPath: string };
  /** AIRLOCK_NWC_URL_FILE: path of a file holding the nostr+walletconnect:// connection string. */
  nwcUrlFile?: string;
  /** AIRLOCK_LIGHTNING_PAY_TIMEOUT (default 60s): how long an agent waits before its payment is answered in flight. */
  payTimeoutSeconds: number;
  /** AIRLOCK_LIGHTNING_NOT_FOUND_GRACE (default 5m): how long after a pay call's timeout a backend's "no such payment" is believed. */
  notFoundGraceSeconds: number;
  /** AIRLOCK_LIGHTNING_DEFAULT_FEE_PERCENT (default 1): the routing fee limit when a request names none. */
  defaultFeePercent: number;
  /** AIRLOCK_LIGHTNING_RECONCILE_BATCH (default 200, at most 1000): payments in flight one reconcile round looks up (rounds page through all). */
  reconcileBatch?: number;
  /** AIRLOCK_LIGHTNING_MAX_IN_FLIGHT (default 32, 1 to 10000): payments one agent may have in flight at once. */
  maxInFlightPerAgent?: number;
}

export interface ReconcileConfig {
  /** Wall-clock time past validBefore before a hold may be released (AIRLOCK_RECONCILE_MARGIN, default 5m). */
  marginSeconds: number;
  /** The block whose state releases a hold: `finalized` (default) or `safe` (AIRLOCK_RECONCILE_BLOCK_TAG). */
  blockTag: 'finalized' | 'safe';
  /** Largest tolerated distance between the latest block's time and the wall clock (AIRLOCK_RECONCILE_MAX_SKEW, default 2m). */
  maxClockSkewSeconds: number;
  /** Pinned-block lag past which a kept hold raises an alert (AIRLOCK_RECONCILE_MAX_PINNED_LAG, default 1h). */
  maxPinnedLagSeconds: number;
  /** How many blocks back the settlement transfer is searched for (AIRLOCK_RECONCILE_LOG_LOOKBACK, default 100000). */
  logLookbackBlocks: number;
}

/** Environment variables, documented in docs/operations.md. Flags override them. */
export function loadConfig(overrides: Partial<AirlockConfig> = {}, env: NodeJS.ProcessEnv = process.env): AirlockConfig {
  const dataDir = resolve(overrides.dataDir ?? env.AIRLOCK_DATA_DIR ?? 'data');
  const port = overrides.port ?? intFrom(env.AIRLOCK_PORT, 8420, 'AIRLOCK_PORT');
  if (port > 65535) throw new AirlockError('invalid_request', 'AIRLOCK_PORT must be a TCP port number.');
  const bodyLimitBytes = overrides.bodyLimitBytes ?? intFrom(env.AIRLOCK_BODY_LIMIT, 256 * 1024, 'AIRLOCK_BODY_LIMIT');
  if (bodyLimitBytes < 1024 || bodyLimitBytes > 64 * 1024 * 1024) throw new AirlockError('invalid_request', 'AIRLOCK_BODY_LIMIT must be between 1024 and 67108864 bytes.');
  const logQueueBytes = overrides.logQueueBytes ?? intFrom(env.AIRLOCK_LOG_QUEUE, DEFAULT_LOG_QUEUE_BYTES, 'AIRLOCK_LOG_QUEUE');
  if (logQueueBytes < MIN_LOG_QUEUE_BYTES || logQueueBytes > 1024 * 1024 * 1024) throw new AirlockError('invalid_request', `AIRLOCK_LOG_QUEUE must be between ${MIN_LOG_QUEUE_BYTES} and 1073741824 bytes.`);
  const config: AirlockConfig = {
    dataDir,
    vaultPath: overrides.vaultPath ?? env.AIRLOCK_VAULT ?? join(dataDir, 'vault.json'),
    storeUrl: overrides.storeUrl ?? env.AIRLOCK_STORE ?? `sqlite:${join(dataDir, 'airlock.db')}`,
    host: overrides.host ?? env.AIRLOCK_HOST ?? '127.0.0.1',
    port,
    approvalTtlMs: overrides.approvalTtlMs ?? parseDuration(env.AIRLOCK_APPROVAL_TTL ?? '24h'),
    approvalExpiryIntervalMs: timerInterval(overrides.approvalExpiryIntervalMs ?? parseDuration(env.AIRLOCK_APPROVAL_EXPIRY_INTERVAL ?? '30s'), 'AIRLOCK_APPROVAL_EXPIRY_INTERVAL'),
    bodyLimitBytes,
    checkpointIntervalMs: timerInterval(overrides.checkpointIntervalMs ?? parseDuration(env.AIRLOCK_CHECKPOINT_INTERVAL ?? '10s'), 'AIRLOCK_CHECKPOINT_INTERVAL'),
    evmRpc: overrides.evmRpc ?? parseEvmRpc(env.AIRLOCK_EVM_RPC),
    reconcileIntervalMs: timerInterval(overrides.reconcileIntervalMs ?? parseDuration(env.AIRLOCK_RECONCILE_INTERVAL ?? '30s'), 'AIRLOCK_RECONCILE_INTERVAL'),
    // The rotation pass runs every 20 lifecycle intervals: that too must fit a timer.
    lifecycleIntervalMs: timerInterval(overrides.lifecycleIntervalMs ?? parseDuration(env.AIRLOCK_LIFECYCLE_INTERVAL ?? '15s'), 'AIRLOCK_LIFECYCLE_INTERVAL', 20),
    reconcile: overrides.reconcile ?? parseReconcileConfig(env),
    allowedOrigins: overrides.allowedOrigins ?? parseAllowedOrigins(env.AIRLOCK_ALLOWED_ORIGINS),
    allowedHosts: overrides.allowedHosts ?? parseAllowedHosts(env.AIRLOCK_ALLOWED_HOSTS),
    bitcoinNetworks: overrides.bitcoinNetworks ?? parseBitcoinNetworks(env.AIRLOCK_BITCOIN_NETWORKS),
    sessionRate: overrides.sessionRate ?? {
      perSecond: intFrom(env.AIRLOCK_SESSION_RATE, 50, 'AIRLOCK_SESSION_RATE'),
      burst: intFrom(env.AIRLOCK_SESSION_BURST, 100, 'AIRLOCK_SESSION_BURST'),
    },
    logLevel: overrides.logLevel ?? parseLogLevel(env.AIRLOCK_LOG_LEVEL),
    logQueueBytes,
    metricsBudgetAgents: overrides.metricsBudgetAgents ?? intFrom(env.AIRLOCK_METRICS_BUDGET_AGENTS, 10, 'AIRLOCK_METRICS_BUDGET_AGENTS'),
    shutdownTimeoutMs: overrides.shutdownTimeoutMs ?? secondsFrom(env.AIRLOCK_SHUTDOWN_TIMEOUT, '10s', 'AIRLOCK_SHUTDOWN_TIMEOUT') * 1000,
    nostrRelays: overrides.nostrRelays ?? parseNostrRelays(env.AIRLOCK_NOSTR_RELAYS),
    nostrBunkerRate: overrides.nostrBunkerRate ?? {
      perSecond: intFrom(env.AIRLOCK_NOSTR_BUNKER_RATE, 5, 'AIRLOCK_NOSTR_BUNKER_RATE'),
      burst: intFrom(env.AIRLOCK_NOSTR_BUNKER_BURST, 20, 'AIRLOCK_NOSTR_BUNKER_BURST'),
    },
    webhooks: overrides.webhooks ?? parseWebhookConfig(env),
  };
  if (config.nostrBunkerRate.perSecond > 0 && config.nostrBunkerRate.burst < 1) throw new AirlockError('invalid_request', 'AIRLOCK_NOSTR_BUNKER_BURST must be at least 1.');
  const metricsListen = overrides.metricsListen ?? parseListen(env.AIRLOCK_METRICS_LISTEN, 'AIRLOCK_METRICS_LISTEN');
  if (metricsListen) config.metricsListen = metricsListen;
  if (config.sessionRate.perSecond > 0 && config.sessionRate.burst < 1) throw new AirlockError('invalid_request', 'AIRLOCK_SESSION_BURST must be at least 1.');
  const lightning = overrides.lightning ?? parseLightningConfig(env);
  if (lightning) config.lightning = lightning;
  const socketPath = overrides.socketPath ?? env.AIRLOCK_SOCKET;
  if (socketPath) config.socketPath = socketPath;
  const keyProcessSocket = overrides.keyProcessSocket ?? env.AIRLOCK_KEY_PROCESS_SOCKET;
  if (keyProcessSocket) config.keyProcessSocket = keyProcessSocket;
  return config;
}

/**
 * `eip155:31337=http://127.0.0.1:8545,eip155:84532=https://…` -> { network: url }. Errors never echo the URL (it may hold an API key).
 * The reconciler releases budget on what the RPC answers, so the answers must not be forgeable on the way:
 * https is required, plain http only for a loopback host.
 */
export function parseEvmRpc(value: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (value === undefined || value.trim() === '') return out;
  for (const [i, part] of value.split(',').entries()) {
    const eq = part.indexOf('=');
    const network = eq < 0 ? '' : part.slice(0, eq).trim();
    const url = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (!/^eip155:[1-9][0-9]{0,15}$/.test(network) || !/^https?:\/\//.test(url) || !URL.canParse(url)) {
      throw new AirlockError('invalid_request', `AIRLOCK_EVM_RPC entry ${i + 1} must be eip155:<chainId>=http(s)://…`);
    }
    const parsed = new URL(url);
    if (parsed.protocol !== 'https:' && !isLoopbackHost(parsed.hostname)) {
      throw new AirlockError('invalid_request', `AIRLOCK_EVM_RPC entry ${i + 1} (${network}) must use https://; plain http:// is accepted only for loopback (127.0.0.0/8, ::1, localhost).`, {
        hints: ['A plain-http RPC can be answered by anyone on the path, and the reconciler releases budget on its answers.'],
      });
    }
    out[network] = url;
  }
  return out;
}

/**
 * `wss://relay.example,ws://127.0.0.1:7777` -> relay URLs. Plain ws:// is accepted anywhere: NIP-46 content is
 * NIP-44 encrypted end to end and every envelope is signed, so the relay (and the path to it) sees only metadata.
 * Errors never echo the URL (it may carry a token).
 */
export function parseNostrRelays(value: string | undefined): string[] {
  return listFrom(value).map((entry, i) => {
    if (!/^wss?:\/\//.test(entry) || !URL.canParse(entry)) throw new AirlockError('invalid_request', `AIRLOCK_NOSTR_RELAYS entry ${i + 1} must be a ws:// or wss:// URL.`);
    return entry;
  });
}

/** 127.0.0.0/8, ::1 and localhost (WHATWG URL parsing has already normalised `127.1`, `0x7f.1` and the like). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  // Only the bare name: `*.localhost` is loopback by RFC 6761, but not every resolver honours that.
  if (host === 'localhost') return true;
  if (host === '[::1]') return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function parseWebhookConfig(env: NodeJS.ProcessEnv): WebhookConfig {
  const config: WebhookConfig = {
    pollIntervalMs: secondsFrom(env.AIRLOCK_WEBHOOK_POLL_INTERVAL, '1s', 'AIRLOCK_WEBHOOK_POLL_INTERVAL') * 1000,
    timeoutMs: secondsFrom(env.AIRLOCK_WEBHOOK_TIMEOUT, '5s', 'AIRLOCK_WEBHOOK_TIMEOUT') * 1000,
    maxAttempts: intFrom(env.AIRLOCK_WEBHOOK_MAX_ATTEMPTS, 15, 'AIRLOCK_WEBHOOK_MAX_ATTEMPTS'),
    retryBaseMs: secondsFrom(env.AIRLOCK_WEBHOOK_RETRY_BASE, '1s', 'AIRLOCK_WEBHOOK_RETRY_BASE') * 1000,
    retryMaxMs: secondsFrom(env.AIRLOCK_WEBHOOK_RETRY_MAX, '10m', 'AIRLOCK_WEBHOOK_RETRY_MAX') * 1000,
    retentionMs: env.AIRLOCK_WEBHOOK_RETENTION?.trim() === 'off' ? 0 : secondsFrom(env.AIRLOCK_WEBHOOK_RETENTION, '30d', 'AIRLOCK_WEBHOOK_RETENTION') * 1000,
  };
  // Shorter than a day would drop the log of deliveries still being looked into (retries run up to hours).
  if (config.retentionMs !== 0 && config.retentionMs! < 86_400_000) throw new AirlockError('invalid_request', 'AIRLOCK_WEBHOOK_RETENTION must be at least 1d, or off.');
  if (config.maxAttempts < 1 || config.maxAttempts > 100) throw new AirlockError('invalid_request', 'AIRLOCK_WEBHOOK_MAX_ATTEMPTS must be between 1 and 100.');
  if (config.timeoutMs < 1000 || config.pollIntervalMs < 1000 || config.retryBaseMs < 1000) {
    throw new AirlockError('invalid_request', 'AIRLOCK_WEBHOOK_TIMEOUT, AIRLOCK_WEBHOOK_POLL_INTERVAL and AIRLOCK_WEBHOOK_RETRY_BASE must be at least 1s.');
  }
  if (config.retryMaxMs < config.retryBaseMs) throw new AirlockError('invalid_request', 'AIRLOCK_WEBHOOK_RETRY_MAX must be at least AIRLOCK_WEBHOOK_RETRY_BASE.');
  return config;
}

function parseReconcileConfig(env: NodeJS.ProcessEnv): ReconcileConfig {
  const blockTag = env.AIRLOCK_RECONCILE_BLOCK_TAG?.trim() || 'finalized';
  if (blockTag !== 'finalized' && blockTag !== 'safe') throw new AirlockError('invalid_request', 'AIRLOCK_RECONCILE_BLOCK_TAG must be `finalized` or `safe`.');
  return {
    marginSeconds: secondsFrom(env.AIRLOCK_RECONCILE_MARGIN, '5m', 'AIRLOCK_RECONCILE_MARGIN'),
    blockTag,
    maxClockSkewSeconds: secondsFrom(env.AIRLOCK_RECONCILE_MAX_SKEW, '2m', 'AIRLOCK_RECONCILE_MAX_SKEW'),
    maxPinnedLagSeconds: secondsFrom(env.AIRLOCK_RECONCILE_MAX_PINNED_LAG, '1h', 'AIRLOCK_RECONCILE_MAX_PINNED_LAG'),
    logLookbackBlocks: intFrom(env.AIRLOCK_RECONCILE_LOG_LOOKBACK, 100_000, 'AIRLOCK_RECONCILE_LOG_LOOKBACK'),
  };
}

function secondsFrom(value: string | undefined, fallback: string, name: string): number {
  const text = value === undefined || value.trim() === '' ? fallback : value.trim();
  try {
    return Math.floor(parseDuration(text) / 1000);
  } catch {
    throw new AirlockError('invalid_request', `${name} must be a duration such as 90s, 5m or 1h.`);
  }
}

/** `https://console.example,http://localhost:3000` -> exact origins (scheme, host, port; no path). */
export function parseAllowedOrigins(value: string | undefined): string[] {
  return listFrom(value).map((entry, i) => {
    const url = URL.canParse(entry) ? new URL(entry) : undefined;
    if (!url || !/^https?:$/.test(url.protocol) || url.origin !== entry.replace(/\/$/, '')) {
      throw new AirlockError('invalid_request', `AIRLOCK_ALLOWED_ORIGINS entry ${i + 1} must be an origin: http(s)://host[:port], nothing after it.`);
    }
    return url.origin;
  });
}

/** `airlock.internal,signer.lan` -> lower-case host names (no port, no scheme). */
export function parseAllowedHosts(value: string | undefined): string[] {
  return listFrom(value).map((entry, i) => {
    if (!/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/i.test(entry)) throw new AirlockError('invalid_request', `AIRLOCK_ALLOWED_HOSTS entry ${i + 1} must be a host name without port or scheme.`);
    return entry.toLowerCase();
  });
}

/** The longest delay a Node timer keeps (2^31-1 ms, about 24.8 days); a longer one is run after 1 ms instead. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * An interval for one of the daemon's periodic jobs (`times`: the job runs every that many of it). Refused past what a
 * timer keeps: Node would run the job every millisecond instead, a store transaction each (found by review).
 */
function timerInterval(ms: number, name: string, times = 1): number {
  if (ms * times > MAX_TIMER_MS) throw new AirlockError('config_invalid', `${name} is too long: at most ${Math.floor(MAX_TIMER_MS / times / 3_600_000)}h (a timer holds up to 24.8 days${times > 1 ? `, and a job runs every ${times} of these` : ''}).`);
  return ms;
}

/**
 * AIRLOCK_BITCOIN_NETWORKS: `bitcoin` when unset. A test network must be named to be signed for (read in the key
 * process's own environment too): its keys are the same on every test network and can hold mainnet coins.
 */
export function parseBitcoinNetworks(value: string | undefined): BitcoinNetwork[] {
  if (value === undefined || value.trim() === '') return ['bitcoin'];
  const names = listFrom(value);
  for (const name of names) {
    if (!(BITCOIN_NETWORKS as string[]).includes(name)) throw new AirlockError('config_invalid', `AIRLOCK_BITCOIN_NETWORKS: "${name}" is not a Bitcoin network (${BITCOIN_NETWORKS.join(', ')}).`);
  }
  return [...new Set(names)] as BitcoinNetwork[];
}

/** `127.0.0.1:9464`, `[::1]:9464` or `:9464` (all interfaces: say so explicitly with 0.0.0.0). */
export function parseListen(value: string | undefined, name: string): { host: string; port: number } | undefined {
  if (value === undefined || value.trim() === '' || value.trim() === 'off') return undefined;
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(value.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw new AirlockError('invalid_request', `${name} must be host:port (e.g. 127.0.0.1:9464; port 0 picks a free one) or off.`);
  return { host: match[1] ?? match[2]!, port };
}

function listFrom(value: string | undefined): string[] {
  return (value ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** A whole number from the environment; unset or empty means the default, anything else non-numeric is an error. */
function intFrom(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value.trim() === '') return fallback;
  if (!/^\d+$/.test(value.trim())) throw new AirlockError('invalid_request', `${name} must be a whole number.`);
  return Number(value.trim());
}

/**
 * A store URL fit for a log line or an error: no user name or password (`//***@` where there were some), no query
 * parameter that can hold a secret (node-postgres reads `?password=` as the password; `sslpassword`, `passfile`,
 * `sslkey` and anything naming a pass, key, token or secret) and no fragment. `sqlite:` URLs are a path and stay as
 * they are. A URL that does not parse, or whose parse leaves an `@` after the host (a password with an unencoded
 * `/`, `?` or `#` in it: its tail would land in the path or query), is shown as a fixed text, never echoed.
 */
export function redactUrl(url: string): string {
  if (url.startsWith('sqlite:')) return url;
  const unparsable = '(unparsable store URL)';
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return unparsable;
  }
  // The parser ends the authority at the first `/`, `?` or `#` after `//`; its last `@` ends the credentials.
  const afterScheme = url.slice(url.indexOf(':') + 1);
  const authority = afterScheme.startsWith('//') ? /^\/\/[^/?#]*/.exec(afterScheme)![0] : '';
  if (afterScheme.slice(authority.length).includes('@')) return unparsable;
  const hadCredentials = u.username !== '' || u.password !== '';
  u.password = '';
  u.username = hadCredentials ? '***' : '';
  for (const name of [...new Set(u.searchParams.keys())]) {
    if (/pass|key|token|secret/i.test(name)) u.searchParams.delete(name);
  }
  u.hash = '';
  return u.toString();
}

const LIGHTNING_NETWORKS = ['bitcoin', 'testnet', 'signet', 'regtest'] as const;

function parseLightningConfig(env: NodeJS.ProcessEnv): LightningConfig | undefined {
  const backend = env.AIRLOCK_LIGHTNING_BACKEND?.trim();
  if (backend === undefined || backend === '') return undefined;
  if (backend !== 'lnd' && backend !== 'nwc') throw new AirlockError('invalid_request', 'AIRLOCK_LIGHTNING_BACKEND must be `lnd` or `nwc`.');
  const network = (env.AIRLOCK_LIGHTNING_NETWORK?.trim() || 'bitcoin') as LightningConfig['network'];
  if (!(LIGHTNING_NETWORKS as readonly string[]).includes(network)) throw new AirlockError('invalid_request', 'AIRLOCK_LIGHTNING_NETWORK must be bitcoin, testnet, signet or regtest.');
  const feePercentText = env.AIRLOCK_LIGHTNING_DEFAULT_FEE_PERCENT?.trim() || '1';
  const defaultFeePercent = Number(feePercentText);
  if (!/^\d+(\.\d{1,4})?$/.test(feePercentText) || defaultFeePercent > 100) throw new AirlockError('invalid_request', 'AIRLOCK_LIGHTNING_DEFAULT_FEE_PERCENT must be a percentage between 0 and 100 (at most four decimals).');
  const config: LightningConfig = {
    backend,
    network,
    payTimeoutSeconds: secondsFrom(env.AIRLOCK_LIGHTNING_PAY_TIMEOUT, '60s', 'AIRLOCK_LIGHTNING_PAY_TIMEOUT'),
    notFoundGraceSeconds: secondsFrom(env.AIRLOCK_LIGHTNING_NOT_FOUND_GRACE, '5m', 'AIRLOCK_LIGHTNING_NOT_FOUND_GRACE'),
    defaultFeePercent,
  };
  const batchText = env.AIRLOCK_LIGHTNING_RECONCILE_BATCH?.trim();
  if (batchText) {
    const batch = Number(batchText);
    if (!/^[1-9][0-9]{0,3}$/.test(batchText) || batch > 1000) throw new AirlockError('invalid_request', 'AIRLOCK_LIGHTNING_RECONCILE_BATCH must be a whole number from 1 to 1000.');
    config.reconcileBatch = batch;
  }
  const inFlightText = env.AIRLOCK_LIGHTNING_MAX_IN_FLIGHT?.trim();
  if (inFlightText) {
    const max = Number(inFlightText);
    if (!/^[1-9][0-9]{0,4}$/.test(inFlightText) || max > 10_000) throw new AirlockError('invalid_request', 'AIRLOCK_LIGHTNING_MAX_IN_FLIGHT must be a whole number from 1 to 10000.');
    config.maxInFlightPerAgent = max;
  }
  if (backend === 'lnd') {
    const url = env.AIRLOCK_LND_URL?.trim();
    const macaroonPath = env.AIRLOCK_LND_MACAROON?.trim();
    if (!url || !URL.canParse(url) || new URL(url).protocol !== 'https:') throw new AirlockError('invalid_request', 'AIRLOCK_LND_URL must be the https:// URL of LND\'s REST API (e.g. https://127.0.0.1:8080).');
    if (!macaroonPath) throw new AirlockError('invalid_request', 'AIRLOCK_LND_MACAROON must be the path of a pay-only macaroon file (docs/lightning.md).');
    const tlsCertPath = env.AIRLOCK_LND_TLS_CERT?.trim();
    // LND's REST listener serves its own self-signed certificate: it is pinned, never the system CAs.
    if (!tlsCertPath) throw new AirlockError('invalid_request', "AIRLOCK_LND_TLS_CERT must be the path of LND's tls.cert (docs/lightning.md).");
    config.lnd = { url, macaroonPath: resolve(macaroonPath), tlsCertPath: resolve(tlsCertPath) };
  } else {
    const file = env.AIRLOCK_NWC_URL_FILE?.trim();
    if (!file) throw new AirlockError('invalid_request', 'AIRLOCK_NWC_URL_FILE must be the path of a file holding the nostr+walletconnect:// connection string.');
    config.nwcUrlFile = resolve(file);
  }
  return config;
}
