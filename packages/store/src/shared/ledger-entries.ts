import { AirlockError, COUNT_ASSET, type LedgerWrite, type WindowTotal } from '@airlock/core';
import { mergeLedgerWrites } from './ledger-writes.ts';
import { toAmount } from './values.ts';

/**
 * The ledger keeps one entry per series a charge touches (schema 008): what the charge adds per asset
 * (`charges`), and the series' running totals per asset after it (`totals`), for every asset the series keeps
 * (up to ASSETS_KEPT_PER_SERIES; further assets have series of their own, assetSeries). A window total for
 * (series, asset) is then the asset's total in the series' head entry minus its total in the last entry before
 * the window (two seeks, whatever the asset), plus the same in the asset's own series where it has one. Both
 * dialects store the two maps as JSON of this shape (amounts as decimal strings: they exceed 2^53; key order
 * carries no meaning):
 *
 *   {"<asset>": ["<amount>", <count>], ...}
 */
type AssetTotalsJson = Record<string, [string, number]>;

/** The writes of one charge, merged, grouped by series: one ledger entry each. */
export function chargesBySeries(writes: LedgerWrite[]): Map<string, LedgerWrite[]> {
  const bySeries = new Map<string, LedgerWrite[]>();
  for (const w of mergeLedgerWrites(writes)) {
    const charges = bySeries.get(w.series);
    if (charges) charges.push(w);
    else bySeries.set(w.series, [w]);
  }
  return bySeries;
}

/** An entry's `charges`: its series' merged writes. */
export function chargesJson(charges: readonly LedgerWrite[]): string {
  return `{${charges.map((w) => entryJson(w.asset, w.amount, w.count)).join(',')}}`;
}

/**
 * How many assets a series' running totals keep in its entries. A charge of an asset the head does not keep,
 * once it keeps this many, goes to the asset's own series instead (assetSeries): an agent whose rules list no
 * `assets` could otherwise sign transfers of thousands of worthless tokens and make every entry of a shared
 * series (the fleet, a popular destination) carry them all, slowing every other agent's signature and growing
 * the ledger with each (found by review: 3,000 such assets made the fleet entry 213 KB and another agent's
 * signature 4.5x slower). A window total reads both, so where a charge went never changes a total.
 */
export const ASSETS_KEPT_PER_SERIES = 32;

/**
 * The series an asset's charges go to once its series keeps no more assets: entries holding that asset alone.
 * No series the core names starts with U+0001, and the asset is JSON-quoted, so no two (series, asset) pairs
 * and no real series share a name.
 */
export function assetSeries(series: string, asset: string): string {
  return `\u0001${JSON.stringify(asset)}${series}`;
}

/**
 * The entry appended to a series with this head (none for its first entry): its `totals`, the head's with
 * the kept charges added, and its `charges`, those kept. An asset the head keeps stays, and new assets are
 * kept while the totals hold fewer than ASSETS_KEPT_PER_SERIES; the request count (`*`, which every rate
 * limit reads) always stays. The rest (`apart`) go to their assets' own series. So an asset goes apart only
 * once the head keeps that many assets, and never stays later: the reads look for an own series only then.
 * PostgreSQL makes the same split in SQL (postgres/ledger.ts).
 */
export function entryAfter(headTotals: unknown, charges: readonly LedgerWrite[]): { totals: string; kept: LedgerWrite[]; apart: LedgerWrite[] } {
  const head = headTotals === null || headTotals === undefined ? undefined : parseTotals(headTotals);
  let keeps = head ? Object.keys(head).length : 0;
  const kept: LedgerWrite[] = [];
  const apart: LedgerWrite[] = [];
  const entries: string[] = [];
  for (const w of charges) {
    const prev = head && Object.hasOwn(head, w.asset) ? totalFromJson(head[w.asset]) : undefined;
    if (prev) entries.push(entryJson(w.asset, prev.amount + w.amount, prev.count + w.count));
    else if (w.asset === COUNT_ASSET || keeps < ASSETS_KEPT_PER_SERIES) {
      keeps++;
      entries.push(entryJson(w.asset, w.amount, w.count));
    } else {
      apart.push(w);
      continue;
    }
    kept.push(w);
  }
  // Every other asset the series has had, as it was.
  const charged = new Set(kept.map((w) => w.asset));
  if (head) for (const asset of Object.keys(head)) if (!charged.has(asset)) entries.push(`${JSON.stringify(asset)}:${JSON.stringify(head[asset])}`);
  return { totals: `{${entries.join(',')}}`, kept, apart };
}

function entryJson(asset: string, amount: bigint, count: number): string {
  return `${JSON.stringify(asset)}:["${amount}",${count}]`;
}

/** Read with Object.hasOwn only: an asset named like an Object.prototype member must not read one. */
function parseTotals(text: unknown): AssetTotalsJson {
  const parsed: unknown = JSON.parse(String(text));
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw malformed();
  return parsed as AssetTotalsJson;
}

function totalFromJson(value: unknown): WindowTotal {
  if (!Array.isArray(value) || value.length !== 2 || typeof value[0] !== 'string' || !Number.isSafeInteger(value[1])) throw malformed();
  return { amount: toAmount(value[0]), count: value[1] as number };
}

function malformed(): AirlockError {
  return new AirlockError('internal', 'store returned malformed ledger totals');
}
