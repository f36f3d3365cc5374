/**
 * The threshold cluster's coordinator. It holds no share and is not trusted: it relays key-generation messages
 * it cannot read or forge (dkg.ts), and for each signature it picks threshold-many live nodes, runs both FROST
 * rounds, verifies every share against its node's verifying share (naming a node whose share fails),
 * aggregates, and checks the result under BIP-340 before returning it. A node that refuses is left out and
 * another is tried; when no threshold-sized set of willing nodes remains, the refusals come back as one
 * `policy_denied` with every refusing node's violations (rule names prefixed with the node's name).
 */
import { randomBytes } from 'node:crypto';
import { AirlockError, ERROR_CODES, type ErrorCode, type Violation } from '@airlock/core';
import { completeGroupKeyPsbt, decodeGroupKeyPsbt, eventId, parseUnsignedEvent, readTaprootKeyPathRequest, TAPROOT_KEY_PATH_ACTION, type UnsignedEvent } from '@airlock/chains';
import {
  aggregateSignature,
  invalidShares,
  frostIdentifier,
  groupXOnlyKey,
  isCurvePoint,
  publicPackageHash,
  type ClusterDefinition,
  type CommitmentJson,
  type ConfirmMessage,
  type PublicPackageJson,
  type Round1Message,
  type Round2Message,
} from '@airlock/keys';
import { hexToBytes } from '@noble/hashes/utils.js';
import { readCappedBytes } from '../read-capped.ts';

/** A node's answer larger than this is not read (a round-two answer is a few KB; key generation messages stay well under). */
const MAX_RESPONSE_BYTES = 1024 * 1024;

export interface CoordinatorNode {
  name: string;
  /** The node's base URL (http://127.0.0.1:PORT). */
  url: string;
  /** The node's bearer token. */
  token: string;
}

export interface SignedNostrEvent extends UnsignedEvent {
  id: string;
  sig: string;
}

/** What one node answered, for refusals and reports. */
export interface NodeAnswer {
  node: string;
  outcome: 'share' | 'refused' | 'error' | 'unreachable';
  code?: string;
  message?: string;
}

class NodeError extends Error {
  readonly code: string;
  readonly body: { code: string; message: string; violations?: Violation[] } | undefined;
  readonly unreachable: boolean;
  constructor(code: string, message: string, body?: { code: string; message: string; violations?: Violation[] }, unreachable = false) {
    super(message);
    this.code = code;
    this.body = body;
    this.unreachable = unreachable;
  }
}

export class FrostCoordinator {
  private readonly cluster: ClusterDefinition;
  private readonly nodes: CoordinatorNode[];
  private readonly timeoutMs: number;
  private publicPackage?: PublicPackageJson;

  /**
   * `publicPackage`: the group's public package as pinned when the cluster was bound (the daemon): used as is,
   * never read from the nodes again, so a node cannot swap the verifying shares its share is checked against.
   */
  constructor(cluster: ClusterDefinition, nodes: CoordinatorNode[], options: { timeoutMs?: number; publicPackage?: PublicPackageJson } = {}) {
    for (const n of nodes) if (!cluster.nodes.some((c) => c.name === n.name)) throw new AirlockError('invalid_request', `node ${n.name} is not in the cluster definition`);
    for (const c of cluster.nodes) if (!nodes.some((n) => n.name === c.name)) throw new AirlockError('invalid_request', `no URL and token for cluster node ${c.name}`);
    this.cluster = cluster;
    this.nodes = cluster.nodes.map((c) => nodes.find((n) => n.name === c.name)!);
    this.timeoutMs = options.timeoutMs ?? 10_000;
    if (options.publicPackage) this.publicPackage = options.publicPackage;
  }

