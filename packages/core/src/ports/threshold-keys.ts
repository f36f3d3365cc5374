import type { ProducedSignature } from './key-backend.ts';

/**
 * Threshold keys (docs/custody.md, "Threshold cluster (FROST)"): an agent's key for one protocol held by a cluster
 * of signer nodes (FROST, BIP-340) instead of the vault. The binding says which cluster; from then on the agent's
 * key for that protocol IS the cluster's group key (its pubkey, what requests are decoded for, what signatures
 * verify under). Signing stays the one path: the daemon decodes, evaluates, reserves and records first, then the
 * `ThresholdSigner` runs the cluster's two rounds after commit, where the key backend would sign.
 */

/** Protocols whose signatures a FROST (BIP-340) cluster can make: one key, one digest per request. */
export const THRESHOLD_NAMESPACES: ReadonlySet<string> = new Set(['nostr']);

export interface ThresholdBinding {
  agentId: string;
  /** The CAIP-2 namespace whose key the cluster holds (`THRESHOLD_NAMESPACES`). */
  namespace: string;
  /** x-only group public key, lowercase hex: the agent's key for `namespace` while bound. */
  groupKey: string;
  /** The cluster definition (threshold, nodes) as the coordinator reads it; opaque to the core. */
  cluster: unknown;
  /** The group's public package (verifying shares) pinned when bound; opaque to the core. */
  publicPackage: unknown;
  /** Where each node answers, in cluster order. URLs carry no credentials. */
  nodes: { name: string; url: string }[];
  /** The nodes' bearer tokens, sealed by the server under a key derived from the vault; opaque to the core. */
  sealedTokens: string;
  createdAt: number; // ms
}

export interface ThresholdBindingStore {
  getThresholdBinding(agentId: string, namespace: string): Promise<ThresholdBinding | undefined>;
}

export interface ThresholdBindingStoreTx {
  getThresholdBinding(agentId: string, namespace: string): Promise<ThresholdBinding | undefined>;
  /** Inserts or replaces the agent's binding for its namespace. */
  putThresholdBinding(binding: ThresholdBinding): Promise<void>;
  /** Removes it; returns what was bound, undefined if nothing was. */
  deleteThresholdBinding(agentId: string, namespace: string): Promise<ThresholdBinding | undefined>;
}

/** One signature of a committed decision, asked of the cluster. */
export interface ThresholdSigningRequest {
  binding: ThresholdBinding;
  action: string;
  /** The request exactly as the agent sent it: the signer decodes it again and checks it gives `digest`. */
  payload: unknown;
  /** What the daemon's decode gave and its decision allowed (a Nostr event id). */
  digest: Uint8Array;
  /** The audit entry that allowed it. */
  auditSeq: number;
}

/**
 * The coordinator of a threshold cluster (server/): both FROST rounds with threshold-many live nodes, each node
 * deciding under its own policy; every share verified, the aggregate verified under the group key. A node
 * refusal is `policy_denied` (violations prefixed with the node's name), too few nodes `frost_threshold_not_met`.
 * Signatures are not deterministic (fresh nonces): the signing service keeps what it released for replays.
 */
export interface ThresholdSigner {
  sign(request: ThresholdSigningRequest): Promise<ProducedSignature>;
}
