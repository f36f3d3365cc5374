import { statements as initial } from './001_initial.ts';
import { statements as payments } from './002_payments.ts';
import { statements as nonceClaims } from './003_nonce_claims.ts';
import { statements as settledTransfer } from './004_settled_transfer.ts';
import { statements as auditHashVersion } from './005_audit_hash_version.ts';
import { statements as ledgerOneTree } from './006_ledger_one_tree.ts';
import { statements as auditMerkleTree } from './007_audit_merkle_tree.ts';
import { statements as ledgerEntryPerSeries } from './008_ledger_entry_per_series.ts';
import { statements as policySource } from './009_policy_source.ts';
import { statements as lightningPayments } from './010_lightning_payments.ts';
import { statements as circuitBreakers } from './015_circuit_breakers.ts';
import { statements as shadowPolicies } from './013_shadow_policies.ts';
import { statements as sessionParent } from './012_session_parent.ts';
import { statements as webhooks } from './014_webhooks.ts';
import { statements as agentKeys } from './016_agent_keys.ts';
import { statements as lifecycleJobs } from './017_lifecycle_jobs.ts';
import { statements as approvers } from './011_approvers.ts';
import { statements as grants } from './018_grants.ts';
import { statements as releasedSignatures } from './019_released_signatures.ts';
import { statements as thresholdBindings } from './020_threshold_bindings.ts';
import { statements as lifecyclePlannedJobs } from './021_lifecycle_planned_jobs.ts';
import { statements as webhookClaimIndexes } from './022_webhook_claim_indexes.ts';
import { statements as lightningInFlightByAgent } from './023_lightning_in_flight_by_agent.ts';
import { statements as lightningAlerts } from './024_lightning_alerts.ts';
import { statements as ledgerKeptTotals } from './025_ledger_kept_totals.ts';
import { statements as agentOperatorFreeze } from './026_agent_operator_freeze.ts';

/** Every migration, by version, applied in ascending order. Add new ones here explicitly. */
export const sqliteMigrations: ReadonlyMap<number, { name: string; statements: string[] }> = new Map([
  [1, { name: '001_initial', statements: initial }],
  [2, { name: '002_payments', statements: payments }],
  [3, { name: '003_nonce_claims', statements: nonceClaims }],
  [4, { name: '004_settled_transfer', statements: settledTransfer }],
  [5, { name: '005_audit_hash_version', statements: auditHashVersion }],
  [6, { name: '006_ledger_one_tree', statements: ledgerOneTree }],
  [7, { name: '007_audit_merkle_tree', statements: auditMerkleTree }],
  [8, { name: '008_ledger_entry_per_series', statements: ledgerEntryPerSeries }],
  [9, { name: '009_policy_source', statements: policySource }],
  [10, { name: '010_lightning_payments', statements: lightningPayments }],
  [15, { name: '015_circuit_breakers', statements: circuitBreakers }],
  [13, { name: '013_shadow_policies', statements: shadowPolicies }],
  [12, { name: '012_session_parent', statements: sessionParent }],
  [14, { name: '014_webhooks', statements: webhooks }],
  [11, { name: '011_approvers', statements: approvers }],
  [16, { name: '016_agent_keys', statements: agentKeys }],
  [17, { name: '017_lifecycle_jobs', statements: lifecycleJobs }],
  [18, { name: '018_grants', statements: grants }],
  [19, { name: '019_released_signatures', statements: releasedSignatures }],
  [20, { name: '020_threshold_bindings', statements: thresholdBindings }],
  [21, { name: '021_lifecycle_planned_jobs', statements: lifecyclePlannedJobs }],
  [22, { name: '022_webhook_claim_indexes', statements: webhookClaimIndexes }],
  [23, { name: '023_lightning_in_flight_by_agent', statements: lightningInFlightByAgent }],
  [24, { name: '024_lightning_alerts', statements: lightningAlerts }],
  [25, { name: '025_ledger_kept_totals', statements: ledgerKeptTotals }],
  [26, { name: '026_agent_operator_freeze', statements: agentOperatorFreeze }],
]);
