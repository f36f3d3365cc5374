/**
 * The explicit rule registry: one line per rule type. Adding a rule type = one file here,
 * its codes in codes.ts, its vectors under test/vectors/policy/, and one line below.
 */
import { actionsRule } from './actions.ts';
import { allowRule } from './allow.ts';
import { approvalTierRule } from './approval-tier.ts';
import { approvalsRule } from './approvals.ts';
import { bitcoinRule } from './bitcoin.ts';
import { budgetRule } from './budget.ts';
import { chainsRule } from './chains.ts';
import { denyRule } from './deny.ts';
import { destinationsRule } from './destinations.ts';
import { feeCapRule } from './fee-cap.ts';
import { lightningRule } from './lightning.ts';
import { loopGuardRule } from './loop-guard.ts';
import { maxAmountRule } from './max-amount.ts';
import { nostrEventRule } from './nostr-event.ts';
import { nostrHttpAuthRule } from './nostr-http-auth.ts';
import { nostrPeersRule } from './nostr-peers.ts';
import { rateLimitRule } from './rate-limit.ts';
import { validityWindowRule } from './validity-window.ts';
import { userOperationsRule } from './user-operations.ts';
import { delegationsRule } from './delegations.ts';

export const RULES = {
  allow: allowRule,
  deny: denyRule,
  max_amount: maxAmountRule,
  budget: budgetRule,
  rate_limit: rateLimitRule,
  destinations: destinationsRule,
  approvals: approvalsRule,
  fee_cap: feeCapRule,
  validity_window: validityWindowRule,
  approval_tier: approvalTierRule,
  chains: chainsRule,
  actions: actionsRule,
  loop_guard: loopGuardRule,
  nostr_event: nostrEventRule,
  nostr_http_auth: nostrHttpAuthRule,
  nostr_peers: nostrPeersRule,
  lightning: lightningRule,
  bitcoin: bitcoinRule,
  user_operations: userOperationsRule,
  delegations: delegationsRule,
} as const;

export type RuleType = keyof typeof RULES;

export const RULE_TYPES = Object.keys(RULES) as RuleType[];

export * from './types.ts';
