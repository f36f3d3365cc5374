// Part 7, mutation (full run only): StrykerJS mutates the policy engine, the audit verifier and the signing
// service (torture/mutation/targets.ts) and runs the tests that defend each; a mutant no test kills is a
// guard that could silently go. Figures: mutants, killed, survived and the score per target; a score under
// the target's threshold is a violation. Every survivor is listed in torture/mutation-survivors.txt.
//
// Stryker runs with the `command` test runner (node:test has no Stryker plugin) in a sandbox copy of the
// repo; Node 24 strips the types of the instrumented .ts files, so nothing is built or type-checked.
// MUTATION_TARGETS=policy,audit runs some targets only; MUTATION_CONCURRENCY (default 1) sets Stryker's.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MUTATION_TARGETS, type MutationTarget } from './mutation/targets.ts';
import { Violations, type Mode, type Part, type PartReport } from './lib.ts';

const REPO = resolve(new URL('..', import.meta.url).pathname);
const WORK = join(REPO, '.tmp', 'mutation');
const SURVIVORS = join(REPO, 'torture', 'mutation-survivors.txt');

type MutantStatus = 'Killed' | 'Survived' | 'NoCoverage' | 'Timeout' | 'CompileError' | 'RuntimeError' | 'Ignored' | 'Pending';

interface StrykerReport {
  files: Record<string, { source: string; mutants: { mutatorName: string; replacement?: string; status: MutantStatus; location: { start: { line: number; column: number }; end: { line: number; column: number } } }[] }>;
}

export interface TargetResult {
  target: string;
  mutants: number;
  killed: number;
  survived: number;
  errors: number;
  /** (killed + timeout) / (killed + timeout + survived + no coverage), in percent: Stryker's definition. */
  score: number;
  seconds: number;
  survivors: string[];
}

function strykerConfig(target: MutationTarget, concurrency: number, reportFile: string): Record<string, unknown> {
  return {
    testRunner: 'command',
    // The sandbox is a copy of the repo; the Node 24 binary is this process's own.
    commandRunner: { command: `${process.execPath} torture/mutation/run-tests.ts ${target.name}` },
    mutate: target.mutate,
    checkers: [],
    coverageAnalysis: 'off',
    concurrency,
    // The sandbox makes its own node_modules/@airlock links (see run-tests.ts); everything else resolves up to the repo's.
    symlinkNodeModules: false,
    tempDirName: '.stryker-tmp',
    cleanTempDir: 'always',
    ignorePatterns: ['bench', '.tmp', 'torture/results-full.json', 'torture/mutation-survivors.txt'],
    reporters: ['json', 'clear-text', 'progress-append-only'],
    jsonReporter: { fileName: reportFile },
    clearTextReporter: { allowColor: false, logTests: false },
    timeoutMS: 60_000,
  };
}

