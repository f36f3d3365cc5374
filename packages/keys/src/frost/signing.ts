/**
 * FROST signing (RFC 9591 section 5) in the BIP-340 suite, split by role:
 *
 * - `FrostSigner` is a signer node's side: round one hands out nonce commitments and keeps the nonces in
 *   memory, each under a random id; round two takes (and forgets) them first, so a nonce is never used twice
 *   whatever happens next. Nonces are never written anywhere: after a restart the node has none, and the
 *   coordinator runs round one again (a restored snapshot can therefore never replay one).
 * - `aggregateSignature` is the coordinator's side: it verifies every share against its node's verifying share
 *   (section 5.4) and names each node whose share fails, aggregates, then checks the result as BIP-340 does.
 */
import { AirlockError } from '@airlock/core';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { CLUSTER_SUITE } from './ciphersuite.ts';
import { nodeByFrostIdentifier, type ClusterDefinition } from './cluster.ts';
import { groupXOnlyKey, publicFromJson, secretFromJson, type FrostPublic, type FrostSecret, type PublicPackageJson, type SecretShareJson } from './key-package.ts';

const frost = CLUSTER_SUITE.frost;

export interface CommitmentJson {
  /** FROST identifier (hex scalar) of the node that made it. */
  identifier: string;
  hiding: string;
  binding: string;
}

export interface SignerOptions {
  /** How long an unused commitment stays valid. */
  ttlMs?: number;
  /** Outstanding commitments at most; beyond it the oldest are dropped (a flood of round ones costs memory only up to here). */
  maxOutstanding?: number;
  now?: () => number;
}

const HEX_SCALAR = /^[0-9a-f]{64}$/;
const HEX_POINT = /^0[23][0-9a-f]{64}$/;
const COMMITMENT_ID = /^[0-9a-f]{32}$/;

function invalid(message: string): AirlockError {
  return new AirlockError('invalid_request', message);
}

/**
 * A commitment list as round two receives it from the (untrusted) coordinator: well-formed, only nodes of the
 * cluster, each once, at least the threshold and at most every node.
 */
export function parseCommitmentList(cluster: ClusterDefinition, value: unknown): CommitmentJson[] {
  if (!Array.isArray(value)) throw invalid('commitments: a list of {identifier, hiding, binding}');
  if (value.length < cluster.threshold || value.length > cluster.nodes.length) throw invalid(`commitments: between ${cluster.threshold} (the threshold) and ${cluster.nodes.length} entries`);
  const seen = new Set<string>();
  return value.map((c, i) => {
    const { identifier, hiding, binding } = (c ?? {}) as Record<string, unknown>;
    if (typeof identifier !== 'string' || !HEX_SCALAR.test(identifier) || !nodeByFrostIdentifier(cluster, identifier)) throw invalid(`commitments[${i}].identifier: not a node of this cluster`);
    if (seen.has(identifier)) throw invalid(`commitments[${i}]: a node appears twice`);
    seen.add(identifier);
    if (typeof hiding !== 'string' || !HEX_POINT.test(hiding) || typeof binding !== 'string' || !HEX_POINT.test(binding)) throw invalid(`commitments[${i}]: hiding and binding are compressed points (66 hex characters)`);
    if (!isCurvePoint(hiding) || !isCurvePoint(binding)) throw invalid(`commitments[${i}]: hiding and binding must be points on secp256k1`);
    return { identifier, hiding, binding };
  });
}

/**
 * A compressed secp256k1 point that decodes (on the curve, not the identity): checked before anything is decided,
 * so a commitment that would make signing fail is refused as bad input, never after a decision was recorded.
 */
export function isCurvePoint(hex: string): boolean {
  if (!HEX_POINT.test(hex)) return false;
  try {
    secp256k1.Point.fromHex(hex).assertValidity();
    return true;
  } catch {
    return false;
  }
}

const toLibrary = (list: CommitmentJson[]) => list.map((c) => ({ identifier: c.identifier, hiding: hexToBytes(c.hiding), binding: hexToBytes(c.binding) }));

export class FrostSigner {
  private readonly secret: FrostSecret;
  private readonly pub: FrostPublic;
  private readonly outstanding = new Map<string, { nonces: { hiding: Uint8Array; binding: Uint8Array }; commitment: CommitmentJson; expiresAt: number }>();
  private readonly ttlMs: number;
  private readonly maxOutstanding: number;
  private readonly now: () => number;

  readonly publicPackage: PublicPackageJson;

  constructor(secret: SecretShareJson, publicPackage: PublicPackageJson, options: SignerOptions = {}) {
    this.publicPackage = publicPackage;
    this.secret = secretFromJson(secret);
    this.pub = publicFromJson(publicPackage);
    frost.validateSecret(this.secret, this.pub);
    this.ttlMs = options.ttlMs ?? 5 * 60_000;
    this.maxOutstanding = options.maxOutstanding ?? 1_000;
    this.now = options.now ?? Date.now;
  }

  get identifier(): string {
    return this.secret.identifier;
  }

  get groupKey(): string {
    return groupXOnlyKey(this.publicPackage);
  }

