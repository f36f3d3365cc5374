import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { AirlockError, isAnchorGeneration, type AuditAnchorStore, type StoredAuditAnchor } from '@airlock/core';
import { replaceFileAtomically } from '@airlock/keys';

/** Written: a signed tree head. Read too: v1, a signed hash-chain checkpoint (files from before the Merkle tree). */
export const AUDIT_ANCHOR_FORMAT = 'airlock-audit-anchor/v2';
const LEGACY_ANCHOR_FORMAT = 'airlock-audit-anchor/v1';

/** The anchor lives beside the vault: the database's owner does not get it by owning the database. */
export function auditAnchorPath(vaultPath: string): string {
  return join(dirname(vaultPath), 'audit-anchor.json');
}

/** The anchor as a JSON file, replaced atomically (mode 0600). Its signature is checked by the audit service. */
export function fileAuditAnchorStore(path: string): AuditAnchorStore {
  return {
    read: () => readAuditAnchorFile(path),
    write: (anchor) => replaceFileAtomically(path, `${JSON.stringify({ format: AUDIT_ANCHOR_FORMAT, ...anchor }, null, 2)}\n`),
  };
}

/** Undefined when there is no file; throws `audit_integrity_failed` when there is one that is not an anchor. */
export async function readAuditAnchorFile(path: string): Promise<StoredAuditAnchor | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const unreadable = () => new AirlockError('audit_integrity_failed', 'The audit anchor file is not a valid anchor.');
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw unreadable();
  }
  const count = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  const hex = (x: unknown, chars: number) => typeof x === 'string' && x.length === chars && /^[0-9a-f]+$/.test(x);
  if (v === null || typeof v !== 'object' || !isAnchorGeneration(v.generation) || !count(v.at) || !hex(v.publicKey, 64) || !hex(v.signature, 128)) throw unreadable();
  const signed = { generation: v.generation as number, at: v.at as number, publicKey: v.publicKey as string, signature: v.signature as string };
  if (v.format === AUDIT_ANCHOR_FORMAT && count(v.treeSize) && hex(v.rootHash, 64)) return { ...signed, treeSize: v.treeSize as number, rootHash: v.rootHash as string };
  if (v.format === LEGACY_ANCHOR_FORMAT && count(v.seq) && hex(v.headHash, 64)) return { ...signed, seq: v.seq as number, headHash: v.headHash as string };
  throw unreadable();
}
