import { get } from '../api.js';
import { ErrorNote, Loading, StatusBadge, useLoad } from '../components.js';
import { formatTime, shortHex } from '../format.js';
import { html } from '../html.js';
import { SpendCharts } from '../spend-charts.js';

/** Fleet overview: how many agents in which state, what waits for a human, spend against budgets, every agent. */
export function FleetPage() {
  const agents = useLoad(() => get('/v1/agents?limit=500'));
  const approvals = useLoad(() => get('/v1/approvals'));
  const list = agents.data?.agents ?? [];
  const pendingBy = new Map();
  for (const a of approvals.data?.approvals ?? []) pendingBy.set(a.agentId, (pendingBy.get(a.agentId) ?? 0) + 1);
  const count = (status) => list.filter((a) => a.status === status).length;
  return html`<section aria-labelledby="page-title">
    <h1 id="page-title" tabindex="-1">Fleet</h1>
    <ul class="stats" aria-label="Fleet at a glance">
      <li><span class="stat-value">${list.length}</span> agents</li>
      <li><span class="stat-value">${count('active')}</span> active</li>
      <li><span class="stat-value">${count('frozen')}</span> frozen</li>
      <li><span class="stat-value">${count('retired')}</span> retired</li>
      <li><a href="#/approvals"><span class="stat-value">${approvals.data?.approvals.length ?? '…'}</span> pending approvals</a></li>
    </ul>
    <h2>Spend and budgets</h2>
    <${SpendCharts} idPrefix="fleet" />
    <h2>Agents</h2>
    ${agents.loading && !agents.data ? html`<${Loading} what="Loading agents" />` : null}
    <${ErrorNote} error=${agents.error} />
    ${agents.data
      ? html`<div class="table-wrap"><table>
          <caption class="visually-hidden">Agents</caption>
          <thead><tr><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Address</th><th scope="col" class="num">Pending</th><th scope="col">Created</th></tr></thead>
          <tbody>${list.map((a) => html`<tr>
            <th scope="row"><a href=${`#/agents/${encodeURIComponent(a.name)}`}>${a.name}</a></th>
            <td><${StatusBadge} status=${a.status} /></td>
            <td><code title=${a.address}>${shortHex(a.address, 8, 6)}</code></td>
            <td class="num">${pendingBy.get(a.id) ?? 0}</td>
            <td>${formatTime(a.createdAt)}</td>
          </tr>`)}</tbody>
        </table></div>
        ${list.length === 0 ? html`<p class="muted">No agents yet: create them with <code>airlock agents create</code>.</p>` : null}`
      : null}
  </section>`;
}
