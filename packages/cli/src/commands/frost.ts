/**
 * `airlock frost …`: the threshold cluster (FROST, BIP-340). See docs/custody.md, "Threshold cluster (FROST)".
 *
 *   init   make a signer node's directory: a fresh identity key, sealed with the node's passphrase
 *   node   run a signer node (its own policy, its own ledger) on loopback
 *   dkg    coordinator: generate the group key across every node (distributed; no one holds the whole key)
 *   sign   coordinator: sign a Nostr event, or the Taproot key-path inputs of a PSBT, with threshold-many nodes
 *   key    coordinator: the group key (hex and npub) the live nodes report
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { AirlockError, parseUntrustedJson } from '@airlock/core';
import { createNodeState, encodeNpub, parseCluster } from '@airlock/keys';
import { hexToBytes } from '@noble/hashes/utils.js';
import type { Command, CliContext } from '../context.ts';
import { UsageError, need } from '../args.ts';
import { readOwnerOnlyFile, readPassphrase } from '../passphrase.ts';
import { printJson } from '../format.ts';

const USAGE = [
  'airlock frost init --dir DIR --name NAME [--passphrase-file F]',
  'airlock frost node --dir DIR --cluster cluster.json --policy policy.yaml --token-file F [--network bitcoin|testnet|testnet4|signet|regtest] [--listen 127.0.0.1:PORT] [--passphrase-file F]',
  '  --network: the one Bitcoin network the node signs PSBTs for (default bitcoin; AIRLOCK_FROST_NETWORK); others are refused',
  'airlock frost dkg  --cluster cluster.json --nodes nodes.json',
  'airlock frost sign --cluster cluster.json --nodes nodes.json --event event.json|-',
  'airlock frost sign --cluster cluster.json --nodes nodes.json --psbt FILE|- --network bitcoin|testnet|testnet4|signet|regtest [--finalize]',
  'airlock frost key  --cluster cluster.json --nodes nodes.json',
  '  cluster.json: {"threshold": 2, "nodes": [{"name", "identifier": 1..255, "identityKey"}]}  (identity keys from `frost init`)',
  '  nodes.json:   {"nodes": [{"name", "url", "tokenFile"}]}  (tokenFile relative to nodes.json)',
].join('\n');

export function readJsonFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = path === '-' ? readFileSync(0, 'utf8') : readFileSync(path, 'utf8');
  } catch (cause) {
    throw new AirlockError('invalid_request', `cannot read ${what}`, { cause });
  }
  return parseUntrustedJson(text);
}

function readTextFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw new AirlockError('invalid_request', `cannot read ${what}`, { cause });
  }
}

/** A bearer token from an owner-only file (as the passphrase file), without its trailing newline. */
function readTokenFile(path: string, what: string): string {
  return readOwnerOnlyFile(path, what).replace(/\r?\n$/, '');
}

/** A nodes file, {"nodes": [{"name", "url", "tokenFile"}]}, with each token read from its file (relative to the nodes file). */
export function readNodesFile(path: string): { name: string; url: string; token: string }[] {
  const nodesPath = resolve(path);
  const doc = readJsonFile(nodesPath, 'the nodes file') as { nodes?: { name?: unknown; url?: unknown; tokenFile?: unknown }[] };
  if (!Array.isArray(doc?.nodes)) throw new AirlockError('invalid_request', 'nodes file: {"nodes": [{"name", "url", "tokenFile"}]}');
  return doc.nodes.map((n, i) => {
    if (typeof n?.name !== 'string' || typeof n.url !== 'string' || typeof n.tokenFile !== 'string') throw new AirlockError('invalid_request', `nodes[${i}]: name, url and tokenFile are strings`);
    return { name: n.name, url: n.url, token: readTokenFile(resolve(dirname(nodesPath), n.tokenFile), `token (${n.name})`) };
  });
}

async function coordinator(values: Record<string, unknown>) {
  const { FrostCoordinator } = await import('@airlock/server/frost');
  const cluster = parseCluster(readJsonFile(need(values.cluster as string | undefined, '--cluster'), 'the cluster definition'));
  return new FrostCoordinator(cluster, readNodesFile(need(values.nodes as string | undefined, '--nodes')));
}

async function runNode(values: Record<string, unknown>): Promise<void> {
  const { startFrostNode } = await import('@airlock/server/frost');
  const dir = need(values.dir as string | undefined, '--dir');
  const passphrase = await readPassphrase({ ...(values['passphrase-file'] ? { file: String(values['passphrase-file']) } : {}), prompt: 'Node passphrase: ' });
  if (passphrase === undefined) throw new AirlockError('invalid_request', 'No node passphrase: not a terminal and none given.', { hints: ['Pass --passphrase-file FILE or set AIRLOCK_PASSPHRASE_FILE.'] });
  const [host, port] = parseListen(values.listen as string | undefined);
  const node = await startFrostNode({
    dir,
    passphrase,
    cluster: readJsonFile(need(values.cluster as string | undefined, '--cluster'), 'the cluster definition'),
    policyText: readTextFile(need(values.policy as string | undefined, '--policy'), 'the policy file'),
    token: readTokenFile(need(values['token-file'] as string | undefined, '--token-file'), 'token'),
    host,
    port,
    network: (values.network as string | undefined) ?? process.env.AIRLOCK_FROST_NETWORK ?? 'bitcoin',
  });
  const stop = async () => {
    await node.close();
    process.exit(0);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void stop());
  console.log(`frost node ${node.name} listening on ${node.url} (${node.status}, network ${node.network}${node.groupKey ? `, group key ${node.groupKey}` : ''})`);
}

