/** A policy violation as Airlock reports it. Amounts are decimal strings of base units. */
export interface Violation {
  rule: string;
  code: string;
  message: string;
  limit?: string;
  used?: string;
  requested?: string;
  asset?: string;
}

/** Any error answer from Airlock: `code` is stable (see docs/api.md). */
export class AirlockApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly hints: string[];
  readonly violations: Violation[];
  readonly details?: Record<string, unknown>;
  constructor(status: number, code: string, message: string, extra: { hints?: string[]; violations?: Violation[]; details?: Record<string, unknown> } = {}) {
    super(message);
    this.name = 'AirlockApiError';
    this.status = status;
    this.code = code;
    this.hints = extra.hints ?? [];
    this.violations = extra.violations ?? [];
    if (extra.details) this.details = extra.details;
  }
}

/** Policy refused the request. `violations` names every rule that refused it. */
export class AirlockPolicyError extends AirlockApiError {
  readonly auditSeq?: number;
  constructor(message: string, violations: Violation[], auditSeq?: number) {
    super(403, 'policy_denied', message, { violations });
    this.name = 'AirlockPolicyError';
    if (auditSeq !== undefined) this.auditSeq = auditSeq;
  }
}

/** The request waits for a human: fetch the result later with `approvalId`. */
export class AirlockApprovalRequiredError extends AirlockApiError {
  readonly approvalId: string;
  readonly expiresAt: string;
  constructor(approvalId: string, expiresAt: string, violations: Violation[]) {
    super(202, 'approval_required', `Waiting for human approval ${approvalId}.`, { violations });
    this.name = 'AirlockApprovalRequiredError';
    this.approvalId = approvalId;
    this.expiresAt = expiresAt;
  }
}

export interface AirlockHttpOptions {
  /** Base URL, e.g. http://127.0.0.1:8420 */
  url: string;
  /** Session token (agents) or admin token (operators). Absent: no Authorization header (approver votes carry their own signature). */
  token?: string;
  fetch?: typeof globalThis.fetch;
}

export interface AirlockHttp {
  request<T = unknown>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: T }>;
}

/** JSON over HTTP with bigints as decimal strings; error answers become typed errors. */
export function createAirlockHttp(options: AirlockHttpOptions): AirlockHttp {
  const base = options.url.replace(/\/+$/, '');
  const doFetch = options.fetch ?? globalThis.fetch;
  return {
    async request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
      const res = await doFetch(`${base}${path}`, {
        method,
        headers: { ...(options.token ? { authorization: `Bearer ${options.token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { body: JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) } : {}),
      });
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : {};
      } catch {
        throw new AirlockApiError(res.status, 'invalid_response', `Airlock answered ${res.status} with a body that is not JSON.`);
      }
      if (res.status >= 400) throw errorFrom(res.status, parsed);
      return { status: res.status, body: parsed as T };
    },
  };
}

function errorFrom(status: number, body: unknown): AirlockApiError {
  const b = body as { error?: { code?: string; message?: string; hints?: string[]; violations?: Violation[]; details?: Record<string, unknown> }; auditSeq?: number };
  const code = b.error?.code ?? 'http_error';
  const message = b.error?.message ?? `HTTP ${status}`;
  if (code === 'policy_denied') return new AirlockPolicyError(message, b.error?.violations ?? [], b.auditSeq);
  return new AirlockApiError(status, code, message, { ...(b.error?.hints ? { hints: b.error.hints } : {}), ...(b.error?.violations ? { violations: b.error.violations } : {}), ...(b.error?.details ? { details: b.error.details } : {}) });
}
