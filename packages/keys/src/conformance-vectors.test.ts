// The conformance tests and ../shared/vectors: in CI a missing vectors directory fails the run (a skipped
// conformance suite proves nothing); on a plain clone it skips with the reason.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';

const root = new URL('../../..', import.meta.url).pathname;
const CONFORMANCE = 'packages/keys/src/bip39.conformance.test.ts';

function runConformance(env: Record<string, string | undefined>): { status: number | null; output: string } {
  const childEnv = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete childEnv[k];
  // The child's own runner must not report into this one.
  delete childEnv.NODE_TEST_CONTEXT;
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', CONFORMANCE], { cwd: root, env: childEnv, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

test('CI=true without the spec vectors: the conformance tests fail, naming the missing directory', () => {
  const { status, output } = runConformance({ CI: 'true', AIRLOCK_VECTORS_DIR: '/nonexistent/airlock-vectors' });
  assert.notEqual(status, 0, output);
  assert.match(output, /spec vectors not found in AIRLOCK_VECTORS_DIR; CI=true, so the conformance tests fail instead of skipping/);
  assert.match(output, /# fail [1-9]/);
  assert.match(output, /# skipped 0/);
});

test('outside CI without the spec vectors: the conformance tests skip with the reason', () => {
  const { status, output } = runConformance({ CI: undefined, AIRLOCK_VECTORS_DIR: '/nonexistent/airlock-vectors' });
  assert.equal(status, 0, output);
  assert.match(output, /# SKIP spec vectors not found in AIRLOCK_VECTORS_DIR/);
  assert.match(output, /# fail 0/);
});

// Needs the vectors beside the checkout (CI always has them); a plain clone without them skips, as the
// conformance tests themselves do.
const vectorsBeside = existsSync(new URL('../shared/vectors', `file://${root}`).pathname);

test('with the spec vectors, CI or not, the conformance tests run', { skip: vectorsBeside ? false : 'no ../shared/vectors beside this checkout' }, () => {
  const { status, output } = runConformance({ CI: 'true', AIRLOCK_VECTORS_DIR: undefined });
  assert.equal(status, 0, output);
  assert.match(output, /# pass [1-9]/);
  assert.match(output, /# skipped 0/);
});
