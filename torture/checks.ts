// Invariants over a daemon's audit log, checked after every fault. They use only the HTTP API and viem,
// never Airlock's own code, to judge what Airlock did.
import { USDC_ASSET } from '../packages/server/src/testing/harness.ts';
import { adminClient, readWholeAudit, signedTransactionDigest } from '../packages/server/src/testing/processes.ts';
import { brief, type Violations } from './lib.ts';
import type { Received } from './load.ts';

export async function checkAuditVerifies(url: string, adminToken: string, v: Violations, label: string): Promise<void> {
  const verify = await adminClient(url, adminToken)('POST', '/v1/audit/verify');
  v.check(verify.status === 200 && verify.body?.ok === true, () => `${label}: audit verify failed: ${brief(verify.body)}`);
}

export type AuditIndex = Map<number, any>;

export async function signRequestEntries(url: string, adminToken: string): Promise<AuditIndex> {
  return new Map((await readWholeAudit(url, adminToken, 'type=sign.request')).map((e) => [e.seq, e]));
}

/**
 * Every signature a client received has an allow entry for the same agent whose digest is the one the
 * signed transaction commits to (recomputed with viem); one entry never backs two different signatures.
 */
export function checkReceivedAudited(entries: AuditIndex, received: readonly Received[], v: Violations, label: string): void {
  const bySeq = new Map<number, string>();
  for (const r of received) {
    const entry = entries.get(r.auditSeq);
    if (!v.check(!!entry, () => `${label}: signature with auditSeq ${r.auditSeq} has no audit entry`)) continue;
    v.check(entry.decision === 'allow', () => `${label}: auditSeq ${r.auditSeq} backs a signature but says ${entry.decision}`);
    v.check(entry.agentId === r.agentId, () => `${label}: auditSeq ${r.auditSeq} belongs to ${entry.agentId}, signature to ${r.agentId}`);
    v.check(entry.data?.digest === signedTransactionDigest(r.signedTransaction), () => `${label}: auditSeq ${r.auditSeq} digest differs from the signed transaction`);
    const prior = bySeq.get(r.auditSeq);
    // The same entry may back an idempotent replay, which must be the very same signed transaction.
    v.check(prior === undefined || prior === r.signedTransaction, () => `${label}: auditSeq ${r.auditSeq} backs two different signatures`);
    bySeq.set(r.auditSeq, r.signedTransaction);
  }
}

/** USDC transfer spend allowed by the audit log, per agent. */
export function allowedSpendByAgent(entries: AuditIndex): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const e of entries.values()) {
    if (e.decision !== 'allow') continue;
    for (const s of e.data?.intent?.spends ?? []) {
      if (s.asset === USDC_ASSET && s.kind === 'transfer') out.set(e.agentId, (out.get(e.agentId) ?? 0n) + BigInt(s.amount));
    }
  }
  return out;
}

export const sum = (xs: Iterable<bigint>) => [...xs].reduce((a, b) => a + b, 0n);
