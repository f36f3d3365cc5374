import type { AbiDeclaration } from '../ports/chain-adapter.ts';
import { compilePolicy, type CompiledPolicy } from './compile.ts';
import { invalidPolicy, type PolicyIssue } from './path.ts';
import { policySchema } from './schema.ts';
import { policyWarnings, type PolicyWarning } from './warnings.ts';

/** Parses the ABIs a document registers; supplied by the chain adapter (the core parses no ABI). */
export type AbiChecker = (abis: readonly AbiDeclaration[]) => PolicyIssue[];

/**
 * Everything `policy validate` and `policy set` check: the document compiles, its registered ABIs
 * parse and declare real arguments (when a checker is given), no operator pattern can backtrack super-linearly
 * (issues coded `pattern_unsafe`, operator-pattern.ts), plus the warnings about what it lets through.
 * Errors: `invalid_policy` with every issue.
 */
export function validatePolicy(doc: unknown, checkAbis?: AbiChecker): { policy: CompiledPolicy; warnings: PolicyWarning[] } {
  const policy = compilePolicy(doc);
  // A stored policy keeps loading with such a pattern (its rule fails closed); a new one is refused it.
  if (policy.unsafePatterns?.length) throw invalidPolicy([...policy.unsafePatterns]);
  if (checkAbis && policy.abis.length > 0) {
    const issues = checkAbis(policy.abis);
    if (issues.length > 0) throw invalidPolicy(issues);
  }
  return { policy, warnings: policyWarnings(policySchema.parse(doc)) };
}