  private async call<T>(node: CoordinatorNode, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(new URL(path, node.url), {
        method,
        headers: { authorization: `Bearer ${node.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch {
      throw new NodeError('unreachable', `${node.name} did not answer`, undefined, true);
    }
    const json = (await readCappedJson(res, MAX_RESPONSE_BYTES)) as (T & { error?: { code: string; message: string; violations?: Violation[] } }) | undefined;
    if (!res.ok || json === undefined) {
      const error = json?.error;
      throw new NodeError(error?.code ?? 'internal', `${node.name}: ${error?.message ?? `HTTP ${res.status}`}`, error);
    }
    return json;
  }

  /** Key generation across every node of the cluster (all must take part); returns the agreed public package. */
  async generateKey(): Promise<{ groupKey: string; publicPackage: PublicPackageJson; ceremony: string }> {
    const ceremony = randomBytes(16).toString('hex');
    const all = <T>(f: (n: CoordinatorNode) => Promise<T>) => Promise.all(this.nodes.map(f));
    try {
      const round1 = await all((n) => this.call<{ round1: Round1Message }>(n, 'POST', '/v1/frost/dkg/round1', { ceremony }).then((r) => r.round1));
      const round2 = (await all((n) => this.call<{ round2: Round2Message[] }>(n, 'POST', '/v1/frost/dkg/round2', { ceremony, round1 }).then((r) => r.round2))).flat();
      const confirmations = await all((n) =>
        this.call<{ confirmation: ConfirmMessage }>(n, 'POST', '/v1/frost/dkg/round3', { ceremony, round2: round2.filter((m) => m.body.to === n.name) }).then((r) => r.confirmation),
      );
      const results = await all((n) => this.call<{ groupKey: string; publicPackage: PublicPackageJson }>(n, 'POST', '/v1/frost/dkg/confirm', { ceremony, confirmations }));
      const hashes = new Set(results.map((r) => publicPackageHash(r.publicPackage)));
      if (hashes.size !== 1) throw new AirlockError('frost_dkg_failed', 'the nodes finished with different public packages');
      this.publicPackage = results[0]!.publicPackage;
      return { groupKey: results[0]!.groupKey, publicPackage: results[0]!.publicPackage, ceremony };
    } catch (e) {
      throw asAirlockError(e);
    }
  }

  /** The group's public package, as the live nodes report it (they must all report the same one). */
  async groupPublicPackage(): Promise<PublicPackageJson> {
    if (this.publicPackage) return this.publicPackage;
    const answers = await Promise.allSettled(this.nodes.map((n) => this.call<{ publicPackage?: PublicPackageJson }>(n, 'GET', '/v1/frost/node')));
    const packages = answers.flatMap((a) => (a.status === 'fulfilled' && a.value.publicPackage ? [a.value.publicPackage] : []));
    if (packages.length === 0) throw new AirlockError('frost_key_not_ready', 'no live node reports a key share: run key generation first');
    if (new Set(packages.map(publicPackageHash)).size !== 1) throw new AirlockError('frost_dkg_failed', 'the nodes report different public packages');
    this.publicPackage = packages[0]!;
    return this.publicPackage;
  }

  /**
   * The public package as EVERY node reports it, for binding the cluster to an agent: all must answer with a key
   * share, report one and the same package, and that package must be this cluster's (its threshold, its nodes'
   * identifiers). Anything less is refused: a binding pins the package for good.
   */
  async publicPackageOfEveryNode(): Promise<PublicPackageJson> {
    const answers = await Promise.allSettled(this.nodes.map((n) => this.call<{ publicPackage?: PublicPackageJson }>(n, 'GET', '/v1/frost/node')));
    const missing = answers.flatMap((a, i) => (a.status === 'fulfilled' && a.value.publicPackage ? [] : [answerOf(this.nodes[i]!.name, a.status === 'rejected' ? a.reason : new NodeError('frost_key_not_ready', 'no key share'))]));
    if (missing.length > 0) {
      throw new AirlockError('frost_threshold_not_met', `every node must answer with its key share to bind the cluster; ${missing.map((m) => m.node).join(', ')} did not`, { details: { nodes: missing } });
    }
    const packages = answers.map((a) => (a as PromiseFulfilledResult<{ publicPackage: PublicPackageJson }>).value.publicPackage);
    if (new Set(packages.map(publicPackageHash)).size !== 1) throw new AirlockError('frost_dkg_failed', 'the nodes report different public packages');
    const pub = packages[0]!;
    const ids = Object.keys(pub.verifyingShares ?? {}).sort();
    const expected = this.cluster.nodes.map((n) => frostIdentifier(n.identifier)).sort();
    if (pub.signers?.min !== this.cluster.threshold || pub.signers?.max !== this.cluster.nodes.length || ids.join() !== expected.join()) {
      throw new AirlockError('frost_dkg_failed', "the nodes' public package is not this cluster's (threshold or node identifiers differ)");
    }
    return pub;
  }

  async groupKey(): Promise<string> {
    return groupXOnlyKey(await this.groupPublicPackage());
  }

  /**
   * Signs a Nostr event (kind, tags, content, created_at; pubkey optional, must be the group key) with
   * threshold-many nodes. Returns the signed event and which nodes contributed.
   */
  async signNostrEvent(unsigned: unknown, action: 'nostr.event' | 'nostr.http_auth' = 'nostr.event'): Promise<{ event: SignedNostrEvent; signers: string[]; answers: NodeAnswer[] }> {
    const publicPackage = await this.groupPublicPackage();
    const pubkey = groupXOnlyKey(publicPackage);
    const event = parseUnsignedEvent(unsigned, pubkey);
    const id = eventId(event);
    const request = { action, event: { kind: event.kind, tags: event.tags, content: event.content, created_at: event.created_at, pubkey } };
    const { signatures, signers, answers } = await this.signMessages(publicPackage, [hexToBytes(id)], (sessions) => ({
      body: { commitmentId: sessions[0]!.commitmentId, commitments: sessions[0]!.commitments, request },
      shares: (answer: { share?: string; eventId?: string }) => (answer.eventId === id && typeof answer.share === 'string' ? [answer.share] : undefined),
    }));
    return { event: { ...event, id, sig: signatures[0]! }, signers, answers };
  }

  /**
   * Signs the Taproot key-path inputs of a PSBT that spend outputs locked to the group key (`OP_1 <group key>`):
   * each node decodes the PSBT and decides itself; one FROST session per input. Every aggregated signature is
   * checked against the output key in the spent script over the sighash computed here, then set as the input's
   * PSBT_IN_TAP_KEY_SIG; with `finalize` the inputs are finalized and the transaction extracted.
   */
  async signTaprootPsbt(psbt: string, network: string, options: { finalize?: boolean } = {}): Promise<{ psbt: string; signedInputs: number[]; transaction?: string; txid?: string; signers: string[]; answers: NodeAnswer[] }> {
    const publicPackage = await this.groupPublicPackage();
    const request = readTaprootKeyPathRequest({ action: TAPROOT_KEY_PATH_ACTION, psbt, network, ...(options.finalize ? { finalize: true } : {}) });
    const decoded = decodeGroupKeyPsbt(request, groupXOnlyKey(publicPackage));
    const { signatures, signers, answers } = await this.signMessages(
      publicPackage,
      decoded.inputs.map((i) => i.sighash),
      (sessions) => ({
        body: { sessions: sessions.map((s, k) => ({ input: decoded.inputs[k]!.input, ...s })), request },
        shares: (answer: { shares?: { input: number; share: string }[]; messageId?: string }) =>
          answer.messageId === decoded.messageId && Array.isArray(answer.shares) && answer.shares.length === decoded.inputs.length && answer.shares.every((s, k) => s?.input === decoded.inputs[k]!.input)
            ? answer.shares.map((s) => s.share)
            : undefined,
      }),
    );
    return { ...completeGroupKeyPsbt(decoded, signatures.map((sig) => hexToBytes(sig))), signers, answers };
  }

  /**
   * Both FROST rounds for `messages` (one session each, each with its own nonces) with threshold-many nodes.
   * A node that refuses, fails or answers for another message is left out and another set is tried; when no
   * threshold-sized set of willing nodes remains, the refusals come back as one policy_denied.
   */
  private async signMessages<A>(
    publicPackage: PublicPackageJson,
    messages: Uint8Array[],
    roundTwo: (sessions: { commitmentId: string; commitments: CommitmentJson[] }[]) => { body: unknown; shares: (answer: A) => string[] | undefined },
  ): Promise<{ signatures: string[]; signers: string[]; answers: NodeAnswer[] }> {
    const excluded = new Map<string, NodeAnswer>();
    const refusals: Violation[] = [];
    for (;;) {
      // Round one on every node not yet excluded, one commitment per message; the first threshold-many that answer sign.
      const candidates = this.nodes.filter((n) => !excluded.has(n.name));
      const commits = await Promise.allSettled(
        candidates.map(async (n) => {
          const out: { commitmentId: string; commitment: CommitmentJson }[] = [];
          for (const _ of messages) out.push(await this.call<{ commitmentId: string; commitment: CommitmentJson }>(n, 'POST', '/v1/frost/commit'));
          return out;
        }),
      );
      const live: { node: CoordinatorNode; commits: { commitmentId: string; commitment: CommitmentJson }[] }[] = [];
      commits.forEach((r, i) => {
        const node = candidates[i]!;
        if (r.status !== 'fulfilled') {
          excluded.set(node.name, answerOf(node.name, r.reason));
          return;
        }
        // Every round-one commitment is checked before it is forwarded: made under the node's own identifier,
        // both points on the curve. A node that sends a bad one is left out here, so it cannot make the honest
        // nodes refuse round two (and get excluded in its place).
        const bad = this.badCommitment(node, r.value);
        if (bad) excluded.set(node.name, { node: node.name, outcome: 'error', code: 'invalid_request', message: `${node.name}: ${bad}` });
        else live.push({ node, commits: r.value });
      });
      if (live.length < this.cluster.threshold) throw this.notEnough(excluded, refusals);
      const chosen = live.slice(0, this.cluster.threshold);
      const lists = messages.map((_, k) => chosen.map((c) => c.commits[k]!.commitment));
      const round2 = await Promise.allSettled(
        chosen.map((c) => {
          const { body, shares } = roundTwo(c.commits.map((commit, k) => ({ commitmentId: commit.commitmentId, commitments: lists[k]! })));
          return this.call<A>(c.node, 'POST', '/v1/frost/sign', body).then((answer) => shares(answer));
        }),
      );
      const shares: { node: string; identifier: string; shares: string[] }[] = [];
      round2.forEach((r, i) => {
        const node = chosen[i]!.node;
        if (r.status === 'fulfilled' && r.value !== undefined && r.value.length === messages.length) {
          shares.push({ node: node.name, identifier: chosen[i]!.commits[0]!.commitment.identifier, shares: r.value });
          return;
        }
        const answer = r.status === 'fulfilled' ? { node: node.name, outcome: 'error' as const, code: 'internal', message: 'the node signed another message' } : answerOf(node.name, r.reason);
        excluded.set(node.name, answer);
        if (r.status === 'rejected' && r.reason instanceof NodeError && r.reason.code === 'policy_denied') {
          for (const v of r.reason.body?.violations ?? []) refusals.push({ ...v, rule: `${node.name}:${v.rule}` });
        }
      });
      if (shares.length < chosen.length) continue; // a node refused or failed: try another set
      // Each node's shares are checked on their own (RFC 9591 §5.4) before they are combined: a node whose share
      // does not verify is named and left out, and another set is tried, as with a bad round-one commitment. Found
      // by review: one bad node below the threshold, first in cluster order, was chosen every time and made every
      // signature fail while the honest nodes it was paired with were charged. aggregateSignature checks again.
      const badNodes = new Set<string>();
      messages.forEach((message, k) => {
        for (const b of invalidShares(publicPackage, lists[k]!, message, shares.map((s) => ({ node: s.node, identifier: s.identifier, share: s.shares[k]! })))) badNodes.add(b.node);
      });
      if (badNodes.size > 0) {
        for (const node of badNodes) excluded.set(node, { node, outcome: 'error', code: 'frost_share_invalid', message: `signature share from ${node} does not verify against the node's verifying share` });
        continue;
      }
      const signatures = messages.map((message, k) =>
        aggregateSignature(publicPackage, lists[k]!, message, shares.map((s) => ({ node: s.node, identifier: s.identifier, share: s.shares[k]! }))),
      );
      const answers = [...excluded.values(), ...shares.map((s) => ({ node: s.node, outcome: 'share' as const }))];
      return { signatures, signers: shares.map((s) => s.node), answers };
    }
  }

  /** What is wrong with a node's round-one answer, or undefined when every commitment is well-formed and its own. */
  private badCommitment(node: CoordinatorNode, commits: { commitmentId: string; commitment: CommitmentJson }[]): string | undefined {
    const own = frostIdentifier(this.cluster.nodes.find((c) => c.name === node.name)!.identifier);
    for (const c of commits) {
      const commitment = c?.commitment as Partial<CommitmentJson> | undefined;
      if (typeof c?.commitmentId !== 'string' || !commitment) return 'round one answered without a commitment';
      if (commitment.identifier !== own) return 'round-one commitment made under another node\'s identifier';
      if (typeof commitment.hiding !== 'string' || typeof commitment.binding !== 'string' || !isCurvePoint(commitment.hiding) || !isCurvePoint(commitment.binding)) {
        return 'round-one commitment with a hiding or binding value that is not a secp256k1 point';
      }
    }
    return undefined;
  }

  private notEnough(excluded: Map<string, NodeAnswer>, refusals: Violation[]): AirlockError {
    const nodes = [...excluded.values()];
    if (refusals.length > 0) {
      return new AirlockError('policy_denied', `signer node policy refused: fewer than ${this.cluster.threshold} nodes are willing to sign this request`, { violations: refusals, details: { nodes } });
    }
    const bad = nodes.filter((n) => n.code === 'frost_share_invalid').map((n) => n.node);
    if (bad.length > 0) {
      return new AirlockError('frost_share_invalid', `signature share from ${bad.join(', ')} does not verify against the node's verifying share, and fewer than ${this.cluster.threshold} other nodes could sign`, {
        details: { nodes: bad, answers: nodes },
        hints: ['that node holds a wrong share or is compromised: take it out of the cluster and sign with the others'],
      });
    }
    return new AirlockError('frost_threshold_not_met', `fewer than ${this.cluster.threshold} signer nodes answered`, { details: { nodes } });
  }
}

function answerOf(node: string, reason: unknown): NodeAnswer {
  if (reason instanceof NodeError) {
    if (reason.unreachable) return { node, outcome: 'unreachable' };
    return { node, outcome: reason.code === 'policy_denied' ? 'refused' : 'error', code: reason.code, message: reason.message };
  }
  return { node, outcome: 'error', code: 'internal' };
}

function asAirlockError(e: unknown): AirlockError {
  if (e instanceof AirlockError) return e;
  if (e instanceof NodeError) {
    const code = (e.code in ERROR_CODES ? e.code : 'internal') as ErrorCode;
    return new AirlockError(e.unreachable ? 'frost_threshold_not_met' : code, e.message, { ...(e.body?.violations ? { violations: e.body.violations } : {}) });
  }
  return new AirlockError('internal', 'Internal error.', { cause: e });
}

/** The JSON body of a node's answer, or undefined when it is not JSON or passes `max` bytes (read no further). */
async function readCappedJson(res: Response, max: number): Promise<unknown> {
  try {
    const bytes = await readCappedBytes(res.body, max, res.headers.get('content-length'));
    return bytes && JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}
