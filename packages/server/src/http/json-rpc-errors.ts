// JSON-RPC 2.0 errors of the signer endpoint (docs/json-rpc.md lists them). The numeric code is what
// clients branch on (viem and ethers map the standard ones to their own error classes); `data.code` is
// always Airlock's stable snake_case code, the same one the REST API answers with.
import { ERROR_CODES, type AirlockError, type SignOutcome } from '@airlock/core';

export const RPC_ERROR = {
  /** The body is not JSON (JSON-RPC 2.0). */
  parseError: -32700,
  /** Not a JSON-RPC 2.0 request object, an empty or oversized batch (JSON-RPC 2.0). */
  invalidRequest: -32600,
  /** A method this endpoint refuses (`eth_sign`, the upstream's own accounts) (JSON-RPC 2.0). */
  methodNotFound: -32601,
  /** Parameters the method cannot use: shape, fields, chain (JSON-RPC 2.0). */
  invalidParams: -32602,
  /** An unexpected failure; details stay in the server log (JSON-RPC 2.0). */
  internal: -32603,
  /** Sealed, store unavailable, no upstream node or it did not answer (EIP-1474 "resource unavailable"). */
  unavailable: -32002,
  /** Rate limited; `data.retryAfterSeconds` says how long to wait (EIP-1474 "limit exceeded"). */
  limitExceeded: -32005,
  /** The credential may not act, or `from` / the address is not the session's agent (EIP-1193 "unauthorized"). */
  unauthorized: 4100,
  /** Policy refused to sign: `data.violations` names each rule (rule, code, limit, used, requested). */
  policyDenied: -32010,
  /** Held for a human: `data.approvalId`; poll GET /v1/approvals/{id} for the signature once approved. */
  approvalRequired: -32011,
} as const;

export class JsonRpcError extends Error {
  readonly code: number;
  readonly data: unknown;

  constructor(code: number, message: string, data?: unknown) {
    super(message);
    this.name = 'JsonRpcError';
    this.code = code;
    this.data = data;
  }

  toJson(): { code: number; message: string; data?: unknown } {
    return { code: this.code, message: this.message, ...(this.data !== undefined ? { data: this.data } : {}) };
  }
}

/** Which JSON-RPC code an Airlock error code becomes; anything not named here is invalid params (a 4xx) or internal. */
const CODE_FOR: Partial<Record<keyof typeof ERROR_CODES, number>> = {
  invalid_json: RPC_ERROR.parseError,
  forbidden_json_key: RPC_ERROR.parseError,
  payload_too_deep: RPC_ERROR.parseError,
  body_too_large: RPC_ERROR.invalidRequest,
  not_found: RPC_ERROR.invalidRequest,
  unauthenticated: RPC_ERROR.unauthorized,
  session_expired: RPC_ERROR.unauthorized,
  session_revoked: RPC_ERROR.unauthorized,
  forbidden: RPC_ERROR.unauthorized,
  agent_frozen: RPC_ERROR.unauthorized,
  agent_retired: RPC_ERROR.unauthorized,
  key_rotated: RPC_ERROR.unauthorized,
  origin_not_allowed: RPC_ERROR.unauthorized,
  csrf_refused: RPC_ERROR.unauthorized,
  host_not_allowed: RPC_ERROR.unauthorized,
  policy_denied: RPC_ERROR.policyDenied,
  rate_limited: RPC_ERROR.limitExceeded,
  session_rate_limited: RPC_ERROR.limitExceeded,
  sealed: RPC_ERROR.unavailable,
  store_unavailable: RPC_ERROR.unavailable,
  audit_integrity_failed: RPC_ERROR.unavailable,
  hsm_unavailable: RPC_ERROR.unavailable,
  hsm_login_failed: RPC_ERROR.unavailable,
  hsm_key_missing: RPC_ERROR.unavailable,
  signature_check_failed: RPC_ERROR.internal,
  internal: RPC_ERROR.internal,
};

/** An AirlockError as a JSON-RPC error: its message (never echoing secrets, errors.ts) and its code, details and violations in `data`. */
export function rpcErrorFromAirlock(e: AirlockError): JsonRpcError {
  const status = ERROR_CODES[e.code].status;
  const code = CODE_FOR[e.code] ?? (status >= 500 ? RPC_ERROR.internal : RPC_ERROR.invalidParams);
  const data: Record<string, unknown> = { code: e.code };
  if (e.hints.length) data.hints = e.hints;
  if (e.violations) data.violations = e.violations;
  if (e.details) Object.assign(data, e.details);
  return new JsonRpcError(code, e.message, data);
}

/**
 * A signing outcome that released no signature (SigningService.sign answered 202 or 403) as a JSON-RPC
 * error. Returns undefined for a 200.
 */
export function rpcErrorFromOutcome(outcome: SignOutcome): JsonRpcError | undefined {
  const body = outcome.body as Record<string, unknown> & { error?: { code: string; message: string; violations?: unknown[] } };
  const common = { auditSeq: body.auditSeq, ...(body.replayed === true ? { replayed: true } : {}) };
  if (outcome.status === 202) {
    return new JsonRpcError(RPC_ERROR.approvalRequired, `Held for approval ${String(body.approvalId)}: poll GET /v1/approvals/${String(body.approvalId)}.`, {
      code: 'approval_required',
      approvalId: body.approvalId,
      ...(body.expiresAt !== undefined ? { expiresAt: body.expiresAt } : {}),
      violations: body.violations ?? [],
      ...common,
    });
  }
  if (outcome.status === 403) {
    const error = body.error ?? { code: 'policy_denied', message: 'Denied by policy.' };
    return new JsonRpcError(error.code === 'policy_denied' ? RPC_ERROR.policyDenied : RPC_ERROR.invalidParams, error.message, {
      code: error.code,
      violations: error.violations ?? [],
      ...(body.policyVersion !== undefined ? { policyVersion: body.policyVersion } : {}),
      ...common,
    });
  }
  return undefined;
}
