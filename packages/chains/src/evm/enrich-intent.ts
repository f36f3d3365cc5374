// ChainAdapter.enrich for eip155: the ABIs the policy layers register (`abis`) decode every call a request makes,
// whatever carries it. A transaction's call, each call of a user operation, each call of a Safe transaction
// (MultiSend entries included) is decoded as a transaction making it would be (enrichCall), and a request of
// several calls has its spends, approvals and summary built again from the enriched calls, so the same call is
// capped, charged and checked against destinations alike however it is sent.
import type { AbiDeclaration, Intent } from '@airlock/core';
import { enrichBatchCalls, enrichCall } from './abi-moves.ts';
import { enrichUserOperation } from './user-operation.ts';

export function enrichIntent(intent: Intent, abis: readonly AbiDeclaration[]): Intent {
  if (intent.userOperation) return enrichUserOperation(intent, abis);
  if (intent.safe) return enrichSafeTransaction(intent, abis);
  return enrichCall(intent, abis);
}

/**
 * A Safe transaction (`SafeTx` co-signing): each call the Safe executes enriched (a gas refund is left as it is),
 * the whole's spends and approvals the enriched calls' (enrichBatchCalls, as for a user operation), and the summary
 * naming each call as its enriched summary says it. The main counterparty (`to`) is a call's target, which
 * enrichment never changes; the declared recipients become counterparties through the spends.
 */
export function enrichSafeTransaction(intent: Intent, abis: readonly AbiDeclaration[]): Intent {
  const safe = intent.safe;
  if (!safe) return enrichCall(intent, abis);
  const batch = enrichBatchCalls(intent, safe.calls, abis);
  if (!batch) return intent;
  return {
    ...intent,
    spends: batch.spends,
    approvals: batch.approvals,
    safe: { ...safe, calls: batch.calls },
    summary: safeSummary(intent.summary, safe.calls, batch.calls),
  };
}

/**
 * The decoder's summary ends with the calls' summaries ("co-sign Safe … transaction #n on …: <call>; <call>"):
 * those are replaced by the enriched calls' own. Should that line ever read otherwise, the enriched calls are
 * appended, so the summary (response, audit entry, approval) never hides what the declared ABIs read.
 */
function safeSummary(summary: string, before: readonly Intent[], after: readonly Intent[]): string {
  const was = before.map((c) => c.summary).join('; ');
  const now = after.map((c) => c.summary).join('; ');
  return summary.endsWith(was) ? `${summary.slice(0, summary.length - was.length)}${now}` : `${summary} (calls as the policy's abis read them: ${now})`;
}
