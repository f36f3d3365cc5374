// The test command Stryker runs once per mutant (command runner), inside its sandbox copy of the repo:
// `node torture/mutation/run-tests.ts <target>`. Stryker activates a mutant through the
// __STRYKER_ACTIVE_MUTANT__ environment variable, which flows through to the test process.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { MUTATION_TARGETS } from './targets.ts';

const target = MUTATION_TARGETS.find((t) => t.name === process.argv[2]);
if (!target) {
  console.error(`unknown mutation target ${process.argv[2]}`);
  process.exit(2);
}

// The workspace packages must resolve to the sandbox's (mutated) copies: the repo's node_modules/@airlock
// links point at the originals, so the sandbox gets its own links, found before the repo's on the way up.
const scope = join(process.cwd(), 'node_modules', '@airlock');
if (!existsSync(scope)) {
  mkdirSync(scope, { recursive: true });
  for (const pkg of readdirSync(join(process.cwd(), 'packages'))) symlinkSync(join('..', '..', 'packages', pkg), join(scope, pkg), 'dir');
}

// One process for all files (no per-file start-up), stopped at the first failure (bail-reporter.ts).
// Its temp files go to a directory of its own: a bailed run does not clean up after its tests.
const tmp = mkdtempSync(join(process.cwd(), '.tmp-mutation-run-'));
const r = spawnSync(
  process.execPath,
  ['--test', '--test-isolation=none', '--test-timeout=120000', '--test-reporter=dot', '--test-reporter-destination=stdout', '--test-reporter=./torture/mutation/bail-reporter.ts', '--test-reporter-destination=stderr', ...(target.nodeArgs ?? []), ...target.tests],
  { stdio: 'inherit', env: { ...process.env, TMPDIR: tmp } },
);
rmSync(tmp, { recursive: true, force: true });
process.exit(r.status ?? 1);
