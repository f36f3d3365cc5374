import type { ReleasedSignatures } from '@airlock/core';
import { releasedSignaturesFromRow, signaturesToText } from '../shared/released-signature-rows.ts';
import type { SqliteDb } from './sqlite-db.ts';

// Released signatures (schema 019; core/ports/released-signatures.ts).

export function getReleasedSignatures(db: SqliteDb, auditSeq: number): ReleasedSignatures | undefined {
  const row = db.get('SELECT audit_seq, digest, signatures, created_at FROM released_signatures WHERE audit_seq = ?', auditSeq);
  return row && releasedSignaturesFromRow(row);
}

/** Insert if absent, then read back: the row of whichever writer came first. */
export function keepReleasedSignatures(db: SqliteDb, r: ReleasedSignatures): ReleasedSignatures {
  db.run('INSERT INTO released_signatures (audit_seq, digest, signatures, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (audit_seq) DO NOTHING', r.auditSeq, r.digest, signaturesToText(r.signatures), r.createdAt);
  return getReleasedSignatures(db, r.auditSeq)!;
}
