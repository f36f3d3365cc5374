// One `audit verify` in a process of its own, as `airlock audit verify` runs it: opens the store at the URL
// given, runs verifyStoredAudit (worker threads) and prints one JSON line: the result's ok and size, the
// wall time of the verification and the CPU time this process spent in it (every thread). The process
// start and the module loading are not timed (the CLI pays them once whatever the log's size).
import { verifyStoredAudit } from '../packages/core/src/index.ts';
import { auditVerifyOptions, verifySchnorr } from '../packages/server/src/runtime.ts';
import { openStore } from '../packages/store/src/index.ts';

const url = process.argv[2];
if (!url) throw new Error('usage: audit-verify-child.ts <store url> [audit public key]');
const store = await openStore(url);
try {
  // The key that signed the log's tree head; without one the log has no signed head, and no signature is
  // checked against this placeholder.
  const auditKey = process.argv[3] ?? '0'.repeat(64);
  const cpuBefore = process.cpuUsage();
  const t = performance.now();
  const result = await verifyStoredAudit(store, verifySchnorr, auditKey, [], auditVerifyOptions(url));
  const ms = performance.now() - t;
  const cpu = process.cpuUsage(cpuBefore);
  process.stdout.write(`${JSON.stringify({ ok: result.ok, entries: result.entries, firstBad: result.firstBad, ms, cpuMicros: cpu.user + cpu.system })}\n`);
} finally {
  await store.close();
}
