// (7) Provisioning: time to create 10,000 agents (one derived key and address each, one store transaction,
// one audit entry), on SQLite and PostgreSQL, with each key backend (derivation is the key backend's work).
import { backends, harnessWith } from './in-process.ts';
import { figure, fmt, type BenchOptions, type Figure } from './lib/stats.ts';

export interface ProvisioningResult {
  agents: number;
  /** key `${store}/${backend}`: seconds per batch. */
  seconds: Record<string, Figure>;
}

export async function benchProvisioning(o: BenchOptions): Promise<ProvisioningResult> {
  const agents = o.quick ? 1000 : 10_000;
  const seconds: Record<string, Figure> = {};
  for (const store of ['sqlite', 'postgres'] as const) {
    for (const backend of backends()) {
      // The pure-JS derivation takes 15 to 25 s per 10k batch here: two rounds of it (reference only;
      // the daemon uses the native backend whenever the addon loads).
      const roundCount = backend === 'js' ? Math.min(o.rounds, 2) : o.rounds;
      const h = await harnessWith(store, backend);
      try {
        const rounds: number[] = [];
        for (let r = 0; r < roundCount; r++) {
          const t = performance.now();
          const created = await h.airlock.operator.createAgents({ count: agents, prefix: `r${r}` }, 'bench');
          rounds.push((performance.now() - t) / 1000);
          if (created.length !== agents) throw new Error(`created ${created.length} of ${agents}`);
        }
        seconds[`${store}/${backend}`] = figure(rounds);
        o.log(`  provisioning ${agents} agents, ${store}/${backend}: ${fmt(seconds[`${store}/${backend}`], 2)} s`);
      } finally {
        await h.close();
      }
    }
  }
  return { agents, seconds };
}
