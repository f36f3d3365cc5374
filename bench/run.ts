// `npm run bench`: the whole suite (issue 4 §1). Each benchmark is its own module; this file runs them in
// order, then writes bench/results.json and docs/benchmarks.md (bench/report.ts). Every comparison is
// measured in the same run as its baseline; every figure is a median with its spread (min–max).
//   --quick          smaller sizes and 3 rounds (a smoke run; numbers not comparable to the targets)
//   --only=a,b       run some sections: inprocess, keyprocess, http, policy, ledger, audit, provisioning, twoprocesses,
//                    pkcs11 (pkcs11 needs SoftHSM2; without it the section is recorded as skipped, with the reason)
//   --report-only    re-render docs/benchmarks.md from bench/results.json
//   --update         with --only: measure those sections at full size and merge them into bench/results.json
//                    and docs/benchmarks.md (each section keeps the date and load it was measured at)
//   BENCH_ROUNDS=n   rounds per figure (default 5)
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, platform, release, totalmem } from 'node:os';
import { NativeKeyBackend } from '../packages/keys/src/index.ts';
import { benchAudit } from './audit.ts';
import { benchHttp } from './http.ts';
import { benchInProcess } from './in-process.ts';
import { benchKeyProcess } from './key-process.ts';
import { benchLedgerWindow } from './ledger-window.ts';
import { load, type BenchOptions } from './lib/stats.ts';
import { benchPkcs11 } from './pkcs11.ts';
import { benchPolicy } from './policy.ts';
import { benchProvisioning } from './provisioning.ts';
import { renderReport, type BenchResults } from './report.ts';
import { benchTwoProcesses } from './two-processes.ts';

// --report-only: re-renders docs/benchmarks.md from bench/results.json (wording changes, no new figures).
if (process.argv.includes('--report-only')) {
  const saved = JSON.parse(readFileSync(new URL('./results.json', import.meta.url), 'utf8')) as BenchResults;
  writeFileSync(new URL('../docs/benchmarks.md', import.meta.url), renderReport(saved));
  console.log('re-rendered docs/benchmarks.md from bench/results.json');
  process.exit(0);
}

const quick = process.argv.includes('--quick');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
const update = process.argv.includes('--update');
if (update && (!only || quick)) {
  console.error('--update needs --only=<sections> and a full-size run (no --quick)');
  process.exit(2);
}
const o: BenchOptions = { rounds: Number(process.env.BENCH_ROUNDS ?? (quick ? 3 : 5)), quick, log: (line) => console.log(line) };
const wanted = (name: string) => !only || only.includes(name);

const started = Date.now();
const results: BenchResults = {
  date: new Date().toISOString(),
  machine: {
    cpu: `${cpus().length} x ${cpus()[0]?.model ?? 'unknown cpu'}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${platform()} ${release()}`,
    node: process.version,
    nativeSecp256k1: NativeKeyBackend.available() ? 'loaded (libsecp256k1 N-API prebuild)' : `not available: ${NativeKeyBackend.unavailableReason()}`,
  },
  rounds: o.rounds,
  quick,
  loadBefore: load(),
  sections: {},
};
console.log(`bench: ${results.machine.cpu}, Node ${process.version}, load ${results.loadBefore.join(' ')}${quick ? ' (quick)' : ''}`);

const sections: [string, () => Promise<unknown> | unknown][] = [
  ['inprocess', () => benchInProcess(o)],
  ['keyprocess', () => benchKeyProcess(o)],
  ['http', () => benchHttp(o)],
  ['twoprocesses', () => benchTwoProcesses(o)],
  ['policy', () => benchPolicy(o)],
  ['ledger', () => benchLedgerWindow(o)],
  ['audit', () => benchAudit(o)],
  ['provisioning', () => benchProvisioning(o)],
  ['pkcs11', () => benchPkcs11(o)],
];
for (const [name, run] of sections) {
  if (!wanted(name)) continue;
  const t = Date.now();
  const loadAtStart = load();
  console.log(`[${name}] load ${loadAtStart.join(' ')}`);
  (results.sections as Record<string, unknown>)[name] = { ...(await run() as object), load: { before: loadAtStart, after: load() }, elapsedSeconds: Math.round((Date.now() - t) / 1000), measuredAt: new Date().toISOString(), cpu: results.machine.cpu };
}
results.loadAfter = load();
results.totalSeconds = Math.round((Date.now() - started) / 1000);

const json = JSON.stringify(results, (_k, v) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 1000) / 1000 : v), 2);
if (update) {
  // Sections measured again replace their old figures; the others keep theirs, each with its own date and load.
  const saved = JSON.parse(readFileSync(new URL('./results.json', import.meta.url), 'utf8')) as BenchResults;
  for (const [name, section] of Object.entries(results.sections)) {
    (saved.sections as Record<string, unknown>)[name] = JSON.parse(JSON.stringify(section, (_k, v) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 1000) / 1000 : v)));
  }
  writeFileSync(new URL('./results.json', import.meta.url), `${JSON.stringify(saved, null, 2)}\n`);
  writeFileSync(new URL('../docs/benchmarks.md', import.meta.url), renderReport(saved));
  console.log(`updated ${Object.keys(results.sections).join(', ')} in bench/results.json and docs/benchmarks.md in ${results.totalSeconds} s`);
} else if (only || quick) {
  // A partial or quick run never overwrites the published report.
  mkdirSync(new URL('./.tmp/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./.tmp/results.partial.json', import.meta.url), `${json}\n`);
  writeFileSync(new URL('./.tmp/benchmarks.partial.md', import.meta.url), renderReport(results));
  console.log(`partial run: wrote bench/.tmp/{results.partial.json,benchmarks.partial.md} in ${results.totalSeconds} s`);
} else {
  writeFileSync(new URL('./results.json', import.meta.url), `${json}\n`);
  writeFileSync(new URL('../docs/benchmarks.md', import.meta.url), renderReport(results));
  console.log(`wrote docs/benchmarks.md and bench/results.json in ${results.totalSeconds} s`);
}
process.exit(0);
