import { resolve, join } from 'node:path';
import { AirlockError, parseDuration } from '@airlock/core';

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
  approvalTtlMs: number;
  bodyLimitBytes: number;
  checkpointIntervalMs: number;
  /** x402 reconciler: JSON-RPC URL per CAIP-2 network (AIRLOCK_EVM_RPC="eip155:31337=http://127.0.0.1:8545,…"). */
  evmRpc: Record<string, string>;
  /** How often the x402 reconciler runs (AIRLOCK_RECONCILE_INTERVAL, default 30s). */
  reconcileIntervalMs: number;
  /** Browser origins allowed to call the API (AIRLOCK_ALLOWED_ORIGINS); any other `Origin` header is refused. */
  allowedOrigins: string[];
  /** Host names this daemon answers to besides IP literals and `localhost` (AIRLOCK_ALLOWED_HOSTS). */
  allowedHosts: string[];
  /** Per-session token bucket, per instance (AIRLOCK_SESSION_RATE req/s, 0 = off; AIRLOCK_SESSION_BURST). */
  sessionRate: { perSecond: number; burst: number };
}

/** Environment variables, documented in docs/operations.md. Flags override them. */
export function loadConfig(overrides: Partial<AirlockConfig> = {}, env: NodeJS.ProcessEnv = process.env): AirlockConfig {
  const dataDir = resolve(overrides.dataDir ?? env.AIRLOCK_DATA_DIR ?? 'data');
  const port = overrides.port ?? intFrom(env.AIRLOCK_PORT, 8420, 'AIRLOCK_PORT');
  if (port > 65535) throw new AirlockError('invalid_request', 'AIRLOCK_PORT must be a TCP port number.');
  const bodyLimitBytes = overrides.bodyLimitBytes ?? intFrom(env.AIRLOCK_BODY_LIMIT, 256 * 1024, 'AIRLOCK_BODY_LIMIT');
  if (bodyLimitBytes < 1024 || bodyLimitBytes > 64 * 1024 * 1024) throw new AirlockError('invalid_request', 'AIRLOCK_BODY_LIMIT must be between 1024 and 67108864 bytes.');
  const config: AirlockConfig = {
    dataDir,
    vaultPath: overrides.vaultPath ?? env.AIRLOCK_VAULT ?? join(dataDir, 'vault.json'),
    storeUrl: overrides.storeUrl ?? env.AIRLOCK_STORE ?? `sqlite:${join(dataDir, 'airlock.db')}`,
    host: overrides.host ?? env.AIRLOCK_HOST ?? '127.0.0.1',
    port,
    approvalTtlMs: overrides.approvalTtlMs ?? parseDuration(env.AIRLOCK_APPROVAL_TTL ?? '24h'),
    bodyLimitBytes,
    checkpointIntervalMs: overrides.checkpointIntervalMs ?? parseDuration(env.AIRLOCK_CHECKPOINT_INTERVAL ?? '10s'),
    evmRpc: overrides.evmRpc ?? parseEvmRpc(env.AIRLOCK_EVM_RPC),
    reconcileIntervalMs: overrides.reconcileIntervalMs ?? parseDuration(env.AIRLOCK_RECONCILE_INTERVAL ?? '30s'),
    allowedOrigins: overrides.allowedOrigins ?? parseAllowedOrigins(env.AIRLOCK_ALLOWED_ORIGINS),
    allowedHosts: overrides.allowedHosts ?? parseAllowedHosts(env.AIRLOCK_ALLOWED_HOSTS),
    sessionRate: overrides.sessionRate ?? {
      perSecond: intFrom(env.AIRLOCK_SESSION_RATE, 50, 'AIRLOCK_SESSION_RATE'),
      burst: intFrom(env.AIRLOCK_SESSION_BURST, 100, 'AIRLOCK_SESSION_BURST'),
    },
  };
  if (config.sessionRate.perSecond > 0 && config.sessionRate.burst < 1) throw new AirlockError('invalid_request', 'AIRLOCK_SESSION_BURST must be at least 1.');
  const socketPath = overrides.socketPath ?? env.AIRLOCK_SOCKET;
  if (socketPath) config.socketPath = socketPath;
  return config;
}

/** `eip155:31337=http://127.0.0.1:8545,eip155:84532=https://…` -> { network: url }. Errors never echo the URL (it may hold an API key). */
export function parseEvmRpc(value: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (value === undefined || value.trim() === '') return out;
  for (const [i, part] of value.split(',').entries()) {
    const eq = part.indexOf('=');
    const network = eq < 0 ? '' : part.slice(0, eq).trim();
    const url = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (!/^eip155:[1-9][0-9]{0,15}$/.test(network) || !/^https?:\/\//.test(url)) {
      throw new AirlockError('invalid_request', `AIRLOCK_EVM_RPC entry ${i + 1} must be eip155:<chainId>=http(s)://…`);
    }
    out[network] = url;
  }
  return out;
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

function listFrom(value: string | undefined): string[] {
  return (value ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** A whole number from the environment; unset or empty means the default, anything else non-numeric is an error. */
function intFrom(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value.trim() === '') return fallback;
  if (!/^\d+$/.test(value.trim())) throw new AirlockError('invalid_request', `${name} must be a whole number.`);
  return Number(value.trim());
}

/** Strips credentials from a store URL before it reaches a log line or an error. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
