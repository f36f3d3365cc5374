import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { AirlockError } from '@airlock/core';

/**
 * Settings a config file may hold: the AIRLOCK_* environment variables (docs/operations.md), named in
 * lower case without the prefix (`AIRLOCK_DATA_DIR` -> `data_dir`). Secrets are not among them: the
 * passphrase goes in `passphrase_file`, the admin token stays in the environment or a secret store.
 */
export const CONFIG_FILE_KEYS = [
  'data_dir', 'vault', 'store', 'host', 'port', 'socket', 'approval_ttl', 'approval_expiry_interval', 'bitcoin_networks', 'body_limit', 'checkpoint_interval',
  'passphrase_file', 'key_backend', 'key_process_socket', 'pkcs11_library', 'pkcs11_token_label', 'pkcs11_slot', 'pkcs11_pin_file', 'evm_rpc', 'reconcile_interval', 'lifecycle_interval', 'reconcile_margin', 'reconcile_block_tag',
  'reconcile_max_skew', 'reconcile_max_pinned_lag', 'reconcile_log_lookback', 'allowed_origins', 'allowed_hosts',
  'session_rate', 'session_burst', 'log_level', 'log_queue', 'metrics_listen', 'metrics_budget_agents', 'shutdown_timeout', 'url',
  'nostr_relays', 'nostr_bunker_rate', 'nostr_bunker_burst',
  'lightning_backend', 'lightning_network', 'lnd_url', 'lnd_macaroon', 'lnd_tls_cert', 'nwc_url_file', 'lightning_pay_timeout',
  'lightning_not_found_grace', 'lightning_default_fee_percent', 'lightning_reconcile_batch', 'lightning_max_in_flight',
  'webhook_poll_interval', 'webhook_timeout', 'webhook_max_attempts', 'webhook_retry_base', 'webhook_retry_max', 'webhook_retention',
] as const;

const SECRET_KEYS = new Set(['passphrase', 'admin_token', 'pkcs11_pin']);

/**
 * Reads a YAML (or JSON) config file into the environment variables it stands for. Values are turned into
 * the text the variable would hold: lists are joined with commas, `evm_rpc` may be a map of network to URL.
 * Errors name the file and the key, never a value (a store URL can hold a password).
 */
export function readConfigFile(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'cannot be read';
    throw new AirlockError('config_invalid', `The config file ${path} ${why}.`, { hints: ['Pass the path with --config PATH or AIRLOCK_CONFIG.'] });
  }
  let document: unknown;
  try {
    document = parse(text);
  } catch (e) {
    const line = (e as { linePos?: { line: number }[] }).linePos?.[0]?.line;
    throw new AirlockError('config_invalid', `The config file ${path} is not valid YAML${line ? ` (line ${line})` : ''}.`);
  }
  if (document === null || document === undefined) return {};
  if (typeof document !== 'object' || Array.isArray(document)) throw new AirlockError('config_invalid', `The config file ${path} must be a mapping of setting: value.`);
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(document)) {
    if (SECRET_KEYS.has(key)) {
      throw new AirlockError('config_invalid', `${path}: \`${key}\` does not belong in a config file.`, {
        hints: [key === 'passphrase' ? 'Put the passphrase in a 0400 file and name it with passphrase_file.' : key === 'pkcs11_pin' ? 'Put the user PIN in a 0400 file and name it with pkcs11_pin_file.' : 'Keep the admin token in the environment (AIRLOCK_ADMIN_TOKEN) or a secret store.'],
      });
    }
    if (!(CONFIG_FILE_KEYS as readonly string[]).includes(key)) {
      throw new AirlockError('config_invalid', `${path}: unknown setting \`${key}\`.`, { hints: [`Known settings: ${CONFIG_FILE_KEYS.join(', ')}.`] });
    }
    env[`AIRLOCK_${key.toUpperCase()}`] = settingText(path, key, value);
  }
  return env;
}

function settingText(path: string, key: string, value: unknown): string {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.join(',');
  if (key === 'evm_rpc' && typeof value === 'object' && value !== null) {
    return Object.entries(value).map(([network, url]) => `${network}=${String(url)}`).join(',');
  }
  throw new AirlockError('config_invalid', `${path}: \`${key}\` must be a single value${key === 'evm_rpc' ? ', a list or a map of network to URL' : ' or a list of strings'}.`);
}

/**
 * Applies a config file under the environment: a variable already set wins over the file (so a container or
 * unit can override one setting without editing the file). Returns the names taken from the file.
 */
export function applyConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const fromFile = readConfigFile(path);
  const applied: string[] = [];
  for (const [name, value] of Object.entries(fromFile)) {
    if (env[name] !== undefined && env[name] !== '') continue;
    env[name] = value;
    applied.push(name);
  }
  return applied;
}
