// Micro-benchmark for the audit hot path: canonical JSON (RFC 8785 writer vs the JSON.stringify form it
// replaced, kept as legacyCanonicalJson), the entry hash per version, and the edge's JSON checks.
// Interleaved rounds so a noisy machine skews every variant alike; prints min and median µs per call.
// Usage: node_modules/.bin/node bench/canonical-json.micro.ts
import { canonicalJson, GENESIS_HASH, hashAuditEntry, legacyCanonicalJson, parseUntrustedJson, type AuditEntryInput } from '../packages/core/src/index.ts';

/** Shaped like the service's `sign.request` entry (the same shape bench/audit.ts verifies). */
function entry(i: number): AuditEntryInput {
  const to = `0x${(i % 5000).toString(16).padStart(40, '0')}`;
  return {
    at: 1767225600000 + i, type: 'sign.request', actor: 'agent', agentId: `ag_${(i % 1000).toString(16).padStart(16, '0')}`,
    sessionId: `ses_${(i % 3000).toString(16).padStart(16, '0')}`, action: 'evm.transaction', decision: 'allow',
    data: {
      intent: { action: 'evm.transaction', chain: 'eip155:8453', kind: 'erc20.transfer', to, spends: [{ asset: 'eip155:8453/erc20:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913', amount: String(1000 + i), to, kind: 'transfer' }], summary: `transfer ${1000 + i} USDC units` },
      violations: [], allowedBy: ['agent@1:usdc-to-partners'], policyVersion: 1, digest: i.toString(16).padStart(64, '0'), requestHash: (i * 7).toString(16).padStart(64, '0'),
    },
  };
}

const N = 2000;
// As the verifier sees them: parsed back from stored JSON.
const entries = Array.from({ length: N }, (_, i) => JSON.parse(JSON.stringify(entry(i))) as AuditEntryInput);
const bodies = entries.map((e) => JSON.stringify({ chainId: 8453, typedData: { message: e.data } }));

const variants: Record<string, (i: number) => unknown> = {
  'canonical JSON, old (JSON.stringify + sorted copies)': (i) => legacyCanonicalJson(entries[i]),
  'canonical JSON, RFC 8785 writer': (i) => canonicalJson(entries[i]),
  'entry hash, version 1': (i) => hashAuditEntry(GENESIS_HASH, i + 1, entries[i]!, 1),
  'entry hash, version 2': (i) => hashAuditEntry(GENESIS_HASH, i + 1, entries[i]!, 2),
  'body: JSON.parse': (i) => JSON.parse(bodies[i]!),
  'body: parseUntrustedJson (parse + key/depth check)': (i) => parseUntrustedJson(bodies[i]!),
};

console.log(`${N} entries of ${canonicalJson(entries[0]).length} bytes of canonical JSON`);
const results: Record<string, number[]> = {};
for (let round = 0; round < 40; round++) {
  for (const [name, run] of Object.entries(variants)) {
    const t = performance.now();
    for (let k = 0; k < 3; k++) for (let i = 0; i < N; i++) run(i);
    if (round >= 5) (results[name] ??= []).push(((performance.now() - t) * 1000) / (3 * N));
  }
}
for (const [name, runs] of Object.entries(results)) {
  runs.sort((a, b) => a - b);
  console.log(`${name.padEnd(52)} min ${runs[0]!.toFixed(2)} µs  median ${runs[runs.length >> 1]!.toFixed(2)} µs`);
}