function runStryker(configFile: string, logFile: string): Promise<number> {
  return new Promise((done, fail) => {
    const log = createWriteStream(logFile);
    const child = spawn(process.execPath, [join(REPO, 'node_modules/@stryker-mutator/core/bin/stryker.js'), 'run', configFile], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    child.on('error', fail);
    child.on('close', (code) => log.end(() => done(code ?? 1)));
  });
}

function summarise(target: string, report: StrykerReport, seconds: number): TargetResult {
  const count: Partial<Record<MutantStatus, number>> = {};
  const survivors: string[] = [];
  for (const [file, { source, mutants }] of Object.entries(report.files)) {
    const lines = source.split('\n');
    for (const m of mutants) {
      count[m.status] = (count[m.status] ?? 0) + 1;
      if (m.status !== 'Survived' && m.status !== 'NoCoverage') continue;
      const line = lines[m.location.start.line - 1]?.trim() ?? '';
      const replacement = (m.replacement ?? '').replace(/\s+/g, ' ').slice(0, 120);
      survivors.push(`${file}:${m.location.start.line}:${m.location.start.column} ${m.mutatorName} | ${line.slice(0, 140)} | -> ${replacement}`);
    }
  }
  const detected = (count.Killed ?? 0) + (count.Timeout ?? 0);
  const valid = detected + (count.Survived ?? 0) + (count.NoCoverage ?? 0);
  return {
    target,
    mutants: Object.values(count).reduce((a, b) => a + b, 0),
    killed: detected,
    survived: (count.Survived ?? 0) + (count.NoCoverage ?? 0),
    errors: (count.CompileError ?? 0) + (count.RuntimeError ?? 0),
    score: valid === 0 ? 0 : Math.round((detected / valid) * 1000) / 10,
    seconds,
    survivors,
  };
}

/** Runs Stryker over one target; throws if Stryker itself fails (a failing dry run proves nothing). */
export async function mutateTarget(target: MutationTarget, concurrency = 1): Promise<TargetResult> {
  mkdirSync(WORK, { recursive: true });
  const configFile = join(WORK, `${target.name}.stryker.json`);
  const reportFile = join(WORK, `${target.name}.report.json`);
  const logFile = join(WORK, `${target.name}.log`);
  rmSync(reportFile, { force: true });
  writeFileSync(configFile, JSON.stringify(strykerConfig(target, concurrency, reportFile), null, 2));
  const t0 = performance.now();
  const code = await runStryker(configFile, logFile);
  const seconds = Math.round((performance.now() - t0) / 1000);
  if (code !== 0 || !existsSync(reportFile)) {
    const tail = readFileSync(logFile, 'utf8').split('\n').slice(-25).join('\n');
    throw new Error(`stryker failed on ${target.name} (exit ${code}); log ${logFile}:\n${tail}`);
  }
  return summarise(target.name, JSON.parse(readFileSync(reportFile, 'utf8')) as StrykerReport, seconds);
}

export const mutationPart: Part = {
  name: 'mutation',
  summary: 'StrykerJS over the policy engine, the audit verifier and the signing service (full run only)',
  async run(mode: Mode): Promise<PartReport> {
    // Hours of CPU on two cores: only the full run pays for it.
    if (mode !== 'full') return { figures: { skipped: 'full run only (npm run torture -- --full)' }, violations: [] };
    const v = new Violations();
    const figures: PartReport['figures'] = {};
    const only = process.env.MUTATION_TARGETS?.split(',');
    const targets = only ? MUTATION_TARGETS.filter((t) => only.includes(t.name)) : MUTATION_TARGETS;
    if (only && targets.length !== only.length) throw new Error(`MUTATION_TARGETS: unknown target; targets: ${MUTATION_TARGETS.map((t) => t.name).join(', ')}`);
    const concurrency = Number(process.env.MUTATION_CONCURRENCY ?? 1);
    const sections: string[] = [];
    for (const target of targets) {
      const r = await mutateTarget(target, concurrency);
      figures[`${r.target}.mutants`] = r.mutants;
      figures[`${r.target}.killed`] = r.killed;
      figures[`${r.target}.survived`] = r.survived;
      figures[`${r.target}.errors`] = r.errors;
      figures[`${r.target}.score`] = `${r.score}% (threshold ${target.threshold}%)`;
      figures[`${r.target}.seconds`] = r.seconds;
      v.check(r.score >= target.threshold, () => `${r.target}: mutation score ${r.score}% is under the threshold ${target.threshold}%`);
      sections.push(`# ${r.target}: ${r.score}% (${r.killed} killed, ${r.survived} survived, ${r.errors} errors), ${r.seconds} s\n${r.survivors.join('\n')}\n`);
    }
    // A run of some targets only keeps the other targets' survivor lists.
    writeFileSync(SURVIVORS, `${keepOtherSections(targets.map((t) => t.name)).concat(sections).join('\n')}`);
    return { figures, violations: v.done() };
  },
};

function keepOtherSections(replaced: string[]): string[] {
  if (!existsSync(SURVIVORS)) return [];
  const text = readFileSync(SURVIVORS, 'utf8');
  return text.split(/\n(?=# )/).filter((s) => s.startsWith('# ') && !replaced.some((name) => s.startsWith(`# ${name}:`))).map((s) => s.trimEnd() + '\n');
}
