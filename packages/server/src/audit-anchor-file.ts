import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { AirlockError, type AuditAnchor, type AuditAnchorStore } from '@airlock/core';
import { replaceFileAtomically } from '@airlock/keys';

export const AUDIT_ANCHOR_FORMAT = 'airlock-audit-anchor/v1';

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
export async function readAuditAnchorFile(path: string): Promise<AuditAnchor | undefined> {
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
  if (v === null || typeof v !== 'object' || v.format !== AUDIT_ANCHOR_FORMAT || !count(v.generation) || !count(v.seq) || !count(v.at)) throw unreadable();
  if (!hex(v.headHash, 64) || !hex(v.publicKey, 64) || !hex(v.signature, 128)) throw unreadable();
  return { generation: v.generation as number, seq: v.seq as number, headHash: v.headHash as string, at: v.at as number, publicKey: v.publicKey as string, signature: v.signature as string };
}
