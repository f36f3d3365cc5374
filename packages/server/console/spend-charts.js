import { get, qs } from './api.js';
import { COLORS, TimeChart } from './chart.js';
import { ErrorNote, Loading, useLoad } from './components.js';
import { groupDigits, shortAsset } from './format.js';
import { html } from './html.js';

/**
 * Spend per hour and budget use over the last 24 hours, for the fleet or one agent (GET /v1/spend).
 * Amounts are base units of each asset; the chart plots them as numbers (exact values are in the table).
 */
export function SpendCharts({ agent, idPrefix }) {
  const { data, error, loading } = useLoad(() => get(`/v1/spend${qs({ agent, bucket: '1h' })}`), [agent]);
  if (loading && !data) return html`<${Loading} what="Loading spend" />`;
  if (error) return html`<${ErrorNote} error=${error} />`;
  const edges = data.edges.map((t) => new Date(t).getTime());
  const starts = edges.slice(0, -1);
  const ends = edges.slice(1);
  const who = agent ? `agent ${data.agent?.name ?? agent}` : 'the fleet';
  const total = (a) => a.amounts.reduce((n, v) => n + BigInt(v), 0n);
  return html`<div class="charts">
    ${data.assets.length === 0
      ? html`<p class="muted">No budget rule names an asset for ${who}, so there is nothing to chart yet.</p>`
      : html`<${TimeChart}
          id=${`${idPrefix}-spend`}
          caption=${`Spend per hour, last 24 hours (${who}, base units)`}
          summary=${`Bar chart of spend per hour for ${who}. ${data.assets.map((a) => `${shortAsset(a.asset)}: ${groupDigits(total(a).toString())} in total`).join('; ')}.`}
          x=${starts.map((t) => t + data.bucketMs / 2)}
          padMs=${data.bucketMs / 2}
          tableX=${starts}
          tableXLabel="Hour from"
          series=${data.assets.map((a, i) => ({ label: shortAsset(a.asset), values: a.amounts.map(Number), color: COLORS[i % COLORS.length], bars: true }))}
        />`}
    ${data.budgets.length === 0
      ? html`<p class="muted">No ${agent ? 'agent' : 'fleet'}-scope budget rule applies to ${who}.</p>`
      : html`<${TimeChart}
          id=${`${idPrefix}-budgets`}
          caption=${`Budget use over each rule's window, against its limit (${who})`}
          summary=${`Line chart of budget use for ${who}. ${data.budgets.map((b) => `${b.rule}: ${groupDigits(b.used)} of ${groupDigits(b.max)} used now over ${b.window}`).join('; ')}.`}
          x=${ends}
          tableXLabel="At"
          series=${data.budgets.flatMap((b, i) => [
            { label: `${b.rule} used (${b.window})`, values: b.usedAt.map(Number), color: COLORS[i % COLORS.length] },
            { label: `${b.rule} limit`, values: ends.map(() => Number(b.max)), color: COLORS[i % COLORS.length], dash: true },
          ])}
        />
        <table class="budget-table">
          <caption>Budgets now (pending approvals included, as policy counts them)</caption>
          <thead><tr><th scope="col">Rule</th><th scope="col">Asset</th><th scope="col">Window</th><th scope="col" class="num">Used</th><th scope="col" class="num">Limit</th><th scope="col">Share</th></tr></thead>
          <tbody>${data.budgets.map((b) => {
            const pct = BigInt(b.max) === 0n ? 100 : Number((BigInt(b.used) * 1000n) / BigInt(b.max)) / 10;
            return html`<tr>
              <th scope="row">${b.rule}</th><td title=${b.asset}>${shortAsset(b.asset)}</td><td>${b.window}</td>
              <td class="num">${groupDigits(b.used)}</td><td class="num">${groupDigits(b.max)}</td>
              <td><meter min="0" max="100" low="70" high="90" optimum="0" value=${Math.min(pct, 100)} aria-label=${`${b.rule}: ${pct}% used`}></meter> ${pct}%</td>
            </tr>`;
          })}</tbody>
        </table>`}
  </div>`;
}
