/**
 * The daemon's ThresholdSigner (core/ports/threshold-keys.ts): it acts as the cluster's coordinator, which holds
 * no share and is not trusted by the nodes. Called after the daemon's decision committed. It decodes the agent's
 * request again for the group key and checks it gives the digest the decision allowed before any node is asked,
 * then runs both FROST rounds (FrostCoordinator: threshold-many live nodes, each deciding under its own policy and
 * ledger; every share verified, a bad node named; the aggregate verified under BIP-340 against the pinned group
 * key) and returns the signature. Node refusals come back as `policy_denied` with each node's rules, too few
 * nodes as `frost_threshold_not_met`; neither quotes a URL or a token.
 */
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { AirlockError, type KeyBackend, type ProducedSignature, type ThresholdBinding, type ThresholdSigner, type ThresholdSigningRequest } from '@airlock/core';
import { eventId, parseUnsignedEvent } from '@airlock/chains';
import { parseCluster, type PublicPackageJson } from '@airlock/keys';
import { FrostCoordinator } from '../frost-node/coordinator.ts';
import { openNodeTokens } from './node-tokens.ts';

const SIGNABLE = new Set(['nostr.event', 'nostr.http_auth']);
/** Coordinators (with the opened tokens) kept per binding; a binding's sealed tokens change when it is bound again. */
const MAX_CACHED = 256;

export class ClusterThresholdSigner implements ThresholdSigner {
  private readonly keys: KeyBackend;
  private readonly timeoutMs: number;
  private readonly coordinators = new Map<string, FrostCoordinator>();

  constructor(keys: KeyBackend, options: { timeoutMs?: number } = {}) {
    this.keys = keys;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  async sign(request: ThresholdSigningRequest): Promise<ProducedSignature> {
    const { binding, action, payload, digest } = request;
    if (binding.namespace !== 'nostr' || !SIGNABLE.has(action)) throw new AirlockError('unsupported_action', 'A threshold cluster signs Nostr events (nostr.event, nostr.http_auth) only.');
    // What the nodes will be asked to sign is what the daemon decided on: the same event id, or nothing is asked.
    const event = parseUnsignedEvent(payload, binding.groupKey);
    if (eventId(event) !== bytesToHex(digest)) throw new AirlockError('signature_check_failed', 'The request no longer decodes to the event id its decision allowed; no node was asked.');
    const coordinator = await this.coordinatorFor(binding);
    const { event: signed } = await coordinator.signNostrEvent(event, action as 'nostr.event' | 'nostr.http_auth');
    if (signed.id !== bytesToHex(digest) || signed.pubkey !== binding.groupKey) throw new AirlockError('signature_check_failed', 'The cluster signed another event; nothing was released.');
    return { schnorr: hexToBytes(signed.sig) };
  }

  private async coordinatorFor(binding: ThresholdBinding): Promise<FrostCoordinator> {
    const cacheKey = `${binding.agentId}|${binding.namespace}|${binding.sealedTokens}`;
    const cached = this.coordinators.get(cacheKey);
    if (cached) return cached;
    const tokens = await openNodeTokens(this.keys, binding, binding.sealedTokens);
    const cluster = parseCluster(binding.cluster);
    const nodes = binding.nodes.map((n) => ({ name: n.name, url: n.url, token: tokens[n.name] ?? '' }));
    const coordinator = new FrostCoordinator(cluster, nodes, { timeoutMs: this.timeoutMs, publicPackage: binding.publicPackage as PublicPackageJson });
    if ((await coordinator.groupKey()) !== binding.groupKey) throw new AirlockError('signature_check_failed', "The binding's public package is not its group key's.");
    if (this.coordinators.size >= MAX_CACHED) this.coordinators.delete(this.coordinators.keys().next().value!);
    this.coordinators.set(cacheKey, coordinator);
    return coordinator;
  }
}
