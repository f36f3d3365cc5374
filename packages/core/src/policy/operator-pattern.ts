import { formatPath, type PolicyIssue, type PolicyPath } from './path.ts';
import { backtrackingRisk } from './regex-safety.ts';

/**
 * An operator's regular expression (`match.message.pattern`, a nostr_event rule's `content_pattern` and
 * `deny_content_pattern`), compiled for running over an agent's text: `regex` when it provably cannot backtrack
 * super-linearly (regex-safety.ts), otherwise `unsafe` (why) and no regex at all, so it can never run.
 *
 * A policy is refused such a pattern when it is set or validated (`invalid_policy`, the issue coded `pattern_unsafe`,
 * validate.ts). A policy stored before this check keeps loading (refusing to load it would leave its layer, and its
 * deny rules, out of force), and each rule holding such a pattern fails closed wherever the pattern would have to run:
 * it refuses the request `pattern_unsafe` (an allow rule never grants, a deny rule or a restriction always refuses).
 * Throws what `new RegExp(source, 'u')` throws for a pattern that is not valid syntax.
 */
export type OperatorPattern = { regex: RegExp; unsafe?: undefined } | { regex?: undefined; unsafe: string };

export function compileOperatorPattern(source: string): OperatorPattern {
  const regex = new RegExp(source, 'u');
  const unsafe = backtrackingRisk(source);
  return unsafe === undefined ? { regex } : { unsafe };
}

/** Stable code of the issue (and of the violation a stored rule with such a pattern returns). */
export const PATTERN_UNSAFE = 'pattern_unsafe';

/** A policy issue with the stable code that names it. */
export interface CodedPolicyIssue extends PolicyIssue {
  code: string;
}

/**
 * Every operator pattern of a document that compiled (compile.ts) and could stall a backtracking matcher, each with
 * the path where it is written (`rules[2].match.message.pattern`). Patterns sit only where this looks.
 */
export function unsafePatternIssues(doc: unknown): CodedPolicyIssue[] {
  const rules = (doc as { rules?: unknown }).rules;
  if (!Array.isArray(rules)) return [];
  const issues: CodedPolicyIssue[] = [];
  const check = (source: unknown, path: PolicyPath) => {
    if (typeof source !== 'string') return;
    const risk = backtrackingRisk(source);
    if (risk !== undefined) issues.push({ path: formatPath(path), code: PATTERN_UNSAFE, message: `${PATTERN_UNSAFE}: ${risk} (the pattern runs over an agent's text on the signer's event loop; see docs/policy.md#message-and-content-patterns)` });
  };
  rules.forEach((rule: unknown, i) => {
    if (rule === null || typeof rule !== 'object') return;
    const r = rule as { match?: { message?: { pattern?: unknown } }; content_pattern?: unknown; deny_content_pattern?: unknown };
    check(r.match?.message?.pattern, ['rules', i, 'match', 'message', 'pattern']);
    check(r.content_pattern, ['rules', i, 'content_pattern']);
    check(r.deny_content_pattern, ['rules', i, 'deny_content_pattern']);
  });
  return issues;
}
