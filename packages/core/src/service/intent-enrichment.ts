import { isAirlockError } from '../errors.ts';
import type { Decision } from '../policy/decision.ts';
import type { EvaluationInput, PolicyLayer } from '../policy/index.ts';
import type { ChainAdapter } from '../ports/chain-adapter.ts';

/**
 * Lets the adapter decode calls against the ABIs the layers register (fleet first: the fleet's
 * declaration of a contract wins over the agent's, so an agent policy cannot redeclare a call to move
 * nothing), before policy sees the intent. The intent is updated in place: the decoded request, its
 * audit entry and its ledger writes all read this one object.
 * Returns a denial when the calldata does not decode against a registered ABI (fail closed).
 */
export function enrichFromLayers(adapter: ChainAdapter, layers: readonly PolicyLayer[], input: EvaluationInput): Decision | undefined {
  if (!adapter.enrich) return undefined;
  const abis = layers.flatMap((l) => l.policy.abis.map((a) => ({ ...a, name: `${l.layer}/abis.${a.name}` })));
  if (abis.length === 0) return undefined;
  try {
    const enriched = adapter.enrich(input.intent, abis);
    if (enriched !== input.intent) Object.assign(input.intent, enriched);
    return undefined;
  } catch (e) {
    if (!isAirlockError(e) || e.code !== 'undecodable_payload') throw e;
    const rule = typeof e.details?.abi === 'string' ? e.details.abi : 'abis';
    return {
      decision: 'deny',
      violations: [{ rule, code: 'abi_decode_failed', message: e.message }],
      allowedBy: [],
      policyVersion: layers.map((l) => l.label).join(','),
    };
  }
}
