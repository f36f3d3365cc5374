import type { z } from 'zod';
import { formatPath, invalidPolicy, type PolicyIssue, type PolicyPath } from './path.ts';
import { hashPolicy } from './hash.ts';
import { RULES, RULE_TYPES, type BuildEnv, type CompiledAllowRule, type CompiledRule, type RuleType } from './rules/index.ts';
import { policySchema } from './schema.ts';
import type { MatchOptions } from './fields.ts';
import { CompiledMatch, MAX_MESSAGE_PATTERN_INPUT } from './match.ts';
import { buildSets, resolveAddressList } from './sets.ts';
import type { AbiDeclaration } from '../ports/chain-adapter.ts';
import { compileLifecycle, type LifecyclePolicy } from './lifecycle.ts';
import { compileDetectors, DETECTOR_TYPES, type CompiledDetector } from './detectors/index.ts';
import { PATTERN_UNSAFE, unsafePatternIssues, type CodedPolicyIssue } from './operator-pattern.ts';

/** A validated document, ready to evaluate: sets resolved, every rule built. */
export interface CompiledPolicy {
  /** sha256 hex of the canonical JSON of the source document. */
  readonly hash: string;
  /** Every rule, in document order. */
  readonly rules: readonly CompiledRule[];
  /** The allow rules among them (a layer with none does not take part in default deny). */
  readonly allowRules: readonly CompiledAllowRule[];
  /** ABIs the document registers (`abis`), contracts resolved; the chain adapter parses and applies them. */
  readonly abis: readonly AbiDeclaration[];
  /** Anomaly detectors, in document order (none: the circuit breakers cost nothing). */
  readonly detectors: readonly CompiledDetector[];
  /** The `lifecycle:` section (treasury, caps, hot-balance caps, orphans); empty when absent. */
  readonly lifecycle: LifecyclePolicy;
  /**
   * Patterns that could stall a backtracking matcher (operator-pattern.ts): refused when a policy is set
   * (validate.ts); in a policy stored before that check, the rules holding them fail closed (`pattern_unsafe`).
   */
  readonly unsafePatterns?: readonly CodedPolicyIssue[];
}

/** Zod issues -> `{path, message}` with paths written the way the document is (`rules[2].max`). */
export function toPolicyIssues(issues: readonly z.core.$ZodIssue[], prefix: PolicyPath = []): PolicyIssue[] {
  const out: PolicyIssue[] = [];
  for (const iss of issues) {
    const path = [...prefix, ...iss.path];
    if (iss.code === 'unrecognized_keys') {
      for (const key of iss.keys) out.push({ path: formatPath([...path, key]), message: 'unknown field' });
    } else if (iss.code === 'invalid_key') {
      out.push({ path: formatPath(path), message: iss.issues[0]?.message ?? iss.message });
    } else if (iss.code === 'invalid_union' && 'discriminator' in iss && iss.discriminator === 'type') {
      const detector = path[0] === 'detectors';
      out.push({ path: formatPath(path), message: detector ? `unknown detector type; expected one of: ${DETECTOR_TYPES.join(', ')}` : `unknown rule type; expected one of: ${RULE_TYPES.join(', ')}` });
    } else {
      out.push({ path: formatPath(path), message: iss.message });
    }
  }
  return out;
}

/**
 * Builds one rule through its registered factory, which validates the options first.
 * `raw.type` must name a registered rule type.
 */
export function createRule(raw: { type: string } & Record<string, unknown>, env: BuildEnv): CompiledRule {
  const definition = RULES[raw.type as RuleType];
  if (!definition) throw invalidPolicy([{ path: formatPath([...env.path, 'type']), message: `unknown rule type; expected one of: ${RULE_TYPES.join(', ')}` }]);
  const parsed = definition.schema.safeParse(raw);
  if (!parsed.success) throw invalidPolicy(toPolicyIssues(parsed.error.issues, env.path));
  const rule = (definition.build as (o: unknown, e: BuildEnv) => CompiledRule)(parsed.data, env);
  const match = (parsed.data as { match?: MatchOptions }).match;
  return match?.message?.pattern === undefined ? rule : boundMessagePattern(rule, new CompiledMatch(match, env.sets, [...env.path, 'match']));
}

