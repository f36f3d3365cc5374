import { AirlockError } from '../errors.ts';
import type { Agent } from '../ports/store.ts';
import { THRESHOLD_NAMESPACES, type ThresholdBinding } from '../ports/threshold-keys.ts';
import type { ServiceDeps } from './deps.ts';

export type NewThresholdBinding = Omit<ThresholdBinding, 'agentId' | 'createdAt'>;

/** What an operator (and the audit log) sees of a binding: never the sealed tokens. */
export interface ThresholdBindingView {
  agentId: string;
  namespace: string;
  groupKey: string;
  threshold: number;
  nodes: { name: string; url: string }[];
  createdAt: number;
}

export function thresholdBindingView(binding: ThresholdBinding): ThresholdBindingView {
  const threshold = (binding.cluster as { threshold?: unknown } | null)?.threshold;
  return { agentId: binding.agentId, namespace: binding.namespace, groupKey: binding.groupKey, threshold: typeof threshold === 'number' ? threshold : 0, nodes: binding.nodes, createdAt: binding.createdAt };
}

/**
 * The operator's side of threshold keys (ports/threshold-keys.ts): bind an agent's key for a protocol to a cluster,
 * unbind it, read it. Each change commits with its audit entry (`agent.threshold_bound`, `agent.threshold_unbound`),
 * which names the group key, the threshold and the nodes (name, URL), never a node's token. The server checks the
 * cluster (every node reachable, one public package) before it calls `bind`.
 */
export class ThresholdBindings {
  private readonly deps: ServiceDeps;

  constructor(deps: ServiceDeps) {
    this.deps = deps;
  }

  private async agent(idOrName: string): Promise<Agent> {
    const agent = await this.deps.store.getAgent(idOrName);
    if (!agent) throw new AirlockError('not_found', 'No such agent.');
    return agent;
  }

  /** The agent (resolved by id or name), for the server to seal tokens under its id before `bind`. */
  resolveAgent(idOrName: string): Promise<Agent> {
    return this.agent(idOrName);
  }

  async get(idOrName: string, namespace: string): Promise<ThresholdBinding | undefined> {
    const agent = await this.agent(idOrName);
    return this.deps.store.getThresholdBinding(agent.id, namespace);
  }

  async bind(agentId: string, binding: NewThresholdBinding, actor: string): Promise<{ binding: ThresholdBinding; auditSeq: number; replaced?: string }> {
    if (!THRESHOLD_NAMESPACES.has(binding.namespace)) throw new AirlockError('invalid_request', `A threshold cluster holds keys for ${[...THRESHOLD_NAMESPACES].join(', ')} only.`);
    const now = this.deps.clock.now();
    return this.deps.store.transaction(async (tx) => {
      const agent = await tx.getAgent(agentId);
      if (!agent) throw new AirlockError('not_found', 'No such agent.');
      if (agent.status === 'retired') throw new AirlockError('agent_retired', 'A retired agent cannot be bound to a cluster.');
      const previous = await tx.getThresholdBinding(agent.id, binding.namespace);
      const stored: ThresholdBinding = { ...binding, agentId: agent.id, createdAt: now };
      await tx.putThresholdBinding(stored);
      const view = thresholdBindingView(stored);
      const entry = await tx.appendAudit({
        at: now, type: 'agent.threshold_bound', actor: 'operator', agentId: agent.id,
        data: { namespace: view.namespace, groupKey: view.groupKey, threshold: view.threshold, nodes: view.nodes, ...(previous ? { replacedGroupKey: previous.groupKey } : {}), by: actor },
      });
      return { binding: stored, auditSeq: entry.seq, ...(previous ? { replaced: previous.groupKey } : {}) };
    }, { affinity: agentId });
  }

  /** From the next request the agent's key for `namespace` is its vault key again. */
  async unbind(idOrName: string, namespace: string, actor: string): Promise<{ binding: ThresholdBinding; auditSeq: number }> {
    const agent = await this.agent(idOrName);
    const now = this.deps.clock.now();
    return this.deps.store.transaction(async (tx) => {
      const removed = await tx.deleteThresholdBinding(agent.id, namespace);
      if (!removed) throw new AirlockError('not_found', `The agent's ${namespace} key is not bound to a threshold cluster.`);
      const entry = await tx.appendAudit({ at: now, type: 'agent.threshold_unbound', actor: 'operator', agentId: agent.id, data: { namespace, groupKey: removed.groupKey, by: actor } });
      return { binding: removed, auditSeq: entry.seq };
    }, { affinity: agent.id });
  }
}
