// Tool results as the model reads them: a JSON object in structuredContent and the same JSON as text (for
// clients that only show text). Failures are results too (isError: true), never protocol errors, so the model
// can read why: a policy refusal carries every violation with its rule, code, limit, used and requested.
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { AirlockApiError, AirlockApprovalRequiredError, AirlockPolicyError } from '@airlock/sdk';
import { BaseError } from 'viem';
import type { Redactor } from './redact.ts';

/** A failure a tool reports itself, with a stable snake_case code. */
export class ToolError extends Error {
  override name = 'ToolError';
  readonly code: string;
  readonly hints: string[];
  constructor(code: string, message: string, hints: string[] = []) {
    super(message);
    this.code = code;
    this.hints = hints;
  }
}

/**
 * A paying tool's failure after Airlock had signed or paid for the call: `paid` (what was signed or paid) goes
 * into the error result beside the cause's code, with `hint` first, so a model does not pay again by retrying.
 * `certainty` is the result's `paid`: `'maybe'` when the call's time ran out while Airlock was still deciding.
 */
export class PaidThenFailedError extends Error {
  override name = 'PaidThenFailedError';
  readonly paid: Record<string, unknown>;
  readonly hint: string;
  readonly certainty: true | 'maybe';
  constructor(cause: unknown, paid: Record<string, unknown>, hint: string, certainty: true | 'maybe' = true) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.paid = paid;
    this.hint = hint;
    this.certainty = certainty;
  }
}

export interface ToolFailure {
  code: string;
  message: string;
  /** Set by the paying tools when Airlock signed or paid before the failure, or may have (see PaidThenFailedError). */
  paid?: true | 'maybe';
  paymentSigned?: unknown;
  payment?: unknown;
  violations?: { rule: string; code: string; message: string; limit?: string; used?: string; requested?: string; asset?: string }[];
  auditSeq?: number;
  approvalId?: string;
  expiresAt?: string;
  hints?: string[];
}

function toJson(data: unknown, redact: Redactor): { text: string; value: Record<string, unknown> } {
  const text = redact(JSON.stringify(data, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2));
  return { text, value: JSON.parse(text) as Record<string, unknown> };
}

export function success(data: Record<string, unknown>, redact: Redactor): CallToolResult {
  const { text, value } = toJson(data, redact);
  return { structuredContent: value, content: [{ type: 'text', text }] };
}

export function failure(error: ToolFailure, redact: Redactor): CallToolResult {
  const { text, value } = toJson({ error }, redact);
  return { isError: true, structuredContent: value, content: [{ type: 'text', text }] };
}

/** Airlock's typed error, wherever it sits in the cause chain (viem wraps the account's errors). */
export function airlockErrorIn(e: unknown): AirlockApiError | undefined {
  for (let c: unknown = e, depth = 0; c && depth < 10; c = (c as { cause?: unknown }).cause, depth++) {
    if (c instanceof AirlockApiError) return c;
  }
  return undefined;
}

/** Any thrown value as a ToolFailure. The message of an unknown error is kept (redacted later): it is all the model can act on. */
export function describeError(e: unknown): ToolFailure {
  if (e instanceof PaidThenFailedError) {
    const cause = describeError(e.cause);
    return { ...cause, paid: e.certainty, ...e.paid, hints: [e.hint, ...(cause.hints ?? [])] };
  }
  const airlock = airlockErrorIn(e);
  if (airlock instanceof AirlockPolicyError) {
    return { code: 'policy_denied', message: airlock.message, violations: airlock.violations, ...(airlock.auditSeq !== undefined ? { auditSeq: airlock.auditSeq } : {}), hints: ['Airlock refused this under the agent policy; nothing was signed or sent. Explain the violated rule to the user instead of retrying.'] };
  }
  if (airlock instanceof AirlockApprovalRequiredError) {
    return {
      code: 'approval_required',
      message: airlock.message,
      approvalId: airlock.approvalId,
      expiresAt: airlock.expiresAt,
      violations: airlock.violations,
      hints: ['A human must approve this request; nothing was sent yet. Check it later with list_pending_approvals.'],
    };
  }
  if (airlock) return { code: airlock.code, message: airlock.message, ...(airlock.violations.length ? { violations: airlock.violations } : {}), ...(airlock.hints.length ? { hints: airlock.hints } : {}) };
  if (e instanceof ToolError) return { code: e.code, message: e.message, ...(e.hints.length ? { hints: e.hints } : {}) };
  if (e instanceof TypeError && /fetch failed/.test(e.message)) {
    return { code: 'airlock_unreachable', message: 'Cannot reach the Airlock daemon.', hints: ['The operator checks that Airlock runs and that AIRLOCK_URL points at it.'] };
  }
  // A chain error from viem (insufficient funds, a revert, the RPC down): its short message is the useful part.
  if (e instanceof BaseError) return { code: 'chain_error', message: e.shortMessage, ...(e.details ? { hints: [e.details] } : {}) };
  return { code: 'internal', message: e instanceof Error ? e.message : String(e) };
}
