import { sessionScopeLayers, type PolicyLayer } from '../policy/index.ts';
import { CompiledPolicies } from '../policy/compiled-policies.ts';
import type { PolicyRecord, Session, StoreTx } from '../ports/store.ts';

export const FLEET_SCOPE = 'fleet';
export const agentScope = (agentId: string) => `agent:${agentId}`;

/**
 * Loads the layers that apply to a request (fleet, agent, session and, for a derived session, each of its
 * ancestors' scopes) inside the signing transaction,
 * so a policy change is seen by the very next request on every instance. Compiled policies are cached
 * by content hash: documents are immutable once stored, so the cache can never be stale.
 */
export class PolicyLayerLoader {
  private readonly compiled = new CompiledPolicies();

  /** `ancestors`: the session's ancestors read inside `tx` (session-chain.ts), nearest first. */
  async load(tx: StoreTx, agentId: string, session: Session, ancestors: readonly Session[] = []): Promise<PolicyLayer[]> {
    const [fleet, agent] = await Promise.all([tx.getPolicy(FLEET_SCOPE), tx.getPolicy(agentScope(agentId))]);
    const layers: PolicyLayer[] = [];
    if (fleet) layers.push({ layer: 'fleet', label: labelOf(fleet), policy: this.compiled.of(fleet) });
    if (agent) layers.push({ layer: 'agent', label: labelOf(agent), policy: this.compiled.of(agent) });
    layers.push(...sessionScopeLayers(session, ancestors));
    return layers;
  }
}

export function labelOf(record: Pick<PolicyRecord, 'scope' | 'version' | 'hash'>): string {
  const scope = record.scope === FLEET_SCOPE ? 'fleet' : 'agent';
  return `${scope}@${record.version}:${record.hash.slice(0, 8)}`;
}
