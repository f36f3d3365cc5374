import type { ApprovalRecord } from '../ports/store.ts';

/**
 * The address an EVM approval's request was decoded for, when that is not `signer` (the agent's key now): the key
 * rotated after the request was held, so the grant must sign nothing (`key_rotated`). Undefined when it is the same
 * key or the approval is not an EVM one. Compared without case: the summary keeps the address as decoded, the
 * agent row in checksum case, and a grant must not turn on which of the two spellings each side holds.
 */
export function decodedForAnotherKey(approval: Pick<ApprovalRecord, 'action' | 'summary'>, signer: string): string | undefined {
  if (!approval.action.startsWith('evm.')) return undefined;
  const decodedFor = (approval.summary as { intent?: { from?: unknown } } | undefined)?.intent?.from;
  return typeof decodedFor === 'string' && decodedFor.toLowerCase() !== signer.toLowerCase() ? decodedFor : undefined;
}
