import type { AuditAnchorStore } from '../ports/audit-anchor.ts';
import type { ParallelVerifyOptions } from '../audit/parallel-verify.ts';
import type { ChainAdapter } from '../ports/chain-adapter.ts';
import type { Clock } from '../ports/clock.ts';
import type { KeyBackend } from '../ports/key-backend.ts';
import type { Store } from '../ports/store.ts';
import type { ThresholdSigner } from '../ports/threshold-keys.ts';
import type { AuditIntegrityState } from './audit-integrity.ts';

/** Everything the services need, wired once by the composition root (server/). */
export interface ServiceDeps {
  store: Store;
  keys: KeyBackend;
  /** Chain adapters by CAIP-2 namespace (`eip155`). */
  adapters: ReadonlyMap<string, ChainAdapter>;
  clock: Clock;
  /** `prefix_` + 16 random hex chars from a CSPRNG. */
  randomId: (prefix: string) => string;
  /** 32 random bytes, base64url (43 chars), from a CSPRNG. */
  randomSecret: () => string;
  /** BIP-32 path of the audit checkpoint key. */
  auditKeyPath: string;
  /** How long a pending approval lives (default 24 h). */
  approvalTtlMs: number;
  /** Verifies a BIP-340 signature (x-only pubkey hex, 32-byte digest, sig hex). */
  verifySchnorr: (publicKeyHex: string, digest: Uint8Array, signatureHex: string) => boolean;
  /**
   * Ed25519 (RFC 8032, strict encodings) for approver votes: `verify` never throws; `isPublicKey` checks a
   * 32-byte hex key is a curve point.
   */
  ed25519: { verify: (publicKeyHex: string, message: Uint8Array, signatureHex: string) => boolean; isPublicKey: (hex: string) => boolean };
  /** The last signed checkpoint outside the database (beside the vault). */
  auditAnchor: AuditAnchorStore;
  /** Set by the audit service when the chain does not extend its anchor; every signing path checks it first. */
  auditIntegrity: AuditIntegrityState;
  /** The threshold cluster's coordinator, for agents whose key is bound to one (ports/threshold-keys.ts). Absent: such an agent's signatures are refused. */
  threshold?: ThresholdSigner;
  /** How `audit verify` reaches the store from worker threads (absent: one thread). */
  auditVerify?: ParallelVerifyOptions;
}