  /** Round one (RFC 9591 section 5.1): fresh hiding and binding nonces, H3(random || share). */
  commit(): { commitmentId: string; commitment: CommitmentJson } {
    this.dropExpired();
    while (this.outstanding.size >= this.maxOutstanding) {
      const oldest = this.outstanding.keys().next().value as string;
      this.forget(oldest);
    }
    const { nonces, commitments } = frost.commit(this.secret);
    const commitment = { identifier: commitments.identifier, hiding: bytesToHex(commitments.hiding), binding: bytesToHex(commitments.binding) };
    const commitmentId = bytesToHex(randomBytes(16));
    this.outstanding.set(commitmentId, { nonces, commitment, expiresAt: this.now() + this.ttlMs });
    return { commitmentId, commitment };
  }

  /**
   * Removes the commitment's nonces and returns them; any later use of the id is `frost_commitment_unknown`.
   * Call it before anything that can refuse, so that a refused round two also spends the nonces.
   */
  take(commitmentId: unknown): { hiding: Uint8Array; binding: Uint8Array; commitment: CommitmentJson } {
    this.dropExpired();
    const entry = typeof commitmentId === 'string' && COMMITMENT_ID.test(commitmentId) ? this.outstanding.get(commitmentId) : undefined;
    if (!entry) {
      throw new AirlockError('frost_commitment_unknown', 'this node issued no such commitment, or it was used, expired or lost in a restart', { hints: ['run round one again: every round two needs fresh commitments'] });
    }
    this.outstanding.delete(commitmentId as string);
    return { ...entry.nonces, commitment: entry.commitment };
  }

  /** The commitment list must carry this node's own commitment for these nonces (check it before deciding anything). */
  checkCommitmentList(nonces: { commitment: CommitmentJson }, list: CommitmentJson[]): void {
    const mine = list.find((c) => c.identifier === this.secret.identifier);
    if (!mine || mine.hiding !== nonces.commitment.hiding || mine.binding !== nonces.commitment.binding) {
      throw invalid("commitments: this node's entry is not the commitment it issued for commitmentId");
    }
  }

  /** Round two (section 5.2). */
  sign(nonces: { hiding: Uint8Array; binding: Uint8Array; commitment: CommitmentJson }, list: CommitmentJson[], message: Uint8Array): string {
    this.checkCommitmentList(nonces, list);
    const share = frost.signShare(this.secret, this.pub, nonces, toLibrary(list), message);
    // Our own output is checked like anyone's (noble's schnorrSign habit): a fault never leaves as a share.
    if (!frost.verifyShare(this.pub, toLibrary(list), message, this.secret.identifier, share)) throw new AirlockError('internal', 'the signature share did not verify');
    return bytesToHex(share);
  }

  private forget(id: string): void {
    const entry = this.outstanding.get(id);
    if (entry) {
      entry.nonces.hiding.fill(0);
      entry.nonces.binding.fill(0);
    }
    this.outstanding.delete(id);
  }

  private dropExpired(): void {
    const now = this.now();
    for (const [id, entry] of this.outstanding) if (entry.expiresAt <= now) this.forget(id);
  }

  /** Zeroes the share and every outstanding nonce (node shutdown). */
  wipe(): void {
    for (const id of [...this.outstanding.keys()]) this.forget(id);
    this.secret.signingShare.fill(0);
  }
}

export interface NodeShare {
  node: string;
  identifier: string;
  share: string;
}

/** The shares that do not verify against their node's verifying share (RFC 9591 §5.4): what a coordinator leaves out. */
export function invalidShares(publicPackage: PublicPackageJson, list: CommitmentJson[], message: Uint8Array, shares: NodeShare[]): NodeShare[] {
  const pub = publicFromJson(publicPackage);
  const commitments = toLibrary(list);
  return shares.filter((s) => {
    try {
      return !HEX_SCALAR.test(s.share) || !frost.verifyShare(pub, commitments, message, s.identifier, hexToBytes(s.share));
    } catch {
      return true;
    }
  });
}

/**
 * The coordinator's last step: every share verified against its node's verifying share (the bad ones named),
 * aggregated, and the signature checked under BIP-340 against the x-only group key before it is returned.
 */
export function aggregateSignature(publicPackage: PublicPackageJson, list: CommitmentJson[], message: Uint8Array, shares: NodeShare[]): string {
  const pub = publicFromJson(publicPackage);
  const commitments = toLibrary(list);
  const bad = invalidShares(publicPackage, list, message, shares);
  if (bad.length > 0) {
    throw new AirlockError('frost_share_invalid', `signature share from ${bad.map((b) => b.node).join(', ')} does not verify against the node's verifying share`, {
      details: { nodes: bad.map((b) => b.node) },
      hints: ['that node holds a wrong share or is compromised: take it out of the cluster and sign with the others'],
    });
  }
  const signature = frost.aggregate(pub, commitments, message, Object.fromEntries(shares.map((s) => [s.identifier, hexToBytes(s.share)])));
  if (!schnorr.verify(signature, message, hexToBytes(groupXOnlyKey(publicPackage)))) throw new AirlockError('internal', 'the aggregated signature does not verify under BIP-340');
  return bytesToHex(signature);
}