/** A PSBT file: base64 text, or the binary PSBT (magic `psbt\xff`) as wallets export it. */
function readPsbtFile(path: string): string {
  let bytes: Buffer;
  try {
    bytes = path === '-' ? readFileSync(0) : readFileSync(path);
  } catch (cause) {
    throw new AirlockError('invalid_request', 'cannot read the PSBT file', { cause });
  }
  const binary = bytes.subarray(0, 5).equals(Buffer.from([0x70, 0x73, 0x62, 0x74, 0xff]));
  return binary ? bytes.toString('base64') : bytes.toString('utf8').trim();
}

async function signPsbt(ctx: CliContext, values: Record<string, unknown>): Promise<void> {
  const psbt = readPsbtFile(need(values.psbt as string | undefined, '--psbt'));
  const network = need(values.network as string | undefined, '--network');
  const result = await (await coordinator(values)).signTaprootPsbt(psbt, network, { finalize: values.finalize === true });
  const { answers: _answers, ...shown } = result;
  if (ctx.json) printJson(shown);
  else {
    console.log(result.transaction ?? result.psbt);
    console.error(`inputs ${result.signedInputs.join(', ')} signed by ${result.signers.join(' + ')}${result.txid ? `; txid ${result.txid}` : ''}`);
  }
}

function parseListen(value: string | undefined): [string, number] {
  if (value === undefined) return ['127.0.0.1', 0];
  const m = /^(.+):(\d{1,5})$/.exec(value);
  if (!m || Number(m[2]) > 65535) throw new UsageError('--listen HOST:PORT (port 0: any free port)');
  return [m[1]!.replace(/^\[|\]$/g, ''), Number(m[2])];
}

export const frostCommand: Command = {
  name: 'frost',
  summary: 'Threshold cluster (FROST, BIP-340): signer nodes, key generation, signing',
  usage: USAGE,
  options: {
    dir: { type: 'string' },
    name: { type: 'string' },
    'passphrase-file': { type: 'string' },
    cluster: { type: 'string' },
    policy: { type: 'string' },
    'token-file': { type: 'string' },
    listen: { type: 'string' },
    nodes: { type: 'string' },
    event: { type: 'string' },
    psbt: { type: 'string' },
    network: { type: 'string' },
    finalize: { type: 'boolean' },
  },
  async run(ctx: CliContext, { values, positionals }) {
    const [sub] = positionals;
    switch (sub) {
      case 'init': {
        const dir = need(values.dir as string | undefined, '--dir');
        const name = need(values.name as string | undefined, '--name');
        const passphrase = await readPassphrase({ ...(values['passphrase-file'] ? { file: String(values['passphrase-file']) } : {}), confirm: true, prompt: 'New node passphrase: ' });
        if (passphrase === undefined) throw new AirlockError('invalid_request', 'No node passphrase: not a terminal and none given.');
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        const { NODE_STATE_FILE } = await import('@airlock/server/frost');
        const identityKey = await createNodeState(join(dir, NODE_STATE_FILE), name, passphrase);
        if (ctx.json) printJson({ name, identityKey });
        else console.log(`Signer node ${name} initialised in ${dir}. Its cluster entry: {"name": "${name}", "identifier": <1..255>, "identityKey": "${identityKey}"}`);
        return;
      }
      case 'node':
        return runNode(values);
      case 'dkg': {
        const result = await (await coordinator(values)).generateKey();
        if (ctx.json) printJson({ ...result, npub: encodeNpub(hexToBytes(result.groupKey)) });
        else console.log(`Group key ${result.groupKey} (${encodeNpub(hexToBytes(result.groupKey))}); every node confirmed ceremony ${result.ceremony}.`);
        return;
      }
      case 'sign': {
        if (values.psbt !== undefined) return signPsbt(ctx, values);
        const event = readJsonFile(need(values.event as string | undefined, '--event'), 'the event');
        const { event: signed, signers } = await (await coordinator(values)).signNostrEvent(event);
        if (ctx.json) printJson({ event: signed, signers });
        else {
          console.log(JSON.stringify(signed));
          console.error(`signed by ${signers.join(' + ')}`);
        }
        return;
      }
      case 'key': {
        const groupKey = await (await coordinator(values)).groupKey();
        if (ctx.json) printJson({ groupKey, npub: encodeNpub(hexToBytes(groupKey)) });
        else console.log(`${groupKey} ${encodeNpub(hexToBytes(groupKey))}`);
        return;
      }
      default:
        throw new UsageError(`usage:\n${USAGE}`);
    }
  },
};
