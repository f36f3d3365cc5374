/**
 * Ledger series: every allowed (or held) request charges a fixed set of series, so that
 * any budget rule, including one added later, can be answered from history.
 *
 * Series names:
 *   fleet | agent:<agentId> | session:<sessionId>
 *   fleet|to:<addr> | agent:<agentId>|to:<addr>      (per-destination)
 *   fleet|origin:<origin> | agent:<agentId>|origin:<origin>   (x402 payments naming a resource)
 *   agent:<agentId>|resource:<url>                    (x402 payments naming a resource)
 *   agent:<agentId>|refused, agent:<agentId>|hour:<h>  (detectors that read them; see policy/detectors)
 * Asset is a CAIP-19 id, or `*` for the request-count series (amount 0, count 1). An origin or resource longer
 * than 2,048 bytes is named by its SHA-256 instead (`|origin:sha256:<hex>`, seriesPart).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';

/** The asset of request-count series: amount 0, count 1 per signature. */
export const COUNT_ASSET = '*';

export interface LedgerWrite {
  series: string;
  asset: string;
  amount: bigint;
  count: number;
}

/** A rolling-window question: how much was charged to (series, asset) at or after `sinceMs`? */
export interface WindowQuery {
  series: string;
  asset: string;
  sinceMs: number;
  /**
   * Detectors only (StoreTx.detectorTotals; a budget's read never sets it): the ledger's charges alone, no pending
   * hold (a request held for approval, a reserved x402 payment, a Lightning payment in flight). new_destination
   * asks whether the fleet was ever charged for a payee: a request held for a human is no payment (found by
   * review: one agent's held request made its payee look paid, and the next agent's payment to it was signed
   * with no finding).
   */
  chargesOnly?: true;
}

export interface WindowTotal {
  amount: bigint;
  count: number;
}

export function windowKey(q: WindowQuery): string {
  const key = `${q.series}\u0000${q.asset}\u0000${q.sinceMs}`;
  return q.chargesOnly ? `${key}\u0000charges` : key;
}

/** What policy reads: totals prefetched for the queries it declared. */
export interface LedgerView {
  total(query: WindowQuery): WindowTotal;
}

/**
 * Builds the view policy reads from. Lookups go through nested maps (series -> asset -> since) so the
 * hot path builds no composite string keys: one evaluation at 100 rules does hundreds of lookups.
 */
export function ledgerViewFrom(queries: WindowQuery[], totals: WindowTotal[]): LedgerView {
  const withHolds = new Map<string, Map<string, Map<number, WindowTotal>>>();
  // Charges-only windows (detectors) apart: the same window with its holds is another answer.
  const chargesOnly = new Map<string, Map<string, Map<number, WindowTotal>>>();
  queries.forEach((q, i) => {
    const bySeries = q.chargesOnly ? chargesOnly : withHolds;
    let byAsset = bySeries.get(q.series);
    if (!byAsset) bySeries.set(q.series, (byAsset = new Map()));
    let bySince = byAsset.get(q.asset);
    if (!bySince) byAsset.set(q.asset, (bySince = new Map()));
    bySince.set(q.sinceMs, totals[i] ?? { amount: 0n, count: 0 });
  });
  return {
    total(query) {
      const t = (query.chargesOnly ? chargesOnly : withHolds).get(query.series)?.get(query.asset)?.get(query.sinceMs);
      // Fail closed: a rule that reads a window nobody prefetched is a programming error.
      if (!t) throw new Error(`ledger window not prefetched: ${query.series} ${query.asset}`);
      return t;
    },
  };
}

/**
 * The longest origin or resource a series name holds as written, in UTF-8 bytes: the longest URL a request may
 * give. A series name is part of PostgreSQL index keys, which hold at most 2,704 bytes, and the URL parser makes a
 * 2,048-character URL up to 9 times longer (percent-escapes of its path, punycode of its host): such a payment was
 * refused on PostgreSQL (found by review).
 */
const SERIES_PART_AS_WRITTEN_MAX_BYTES = 2048;

/** An agent-chosen part of a series name, named by its SHA-256 when longer than an index key comfortably holds. */
function seriesPart(part: string): string {
  const bytes = utf8ToBytes(part);
  return bytes.length <= SERIES_PART_AS_WRITTEN_MAX_BYTES ? part : `sha256:${bytesToHex(sha256(bytes))}`;
}

export const seriesFor = {
  fleet: () => 'fleet',
  agent: (agentId: string) => `agent:${agentId}`,
  session: (sessionId: string) => `session:${sessionId}`,
  withDestination: (series: string, to: string) => `${series}|to:${to.toLowerCase()}`,
  /** Per paid-resource origin (x402): `agent:<id>|origin:<origin>`, `fleet|origin:<origin>`. */
  withOrigin: (series: string, origin: string) => `${series}|origin:${seriesPart(origin)}`,
  /** Per paid resource (x402; URL without query): `agent:<id>|resource:<url>`. */
  withResource: (series: string, resource: string) => `${series}|resource:${seriesPart(resource)}`,
  /** Per Nostr event kind: `agent:<id>|nostr-kind:1`, `fleet|nostr-kind:1` (rate_limit per_nostr_kind). */
  withNostrKind: (series: string, kind: number) => `${series}|nostr-kind:${kind}`,
  /** The agent's policy refusals (refusal_run detectors; written only where one is configured). */
  refusals: (agentId: string) => `agent:${agentId}|refused`,
  /** The agent's requests per UTC hour of day, and all of them (off_hours detectors; likewise). */
  hourOfDay: (agentId: string, hour: number) => `agent:${agentId}|hour:${hour}`,
  allHours: (agentId: string) => `agent:${agentId}|hour:*`,
};
