// Circuit breakers and alert entries, shared by the alerts page and the agent page. The audit API filters by
// exact type, so the alert and breaker entries are read type by type (one indexed query each) and merged.
import { get, post, qs } from './api.js';
import { ConfirmButton, ErrorNote, Loading, StatusBadge, useLoad } from './components.js';
import { formatTime, groupDigits } from './format.js';
import { html } from './html.js';

/** Detector alerts (`alert.<detector type>`), the daemon's own alerts, and breaker trips and resets. */
export const ANOMALY_TYPES = [
  'alert.request_burst', 'alert.spend_burst', 'alert.refusal_run', 'alert.new_destination', 'alert.off_hours',
  'alert.destination_wave', 'alert.fleet_spend_burst', 'alert.reconciler', 'alert.settlement_mismatch', 'alert.lightning',
  'breaker.tripped', 'breaker.reset',
];

/** The newest anomaly entries (of one agent, or all), newest first. */
export async function loadAnomalyEntries(agent, limit = 50) {
  const pages = await Promise.all(ANOMALY_TYPES.map((type) => get(`/v1/audit${qs({ type, agent, order: 'newest', limit })}`)));
  return pages.flatMap((p) => p.entries).sort((a, b) => b.seq - a.seq).slice(0, limit);
}

/** A breaker's or an alert's figures: observed against threshold and baseline. */
export function Figures({ figures }) {
  if (!figures) return html`<span class="muted">—</span>`;
  const f = figures;
  return html`<span class="figures">observed <strong>${groupDigits(f.observed)}</strong>, threshold ${groupDigits(f.threshold)}${f.baseline !== undefined ? `, baseline ${groupDigits(f.baseline)}` : ''}${f.window ? `, window ${f.window}` : ''}${f.destination ? html`, to <code>${f.destination}</code>` : ''}</span>`;
}

/** Breakers as a table; a tripped one offers a confirmed Re-open (POST /v1/breakers/{id}/reset). */
export function BreakersTable({ breakers, names, onReset, caption }) {
  const name = (id) => names?.get(id) ?? id;
  return html`<div class="table-wrap"><table class="breakers">
    <caption class="visually-hidden">${caption}</caption>
    <thead><tr><th scope="col">Detector</th><th scope="col">Action</th><th scope="col">Figures</th><th scope="col">Binds</th><th scope="col">Tripped</th><th scope="col">State</th></tr></thead>
    <tbody>${breakers.map((b) => html`<tr data-breaker=${b.id}>
      <td><code>${b.detector}</code> <span class="muted">${b.type}</span></td>
      <td>${b.action}${b.scope !== 'agent' ? html` <span class="muted">(${b.scope}${b.group ? ` ${b.group}` : ''})</span>` : null}</td>
      <td><${Figures} figures=${b.figures} /></td>
      <td>${(b.agents ?? []).map((id, i) => html`${i ? ', ' : ''}<a href=${`#/agents/${encodeURIComponent(name(id))}`}>${name(id)}</a>`)}</td>
      <td>${formatTime(b.trippedAt)}</td>
      <td>${b.state === 'tripped'
        ? html`<${ConfirmButton} label="Re-open" confirmLabel="Confirm re-open" question=${`Re-open ${b.detector}? The agents it froze are unfrozen and its hold ends.`} onConfirm=${() => onReset(b)} />`
        : html`<${StatusBadge} status=${b.state} />${b.resetBy ? html` <span class="muted">by ${b.resetBy}</span>` : null}`}</td>
    </tr>`)}</tbody>
  </table></div>`;
}

/** Alert and breaker audit entries; an alert naming an agent offers a confirmed "Freeze agent". */
export function AnomalyEntries({ entries, names, agents, onFreeze }) {
  const name = (id) => names?.get(id) ?? id;
  if (entries.length === 0) return html`<p class="muted">No alerts.</p>`;
  return html`<div class="table-wrap"><table class="alerts">
    <caption class="visually-hidden">Alert and breaker entries, newest first</caption>
    <thead><tr><th scope="col">Seq</th><th scope="col">When</th><th scope="col">Type</th><th scope="col">Agent</th><th scope="col">Detector and figures</th><th scope="col">Action</th></tr></thead>
    <tbody>${entries.map((e) => {
      const status = agents?.get(e.agentId)?.status;
      return html`<tr data-seq=${e.seq}>
        <td class="num"><a href=${`#/audit?seq=${e.seq}`}>${e.seq}</a></td>
        <td>${formatTime(e.at)}</td>
        <td><code>${e.type}</code></td>
        <td>${e.agentId ? html`<a href=${`#/agents/${encodeURIComponent(name(e.agentId))}`}>${name(e.agentId)}</a>` : html`<span class="muted">—</span>`}</td>
        <td>${e.data?.detector ? html`<code>${e.data.detector}</code> ` : null}${e.data?.figures ? html`<${Figures} figures=${e.data.figures} />` : html`<span>${e.data?.reason ?? e.data?.message ?? ''}</span>`}</td>
        <td>${e.type.startsWith('alert.') && e.agentId && onFreeze
          ? status === 'active'
            ? html`<${ConfirmButton} kind="danger" label="Freeze agent" confirmLabel="Confirm freeze" question=${`Freeze ${name(e.agentId)}? Its very next request is refused.`} onConfirm=${() => onFreeze(e.agentId)} />`
            : html`<${StatusBadge} status=${status ?? 'unknown'} />`
          : null}</td>
      </tr>`;
    })}</tbody>
  </table></div>`;
}

/** The agent page's "anomaly signals": breakers binding the agent and its alert entries. */
export function AgentAnomalies({ agentId, name, onChanged }) {
  const breakers = useLoad(() => get('/v1/breakers?state=all'), [agentId]);
  const entries = useLoad(() => loadAnomalyEntries(agentId, 20), [agentId]);
  if ((breakers.loading && !breakers.data) || (entries.loading && !entries.data)) return html`<${Loading} what="Loading anomaly signals" />`;
  const mine = (breakers.data?.breakers ?? []).filter((b) => (b.agents ?? []).includes(agentId) || b.agentId === agentId);
  const names = new Map([[agentId, name]]);
  const reset = async (b) => {
    await post(`/v1/breakers/${encodeURIComponent(b.id)}/reset`);
    breakers.reload();
    entries.reload();
    onChanged?.();
  };
  return html`<div>
    <${ErrorNote} error=${breakers.error ?? entries.error} />
    <h3>Circuit breakers</h3>
    ${mine.length === 0 ? html`<p class="muted">No breaker has bound this agent.</p>` : html`<${BreakersTable} breakers=${mine} names=${names} onReset=${reset} caption="Circuit breakers binding this agent" />`}
    <h3>Alert entries</h3>
    ${entries.data ? html`<${AnomalyEntries} entries=${entries.data} names=${names} />` : null}
  </div>`;
}
