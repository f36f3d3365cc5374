import { createAirlockHttp, type AirlockHttp } from '@airlock/sdk';
import { AirlockError, isAdminTokenShape } from '@airlock/core';

export interface CliContext {
  json: boolean;
  url: string;
  /** HTTP client with the admin token; created on first use so offline commands need no token. */
  admin(): AirlockHttp;
}

export function createContext(flags: { url?: string; json?: boolean; token?: string }): CliContext {
  // An empty variable counts as unset: `AIRLOCK_URL= airlock …` must not turn into a relative URL.
  const url = (flags.url || process.env.AIRLOCK_URL || 'http://127.0.0.1:8420').replace(/\/+$/, '');
  // Checked when a command first needs the daemon (offline commands never read the URL). Neither refusal quotes
  // the URL: fetch's own errors, and `airlock status`, would print it whole, credentials and all.
  const urlProblem = !URL.canParse(url)
    ? new AirlockError('invalid_request', 'The daemon URL is not a URL.', { hints: ['Pass --url http://HOST:PORT or set AIRLOCK_URL.'] })
    : new URL(url).username !== '' || new URL(url).password !== ''
      ? new AirlockError('invalid_request', 'The daemon URL carries a user name or password (user:pass@host); the daemon takes only the admin token. The URL is not shown.', { hints: ['Pass --url http://HOST:PORT or set AIRLOCK_URL without them.'] })
      : undefined;
  const checkedUrl = () => {
    if (urlProblem) throw urlProblem;
    return url;
  };
  let http: AirlockHttp | undefined;
  return {
    json: !!flags.json,
    get url() {
      return checkedUrl();
    },
    admin() {
      // Surrounding whitespace (a token pasted or read with its newline) is what fetch strips from a header anyway.
      const token = (flags.token || process.env.AIRLOCK_ADMIN_TOKEN)?.trim();
      if (!token) throw new AirlockError('unauthenticated', 'No admin token.', { hints: ['Set AIRLOCK_ADMIN_TOKEN to the token `airlock init` printed, or pass --token.'] });
      // Shape only; never quoted: fetch's error for a token with a control character in it quotes the whole header.
      if (!isAdminTokenShape(token)) throw new AirlockError('unauthenticated', 'The admin token does not look like one (expected adm_<43 characters>, as `airlock init` printed it). Its value is not shown.', { hints: ['Set AIRLOCK_ADMIN_TOKEN to the token `airlock init` (or `airlock admin rotate-token`) printed, or pass --token.'] });
      http ??= createAirlockHttp({ url: checkedUrl(), token });
      return http;
    },
  };
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Option spec for node:util parseArgs. */
  options?: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;
  run(ctx: CliContext, args: { values: Record<string, unknown>; positionals: string[] }): Promise<void>;
}
