/**
 * Distributed key generation among the signer nodes: the Pedersen DKG with proofs of knowledge of the FROST
 * paper (Komlo-Goldberg, figure 1; ZcashFoundation frost-core `keys::dkg`), run by noble's `DKG.round1..3`. No
 * party ever holds the whole key. What this file adds is the channel the protocol assumes but the coordinator
 * does not provide, since the coordinator relays every message and is not trusted:
 *
 * - every message is signed with the sender's identity key, and a node accepts only the identity keys its own
 *   cluster definition lists: the coordinator cannot forge or alter a node's message, or add a node of its own;
 * - each round-two share is encrypted to its recipient (ECDH between identity keys, HKDF-SHA256,
 *   XChaCha20-Poly1305, the envelope as associated data): the coordinator relays shares it cannot read;
 * - the protocol needs a broadcast channel (all nodes must see the same round-one packages). A relay can
 *   show nodes different packages; so each node ends with a signed confirmation of the transcript hash and
 *   the public package, and a node keeps its share only once every node of the cluster confirmed the same
 *   values (`confirmDkg`). A node that equivocated, or a coordinator that did, is caught there.
 */
import { AirlockError, canonicalJson } from '@airlock/core';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { schnorr, secp256k1, secp256k1_hasher } from '@noble/curves/secp256k1.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { CLUSTER_SUITE } from './ciphersuite.ts';
import { clusterHash, clusterNode, frostIdentifier, nodeByFrostIdentifier, type ClusterDefinition, type ClusterNode } from './cluster.ts';
import { publicPackageHash, publicToJson, secretToJson, type PublicPackageJson, type SecretShareJson } from './key-package.ts';

const frost = CLUSTER_SUITE.frost;
const SIGNING_DOMAIN = 'airlock-frost-dkg-v1\n';
const CEREMONY = /^[0-9a-f]{32}$/;

export interface Signed<T> {
  body: T;
  /** BIP-340 signature by the sender's identity key over SIGNING_DOMAIN || canonical JSON of body. */
  signature: string;
}

interface Common {
  ceremony: string;
  cluster: string;
  from: string;
}

export type Round1Message = Signed<Common & { type: 'frost.dkg.round1'; commitment: string[]; proofOfKnowledge: string }>;
export type Round2Message = Signed<Common & { type: 'frost.dkg.round2'; to: string; nonce: string; ciphertext: string }>;
export type ConfirmMessage = Signed<Common & { type: 'frost.dkg.confirm'; transcript: string; publicPackage: PublicPackageJson }>;

export interface DkgResult {
  secret: SecretShareJson;
  publicPackage: PublicPackageJson;
  /** SHA-256 over the cluster and every node's round-one package: what every node must confirm alike. */
  transcript: string;
}

function failed(message: string, node?: string, cause?: unknown): AirlockError {
  return new AirlockError('frost_dkg_failed', message, { ...(node ? { details: { node } } : {}), ...(cause ? { cause } : {}) });
}

function digest(body: unknown): Uint8Array {
  return sha256(utf8ToBytes(SIGNING_DOMAIN + canonicalJson(body)));
}

export function signMessage<T>(body: T, identitySecret: Uint8Array): Signed<T> {
  return { body, signature: bytesToHex(schnorr.sign(digest(body), identitySecret)) };
}

export function identityPublicKey(identitySecret: Uint8Array): string {
  return bytesToHex(schnorr.getPublicKey(identitySecret));
}

/** The message's sender as the cluster names it, after its signature verified under that node's identity key. */
function verifiedSender(cluster: ClusterDefinition, message: Signed<Common & { type: string }>, type: string, ceremony: string): ClusterNode {
  const body = message?.body;
  if (!body || typeof body !== 'object' || body.type !== type) throw failed(`expected a ${type} message`);
  const sender = cluster.nodes.find((n) => n.name === body.from);
  if (!sender) throw failed('a message comes from a node outside the cluster definition');
  let ok = false;
  try {
    ok = typeof message.signature === 'string' && schnorr.verify(hexToBytes(message.signature), digest(body), hexToBytes(sender.identityKey));
  } catch {
    ok = false;
  }
  if (!ok) throw failed(`the ${type} message of ${sender.name} does not carry its identity key's signature`, sender.name);
  if (body.ceremony !== ceremony || body.cluster !== clusterHash(cluster)) throw failed(`the ${type} message of ${sender.name} belongs to another ceremony or cluster`, sender.name);
  return sender;
}

