import type { ReleasedSignatures } from '@airlock/core';
import { releasedSignaturesFromRow, signaturesToText } from '../shared/released-signature-rows.ts';
import type { Q } from './pg-query.ts';

// Released signatures (schema 020; core/ports/released-signatures.ts).

const COLUMNS = 'audit_seq, digest, signatures, created_at';

export async function getReleasedSignatures(q: Q, auditSeq: number): Promise<ReleasedSignatures | undefined> {
  const [row] = await q(`SELECT ${COLUMNS} FROM released_signatures WHERE audit_seq = $1`, [auditSeq]);
  return row && releasedSignaturesFromRow(row);
}

/**
 * Insert if absent, then read back (its own autocommit statements, READ COMMITTED). A concurrent insert of the same
 * audit entry by another instance makes this INSERT wait for that transaction and then do nothing; the SELECT that
 * follows (a new snapshot) sees the committed row. One round trip when this writer is first.
 */
export async function keepReleasedSignatures(q: Q, r: ReleasedSignatures): Promise<ReleasedSignatures> {
  const [inserted] = await q(
    `INSERT INTO released_signatures (${COLUMNS}) VALUES ($1, $2, $3, $4) ON CONFLICT (audit_seq) DO NOTHING RETURNING ${COLUMNS}`,
    [r.auditSeq, r.digest, signaturesToText(r.signatures), r.createdAt],
  );
  if (inserted) return releasedSignaturesFromRow(inserted);
  return (await getReleasedSignatures(q, r.auditSeq))!;
}
