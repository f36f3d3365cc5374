// An approver's credential in the console: the key file `airlock approver add` wrote, read in the page only.
// The secret key becomes a non-extractable WebCrypto Ed25519 key held in page memory (never sent, never stored;
// the hex is dropped once imported). Votes are signed here over the same bytes as the SDK's signApprovalVote
// (packages/sdk/src/approvals.ts): the canonical JSON (RFC 8785) of a flat object of strings.

const hexToBytes = (hex) => new Uint8Array(hex.match(/../g).map((b) => parseInt(b, 16)));
const bytesToHex = (bytes) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
// PKCS#8 wrapping of a 32-byte Ed25519 seed (RFC 8410): a fixed prefix, then the seed.
const PKCS8_PREFIX = hexToBytes('302e020100300506032b657004220420');

/** Members sorted by UTF-16 code units, absent ones left out, strings as JSON.stringify writes them. */
function canonicalStrings(fields) {
  const keys = Object.keys(fields).filter((k) => fields[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(fields[k])}`).join(',')}}`;
}

export class KeyFileError extends Error {}

/**
 * Reads a key file's text and checks it against the registered approvers: returns `{approver, publicKey, key}`
 * with `key` a non-extractable CryptoKey. Never echoes the text (it holds a private key).
 */
export async function loadApproverKey(text, approvers) {
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new KeyFileError('This is not an approver key file (JSON written by `airlock approver add`).');
  }
  if (parsed?.type !== 'airlock-approver-key' || typeof parsed.approver !== 'string' || !/^[0-9a-f]{64}$/.test(parsed.secretKey ?? '')) {
    throw new KeyFileError('This is not an approver key file written by `airlock approver add`.');
  }
  if (!globalThis.crypto?.subtle) throw new KeyFileError('This browser offers no Web Crypto here (open the console over http://127.0.0.1 or https).');
  const pkcs8 = new Uint8Array(48);
  pkcs8.set(PKCS8_PREFIX);
  pkcs8.set(hexToBytes(parsed.secretKey), 16);
  let key;
  try {
    key = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign']);
  } catch {
    throw new KeyFileError('This browser cannot sign with Ed25519 keys (Chromium 137+, Firefox 129+, Safari 17+ can).');
  } finally {
    pkcs8.fill(0);
  }
  const registered = approvers.find((a) => a.name === parsed.approver);
  if (!registered) throw new KeyFileError(`No approver named ${parsed.approver} is registered.`);
  if (registered.status !== 'active') throw new KeyFileError(`The approver ${parsed.approver} is ${registered.status}.`);
  // The key must be the registered one: sign a probe and verify it under the registered public key.
  const probe = new TextEncoder().encode('airlock console key check');
  const publicKey = await crypto.subtle.importKey('raw', hexToBytes(registered.publicKey), { name: 'Ed25519' }, false, ['verify']);
  const ok = await crypto.subtle.verify({ name: 'Ed25519' }, publicKey, await crypto.subtle.sign({ name: 'Ed25519' }, key, probe), probe);
  if (!ok) throw new KeyFileError(`This key is not the one registered for ${parsed.approver}.`);
  return { approver: parsed.approver, publicKey: registered.publicKey, groups: registered.groups ?? [], key };
}

/** The body of POST /v1/approvals/{id}/votes, signed with the loaded key. */
export async function signVote(credential, { approvalId, digest, decision, comment }) {
  const at = new Date().toISOString();
  const fields = { type: 'airlock.approval.vote', approvalId, digest: digest.toLowerCase(), decision, approver: credential.approver, at, comment: comment || undefined };
  const signature = await crypto.subtle.sign({ name: 'Ed25519' }, credential.key, new TextEncoder().encode(canonicalStrings(fields)));
  return { approver: credential.approver, digest: fields.digest, decision, at, signature: bytesToHex(signature), ...(fields.comment ? { comment: fields.comment } : {}) };
}
