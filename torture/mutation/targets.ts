// What the mutation run covers: each target mutates some product files and runs the tests that defend
// them. The command runner cannot tell which test covers which mutant, so a target's tests run in full
// for every one of its mutants: keep them few and fast (SQLite only where a test loops over both stores;
// the store is not what is mutated here).
export interface MutationTarget {
  name: string;
  /** Stryker `mutate` patterns (globs, optionally `file:startLine-endLine`). */
  mutate: string[];
  /** Test files, run in one Node process. */
  tests: string[];
  /** Extra `node --test` arguments (e.g. a name pattern). */
  nodeArgs?: string[];
  /** The run fails below this mutation score (percent), set a little under the last measured score. */
  threshold: number;
}

const POLICY_TESTS = [
  'packages/core/src/policy/compile.test.ts',
  'packages/core/src/policy/evaluate.test.ts',
  'packages/core/src/policy/vectors.test.ts',
  'packages/core/src/policy/x402-rules.test.ts',
];

export const MUTATION_TARGETS: MutationTarget[] = [
  {
    // The policy engine's core: layered evaluation, matching, and the facts every rule reads.
    name: 'policy-evaluate',
    mutate: ['packages/core/src/policy/evaluate.ts', 'packages/core/src/policy/match.ts', 'packages/core/src/policy/facts.ts'],
    tests: POLICY_TESTS,
    // Measured 80.2% on 3de9461 (2026-11-30, 652 mutants, 161 survived: match.ts 80.4%, evaluate.ts 83.3%,
    // facts.ts 71.4%); 85.3% before the deny-touches matching grew match.ts. Survivors: torture/mutation-survivors.txt.
    threshold: 78,
  },
  {
    // Every policy rule.
    name: 'policy-rules',
    mutate: ['packages/core/src/policy/rules/*.ts'],
    tests: POLICY_TESTS,
    threshold: 65, // provisional: not measured as a whole yet (destinations.ts alone: 76.9%)
  },
  {
    // The audit log: leaf hashing, the Merkle tree and its proofs, the log verifier, signed tree heads and the
    // integrity check against the anchor.
    name: 'audit',
    mutate: [
      'packages/core/src/audit/hash.ts', 'packages/core/src/audit/merkle.ts', 'packages/core/src/audit/log-verifier.ts',
      'packages/core/src/audit/leaf-fields.ts', 'packages/core/src/audit/leaf-rows.ts',
      'packages/core/src/audit/stored-tree.ts', 'packages/core/src/service/audit-service.ts',
    ],
    tests: [
      'packages/core/src/audit/verifier.test.ts', 'packages/core/src/audit/hash.test.ts', 'packages/core/src/audit/merkle.test.ts',
      'packages/core/src/audit/leaf-fields.test.ts',
      'packages/server/src/audit-tamper.http.test.ts', 'packages/server/src/audit-anchor.http.test.ts', 'packages/server/src/audit-legacy.http.test.ts',
      'packages/server/src/audit-parallel.http.test.ts',
    ],
    nodeArgs: ['--test-skip-pattern=postgres'],
    // Provisional: 78.3% was measured on the hash-chain log (2026-11-30); the Merkle log that replaced it the
    // same day (issue 8) has not had a mutation run yet.
    threshold: 70,
  },
  {
    // The signing service: the hot path from authentication to release.
    name: 'signing',
    mutate: ['packages/core/src/service/signing-service.ts'],
    // x402.http.test.ts was added after the measured run (many survivors were on the held-payment paths it drives).
    tests: [
      'packages/server/src/guards.http.test.ts', 'packages/server/src/signing.http.test.ts', 'packages/server/src/accounting.http.test.ts',
      'packages/server/src/approvals.http.test.ts', 'packages/server/src/fail-closed.http.test.ts', 'packages/server/src/x402.http.test.ts',
    ],
    nodeArgs: ['--test-skip-pattern=postgres'],
    threshold: 51, // measured 53.7% on 3de9461 (2026-11-30, 562 mutants, 260 survived; see docs/reliability.md)
  },
];
