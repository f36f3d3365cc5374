import { Hono, type Context } from 'hono';
import { AirlockError, parseUntrustedJson } from '@airlock/core';
import { authenticate, FailureLimiter } from './auth.ts';
import { errorResponse } from './errors.ts';
import type { AirlockHolder } from './holder.ts';
import { buildOpenApi } from './openapi.ts';
import { buildRoutes } from './routes.ts';

export interface AppOptions {
  bodyLimitBytes?: number;
  /** Where unexpected failures are reported (stack only; request bodies are never logged). */
  logInternalError?: (err: AirlockError) => void;
}

const defaultLog = (err: AirlockError) => {
  const cause = err.cause instanceof Error ? (err.cause.stack ?? err.cause.message) : String(err.cause);
  console.error(`[airlock] internal error: ${cause}`);
};

/** The HTTP API. Usable in-process (`app.request(...)`) and behind @hono/node-server. */
export function createApp(holder: AirlockHolder, options: AppOptions = {}): Hono {
  const app = new Hono();
  const limit = options.bodyLimitBytes ?? 256 * 1024;
  const limiter = new FailureLimiter();
  let openapi: Record<string, unknown> | undefined;
  const routes = buildRoutes(holder, () => (openapi ??= buildOpenApi(routes)));

  const log = options.logInternalError ?? defaultLog;
  app.onError((err, c) => {
    const res = errorResponse(c, err, log);
    return res;
  });
  app.notFound((c) => errorResponse(c, new AirlockError('not_found', 'No such endpoint.')));

  for (const r of routes) {
    app.on(r.method.toUpperCase(), r.path, authenticate(holder, r.auth, limiter), async (c) => {
      const body = r.body ? r.body.parse(await readJson(c, limit)) : undefined;
      const query = r.query ? r.query.parse(c.req.query()) : {};
      return r.handler(c, { body, query });
    });
  }
  return app;
}

/**
 * Reads a JSON body with a hard size limit (checked on the bytes, not only the header), then refuses
 * prototype keys and excess nesting before any route, schema or hash sees it.
 */
async function readJson(c: Context, limit: number): Promise<unknown> {
  const declared = Number(c.req.header('content-length') ?? 0);
  if (declared > limit) throw new AirlockError('body_too_large', `Request bodies are limited to ${limit} bytes.`);
  const reader = c.req.raw.body?.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (reader) {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel().catch(() => undefined);
        throw new AirlockError('body_too_large', `Request bodies are limited to ${limit} bytes.`);
      }
      chunks.push(value);
    }
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) return {};
  return parseUntrustedJson(text);
}