/** ECDH x-coordinate (sign-independent, so x-only keys suffice) -> HKDF -> a key for this sender, recipient and ceremony. */
function shareKey(mySecret: Uint8Array, peerXOnly: string, ceremony: string, from: string, to: string): Uint8Array {
  const shared = secp256k1.getSharedSecret(mySecret, hexToBytes(`02${peerXOnly}`), true).slice(1);
  const key = hkdf(sha256, shared, hexToBytes(ceremony), utf8ToBytes(`airlock-frost-dkg-share-v1|${from}|${to}`), 32);
  shared.fill(0);
  return key;
}

/**
 * One node's side of one ceremony. Holds the round secrets in memory only: a node that restarts mid-ceremony
 * has lost them, and the ceremony starts again with a new id.
 */
export class DkgParticipant {
  readonly ceremony: string;
  private readonly me: ClusterNode;
  private round1Secret?: ReturnType<typeof frost.DKG.round1>['secret'];
  private round1Public?: Round1Message;
  private othersRound1?: ReturnType<typeof frost.DKG.round1>['public'][];
  private allRound1?: Round1Message[];
  private readonly cluster: ClusterDefinition;
  private readonly identitySecret: Uint8Array;

  constructor(cluster: ClusterDefinition, name: string, identitySecret: Uint8Array, ceremony: string) {
    this.cluster = cluster;
    this.identitySecret = identitySecret;
    if (!CEREMONY.test(ceremony)) throw new AirlockError('invalid_request', 'ceremony: 32 lowercase hex characters');
    this.me = clusterNode(cluster, name);
    if (identityPublicKey(identitySecret) !== this.me.identityKey) throw failed(`this node's identity key is not the one the cluster definition lists for ${name}`);
    this.ceremony = ceremony;
  }

  private common(): Common {
    return { ceremony: this.ceremony, cluster: clusterHash(this.cluster), from: this.me.name };
  }

  /** Round one: a random polynomial, its commitment and a proof of knowledge of its constant term. Idempotent. */
  round1(): Round1Message {
    if (!this.round1Public) {
      const { public: pub, secret } = frost.DKG.round1(frostIdentifier(this.me.identifier), { min: this.cluster.threshold, max: this.cluster.nodes.length });
      this.round1Secret = secret;
      this.round1Public = signMessage(
        { ...this.common(), type: 'frost.dkg.round1' as const, commitment: pub.commitment.map((c) => bytesToHex(c)), proofOfKnowledge: bytesToHex(pub.proofOfKnowledge) },
        this.identitySecret,
      );
    }
    return this.round1Public;
  }

