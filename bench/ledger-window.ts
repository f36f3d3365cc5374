// (5) Rolling-window budget check: `tx.windowTotals` for the query set a realistic policy asks for, with
// 10k, 100k and 1M prior ledger entries. The ledger is filled with direct SQL mirroring appendLedger
// (packages/store/src/*/ledger.ts): per series a running seq, non-decreasing `at`, each entry charging every
// asset the policy reads (amount, count 1) with the running totals (schema 008: one entry per series and
// charge, the series' last key is its head). Must stay flat.
import { compilePolicy, requiredWindows, type PolicyLayer, type WindowQuery } from '../packages/core/src/index.ts';
import { sampleInput } from './policy.ts';
import { scratchStore, insertAll, type StoreKind } from './lib/scratch-store.ts';
import { figure, fmt, type BenchOptions, type Figure } from './lib/stats.ts';

const USDC = 'eip155:8453/erc20:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
const DAY = 86_400_000;
const HISTORY_MS = 30 * DAY;
const AMOUNT = 1_000_000n;

/** Budgets over four windows at agent, fleet and per-destination scope, plus two rate limits. */
function realisticQueries(nowMs: number): WindowQuery[] {
  const rules = [
    ...['1h', '24h', '7d', '30d'].map((window) => ({ name: `agent-${window}`, type: 'budget', asset: USDC, max: '1000000000000', window, scope: 'agent' })),
    { name: 'fleet-24h', type: 'budget', asset: USDC, max: '1000000000000', window: '24h', scope: 'fleet' },
    { name: 'per-destination-24h', type: 'budget', asset: USDC, max: '1000000000000', window: '24h', scope: 'agent', per: 'destination' },
    { name: 'rate-1m', type: 'rate_limit', max: 1000, window: '1m' },
    { name: 'rate-1h', type: 'rate_limit', max: 100000, window: '1h' },
  ];
  let policy;
  try {
    policy = compilePolicy({ version: 1, rules });
  } catch {
    // `per: destination` may not be a budget option: fall back to the rules every version accepts.
    policy = compilePolicy({ version: 1, rules: rules.filter((r) => !('per' in r)) });
  }
  const layers: PolicyLayer[] = [{ layer: 'agent', label: 'agent@1:bench', policy }];
  return requiredWindows(layers, { ...sampleInput, nowMs });
}

export interface LedgerWindowResult {
  queries: number;
  series: number;
  /** key `${store}/${entries}`: µs per windowTotals call (the whole query set). */
  cells: Record<string, { store: StoreKind; entries: number; micros: Figure }>;
  /** 1M over 10k, per store (median). */
  growth: Record<string, number>;
}

export async function benchLedgerWindow(o: BenchOptions): Promise<LedgerWindowResult> {
  const sizes = o.quick ? [10_000, 100_000] : [10_000, 100_000, 1_000_000];
  const nowMs = Date.now();
  const queries = realisticQueries(nowMs);
  const assetsBySeries = new Map<string, string[]>();
  for (const q of queries) {
    const assets = assetsBySeries.get(q.series) ?? [];
    if (!assets.includes(q.asset)) assets.push(q.asset);
    assetsBySeries.set(q.series, assets);
  }
  const amountOf = (asset: string) => (asset === '*' ? 0n : AMOUNT);
  const json = (assets: string[], i: number) => `{${assets.map((a) => `${JSON.stringify(a)}:["${amountOf(a) * BigInt(i)}",${i}]`).join(',')}}`;
  const cells: LedgerWindowResult['cells'] = {};
  const growth: Record<string, number> = {};
  for (const kind of ['sqlite', 'postgres'] as StoreKind[]) {
    for (const entries of sizes) {
      const s = await scratchStore(kind);
      try {
        const perSeries = Math.ceil(entries / assetsBySeries.size);
        const step = Math.floor(HISTORY_MS / perSeries);
        const t0 = nowMs - HISTORY_MS;
        const started = performance.now();
        await s.fill({
          sqlite(db) {
            for (const [series, assets] of assetsBySeries) {
              insertAll(db, 'INSERT INTO ledger (series, at, seq, audit_seq, charges, kept_totals) VALUES (?, ?, ?, ?, ?, ?)', (function* () {
                for (let i = 1; i <= perSeries; i++) yield [series, t0 + i * step, i, i, json(assets, 1), json(assets, i)];
              })());
            }
          },
          async postgres(client) {
            for (const [series, assets] of assetsBySeries) {
              await client.query(
                `INSERT INTO ledger (series, at, seq, audit_seq, charges, kept_totals)
                 SELECT $1, $2::bigint + g * $3::bigint, g, g,
                        (SELECT jsonb_object_agg(a.asset, jsonb_build_array(a.amount::text, 1)) FROM unnest($4::text[], $5::numeric[]) AS a(asset, amount)),
                        (SELECT jsonb_object_agg(a.asset, jsonb_build_array((a.amount * g)::text, g)) FROM unnest($4::text[], $5::numeric[]) AS a(asset, amount))
                 FROM generate_series(1, $6::bigint) g`,
                [series, t0, step, assets, assets.map((a) => amountOf(a).toString()), perSeries],
              );
            }
          },
        });
        const fillSeconds = (performance.now() - started) / 1000;
        // Sanity: the 30-day window sees the whole history; the 1-hour window only its share.
        const totals = await s.store().transaction((tx) => tx.windowTotals(queries));
        if (!totals.some((t) => t.count >= perSeries - 1)) throw new Error(`ledger fill not visible: ${JSON.stringify(totals.map((t) => t.count))}`);
        const calls = o.quick ? 200 : 1000;
        const rounds: number[] = [];
        await s.store().transaction(async (tx) => {
          for (let i = 0; i < 50; i++) await tx.windowTotals(queries); // warm-up: statement cache, pages
          for (let r = 0; r < o.rounds; r++) {
            const t = performance.now();
            for (let i = 0; i < calls; i++) await tx.windowTotals(queries);
            rounds.push(((performance.now() - t) * 1000) / calls);
          }
        });
        cells[`${kind}/${entries}`] = { store: kind, entries, micros: figure(rounds) };
        o.log(`  window check ${kind}, ${entries} entries (filled in ${fillSeconds.toFixed(1)} s): ${fmt(cells[`${kind}/${entries}`]!.micros, 1)} µs per ${queries.length}-query set`);
      } finally {
        await s.close();
      }
    }
    growth[kind] = cells[`${kind}/${sizes.at(-1)}`]!.micros.median / cells[`${kind}/${sizes[0]}`]!.micros.median;
  }
  return { queries: queries.length, series: assetsBySeries.size, cells, growth };
}
