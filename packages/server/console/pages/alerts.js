import { useState } from 'preact/hooks';
import { get, post } from '../api.js';
import { AnomalyEntries, BreakersTable, loadAnomalyEntries } from '../anomalies.js';
import { ErrorNote, Loading, useLoad } from '../components.js';
import { html } from '../html.js';

/** Tripped circuit breakers (re-open them) and the newest alert and breaker entries (freeze the agent an alert names). */
export function AlertsPage() {
  const breakers = useLoad(() => get('/v1/breakers'));
  const entries = useLoad(() => loadAnomalyEntries(undefined, 50));
  const agents = useLoad(() => get('/v1/agents?limit=500'));
  const [notice, setNotice] = useState(undefined);
  const byId = new Map((agents.data?.agents ?? []).map((a) => [a.id, a]));
  const names = new Map([...byId].map(([id, a]) => [id, a.name]));
  const refresh = () => {
    breakers.reload();
    entries.reload();
    agents.reload();
  };
  const reset = async (b) => {
    const done = await post(`/v1/breakers/${encodeURIComponent(b.id)}/reset`);
    const unfrozen = (done.unfrozen ?? []).map((id) => names.get(id) ?? id);
    setNotice(`Re-opened ${b.detector}${unfrozen.length ? `: ${unfrozen.join(', ')} unfrozen` : ''}.`);
    refresh();
  };
  const freeze = async (agentId) => {
    const updated = await post(`/v1/agents/${encodeURIComponent(agentId)}/freeze`);
    setNotice(`${updated.name} is now ${updated.status}.`);
    refresh();
  };
  const tripped = breakers.data?.breakers ?? [];
  return html`<section aria-labelledby="page-title">
    <h1 id="page-title" tabindex="-1">Alerts and breakers</h1>
    <p role="status" class="note note-ok" hidden=${!notice}>${notice}</p>
    <h2>Tripped breakers <span class="count">${tripped.length}</span></h2>
    ${breakers.loading && !breakers.data ? html`<${Loading} what="Loading breakers" />` : null}
    <${ErrorNote} error=${breakers.error} />
    ${breakers.data && tripped.length === 0 ? html`<p class="muted">No breaker is tripped.</p>` : null}
    ${tripped.length ? html`<${BreakersTable} breakers=${tripped} names=${names} onReset=${reset} caption="Tripped circuit breakers" />` : null}
    <h2>Recent alerts</h2>
    ${entries.loading && !entries.data ? html`<${Loading} what="Loading alerts" />` : null}
    <${ErrorNote} error=${entries.error ?? agents.error} />
    ${entries.data && agents.data ? html`<${AnomalyEntries} entries=${entries.data} names=${names} agents=${byId} onFreeze=${freeze} />` : null}
  </section>`;
}
