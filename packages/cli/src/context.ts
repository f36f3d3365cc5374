import { createAirlockHttp, type AirlockHttp } from '@airlock/sdk';
import { AirlockError } from '@airlock/core';

export interface CliContext {
  json: boolean;
  url: string;
  /** HTTP client with the admin token; created on first use so offline commands need no token. */
  admin(): AirlockHttp;
}

export function createContext(flags: { url?: string; json?: boolean; token?: string }): CliContext {
  // An empty variable counts as unset: `AIRLOCK_URL= airlock …` must not turn into a relative URL.
  const url = (flags.url || process.env.AIRLOCK_URL || 'http://127.0.0.1:8420').replace(/\/+$/, '');
  let http: AirlockHttp | undefined;
  return {
    json: !!flags.json,
    url,
    admin() {
      const token = flags.token || process.env.AIRLOCK_ADMIN_TOKEN;
      if (!token) throw new AirlockError('unauthenticated', 'No admin token.', { hints: ['Set AIRLOCK_ADMIN_TOKEN to the token `airlock init` printed, or pass --token.'] });
      if (!URL.canParse(url)) throw new AirlockError('invalid_request', 'The daemon URL is not a URL.', { hints: ['Pass --url http://HOST:PORT or set AIRLOCK_URL.'] });
      http ??= createAirlockHttp({ url, token });
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
