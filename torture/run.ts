// `npm run torture [-- --full | --short] [--only crash,race,...]`: runs the torture parts in turn, prints
// each part's figures and violations, exits 1 on any violation, and (full run) writes torture/results-full.json.
// The short run (default) is what CI executes; the full run is the one docs/reliability.md reports.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { killAllDaemons } from '../packages/server/src/testing/processes.ts';
import type { Mode, Part, PartReport } from './lib.ts';
import { crashPart } from './crash.ts';
import { racePart } from './race.ts';
import { storeFaultsPart } from './store-faults.ts';
import { hostileInputPart } from './hostile-input.ts';
import { secretsPart } from './secrets.ts';
import { replayPart } from './replay.ts';
import { attacksPart } from './attacks.ts';
import { mutationPart } from './mutation.ts';

const PARTS: Part[] = [crashPart, racePart, storeFaultsPart, hostileInputPart, secretsPart, replayPart, attacksPart, mutationPart];

const args = process.argv.slice(2);
const mode: Mode = args.includes('--full') ? 'full' : 'short';
const onlyArg = args.find((a) => a.startsWith('--only'));
const only = onlyArg ? (onlyArg.includes('=') ? onlyArg.split('=')[1]! : args[args.indexOf(onlyArg) + 1]!).split(',') : undefined;
const selected = only ? PARTS.filter((p) => only.includes(p.name)) : PARTS;
if (only && selected.length !== only.length) {
  console.error(`unknown part in --only; parts: ${PARTS.map((p) => p.name).join(', ')}`);
  process.exit(2);
}

const uptime = () => {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim();
  } catch {
    return 'n/a';
  }
};

console.log(`torture ${mode} run: ${selected.map((p) => p.name).join(', ')} (${cpus().length} cores, node ${process.version})`);
console.log(`load before: ${uptime()}`);
const started = performance.now();
const results: Record<string, PartReport & { seconds: number; error?: string }> = {};
let failed = false;
for (const part of selected) {
  const t0 = performance.now();
  console.log(`\n== ${part.name}: ${part.summary}`);
  let report: PartReport;
  let error: string | undefined;
  try {
    report = await part.run(mode);
  } catch (e) {
    // A part that cannot run is a failure too (it proved nothing).
    error = e instanceof Error ? (e.stack ?? e.message) : String(e);
    report = { figures: {}, violations: [`part could not run: ${error}`] };
    await killAllDaemons();
  }
  const seconds = Math.round((performance.now() - t0) / 100) / 10;
  results[part.name] = { ...report, seconds, ...(error ? { error } : {}) };
  for (const [k, v] of Object.entries(report.figures)) console.log(`  ${k}: ${v}`);
  console.log(`  violations: ${report.violations.length}   (${seconds} s)`);
  for (const line of report.violations) console.log(`  VIOLATION ${line}`);
  if (report.violations.length) failed = true;
}
await killAllDaemons();
const totalSeconds = Math.round((performance.now() - started) / 100) / 10;
console.log(`\nload after: ${uptime()}`);
console.log(`torture ${mode}: ${failed ? 'FAILED' : 'passed'} in ${totalSeconds} s`);
// The full run's figures are what docs/reliability.md reports; the short (CI) run only prints.
// A full run of some parts (--only) replaces those parts in the file and keeps the others.
if (mode === 'full') {
  const file = new URL('./results-full.json', import.meta.url);
  const previous = only && existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : undefined;
  const parts = { ...(previous?.parts ?? {}), ...results };
  const passed = Object.values(parts).every((p: any) => p.violations.length === 0);
  const seconds = Object.values(parts).reduce((t: number, p: any) => t + p.seconds, 0);
  writeFileSync(file, `${JSON.stringify({ mode, date: new Date().toISOString(), node: process.version, cores: cpus().length, totalSeconds: Math.round(seconds), passed, parts }, null, 2)}\n`);
}
process.exit(failed ? 1 : 0);
