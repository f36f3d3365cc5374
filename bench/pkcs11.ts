// The signing path in-process with EVM agent keys in a PKCS#11 token (SoftHSM2), beside the default backend in the
// same run: decode + policy + reserve + audit append + sign in the token (CKM_ECDSA, random nonce) + low-S and
// recovery id + release check, on SQLite; sequential and 16 in flight over 16 agents. Ratios are to viem's own
// signing in the same round (bench/baseline.ts). Not part of `npm run bench` (it needs SoftHSM2): run it alone,
//   node bench/pkcs11.ts [--rounds N]
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness } from '../packages/server/src/testing/harness.ts';
import { createSoftHsmToken, softHsmUnavailable } from '../packages/keys/src/softhsm-token.ts';
import { baselineRound } from './baseline.ts';
import { figure, opsPerSecond } from './lib/stats.ts';

const why = softHsmUnavailable();
if (why) {
  console.log(`skipped: ${why}`);
  process.exit(0);
}
const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1] || 3);

async function setup(h: Harness) {
  const policy = usdcPolicy({ daily: (10n ** 30n).toString(), perRequest: '1000000' });
  const agents = await Promise.all(Array.from({ length: 16 }, async () => ({ auth: await h.airlock.signing.authenticate((await provisionAgent(h, { policy })).token), nonce: 0 })));
  let turn = 0;
  const one = agents[0]!;
  const sign = async (a = one) => {
    const out = await h.airlock.signing.sign(a.auth, 'evm.transaction', usdcTransfer(ALICE, 1n, a.nonce++));
    if (out.status !== 200) throw new Error(`unexpected ${out.status}`);
  };
  return { c1: () => sign(), c16: () => sign(agents[turn++ % agents.length]!) };
}

const token = createSoftHsmToken('airlock-bench');
const hsm = await startHarness({ store: 'sqlite', pkcs11: { library: token.library, tokenLabel: token.tokenLabel, pinFile: token.pinFile } });
const vault = await startHarness({ store: 'sqlite' });
try {
  const paths = { [`sqlite/${vault.airlock.deps.keys.kind}`]: await setup(vault), 'sqlite/pkcs11': await setup(hsm) };
  for (const p of Object.values(paths)) {
    await opsPerSecond(30, 1, p.c1); // warm-up
    await opsPerSecond(32, 16, p.c16);
  }
  const raw: Record<string, { c1: number[]; c16: number[]; r1: number[]; r16: number[] }> = {};
  const viem: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const b = await baselineRound(1);
    viem.push(b.viem);
    for (const [key, p] of Object.entries(paths)) {
      const slot = (raw[key] ??= { c1: [], c16: [], r1: [], r16: [] });
      const c1 = await opsPerSecond(200, 1, p.c1);
      const c16 = await opsPerSecond(400, 16, p.c16);
      slot.c1.push(c1);
      slot.c16.push(c16);
      slot.r1.push(c1 / b.viem);
      slot.r16.push(c16 / b.viem);
    }
    console.log(`round ${r + 1}/${rounds}: viem ${b.viem.toFixed(0)}/s; ${Object.entries(raw).map(([k, v]) => `${k} c1 ${v.c1.at(-1)!.toFixed(0)}/s c16x16 ${v.c16.at(-1)!.toFixed(0)}/s`).join('; ')}`);
  }
  console.log(`median viem ${figure(viem).median.toFixed(0)}/s`);
  for (const [key, v] of Object.entries(raw)) {
    console.log(`${key}: c1 ${figure(v.c1).median.toFixed(0)}/s (x${figure(v.r1).median.toFixed(2)} viem), 16 agents in flight ${figure(v.c16).median.toFixed(0)}/s (x${figure(v.r16).median.toFixed(2)} viem)`);
  }
} finally {
  await hsm.close();
  await vault.close();
  token.remove();
}
