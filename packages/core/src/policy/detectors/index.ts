/**
 * The explicit detector registry (docs/policy.md, "Detectors and circuit breakers"): one line per type.
 * Detectors live in the policy documents beside the rules (versioned, dry-runnable) and are run by the signing
 * service's circuit breakers (core/service/circuit-breakers.ts) after policy has decided.
 */
import { formatPath, invalidPolicy, type PolicyIssue, type PolicyPath } from '../path.ts';
import { fleetSpendBurstDetector, requestBurstDetector, spendBurstDetector } from './burst.ts';
import { destinationWaveDetector } from './destination-wave.ts';
import { newDestinationDetector } from './new-destination.ts';
import { offHoursDetector } from './off-hours.ts';
import { refusalRunDetector } from './refusal-run.ts';
import type { CompiledDetector, DetectorBuildEnv } from './types.ts';

export const DETECTORS = {
  request_burst: requestBurstDetector,
  spend_burst: spendBurstDetector,
  refusal_run: refusalRunDetector,
  new_destination: newDestinationDetector,
  off_hours: offHoursDetector,
  destination_wave: destinationWaveDetector,
  fleet_spend_burst: fleetSpendBurstDetector,
} as const;

export type DetectorType = keyof typeof DETECTORS;
export const DETECTOR_TYPES = Object.keys(DETECTORS) as DetectorType[];

export * from './types.ts';
export { utcHour } from './off-hours.ts';

/** Builds the document's detectors (already schema-checked) through their factories; names are unique per document. */
export function compileDetectors(
  source: readonly ({ type: string; name: string } & Record<string, unknown>)[] | undefined,
  toIssues: (issues: readonly import('zod').z.core.$ZodIssue[], prefix: PolicyPath) => PolicyIssue[],
): CompiledDetector[] {
  if (!source) return [];
  const seen = new Map<string, number>();
  const duplicates: PolicyIssue[] = [];
  source.forEach((d, i) => {
    const first = seen.get(d.name);
    if (first !== undefined) duplicates.push({ path: formatPath(['detectors', i, 'name']), message: `duplicate detector name "${d.name}" (also detectors[${first}])` });
    else seen.set(d.name, i);
  });
  if (duplicates.length > 0) throw invalidPolicy(duplicates);
  return source.map((raw, i) => {
    const env: DetectorBuildEnv = { path: ['detectors', i] };
    const definition = DETECTORS[raw.type as DetectorType];
    if (!definition) throw invalidPolicy([{ path: formatPath([...env.path, 'type']), message: `unknown detector type; expected one of: ${DETECTOR_TYPES.join(', ')}` }]);
    const parsed = definition.schema.safeParse(raw);
    if (!parsed.success) throw invalidPolicy(toIssues(parsed.error.issues, env.path));
    return (definition.build as (o: unknown, e: DetectorBuildEnv) => CompiledDetector)(parsed.data, env);
  });
}
