// `npm run bench`: measures the signing hot path against its baseline (a hot key in the agent) in the
// same run, on SQLite and PostgreSQL, plus provisioning; writes docs/benchmarks.md and bench/results.json.
// Machines here are noisy: every figure is the median of several rounds, with the spread (min-max).
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { execFileSync } from 'node:child_process';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { privateKeyToAccount } from 'viem/accounts';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from '../packages/server/src/testing/harness.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const quick = process.argv.includes('--quick');

interface Figure { median: number; min: number; max: number }
const figure = (xs: number[]): Figure => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s.at(-1)! };
};
const fmt = (f: Figure, digits = 0) => `${f.median.toFixed(digits)} (${f.min.toFixed(digits)}–${f.max.toFixed(digits)})`;

async function opsPerSecond(n: number, concurrency: number, op: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) await op(next++);
  }));
  return (n / (performance.now() - start)) * 1000;
}

async function baseline(): Promise<{ viem: Figure; noble: Figure }> {
  const key = `0x${'11'.repeat(32)}` as const;
  const account = privateKeyToAccount(key);
  const tx = { chainId: 8453, type: 'eip1559' as const, to: ALICE as `0x${string}`, value: 0n, nonce: 0, gas: 60000n, maxFeePerGas: 10n ** 9n, maxPriorityFeePerGas: 10n ** 6n };
  const digest = new Uint8Array(32).fill(7);
  const priv = secp256k1.utils.randomSecretKey();
  const viem: number[] = [];
  const noble: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    viem.push(await opsPerSecond(quick ? 200 : 1000, 1, (i) => account.signTransaction({ ...tx, nonce: i })));
    noble.push(await opsPerSecond(quick ? 200 : 2000, 1, async () => secp256k1.sign(digest, priv, { prehash: false })));
  }
  return { viem: figure(viem), noble: figure(noble) };
}

/** Full path in-process: decode + policy + reserve + audit append (durable) + sign + verify. */
async function hotPath(store: StoreKind): Promise<{ c1: Figure; c16: Figure }> {
  const h: Harness = await startHarness({ store });
  try {
    const { agent, token } = await provisionAgent(h, { policy: usdcPolicy({ daily: (10n ** 30n).toString(), perRequest: '1000000' }) });
    const auth = await h.airlock.signing.authenticate(token);
    void agent;
    const c1: number[] = [];
    const c16: number[] = [];
    let nonce = 0;
    const sign = async () => {
      const out = await h.airlock.signing.sign(auth, 'evm.transaction', usdcTransfer(ALICE, 1n, nonce++));
      if (out.status !== 200) throw new Error(`unexpected ${out.status}`);
    };
    for (let r = 0; r < ROUNDS; r++) {
      c1.push(await opsPerSecond(quick ? 100 : 400, 1, sign));
      c16.push(await opsPerSecond(quick ? 200 : 800, 16, sign));
    }
    return { c1: figure(c1), c16: figure(c16) };
  } finally {
    await h.close();
  }
}

async function provisioning(store: StoreKind, count: number): Promise<number> {
  const h = await startHarness({ store });
  try {
    const t = performance.now();
    await h.airlock.operator.createAgents({ count }, 'bench');
    return (performance.now() - t) / 1000;
  } finally {
    await h.close();
  }
}

const base = await baseline();
console.log(`baseline: viem signTransaction ${fmt(base.viem)} ops/s, noble sign ${fmt(base.noble)} ops/s`);
const paths: Record<string, { c1: Figure; c16: Figure }> = {};
for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  paths[store] = await hotPath(store);
  console.log(`${store}: full path ${fmt(paths[store].c1)} ops/s sequential, ${fmt(paths[store].c16)} ops/s at concurrency 16`);
}
const agents = quick ? 1000 : 10_000;
const provision = { sqlite: await provisioning('sqlite', agents), postgres: await provisioning('postgres', agents) };
console.log(`provisioning ${agents} agents: sqlite ${provision.sqlite.toFixed(2)} s, postgres ${provision.postgres.toFixed(2)} s`);
const policyLines = execFileSync(process.execPath, [new URL('./policy.ts', import.meta.url).pathname], { encoding: 'utf8' }).trim().split('\n').filter((l) => /µs/.test(l));

const ratio = (f: Figure) => (f.median / base.viem.median).toFixed(2);
const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
const results = { date: new Date().toISOString(), machine, rounds: ROUNDS, quick, baseline: base, paths, provisioning: { agents, seconds: provision }, policy: policyLines };
writeFileSync(new URL('./results.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
const md = `# Benchmarks

Produced by \`npm run bench\` on ${results.date.slice(0, 10)}: ${machine}. Each figure is the median of ${ROUNDS}
rounds with the spread (min–max) in brackets; the baseline is measured in the same run, because these
machines are noisy. Raw numbers: \`bench/results.json\`.

## Signing: Airlock's full path vs. a hot key in the agent

| what | ops/s | ratio to baseline (viem) |
|---|---|---|
| baseline: viem \`privateKeyToAccount().signTransaction\` | ${fmt(base.viem)} | 1.00 |
| baseline: noble \`secp256k1.sign\` (raw digest) | ${fmt(base.noble)} | ${(base.noble.median / base.viem.median).toFixed(2)} |
| Airlock in-process, SQLite, sequential | ${fmt(paths.sqlite!.c1)} | ${ratio(paths.sqlite!.c1)} |
| Airlock in-process, SQLite, 16 concurrent | ${fmt(paths.sqlite!.c16)} | ${ratio(paths.sqlite!.c16)} |
| Airlock in-process, PostgreSQL, sequential | ${fmt(paths.postgres!.c1)} | ${ratio(paths.postgres!.c1)} |
| Airlock in-process, PostgreSQL, 16 concurrent | ${fmt(paths.postgres!.c16)} | ${ratio(paths.postgres!.c16)} |

"Full path" is what every signature pays: decode the transaction into an intent, load the policy layers and
fresh ledger totals inside the transaction, evaluate, reserve (ledger rows), append the hash-chained audit
entry, commit durably (SQLite WAL with synchronous=FULL; PostgreSQL commit), sign, and verify the signature
by recovering the address from the serialized transaction.

## Policy evaluation (µs per request)

\`\`\`
${policyLines.join('\n')}
\`\`\`

## Provisioning

${agents} agents (one derived key each, one transaction): SQLite ${provision.sqlite.toFixed(2)} s, PostgreSQL ${provision.postgres.toFixed(2)} s.

## Not measured yet

HTTP throughput and latency under a second-process load generator, rolling-window cost at 1M ledger entries,
and \`audit verify\` over 1M entries are part of the benchmark-suite issue and not in this report yet.
`;
writeFileSync(new URL('../docs/benchmarks.md', import.meta.url), md);
console.log('wrote docs/benchmarks.md and bench/results.json');