  /** Round two: check every other node's signed round-one package (and its proof), then one encrypted share each. */
  round2(round1: Round1Message[]): Round2Message[] {
    if (!this.round1Secret || !this.round1Public) throw failed('round two before round one');
    if (this.othersRound1) throw failed('round two was already run in this ceremony');
    const seen = new Map<string, Round1Message>();
    for (const m of round1) {
      const sender = verifiedSender(this.cluster, m, 'frost.dkg.round1', this.ceremony);
      if (sender.name === this.me.name) {
        // Our own package, echoed back: it must be exactly ours.
        if (canonicalJson(m) !== canonicalJson(this.round1Public)) throw failed('the relay altered this node\'s own round-one package', sender.name);
        continue;
      }
      if (seen.has(sender.name)) throw failed(`two round-one packages from ${sender.name}`, sender.name);
      seen.set(sender.name, m);
    }
    const missing = this.cluster.nodes.filter((n) => n.name !== this.me.name && !seen.has(n.name)).map((n) => n.name);
    if (missing.length > 0) throw failed(`round two needs every node's round-one package; missing: ${missing.join(', ')}`);
    const others = [...seen.values()].map((m) => ({
      identifier: frostIdentifier(clusterNode(this.cluster, m.body.from).identifier),
      commitment: m.body.commitment.map((c) => hexToBytes(c)),
      proofOfKnowledge: hexToBytes(m.body.proofOfKnowledge),
    }));
    // Checked here first (noble checks them too) so that the refusal names the node whose proof fails.
    for (const o of others) {
      if (!proofOfKnowledgeHolds(o.identifier, o.commitment[0], o.proofOfKnowledge)) {
        throw failed('a round-one package fails its proof of knowledge', nodeByFrostIdentifier(this.cluster, o.identifier)?.name);
      }
    }
    let shares: ReturnType<typeof frost.DKG.round2>;
    try {
      shares = frost.DKG.round2(this.round1Secret, others);
    } catch (cause) {
      throw failed('the round-one packages were refused', undefined, cause);
    }
    this.othersRound1 = others;
    this.allRound1 = [this.round1Public, ...seen.values()];
    return this.cluster.nodes
      .filter((n) => n.name !== this.me.name)
      .map((peer) => {
        const share = shares[frostIdentifier(peer.identifier)];
        if (!share) throw failed(`no share was computed for ${peer.name}`);
        const nonce = randomBytes(24);
        const envelope = { ...this.common(), type: 'frost.dkg.round2' as const, to: peer.name, nonce: bytesToHex(nonce) };
        const key = shareKey(this.identitySecret, peer.identityKey, this.ceremony, this.me.name, peer.name);
        const ciphertext = xchacha20poly1305(key, nonce, utf8ToBytes(canonicalJson(envelope))).encrypt(share.signingShare);
        key.fill(0);
        return signMessage({ ...envelope, ciphertext: bytesToHex(ciphertext) }, this.identitySecret);
      });
  }

  /** Round three: decrypt and check each share against its sender's commitment; the node's share and the public package. */
  round3(round2: Round2Message[]): DkgResult {
    if (!this.round1Secret || !this.othersRound1 || !this.allRound1) throw failed('round three before round two');
    const received = new Map<string, Uint8Array>();
    for (const m of round2) {
      const sender = verifiedSender(this.cluster, m, 'frost.dkg.round2', this.ceremony);
      if (m.body.to !== this.me.name) continue; // addressed to another node: not ours to open
      if (received.has(sender.name)) throw failed(`two round-two shares from ${sender.name}`, sender.name);
      const { ciphertext, ...envelope } = m.body;
      const key = shareKey(this.identitySecret, sender.identityKey, this.ceremony, sender.name, this.me.name);
      try {
        received.set(sender.name, xchacha20poly1305(key, hexToBytes(envelope.nonce), utf8ToBytes(canonicalJson(envelope))).decrypt(hexToBytes(ciphertext)));
      } catch (cause) {
        throw failed(`the share from ${sender.name} does not decrypt`, sender.name, cause);
      } finally {
        key.fill(0);
      }
    }
    const missing = this.cluster.nodes.filter((n) => n.name !== this.me.name && !received.has(n.name)).map((n) => n.name);
    if (missing.length > 0) throw failed(`round three needs a share from every other node; missing: ${missing.join(', ')}`);
    const packages = [...received].map(([name, signingShare]) => ({ identifier: frostIdentifier(clusterNode(this.cluster, name).identifier), signingShare }));
    let key: ReturnType<typeof frost.DKG.round3>;
    try {
      key = frost.DKG.round3(this.round1Secret, this.othersRound1, packages);
    } catch (cause) {
      // A share that does not lie on its sender's committed polynomial: name the sender.
      const bad = packages.find((p) => !shareMatchesCommitment(this.me.identifier, this.othersRound1!.find((o) => o.identifier === p.identifier)!.commitment, p.signingShare));
      const name = bad ? nodeByFrostIdentifier(this.cluster, bad.identifier)?.name : undefined;
      throw failed('a round-two share does not match its sender\'s commitment', name, cause);
    } finally {
      for (const p of packages) p.signingShare.fill(0);
      frost.DKG.clean(this.round1Secret);
    }
    const publicPackage = publicToJson(key.public);
    const transcript = bytesToHex(sha256(utf8ToBytes(canonicalJson({ cluster: clusterHash(this.cluster), round1: [...this.allRound1].sort((a, b) => (a.body.from < b.body.from ? -1 : 1)) }))));
    return { secret: secretToJson(key.secret), publicPackage, transcript };
  }

