import { AirlockError, type ProducedSignature, type ReleasedSignatures } from '@airlock/core';
import { toInt } from './values.ts';

// Released signatures (core/ports/released-signatures.ts) as one row: the signatures as JSON text with hex bytes,
// in finalize order. Both dialects store the text as written, so the bytes read back are the bytes kept.

type StoredSignature = { compact: string; recovery: number } | { schnorr: string };

export function signaturesToText(signatures: readonly ProducedSignature[]): string {
  const stored: StoredSignature[] = signatures.map((s) => ('schnorr' in s ? { schnorr: Buffer.from(s.schnorr).toString('hex') } : { compact: Buffer.from(s.compact).toString('hex'), recovery: s.recovery }));
  return JSON.stringify(stored);
}

function signaturesFromText(text: string): ProducedSignature[] {
  const parsed = JSON.parse(text) as StoredSignature[];
  if (!Array.isArray(parsed) || parsed.length === 0) throw new AirlockError('internal', 'a released-signatures row holds no signature');
  return parsed.map((s) => {
    if ('schnorr' in s && /^[0-9a-f]{128}$/.test(s.schnorr)) return { schnorr: Uint8Array.from(Buffer.from(s.schnorr, 'hex')) };
    if ('compact' in s && /^[0-9a-f]{128}$/.test(s.compact) && (s.recovery === 0 || s.recovery === 1)) return { compact: Uint8Array.from(Buffer.from(s.compact, 'hex')), recovery: s.recovery };
    throw new AirlockError('internal', 'a released-signatures row holds a malformed signature');
  });
}

export function releasedSignaturesFromRow(row: Record<string, unknown>): ReleasedSignatures {
  return { auditSeq: toInt(row.audit_seq), digest: String(row.digest), signatures: signaturesFromText(String(row.signatures)), createdAt: toInt(row.created_at) };
}
