// (2) The whole signing path in-process: decode + policy + reserve + audit append (durable) + sign +
// verify (public-key recovery on the serialized transaction), per second, on SQLite and PostgreSQL, with
// the pure-JS and the native backend. Each round measures the baseline first, so ratios are same-round.
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from '../packages/server/src/testing/harness.ts';
import { NativeKeyBackend } from '../packages/keys/src/index.ts';
import { baselineRound } from './baseline.ts';
import { figure, opsPerSecond, type BenchOptions, type Figure } from './lib/stats.ts';

export type Backend = 'js' | 'native';
export const backends = (): Backend[] => (NativeKeyBackend.available() ? ['js', 'native'] : ['js']);

export interface InProcessResult {
  baseline: { viem: Figure; noble: Figure; native?: Figure };
  /**
   * key `${store}/${backend}`: ops/s sequential (c1), 16 in flight for one agent (c16) and 16 in flight
   * spread over 16 agents (c16agents, the issue-8 target), with per-round ratios to viem.
   */
  paths: Record<string, { c1: Figure; c16: Figure; ratioC1: Figure; c16agents?: Figure; ratioC16agents?: Figure }>;
}

/** Starts a harness whose runtime picks `backend` (the composition root reads AIRLOCK_KEY_BACKEND). */
export async function harnessWith(store: StoreKind, backend: Backend): Promise<Harness> {
  const before = process.env.AIRLOCK_KEY_BACKEND;
  process.env.AIRLOCK_KEY_BACKEND = backend;
  try {
    const h = await startHarness({ store });
    if (h.airlock.keyBackend.kind !== backend) throw new Error(`asked for ${backend}, got ${h.airlock.keyBackend.kind}`);
    return h;
  } finally {
    if (before === undefined) delete process.env.AIRLOCK_KEY_BACKEND;
    else process.env.AIRLOCK_KEY_BACKEND = before;
  }
}

export async function benchInProcess(o: BenchOptions): Promise<InProcessResult> {
  const setups: { key: string; h: Harness; sign: () => Promise<void>; signMany: () => Promise<void> }[] = [];
  try {
    for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
      for (const backend of backends()) {
        const h = await harnessWith(store, backend);
        const { token } = await provisionAgent(h, { policy: usdcPolicy({ daily: (10n ** 30n).toString(), perRequest: '1000000' }) });
        const auth = await h.airlock.signing.authenticate(token);
        let nonce = 0;
        const sign = async () => {
          const out = await h.airlock.signing.sign(auth, 'evm.transaction', usdcTransfer(ALICE, 1n, nonce++));
          if (out.status !== 200) throw new Error(`unexpected ${out.status}`);
        };
        // Sixteen independent agents, each signing its own transfers, taken in turn.
        const many = await Promise.all(Array.from({ length: 16 }, async () => {
          const p = await provisionAgent(h, { policy: usdcPolicy({ daily: (10n ** 30n).toString(), perRequest: '1000000' }) });
          return { auth: await h.airlock.signing.authenticate(p.token), nonce: 0 };
        }));
        let turn = 0;
        const signMany = async () => {
          const a = many[turn++ % many.length]!;
          const out = await h.airlock.signing.sign(a.auth, 'evm.transaction', usdcTransfer(ALICE, 1n, a.nonce++));
          if (out.status !== 200) throw new Error(`unexpected ${out.status}`);
        };
        setups.push({ key: `${store}/${backend}`, h, sign, signMany });
        await opsPerSecond(30, 1, sign); // warm-up: JIT, caches, connection pool
        await opsPerSecond(32, 16, signMany);
      }
    }
    const base = { viem: [] as number[], noble: [] as number[], native: [] as number[] };
    const raw: Record<string, { c1: number[]; c16: number[]; ratioC1: number[]; c16agents: number[]; ratioC16agents: number[] }> = {};
    const n1 = o.quick ? 60 : 250;
    const n16 = o.quick ? 120 : 500;
    for (let r = 0; r < o.rounds; r++) {
      const b = await baselineRound(o.quick ? 0.3 : 1);
      base.viem.push(b.viem);
      base.noble.push(b.noble);
      if (b.native !== undefined) base.native.push(b.native);
      for (const s of setups) {
        const slot = (raw[s.key] ??= { c1: [], c16: [], ratioC1: [], c16agents: [], ratioC16agents: [] });
        const c1 = await opsPerSecond(n1, 1, s.sign);
        slot.c1.push(c1);
        slot.ratioC1.push(c1 / b.viem);
        slot.c16.push(await opsPerSecond(n16, 16, s.sign));
        const many = await opsPerSecond(n16, 16, s.signMany);
        slot.c16agents.push(many);
        slot.ratioC16agents.push(many / b.viem);
      }
      o.log(`  in-process round ${r + 1}/${o.rounds}: viem ${b.viem.toFixed(0)}/s; ${setups.map((s) => `${s.key} c1 ${raw[s.key]!.c1.at(-1)!.toFixed(0)}/s c16x16 ${raw[s.key]!.c16agents.at(-1)!.toFixed(0)}/s`).join(', ')}`);
    }
    const paths: InProcessResult['paths'] = {};
    for (const [key, v] of Object.entries(raw)) {
      paths[key] = { c1: figure(v.c1), c16: figure(v.c16), ratioC1: figure(v.ratioC1), c16agents: figure(v.c16agents), ratioC16agents: figure(v.ratioC16agents) };
    }
    return { baseline: { viem: figure(base.viem), noble: figure(base.noble), ...(base.native.length ? { native: figure(base.native) } : {}) }, paths };
  } finally {
    for (const s of setups) await s.h.close();
  }
}