  confirmation(result: DkgResult): ConfirmMessage {
    return signMessage({ ...this.common(), type: 'frost.dkg.confirm' as const, transcript: result.transcript, publicPackage: result.publicPackage }, this.identitySecret);
  }
}

/** G*share == sum_k commitment[k] * x^k: the share a sender gave node x lies on the polynomial it committed to. */
function shareMatchesCommitment(x: number, commitment: Uint8Array[], share: Uint8Array): boolean {
  const { Point } = secp256k1;
  let expected = Point.ZERO;
  let power = 1n;
  for (const c of commitment) {
    expected = expected.add(Point.fromBytes(c).multiply(power));
    power = Point.Fn.mul(power, BigInt(x));
  }
  try {
    return Point.BASE.multiply(Point.Fn.fromBytes(share)).equals(expected);
  } catch {
    return false;
  }
}

const HDKG_DST = utf8ToBytes(`${CLUSTER_SUITE.contextString}dkg`);

/**
 * FROST paper figure 1, round 1 step 5: R == mu*G - c*phi_0 with c = HDKG(id || phi_0 || R). In this suite the
 * proof is BIP-340 shaped (x-only R of even y, then mu), as frost-secp256k1-tr writes it.
 */
function proofOfKnowledgeHolds(identifier: string, phi0: Uint8Array | undefined, proof: Uint8Array): boolean {
  const { Point } = secp256k1;
  try {
    if (!phi0 || proof.length !== 64) return false;
    const R = Point.fromBytes(Uint8Array.from([0x02, ...proof.subarray(0, 32)]));
    const mu = Point.Fn.fromBytes(proof.subarray(32));
    const phi = Point.fromBytes(phi0);
    const c = secp256k1_hasher.hashToScalar(Uint8Array.from([...hexToBytes(identifier), ...phi.toBytes(true), ...R.toBytes(true)]), { DST: HDKG_DST });
    return R.equals(Point.BASE.multiply(mu).subtract(phi.multiply(c)));
  } catch {
    return false;
  }
}

/**
 * The last step: a node keeps its share only if every node of the cluster signed a confirmation of the same
 * transcript and public package as its own. Returns the agreed public package.
 */
export function confirmDkg(cluster: ClusterDefinition, ceremony: string, own: DkgResult, confirmations: ConfirmMessage[]): PublicPackageJson {
  const byNode = new Map<string, ConfirmMessage>();
  for (const m of confirmations) {
    const sender = verifiedSender(cluster, m, 'frost.dkg.confirm', ceremony);
    if (byNode.has(sender.name)) throw failed(`two confirmations from ${sender.name}`, sender.name);
    byNode.set(sender.name, m);
  }
  const mine = publicPackageHash(own.publicPackage);
  for (const node of cluster.nodes) {
    const m = byNode.get(node.name);
    if (!m) throw failed(`no confirmation from ${node.name}: every node must confirm before any keeps its share`, node.name);
    if (m.body.transcript !== own.transcript || publicPackageHash(m.body.publicPackage) !== mine) {
      throw failed(`${node.name} confirmed another transcript or public package: a node or the relay showed nodes different messages`, node.name);
    }
  }
  return own.publicPackage;
}
