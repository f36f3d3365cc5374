import { createHash } from 'node:crypto';

/**
 * sha256 hex of a token secret (UTF-8): what the store keeps instead of the token. Also the request hash of
 * every signature, so it runs on every request: node:crypto (OpenSSL), several times faster than pure JS
 * on short inputs; tokens.test.ts checks it against @noble/hashes.
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Compares two equal-length hex strings in time independent of where they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Session tokens look like `ses_<16 hex>.<43 base64url chars>`: the id part finds the row,
 * the secret part is compared (hashed, constant time). Returns undefined for anything else.
 */
export function parseSessionToken(token: string): { sessionId: string; secret: string } | undefined {
  const m = /^(ses_[0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/.exec(token);
  return m ? { sessionId: m[1]!, secret: m[2]! } : undefined;
}

export function formatSessionToken(sessionId: string, secret: string): string {
  return `${sessionId}.${secret}`;
}

/** Admin tokens: `adm_<43 base64url chars>`. */
export function isAdminTokenShape(token: string): boolean {
  return /^adm_[A-Za-z0-9_-]{43}$/.test(token);
}

export function requestHash(action: string, payload: unknown, canonical: (v: unknown) => string): string {
  return hashSecret(canonical({ action, payload }));
}
