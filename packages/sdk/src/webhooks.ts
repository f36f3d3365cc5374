// `@airlock/sdk/webhooks`: for receivers of Airlock's webhooks (docs/operations.md, "Alerts and webhooks").
// A delivery carries `Airlock-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`;
// `verifyWebhook` checks it over the raw body as received, in constant time, and refuses a timestamp outside the
// tolerance (a delivery recorded and replayed later). Pure JavaScript (@noble/hashes): Node, Deno, Bun, browsers.
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';

/** The body Airlock sends: the event, then the audit entry it comes from as GET /v1/audit shows it. */
export interface AirlockWebhookEvent {
  /** Airlock-Event-Id: the same on every attempt; dedupe by it (delivery is at least once). */
  id: string;
  /** `alert.loop_guard`, `approval.requested`, `approval.denied`, `breaker.tripped`, … */
  type: string;
  /** The audit entry's own type (`sign.request` for `approval.requested`). */
  auditType: string;
  seq: number;
  leafIndex: number;
  /** ISO 8601. */
  at: string;
  actor: 'agent' | 'operator' | 'system';
  agentId?: string;
  sessionId?: string;
  action?: string;
  decision?: 'allow' | 'deny' | 'require_approval' | 'error';
  data: Record<string, unknown>;
  /** The entry's leaf hash (GET /v1/audit/receipts/{seq} proves it is in the log). */
  hash: string;
}

export interface VerifyWebhookOptions {
  /**
   * The endpoint's `whsec_…` secret, as shown when it was created or rotated. Anything not of that shape
   * (empty, unset, truncated) is refused as `invalid_secret`: an empty HMAC key would verify forged deliveries.
   */
  secret: string;
  /** The `Airlock-Signature` header value. */
  signatureHeader: string | null | undefined;
  /** The raw request body, exactly as received (not re-serialised JSON). */
  body: string | Uint8Array;
  /** How far the signed time may be from now, either way. Default 300 s. */
  toleranceSeconds?: number;
  /** Now, in ms since the epoch. Default Date.now(). */
  now?: number;
}

export type WebhookRefusal = 'invalid_secret' | 'missing_signature' | 'malformed_signature' | 'stale_timestamp' | 'signature_mismatch' | 'malformed_body';

export type VerifyWebhookResult =
  | { ok: true; event: AirlockWebhookEvent; timestamp: number }
  | { ok: false; reason: WebhookRefusal };

export const WEBHOOK_SIGNATURE_HEADER = 'Airlock-Signature';
export const WEBHOOK_EVENT_ID_HEADER = 'Airlock-Event-Id';
export const WEBHOOK_EVENT_TYPE_HEADER = 'Airlock-Event-Type';

const DEFAULT_TOLERANCE_SECONDS = 300;

/**
 * The shape of every secret Airlock issues: `whsec_` and the base64url (unpadded) of 32 bytes, 43 characters whose
 * last carries 2 zero bits (server/src/webhooks/signature.ts). Anything else is a misconfigured receiver.
 */
const SECRET_RE = /^whsec_[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

/**
 * Checks a delivery: the header's HMAC over `<t>.<body>` with the secret (any `v1=` may match, compared in
 * constant time), then the time. Returns the parsed event, or why it was refused; never throws for bad input.
 * Refuse what it refuses (answer 400): Airlock retries only on non-2xx, and a forged request gets no retry.
 * `invalid_secret` is the receiver's own misconfiguration (the secret is not a `whsec_…` Airlock issued): nothing
 * verifies until it is fixed, so check it at startup too.
 */
export function verifyWebhook(options: VerifyWebhookOptions): VerifyWebhookResult {
  const secret = options?.secret;
  if (typeof secret !== 'string' || !SECRET_RE.test(secret)) return { ok: false, reason: 'invalid_secret' };
  const header = options.signatureHeader;
  if (typeof header !== 'string' || header.trim() === '') return { ok: false, reason: 'missing_signature' };
  const parsed = parseSignatureHeader(header);
  if (!parsed) return { ok: false, reason: 'malformed_signature' };
  const body = typeof options.body === 'string' ? utf8ToBytes(options.body) : options.body;
  const signed = concatBytes(utf8ToBytes(`${parsed.timestamp}.`), body);
  const expected = bytesToHex(hmac(sha256, utf8ToBytes(secret), signed));
  // Every candidate is compared in full, whatever the earlier ones gave: the time taken says nothing.
  let match = false;
  for (const candidate of parsed.signatures) match = constantTimeEqual(candidate, expected) || match;
  if (!match) return { ok: false, reason: 'signature_mismatch' };
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const nowSeconds = Math.floor((options.now ?? Date.now()) / 1000);
  if (!(tolerance >= 0) || Math.abs(nowSeconds - parsed.timestamp) > tolerance) return { ok: false, reason: 'stale_timestamp' };
  let event: unknown;
  try {
    event = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    return { ok: false, reason: 'malformed_body' };
  }
  if (event === null || typeof event !== 'object' || Array.isArray(event)) return { ok: false, reason: 'malformed_body' };
  return { ok: true, event: event as AirlockWebhookEvent, timestamp: parsed.timestamp };
}

/** `t=<digits>` once, and one or more `v1=<64 hex>`; unknown keys (future versions) are ignored. */
function parseSignatureHeader(header: string): { timestamp: number; signatures: string[] } | undefined {
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) return undefined;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      if (timestamp !== undefined || !/^\d{1,12}$/.test(value)) return undefined;
      timestamp = Number(value);
    } else if (key === 'v1') {
      if (!/^[0-9a-fA-F]{64}$/.test(value)) return undefined;
      signatures.push(value.toLowerCase());
    }
  }
  return timestamp !== undefined && signatures.length > 0 ? { timestamp, signatures } : undefined;
}

/** Both are 64 lowercase hex characters here; the loop runs over all of them whatever differs. */
function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