/**
 * A rule whose `match.message.pattern` cannot judge the message it would have to run over refuses the request,
 * whatever its type: a text longer than MAX_MESSAGE_PATTERN_INPUT characters (`message_too_large`, same bound as
 * Nostr content patterns, rules/nostr-event.ts), or a pattern refused as able to backtrack super-linearly that a
 * policy stored before that check still holds (`pattern_unsafe`, operator-pattern.ts). The pattern is not run
 * (CompiledMatch), so a deny is never bypassed and an allow never grants. Only where the rest of the rule's match
 * applies (an allow rule's `covers`, any other rule's `touches`): a rule scoped to another chain, say, never judges
 * the message, so it does not refuse it either.
 */
function boundMessagePattern(rule: CompiledRule, match: CompiledMatch): CompiledRule {
  const reading = rule.type === 'allow' ? 'covers' : 'touches';
  return {
    ...rule,
    evaluate(ctx) {
      const unjudged = match.unjudgedMessage(ctx.input.intent, ctx.facts, reading);
      if (unjudged === undefined) return rule.evaluate(ctx);
      if (unjudged.reason === 'unsafe') {
        return [{ code: PATTERN_UNSAFE, message: `this rule's message pattern is never run: ${unjudged.why} (a policy stored before patterns were checked; set the policy again with a safe pattern). Refused` }];
      }
      return [{
        code: 'message_too_large',
        message: `this rule's message pattern judges at most ${MAX_MESSAGE_PATTERN_INPUT} characters of message text; this message has ${unjudged.length} (not judged, refused)`,
        limit: String(MAX_MESSAGE_PATTERN_INPUT),
        requested: String(unjudged.length),
      }];
    },
  };
}

/** Validates a parsed document and compiles it. Errors: `invalid_policy`, message starting with the exact path. */
export function compilePolicy(doc: unknown): CompiledPolicy {
  const parsed = policySchema.safeParse(doc);
  if (!parsed.success) throw invalidPolicy(toPolicyIssues(parsed.error.issues));

  const seen = new Map<string, number>();
  const duplicates: PolicyIssue[] = [];
  parsed.data.rules.forEach((rule, i) => {
    const first = seen.get(rule.name);
    if (first !== undefined) duplicates.push({ path: formatPath(['rules', i, 'name']), message: `duplicate rule name "${rule.name}" (also rules[${first}])` });
    else seen.set(rule.name, i);
  });
  if (duplicates.length > 0) throw invalidPolicy(duplicates);

  const sets = buildSets(parsed.data.sets);
  // Each factory validates its own options again: the same path is used whether a rule comes
  // from a document or is built on its own (session scopes).
  const source = (doc as { rules: ({ type: string } & Record<string, unknown>)[] }).rules;
  const rules = source.map((raw, i) => createRule(raw, { sets, path: ['rules', i] }));
  const abis = Object.entries(parsed.data.abis ?? {}).map(([name, a]): AbiDeclaration => ({
    name,
    contracts: resolveAddressList(a.contracts, sets, ['abis', name, 'contracts']),
    functions: a.functions,
    moves: a.moves ?? {},
  }));
  const detectors = compileDetectors((doc as { detectors?: ({ type: string; name: string } & Record<string, unknown>)[] }).detectors, toPolicyIssues);
  return {
    hash: hashPolicy(doc),
    rules,
    allowRules: rules.filter((r): r is CompiledAllowRule => r.type === 'allow'),
    abis,
    detectors,
    lifecycle: compileLifecycle(parsed.data.lifecycle),
    unsafePatterns: unsafePatternIssues(doc),
  };
}
