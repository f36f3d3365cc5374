/**
 * Binding an agent's Nostr key to a threshold cluster (docs/custody.md, "Threshold cluster (FROST)"): the operator
 * gives the cluster definition and, per node, its URL and bearer token. Before anything is stored, every node must
 * answer with one and the same public package, this cluster's; that package is pinned in the binding (a node
 * cannot later swap the verifying shares its shares are checked against), and an expected group key, when given,
 * must be the one the nodes hold. The tokens are sealed (node-tokens.ts); URLs are kept as their origin.
 */
import { AirlockError, type KeyBackend, type NewThresholdBinding } from '@airlock/core';
import { groupXOnlyKey, parseCluster } from '@airlock/keys';
import { FrostCoordinator, type CoordinatorNode } from '../frost-node/coordinator.ts';
import { sealNodeTokens } from './node-tokens.ts';

export interface ClusterBindingRequest {
  cluster: unknown;
  nodes: { name: string; url: string; token: string }[];
  /** The group key the operator expects (x-only hex), e.g. from `airlock frost dkg`. */
  groupKey?: string;
}

const XONLY = /^[0-9a-f]{64}$/;

/** A node URL: absolute http(s), nothing but scheme, host and port (no credentials, path, query or fragment). Errors never quote it. */
export function nodeOrigin(url: unknown, name: string): string {
  if (typeof url !== 'string' || url.length > 2048 || !URL.canParse(url)) throw new AirlockError('invalid_request', `nodes.${name}.url: an absolute http:// or https:// URL`);
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new AirlockError('invalid_request', `nodes.${name}.url: http:// or https:// only`);
  if (parsed.username !== '' || parsed.password !== '') throw new AirlockError('invalid_request', `nodes.${name}.url: carries a user name or password; the node's token goes in the token field`);
  if ((parsed.pathname !== '/' && parsed.pathname !== '') || parsed.search !== '' || parsed.hash !== '' || url.includes('#')) {
    throw new AirlockError('invalid_request', `nodes.${name}.url: scheme, host and port only (a node serves /v1/frost/… at its root)`);
  }
  return parsed.origin;
}

export async function prepareClusterBinding(keys: KeyBackend, agentId: string, request: ClusterBindingRequest, options: { timeoutMs?: number } = {}): Promise<NewThresholdBinding> {
  const cluster = parseCluster(request.cluster);
  if (!Array.isArray(request.nodes)) throw new AirlockError('invalid_request', 'nodes: a list of {name, url, token}');
  const nodes: CoordinatorNode[] = request.nodes.map((n, i) => {
    if (typeof n?.name !== 'string' || !cluster.nodes.some((c) => c.name === n.name)) throw new AirlockError('invalid_request', `nodes[${i}].name: a node of the cluster definition`);
    if (typeof n.token !== 'string' || n.token.length < 16 || n.token.length > 1024) throw new AirlockError('invalid_request', `nodes[${i}].token: the node's bearer token (16 to 1024 characters)`);
    return { name: n.name, url: nodeOrigin(n.url, n.name), token: n.token };
  });
  if (new Set(nodes.map((n) => n.name)).size !== nodes.length) throw new AirlockError('invalid_request', 'nodes: a node appears twice');
  if (request.groupKey !== undefined && (typeof request.groupKey !== 'string' || !XONLY.test(request.groupKey))) throw new AirlockError('invalid_request', 'groupKey: 64 lowercase hex characters (x-only key)');
  // The constructor refuses a cluster node without a URL and token.
  const coordinator = new FrostCoordinator(cluster, nodes, options);
  const publicPackage = await coordinator.publicPackageOfEveryNode();
  const groupKey = groupXOnlyKey(publicPackage);
  if (request.groupKey !== undefined && request.groupKey !== groupKey) {
    throw new AirlockError('frost_dkg_failed', `the nodes hold group key ${groupKey}, not the one expected`);
  }
  const ordered = cluster.nodes.map((c) => nodes.find((n) => n.name === c.name)!);
  const sealedTokens = await sealNodeTokens(keys, { agentId, namespace: 'nostr', groupKey }, Object.fromEntries(ordered.map((n) => [n.name, n.token])));
  return { namespace: 'nostr', groupKey, cluster, publicPackage, nodes: ordered.map((n) => ({ name: n.name, url: n.url })), sealedTokens };
}
