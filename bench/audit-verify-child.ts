// One `audit verify` in a process of its own, as `airlock audit verify` runs it: opens the store at the URL
// given, runs verifyStoredAudit (worker threads) and prints one JSON line: the result's ok and size, the
// wall time of the verification and the CPU time this process spent in it (every thread). The process
// start and the module loading are not timed (the CLI pays them once whatever the log's size).
import { verifyStoredAudit } from '../packages/core/src/index.ts';
import { auditVerifyOptions, verifySchnorr } from '../packages/server/src/runtime.ts';
import { openStore } from '../packages/store/src/index.ts';

const url = process.argv[2];
if (!url) throw new Error('usage: audit-verify-child.ts <store url>');
const store = await openStore(url);
try {
  // The generated log has no signed heads, so no signature is checked against this key.
  const NO_HEAD_KEY = '0'.repeat(64);
  const cpuBefore = process.cpuUsage();
  const t = performance.now();
  const result = await verifyStoredAudit(store, verifySchnorr, NO_HEAD_KEY, [], auditVerifyOptions(url));
  const ms = performance.now() - t;
  const cpu = process.cpuUsage(cpuBefore);
  process.stdout.write(`${JSON.stringify({ ok: result.ok, entries: result.entries, firstBad: result.firstBad, ms, cpuMicros: cpu.user + cpu.system })}\n`);
} finally {
  await store.close();
}
