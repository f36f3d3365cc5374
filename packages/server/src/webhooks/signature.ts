import { createHash, createHmac } from 'node:crypto';
import type { KeyBackend } from '@airlock/core';
import { WEBHOOK_SECRET_KEY_PATH } from '@airlock/keys';

/** Request headers of a delivery (docs/operations.md, "Alerts and webhooks"). */
export const SIGNATURE_HEADER = 'Airlock-Signature';
export const EVENT_ID_HEADER = 'Airlock-Event-Id';
export const EVENT_TYPE_HEADER = 'Airlock-Event-Type';

/**
 * An endpoint's signing secret: derived from the vault (KeyBackend.deriveSecret at a key used for nothing else)
 * for (endpoint id, secret version), so it is never stored, every instance sharing the vault derives the same one,
 * and a rotation (version + 1) makes a new one. Shown to the operator when created or rotated.
 */
export async function webhookSecret(keys: KeyBackend, endpointId: string, secretVersion: number): Promise<string> {
  const bytes = await keys.deriveSecret(WEBHOOK_SECRET_KEY_PATH, `webhook/${endpointId}/${secretVersion}`);
  try {
    return `whsec_${Buffer.from(bytes).toString('base64url')}`;
  } finally {
    bytes.fill(0);
  }
}

/**
 * `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: the timestamp is signed with the body, so a
 * receiver can refuse an old delivery replayed later (sdk/src/webhooks.ts checks it against a tolerance).
 * The key is the secret string as shown (UTF-8), prefix included.
 */
export function signatureHeader(secret: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex');
  return `t=${timestampSeconds},v1=${mac}`;
}

/**
 * `evt_` + 32 hex of a hash of (endpoint, leaf index): the same for every attempt and on every instance, so a
 * receiver that got a delivery twice (at-least-once) recognises it. Two endpoints get different ids.
 */
export function webhookEventId(endpointId: string, leafIndex: number): string {
  return `evt_${createHash('sha256').update(`airlock/webhook-event/v1\0${endpointId}\0${leafIndex}`).digest('hex').slice(0, 32)}`;
}
