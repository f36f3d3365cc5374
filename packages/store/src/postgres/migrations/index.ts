import { statements as initial } from './001_initial.ts';
import { statements as payments } from './002_payments.ts';
import { statements as nonceClaims } from './003_nonce_claims.ts';
import { statements as settledTransfer } from './004_settled_transfer.ts';
import { statements as auditHashVersion } from './005_audit_hash_version.ts';
import { statements as ledgerOneTree } from './006_ledger_one_tree.ts';
import { statements as auditMerkleTree } from './007_audit_merkle_tree.ts';
import { statements as auditSequencing } from './008_audit_sequencing.ts';
import { statements as ledgerEntryPerSeries } from './009_ledger_entry_per_series.ts';
import { statements as policySource } from './010_policy_source.ts';
import { statements as lightningPayments } from './011_lightning_payments.ts';
import { statements as circuitBreakers } from './016_circuit_breakers.ts';
import { statements as shadowPolicies } from './014_shadow_policies.ts';
import { statements as sessionParent } from './013_session_parent.ts';
import { statements as webhooks } from './015_webhooks.ts';
import { statements as agentKeys } from './017_agent_keys.ts';
import { statements as lifecycleJobs } from './018_lifecycle_jobs.ts';
import { statements as approvers } from './012_approvers.ts';
import { statements as grants } from './019_grants.ts';
import { statements as releasedSignatures } from './020_released_signatures.ts';
import { statements as thresholdBindings } from './021_threshold_bindings.ts';
import { statements as lifecyclePlannedJobs } from './022_lifecycle_planned_jobs.ts';
import { statements as webhookClaimIndexes } from './023_webhook_claim_indexes.ts';
import { statements as lightningInFlightByAgent } from './024_lightning_in_flight_by_agent.ts';
import { statements as lightningAlerts } from './025_lightning_alerts.ts';
import { statements as ledgerKeptTotals } from './026_ledger_kept_totals.ts';
import { statements as agentOperatorFreeze } from './027_agent_operator_freeze.ts';

/** Every migration, by version, applied in ascending order. Add new ones here explicitly. */
export const postgresMigrations: ReadonlyMap<number, { name: string; statements: string[] }> = new Map([
  [1, { name: '001_initial', statements: initial }],
  [2, { name: '002_payments', statements: payments }],
  [3, { name: '003_nonce_claims', statements: nonceClaims }],
  [4, { name: '004_settled_transfer', statements: settledTransfer }],
  [5, { name: '005_audit_hash_version', statements: auditHashVersion }],
  [6, { name: '006_ledger_one_tree', statements: ledgerOneTree }],
  [7, { name: '007_audit_merkle_tree', statements: auditMerkleTree }],
  [8, { name: '008_audit_sequencing', statements: auditSequencing }],
  [9, { name: '009_ledger_entry_per_series', statements: ledgerEntryPerSeries }],
  [10, { name: '010_policy_source', statements: policySource }],
  [11, { name: '011_lightning_payments', statements: lightningPayments }],
  [16, { name: '016_circuit_breakers', statements: circuitBreakers }],
  [14, { name: '014_shadow_policies', statements: shadowPolicies }],
  [13, { name: '013_session_parent', statements: sessionParent }],
  [15, { name: '015_webhooks', statements: webhooks }],
  [12, { name: '012_approvers', statements: approvers }],
  [17, { name: '017_agent_keys', statements: agentKeys }],
  [18, { name: '018_lifecycle_jobs', statements: lifecycleJobs }],
  [19, { name: '019_grants', statements: grants }],
  [20, { name: '020_released_signatures', statements: releasedSignatures }],
  [21, { name: '021_threshold_bindings', statements: thresholdBindings }],
  [22, { name: '022_lifecycle_planned_jobs', statements: lifecyclePlannedJobs }],
  [23, { name: '023_webhook_claim_indexes', statements: webhookClaimIndexes }],
  [24, { name: '024_lightning_in_flight_by_agent', statements: lightningInFlightByAgent }],
  [25, { name: '025_lightning_alerts', statements: lightningAlerts }],
  [26, { name: '026_ledger_kept_totals', statements: ledgerKeptTotals }],
  [27, { name: '027_agent_operator_freeze', statements: agentOperatorFreeze }],
]);
