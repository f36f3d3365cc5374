// Where the MCP server finds Airlock, its session token and the chains it can broadcast on. The token comes
// from the environment or a file, never from the model: no tool takes it as input and none prints it.
import { readFileSync } from 'node:fs';
import { ALLOW_PRIVATE_URLS_ENV, parsePrivateUrlAllowance, type PrivateUrlAllowance } from './outbound.ts';

export interface McpConfig {
  /** Airlock's base URL (AIRLOCK_URL, default http://127.0.0.1:8420). */
  url: string;
  /** The agent's session token (AIRLOCK_SESSION, or the first line of the file AIRLOCK_SESSION_FILE names). */
  token: string;
  /** JSON-RPC URL per chain id, for broadcasting (AIRLOCK_EVM_RPC="eip155:31337=http://127.0.0.1:8545,…"). */
  rpc: Map<number, string>;
  /**
   * Private targets pay_x402 and pay_l402 may fetch after all (AIRLOCK_MCP_ALLOW_PRIVATE_URLS: `1` for every
   * loopback and private address, or a comma-separated list of hosts). Absent: none.
   */
  allowPrivateUrls?: PrivateUrlAllowance;
  /**
   * How long one call of a tool that pays or sends may take in all (AIRLOCK_MCP_TOOL_TIMEOUT_SECONDS, default
   * 40 s): pay_x402 and pay_l402 (both exchanges and the payment between them), send_transfer (the RPC reads,
   * signing, the broadcast and the receipt wait).
   */
  toolTimeoutMs?: number;
}

export const TOOL_TIMEOUT_ENV = 'AIRLOCK_MCP_TOOL_TIMEOUT_SECONDS';
/**
 * Under the MCP clients' own request timeout (the official SDK's is 60 s), with room for Airlock's signing: a
 * client that gives up first never reads the answer that says a payment was made, and its model retries (found by
 * review: the outbound limits were 30 s idle and 120 s per exchange, the receipt wait 60 s).
 */
export const DEFAULT_TOOL_TIMEOUT_MS = 40_000;

/** A configuration problem: the message names the variable, never its value. */
export class McpConfigError extends Error {
  override name = 'McpConfigError';
}

export function readMcpConfig(env: NodeJS.ProcessEnv, flags: { url?: string; sessionFile?: string; rpc?: string[] } = {}): McpConfig {
  const url = (flags.url || env.AIRLOCK_URL || 'http://127.0.0.1:8420').replace(/\/+$/, '');
  if (!URL.canParse(url)) throw new McpConfigError('AIRLOCK_URL (or --url) is not a URL.');
  return {
    url,
    token: readToken(env, flags.sessionFile),
    rpc: parseRpc([...(env.AIRLOCK_EVM_RPC ? [env.AIRLOCK_EVM_RPC] : []), ...(flags.rpc ?? [])].join(',')),
    allowPrivateUrls: parsePrivateUrlAllowance(env[ALLOW_PRIVATE_URLS_ENV]),
    toolTimeoutMs: readToolTimeoutMs(env),
  };
}

function readToolTimeoutMs(env: NodeJS.ProcessEnv): number {
  const raw = env[TOOL_TIMEOUT_ENV]?.trim();
  if (!raw) return DEFAULT_TOOL_TIMEOUT_MS;
  if (!/^[1-9]\d{0,5}$/.test(raw)) throw new McpConfigError(`${TOOL_TIMEOUT_ENV} must be a positive whole number of seconds.`);
  return Number(raw) * 1000;
}

function readToken(env: NodeJS.ProcessEnv, sessionFile: string | undefined): string {
  const file = sessionFile || env.AIRLOCK_SESSION_FILE;
  let token = env.AIRLOCK_SESSION;
  if (file) {
    try {
      token = readFileSync(file, 'utf8').split(/\r?\n/, 1)[0];
    } catch (e) {
      throw new McpConfigError(`cannot read the session token file (${(e as NodeJS.ErrnoException).code ?? 'error'}).`);
    }
  }
  token = token?.trim();
  if (!token) throw new McpConfigError('No session token: set AIRLOCK_SESSION, or AIRLOCK_SESSION_FILE to a file holding it (issue one with `airlock session issue`).');
  // Shape check only (ses_<16 hex>.<secret>); the message must not echo what was found.
  if (!/^ses_[0-9a-f]{16}\.[A-Za-z0-9_-]{20,}$/.test(token)) throw new McpConfigError('The session token does not look like one (expected ses_<16 hex>.<secret>, as `airlock session issue` prints it).');
  return token;
}

/** `eip155:<chainId>=<url>` entries, comma separated: the daemon's AIRLOCK_EVM_RPC format. */
export function parseRpc(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const [i, entry] of text.split(',').map((s) => s.trim()).filter(Boolean).entries()) {
    const m = /^eip155:(\d+)=(.+)$/.exec(entry);
    if (!m || !URL.canParse(m[2]!) || !/^https?:$/.test(new URL(m[2]!).protocol)) throw new McpConfigError(`RPC entry ${i + 1} must be eip155:<chainId>=http(s)://…`);
    out.set(Number(m[1]), m[2]!);
  }
  return out;
}
