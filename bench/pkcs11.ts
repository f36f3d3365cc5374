// The signing path in-process with EVM agent keys in a PKCS#11 token (SoftHSM2), beside the default backend in the
// same run: decode + policy + reserve + audit append + sign in the token (CKM_ECDSA, random nonce) + low-S and
// recovery id + the released-signature row (a token is not deterministic, so what is released is kept for replays)
// + release check, on SQLite; sequential and 16 in flight over 16 agents, and idempotent replays (the stored bytes
// read back on PKCS#11; signed again, RFC 6979, on the default backend). Ratios are to viem's own signing in the
// same round (bench/baseline.ts). A section of `npm run bench` (`--only=pkcs11`), skipped with the reason when
// SoftHSM2 is not installed; alone: node bench/pkcs11.ts [--rounds N]
import { execFileSync } from 'node:child_process';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness } from '../packages/server/src/testing/harness.ts';
import { createSoftHsmToken, softHsmUnavailable } from '../packages/keys/src/softhsm-token.ts';
import { baselineRound } from './baseline.ts';
import { figure, opsPerSecond, type BenchOptions, type Figure } from './lib/stats.ts';

export type Pkcs11Result =
  | { skipped: string }
  | {
      /** `softhsm2-util --version`. */
      softhsm: string;
      viem: Figure;
      /**
       * key `sqlite/<backend>` (the default backend, then `sqlite/pkcs11`): ops/s sequential (c1), 16 in flight over
       * 16 agents (c16agents), idempotent replays of released requests, sequential (replayC1); ratios per round to viem.
       */
      paths: Record<string, { c1: Figure; c16agents: Figure; replayC1: Figure; ratioC1: Figure; ratioC16agents: Figure }>;
    };

async function setup(h: Harness) {
  const policy = usdcPolicy({ daily: (10n ** 30n).toString(), perRequest: '1000000' });
  const agents = await Promise.all(Array.from({ length: 16 }, async () => ({ auth: await h.airlock.signing.authenticate((await provisionAgent(h, { policy })).token), nonce: 0 })));
  let turn = 0;
  const one = agents[0]!;
  const sign = async (a = one, idempotencyKey?: string) => {
    const out = await h.airlock.signing.sign(a.auth, 'evm.transaction', usdcTransfer(ALICE, 1n, a.nonce++), idempotencyKey);
    if (out.status !== 200) throw new Error(`unexpected ${out.status}`);
  };
  // Released once under an Idempotency-Key, then asked again: every call after the first is a replay.
  const replayed = agents[1]!;
  const replayNonce = 1_000_000;
  const replay = async () => {
    const out = await h.airlock.signing.sign(replayed.auth, 'evm.transaction', usdcTransfer(ALICE, 1n, replayNonce), 'bench-replay');
    if (out.status !== 200) throw new Error(`unexpected ${out.status}`);
  };
  return { c1: () => sign(), c16: () => sign(agents[turn++ % agents.length]!), replay };
}

export async function benchPkcs11(o: BenchOptions): Promise<Pkcs11Result> {
  const why = softHsmUnavailable();
  if (why) return { skipped: why };
  const softhsm = execFileSync('softhsm2-util', ['--version'], { encoding: 'utf8' }).trim();
  const token = createSoftHsmToken('airlock-bench');
  const hsm = await startHarness({ store: 'sqlite', pkcs11: { library: token.library, tokenLabel: token.tokenLabel, pinFile: token.pinFile } });
  const vault = await startHarness({ store: 'sqlite' });
  try {
    const paths = { [`sqlite/${vault.airlock.deps.keys.kind}`]: await setup(vault), 'sqlite/pkcs11': await setup(hsm) };
    for (const p of Object.values(paths)) {
      await opsPerSecond(30, 1, p.c1); // warm-up
      await opsPerSecond(32, 16, p.c16);
      await opsPerSecond(10, 1, p.replay);
    }
    const n1 = o.quick ? 60 : 200;
    const n16 = o.quick ? 120 : 400;
    const raw: Record<string, { c1: number[]; c16agents: number[]; replayC1: number[]; ratioC1: number[]; ratioC16agents: number[] }> = {};
    const viem: number[] = [];
    for (let r = 0; r < o.rounds; r++) {
      const b = await baselineRound(o.quick ? 0.3 : 1);
      viem.push(b.viem);
      for (const [key, p] of Object.entries(paths)) {
        const slot = (raw[key] ??= { c1: [], c16agents: [], replayC1: [], ratioC1: [], ratioC16agents: [] });
        const c1 = await opsPerSecond(n1, 1, p.c1);
        const c16 = await opsPerSecond(n16, 16, p.c16);
        slot.c1.push(c1);
        slot.c16agents.push(c16);
        slot.replayC1.push(await opsPerSecond(n1, 1, p.replay));
        slot.ratioC1.push(c1 / b.viem);
        slot.ratioC16agents.push(c16 / b.viem);
      }
      o.log(`  pkcs11 round ${r + 1}/${o.rounds}: viem ${b.viem.toFixed(0)}/s; ${Object.entries(raw).map(([k, v]) => `${k} c1 ${v.c1.at(-1)!.toFixed(0)}/s c16x16 ${v.c16agents.at(-1)!.toFixed(0)}/s replay ${v.replayC1.at(-1)!.toFixed(0)}/s`).join('; ')}`);
    }
    const out: Record<string, { c1: Figure; c16agents: Figure; replayC1: Figure; ratioC1: Figure; ratioC16agents: Figure }> = {};
    for (const [key, v] of Object.entries(raw)) out[key] = { c1: figure(v.c1), c16agents: figure(v.c16agents), replayC1: figure(v.replayC1), ratioC1: figure(v.ratioC1), ratioC16agents: figure(v.ratioC16agents) };
    return { softhsm, viem: figure(viem), paths: out };
  } finally {
    await hsm.close();
    await vault.close();
    token.remove();
  }
}

// Alone: node bench/pkcs11.ts [--rounds N] prints the figures (bench/run.ts --only=pkcs11 also renders them).
if (import.meta.main) {
  const at = process.argv.indexOf('--rounds');
  const rounds = at > 0 ? Number(process.argv[at + 1]) : 3;
  const result = await benchPkcs11({ rounds, quick: false, log: (line) => console.log(line) });
  if ('skipped' in result) console.log(`skipped: ${result.skipped}`);
  else {
    console.log(`${result.softhsm}; median viem ${result.viem.median.toFixed(0)}/s`);
    for (const [key, v] of Object.entries(result.paths)) {
      console.log(`${key}: c1 ${v.c1.median.toFixed(0)}/s (x${v.ratioC1.median.toFixed(2)} viem), 16 agents in flight ${v.c16agents.median.toFixed(0)}/s (x${v.ratioC16agents.median.toFixed(2)} viem), replay c1 ${v.replayC1.median.toFixed(0)}/s`);
    }
  }
  process.exit(0);
}
