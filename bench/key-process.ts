// The signing path with the keys in a separate key process (docs/custody.md, "Separate key process") against
// the same path with the key backend in-process: one store (SQLite), one set of agents, the same run. The key
// process is its own OS process (bench/key-process-child.ts) on a Unix socket; the daemon side is a second
// Airlock instance on the same store whose KeyBackend is the RemoteKeyBackend. Each round measures both, so
// the ratio is same-round.
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness } from '../packages/server/src/testing/harness.ts';
import { openAirlock, type Airlock } from '../packages/server/src/runtime.ts';
import { figure, opsPerSecond, type BenchOptions, type Figure } from './lib/stats.ts';

export interface KeyProcessResult {
  backend: string;
  /** ops/s, one request at a time and 16 in flight over 16 agents; `ratio*`: key process / in-process, per round. */
  inProcess: { c1: Figure; c16agents: Figure };
  keyProcess: { c1: Figure; c16agents: Figure };
  ratioC1: Figure;
  ratioC16agents: Figure;
  /** Added time per signature, sequential: 1/c1(key process) - 1/c1(in-process), in ms. */
  addedMsC1: Figure;
}

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');

export async function benchKeyProcess(o: BenchOptions): Promise<KeyProcessResult> {
  const h: Harness = await startHarness({ store: 'sqlite' });
  const socket = join(h.config.dataDir, 'keys.sock');
  const child = spawn(join(ROOT, 'node_modules/.bin/node'), [join(ROOT, 'bench/key-process-child.ts'), h.config.storeUrl, h.config.vaultPath, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  let remote: Airlock | undefined;
  try {
    await new Promise<void>((ready, fail) => {
      child.stdout!.on('data', (c: Buffer) => c.toString().includes('ready') && ready());
      child.once('exit', (code) => fail(new Error(`key process exited (${code})`)));
    });
    remote = await openAirlock(h.config, { keyProcess: socket }, { timers: false });
    const agents = await Promise.all(Array.from({ length: 16 }, () => provisionAgent(h, { policy: usdcPolicy({ daily: (10n ** 30n).toString(), perRequest: '1000000' }) })));
    const path = (airlock: Airlock) => {
      let turn = 0;
      const signers = agents.map((a) => ({ token: a.token, auth: undefined as Awaited<ReturnType<Airlock['signing']['authenticate']>> | undefined }));
      let nonce = 0;
      return async () => {
        const s = signers[turn++ % signers.length]!;
        s.auth ??= await airlock.signing.authenticate(s.token);
        const out = await airlock.signing.sign(s.auth, 'evm.transaction', usdcTransfer(ALICE, 1n, nonce++));
        if (out.status !== 200) throw new Error(`unexpected ${out.status}: ${JSON.stringify(out.body)}`);
      };
    };
    // Each side signs its own nonces: the two instances never sign the same request.
    const local = path(h.airlock);
    const viaKeyProcess = path(remote);
    const sequential = { local: path(h.airlock), remote: path(remote) };
    for (const sign of [local, viaKeyProcess, sequential.local, sequential.remote]) await opsPerSecond(40, 1, sign); // warm-up
    const n1 = o.quick ? 60 : 250;
    const n16 = o.quick ? 120 : 500;
    const raw = { l1: [] as number[], r1: [] as number[], l16: [] as number[], r16: [] as number[], ratio1: [] as number[], ratio16: [] as number[], added: [] as number[] };
    for (let r = 0; r < o.rounds; r++) {
      const l1 = await opsPerSecond(n1, 1, sequential.local);
      const r1 = await opsPerSecond(n1, 1, sequential.remote);
      const l16 = await opsPerSecond(n16, 16, local);
      const r16 = await opsPerSecond(n16, 16, viaKeyProcess);
      raw.l1.push(l1); raw.r1.push(r1); raw.l16.push(l16); raw.r16.push(r16);
      raw.ratio1.push(r1 / l1); raw.ratio16.push(r16 / l16); raw.added.push(1000 / r1 - 1000 / l1);
      o.log(`  key process round ${r + 1}/${o.rounds}: in-process c1 ${l1.toFixed(0)}/s c16x16 ${l16.toFixed(0)}/s; key process c1 ${r1.toFixed(0)}/s c16x16 ${r16.toFixed(0)}/s`);
    }
    return {
      backend: h.airlock.keyBackend.kind,
      inProcess: { c1: figure(raw.l1), c16agents: figure(raw.l16) },
      keyProcess: { c1: figure(raw.r1), c16agents: figure(raw.r16) },
      ratioC1: figure(raw.ratio1),
      ratioC16agents: figure(raw.ratio16),
      addedMsC1: figure(raw.added),
    };
  } finally {
    await remote?.close();
    child.kill('SIGTERM');
    await h.close();
  }
}
