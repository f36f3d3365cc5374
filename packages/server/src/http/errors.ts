import type { Context } from 'hono';
import { z } from 'zod';
import { AirlockError, ERROR_CODES, isAirlockError } from '@airlock/core';

export interface ErrorBody {
  error: { code: string; message: string; hints?: string[]; violations?: unknown[]; details?: Record<string, unknown> };
}

/** The one place errors become responses: `{error: {code, message, violations?}}` with the code's status. */
export function errorResponse(c: Context, err: unknown, logInternal?: (e: AirlockError) => void): Response {
  const e = toAirlockError(err);
  if ((e.code === 'internal' || e.code === 'store_unavailable') && logInternal) logInternal(e);
  const body: ErrorBody = { error: { code: e.code, message: e.message } };
  if (e.hints.length) body.error.hints = e.hints;
  if (e.violations) body.error.violations = e.violations;
  if (e.details) body.error.details = e.details;
  const retryAfter = e.details?.retryAfterSeconds;
  if (typeof retryAfter === 'number') c.header('Retry-After', String(retryAfter));
  return c.json(body, ERROR_CODES[e.code].status as 400);
}

export function toAirlockError(err: unknown): AirlockError {
  if (isAirlockError(err)) return err;
  if (err instanceof z.ZodError) {
    const issue = err.issues[0];
    const path = issue?.path.length ? issue.path.join('.') : '(body)';
    return new AirlockError('invalid_request', `${path}: ${issue?.message ?? 'invalid'}`, { details: { issues: err.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) } });
  }
  // Unknown failures never leak their message (it could carry input); the cause stays server-side.
  return new AirlockError('internal', 'Internal error.', { cause: err });
}
