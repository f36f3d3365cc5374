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

/**
 * A bearer token's shape (RFC 6750 `b64token`): Airlock's tokens (`ses_<16 hex>.<secret>`, `adm_<secret>`) are
 * base64url and fit it. Anything else (a control character, a space, a quote from a pasted line) would be quoted back
 * by fetch's own error ("… is an invalid header value"): refused here, without the value.
 */
const BEARER_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Does this URL carry a user name or password (`http://user:pass@host`)? One that does not parse but holds an `@` counts. */
function hasCredentials(url: string): boolean {
  if (!URL.canParse(url)) return url.includes('@');
  const u = new URL(url);
  return u.username !== '' || u.password !== '';
}

/** JSON over HTTP with bigints as decimal strings; error answers become typed errors. */
export function createAirlockHttp(options: AirlockHttpOptions): AirlockHttp {
  // Neither message quotes what it refused: fetch's own errors would (the whole URL, the whole header value).
  if (hasCredentials(options.url)) {
    throw new AirlockApiError(400, 'invalid_request', 'The Airlock URL carries a user name or password (user:pass@host); Airlock takes only its token. Remove them from the URL.');
  }
  // Surrounding whitespace (a token read from a file with its newline) is what fetch strips from a header anyway.
  const token = options.token?.trim();
  if (options.token && !BEARER_TOKEN.test(token!)) {
    throw new AirlockApiError(400, 'invalid_request', 'The token does not look like an Airlock token (ses_<16 hex>.<secret> or adm_<secret>): it holds a character a token cannot have. Its value is not shown.');
  }
  const base = options.url.replace(/\/+$/, '');
  const doFetch = options.fetch ?? globalThis.fetch;
  return {
    async request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
      const res = await doFetch(`${base}${path}`, {
        method,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
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
