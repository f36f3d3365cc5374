// `airlock agent nostr-threshold <agent>`: bind the agent's Nostr key to a FROST threshold cluster (docs/custody.md,
// "Threshold cluster (FROST)"), show the binding, or remove it. The node tokens are read from the token files the
// nodes file names and sent to the daemon once, which stores them sealed; they are never printed.
import type { AirlockHttp } from '@airlock/sdk';
import { UsageError } from '../args.ts';
import { printJson } from '../format.ts';
import { readJsonFile, readNodesFile } from './frost.ts';

export const AGENT_NOSTR_THRESHOLD_USAGE = [
  'airlock agent nostr-threshold <id|name> --cluster cluster.json --coordinator-config nodes.json [--group-key HEX]',
  'airlock agent nostr-threshold <id|name> --show | --remove   (nodes.json: as `airlock frost dkg --nodes`)',
].join('\n');

export const nostrThresholdOptions = {
  cluster: { type: 'string' },
  'coordinator-config': { type: 'string' },
  'group-key': { type: 'string' },
  show: { type: 'boolean' },
  remove: { type: 'boolean' },
} as const;

interface BindingJson { agentId: string; groupKey: string; npub: string; threshold: number; nodes: { name: string; url: string }[]; createdAt: string; auditSeq?: number; replacedGroupKey?: string }

export async function agentNostrThreshold(http: AirlockHttp, agent: string, values: Record<string, unknown>, json: boolean): Promise<void> {
  const path = `/v1/agents/${encodeURIComponent(agent)}/nostr/threshold`;
  let binding: BindingJson;
  if (values.show === true) binding = (await http.request<BindingJson>('GET', path)).body;
  else if (values.remove === true) binding = (await http.request<BindingJson>('DELETE', path)).body;
  else {
    if (typeof values.cluster !== 'string' || typeof values['coordinator-config'] !== 'string') throw new UsageError(`usage:\n${AGENT_NOSTR_THRESHOLD_USAGE}`);
    const body = {
      cluster: readJsonFile(values.cluster, 'the cluster definition'),
      nodes: readNodesFile(values['coordinator-config']),
      ...(typeof values['group-key'] === 'string' ? { groupKey: values['group-key'] } : {}),
    };
    binding = (await http.request<BindingJson>('PUT', path, body)).body;
  }
  if (json) return printJson(binding);
  const nodes = binding.nodes.map((n) => `${n.name} ${n.url}`).join(', ');
  if (values.remove === true) console.log(`Unbound: the agent's Nostr key is its vault key again (was ${binding.groupKey}).`);
  else console.log(`Nostr key of ${binding.agentId}: group key ${binding.groupKey} (${binding.npub}), ${binding.threshold}-of-${binding.nodes.length}: ${nodes}${binding.replacedGroupKey ? ` (replaced ${binding.replacedGroupKey})` : ''}`);
}
