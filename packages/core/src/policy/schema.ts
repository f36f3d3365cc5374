import { z } from 'zod';
import { abiField, partyField, setNamePattern } from './fields.ts';
import { RULES } from './rules/index.ts';
import { DETECTORS } from './detectors/index.ts';
import { lifecycleField } from './lifecycle.ts';

const ruleSchemas = Object.values(RULES).map((r) => r.schema) as unknown as [
  (typeof RULES)[keyof typeof RULES]['schema'],
  ...(typeof RULES)[keyof typeof RULES]['schema'][],
];

const detectorSchemas = Object.values(DETECTORS).map((d) => d.schema) as unknown as [
  (typeof DETECTORS)[keyof typeof DETECTORS]['schema'],
  ...(typeof DETECTORS)[keyof typeof DETECTORS]['schema'][],
];

/** The policy document (format version 1). See docs/policy.md. */
export const policySchema = z.strictObject({
  version: z.literal(1, { error: 'expected version: 1' }),
  sets: z
    .record(
      z.string().regex(setNamePattern, 'a set name is 1-64 characters of A-Z, a-z, 0-9, _ and -').refine((n) => n !== 'self', 'the set name self is reserved: $self is the signing agent'),
      z.array(partyField, { error: 'expected a list of addresses' }),
    )
    .optional()
    .describe('Named address sets (0x addresses, or Lightning node ids for payee allowlists), referenced as `$name`.'),
  abis: z
    .record(z.string().regex(setNamePattern, 'an ABI name is 1-64 characters of A-Z, a-z, 0-9, _ and -'), abiField)
    .optional()
    .describe('Contract ABIs (human-readable fragments), so calls decode into named arguments and declared spends. See docs/policy.md#abis.'),
  rules: z.array(z.discriminatedUnion('type', ruleSchemas), { error: 'expected a list of rules' }),
  detectors: z
    .array(z.discriminatedUnion('type', detectorSchemas), { error: 'expected a list of detectors' })
    .optional()
    .describe('Anomaly detectors and their circuit breakers: each compares the request with a baseline learned from the ledger and, when it trips, alerts, holds the agent\'s requests for approval or freezes. See docs/policy.md#detectors-and-circuit-breakers.'),
  lifecycle: lifecycleField.optional(),
});

export type PolicyDocument = z.input<typeof policySchema>;

/** JSON Schema of the document, for editors and CI (written to docs/policy.schema.json). */
export function policyJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(policySchema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }) as Record<string, unknown>;
}
