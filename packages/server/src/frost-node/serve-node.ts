/**
 * Starts one signer node: unseal its state file, compile its own policy, open its own ledger, listen.
 * The composition root of a node (the daemon's is runtime.ts); `airlock frost node` calls it.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import { AirlockError, BITCOIN_NETWORKS, compilePolicy, parsePolicyText, type BitcoinNetwork } from '@airlock/core';
import { openNodeState, parseCluster, type ClusterDefinition } from '@airlock/keys';
import { createFrostNodeApp } from './node-app.ts';
import { NodeLedger } from './node-ledger.ts';

export const NODE_STATE_FILE = 'frost-node.json';
export const NODE_LEDGER_FILE = 'frost-node.db';

export interface StartFrostNodeOptions {
  /** The node's directory: its sealed state file and its ledger live here. */
  dir: string;
  passphrase: string;
  /** Parsed JSON of the cluster definition. */
  cluster: unknown;
  /** The node's own policy document (YAML or JSON text). */
  policyText: string;
  token: string;
  /** The one Bitcoin network this node signs PSBTs for (default `bitcoin`); requests naming another are refused. */
  network?: string;
  host?: string;
  port?: number;
  /** The node's clock (tests); default Date.now. */
  now?: () => number;
  /** Operator-facing lines (an address starting to be throttled); default stderr. */
  log?: (line: string) => void;
}

export interface RunningFrostNode {
  name: string;
  url: string;
  status: 'ready' | 'no_key';
  groupKey?: string;
  network: BitcoinNetwork;
  close(): Promise<void>;
}

export async function startFrostNode(options: StartFrostNodeOptions): Promise<RunningFrostNode> {
  if (options.token.length < 16) throw new AirlockError('invalid_request', 'the node token must have at least 16 characters');
  const network = (options.network ?? 'bitcoin') as BitcoinNetwork;
  if (!BITCOIN_NETWORKS.includes(network)) throw new AirlockError('invalid_request', `--network: one of ${BITCOIN_NETWORKS.join(', ')}`);
  const cluster: ClusterDefinition = parseCluster(options.cluster);
  const policyDocument = parsePolicyText(options.policyText);
  const policy = compilePolicy(policyDocument);
  const state = await openNodeState(join(options.dir, NODE_STATE_FILE), options.passphrase);
  const member = cluster.nodes.find((n) => n.name === state.name);
  if (!member || member.identityKey !== state.identityKey) {
    state.wipe();
    throw new AirlockError('invalid_request', `the cluster definition does not list this node (${state.name}) with its identity key ${state.identityKey}`);
  }
  const ledger = new NodeLedger(join(options.dir, NODE_LEDGER_FILE));
  const node = createFrostNodeApp({ state, cluster, policy, policyDocument, ledger, token: options.token, network, ...(options.now ? { now: options.now } : {}), ...(options.log ? { log: options.log } : {}) });
  const server = createAdaptorServer({ fetch: node.app.fetch }) as Server;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    name: state.name,
    url: `http://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}`,
    status: state.key ? 'ready' : 'no_key',
    network,
    ...(state.key ? { groupKey: state.key.publicPackage.commitments[0]!.slice(2) } : {}),
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      node.close();
    },
  };
}
