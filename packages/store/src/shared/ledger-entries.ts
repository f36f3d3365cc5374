import { AirlockError, type LedgerWrite, type WindowTotal } from '@airlock/core';
import { mergeLedgerWrites } from './ledger-writes.ts';
import { toAmount } from './values.ts';

/**
 * The ledger keeps one entry per series a charge touches (schema 008): what the charge adds per asset
 * (`charges`), and the series' running totals per asset after it (`totals`), for every asset the series has
 * ever been charged. A window total for (series, asset) is then the asset's total in the series' head entry
 * minus its total in the last entry before the window: two seeks on the series, whatever the asset. Both
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

/** An entry's `totals`: the head's (none for a series' first entry) with the charged assets increased. */
export function totalsAfter(headTotals: unknown, charges: readonly LedgerWrite[]): string {
  const head = headTotals === null || headTotals === undefined ? undefined : parseTotals(headTotals);
  const entries: string[] = [];
  const charged = new Set<string>();
  for (const w of charges) {
    charged.add(w.asset);
    const prev = head && Object.hasOwn(head, w.asset) ? totalFromJson(head[w.asset]) : undefined;
    entries.push(prev ? entryJson(w.asset, prev.amount + w.amount, prev.count + w.count) : entryJson(w.asset, w.amount, w.count));
  }
  // Every other asset the series has had, as it was.
  if (head) for (const asset of Object.keys(head)) if (!charged.has(asset)) entries.push(`${JSON.stringify(asset)}:${JSON.stringify(head[asset])}`);
  return `{${entries.join(',')}}`;
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
