/**
 * The bearer tokens a daemon presents to a cluster's signer nodes, sealed for the store. A token is chosen by the
 * operator (it sits in the node's token file), so unlike a webhook secret it cannot be derived again; it is kept
 * encrypted instead: AES-256-GCM under a key derived from the vault (KeyBackend.deriveSecret at the key used for
 * derived secrets, with its own label), bound as associated data to the agent, namespace and group key. A copy of
 * the database alone does not give the tokens, a sealed blob moved to another binding does not open, and every
 * instance on one PostgreSQL (one vault) opens it. In clear, the tokens live only in this process's memory.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { AirlockError, type KeyBackend } from '@airlock/core';
import { WEBHOOK_SECRET_KEY_PATH } from '@airlock/keys';

/** The label of the key the tokens are sealed under (the key process serves it besides the webhook labels). */
export const THRESHOLD_NODE_TOKENS_LABEL = 'threshold-node-tokens/v1';
const LABEL = THRESHOLD_NODE_TOKENS_LABEL;
const PREFIX = 'v1.';

export interface SealedTokenContext {
  agentId: string;
  namespace: string;
  groupKey: string;
}

const aad = (c: SealedTokenContext) => Buffer.from(`airlock-threshold-tokens|${c.agentId}|${c.namespace}|${c.groupKey}`, 'utf8');

async function withKey<T>(keys: KeyBackend, fn: (key: Buffer) => T): Promise<T> {
  const bytes = await keys.deriveSecret(WEBHOOK_SECRET_KEY_PATH, LABEL);
  const key = Buffer.from(bytes);
  try {
    return fn(key);
  } finally {
    bytes.fill(0);
    key.fill(0);
  }
}

export function sealNodeTokens(keys: KeyBackend, context: SealedTokenContext, tokens: Record<string, string>): Promise<string> {
  return withKey(keys, (key) => {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(aad(context));
    const body = Buffer.concat([cipher.update(JSON.stringify(tokens), 'utf8'), cipher.final()]);
    return PREFIX + Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
  });
}

export function openNodeTokens(keys: KeyBackend, context: SealedTokenContext, sealed: string): Promise<Record<string, string>> {
  return withKey(keys, (key) => {
    const raw = sealed.startsWith(PREFIX) ? Buffer.from(sealed.slice(PREFIX.length), 'base64url') : Buffer.alloc(0);
    try {
      if (raw.length < 12 + 16 + 2) throw new Error('short');
      const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12)).setAAD(aad(context));
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      const text = Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8');
      return JSON.parse(text) as Record<string, string>;
    } catch {
      // Never the blob or the cause in the message: it is about a secret.
      throw new AirlockError('vault_mismatch', "The signer nodes' tokens of this binding do not open with this vault; bind the cluster again.");
    }
  });
}
