import { AirlockError } from '../errors.ts';

/**
 * Shared between the audit service (which sets it) and every signing path (which checks it first).
 * Set when the audit chain no longer extends the anchored checkpoint; signing fails closed until an
 * anchor of a newer generation is adopted (an operator acknowledgement).
 */
export interface AuditIntegrityState {
  failure?: { generation: number; seq: number; reason: string; at: number };
}

export function assertAuditIntact(state: AuditIntegrityState): void {
  if (!state.failure) return;
  throw new AirlockError('audit_integrity_failed', 'Signing is halted: the audit log does not extend its last signed checkpoint.', {
    hints: ['Run `airlock audit verify`, then restore the database or run `airlock audit acknowledge` (see docs/operations.md).'],
  });
}
