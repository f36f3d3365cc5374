import { useState } from 'preact/hooks';
import { get, post } from '../api.js';
import { ConfirmButton, ErrorNote, Loading, Rules, StatusBadge, useLoad } from '../components.js';
import { formatTime, groupDigits, relativeTime, shortAsset } from '../format.js';
import { html } from '../html.js';

/** Requests held for a human: what each would sign and which rule asked, approve (signs) or reject (releases). */
export function ApprovalsPage() {
  const pending = useLoad(() => get('/v1/approvals'));
  const agents = useLoad(() => get('/v1/agents?limit=500'));
  const decided = useLoad(() => get('/v1/approvals?state=all'));
  const [notice, setNotice] = useState(undefined);
  const names = new Map((agents.data?.agents ?? []).map((a) => [a.id, a.name]));
  const refresh = () => {
    pending.reload();
    decided.reload();
  };
  const approve = async (a) => {
    const done = await post(`/v1/approvals/${encodeURIComponent(a.id)}/approve`);
    setNotice(`Approved ${a.id}: ${done.result ? 'signed and handed to the agent' : done.state}.`);
    refresh();
  };
  const reject = async (a, reason) => {
    await post(`/v1/approvals/${encodeURIComponent(a.id)}/deny`, reason ? { reason } : {});
    setNotice(`Rejected ${a.id}: the hold on the budget is released.`);
    refresh();
  };
  const list = pending.data?.approvals ?? [];
  const recent = (decided.data?.approvals ?? []).filter((a) => a.state !== 'pending').sort((x, y) => (y.decidedAt ?? y.createdAt).localeCompare(x.decidedAt ?? x.createdAt)).slice(0, 20);
  return html`<section aria-labelledby="page-title">
    <h1 id="page-title" tabindex="-1">Approvals</h1>
    <p role="status" class="note note-ok" hidden=${!notice}>${notice}</p>
    <h2>Pending <span class="count">${list.length}</span></h2>
    ${pending.loading && !pending.data ? html`<${Loading} what="Loading approvals" />` : null}
    <${ErrorNote} error=${pending.error} />
    ${pending.data && list.length === 0 ? html`<p class="muted">Nothing waits for approval.</p>` : null}
    <ul class="cards" aria-label="Pending approvals">
      ${list.map((a) => html`<${PendingApproval} key=${a.id} approval=${a} agentName=${names.get(a.agentId) ?? a.agentId} onApprove=${approve} onReject=${reject} />`)}
    </ul>
    <h2>Recently decided</h2>
    ${recent.length === 0 ? html`<p class="muted">None yet.</p>` : html`<div class="table-wrap"><table>
      <caption class="visually-hidden">Recently decided approvals</caption>
      <thead><tr><th scope="col">Approval</th><th scope="col">Agent</th><th scope="col">Request</th><th scope="col">State</th><th scope="col">Decided</th><th scope="col">By</th></tr></thead>
      <tbody>${recent.map((a) => html`<tr>
        <td><code>${a.id}</code></td><td><a href=${`#/agents/${encodeURIComponent(names.get(a.agentId) ?? a.agentId)}`}>${names.get(a.agentId) ?? a.agentId}</a></td>
        <td>${a.summary?.intent?.summary ?? a.action}</td><td><${StatusBadge} status=${a.state} /></td>
        <td>${a.decidedAt ? formatTime(a.decidedAt) : ''}</td><td>${a.decidedBy ?? ''}</td>
      </tr>`)}</tbody>
    </table></div>`}
  </section>`;
}

function PendingApproval({ approval: a, agentName, onApprove, onReject }) {
  const [reason, setReason] = useState('');
  const intent = a.summary?.intent ?? {};
  const titleId = `apr-${a.id}`;
  return html`<li class="card" aria-labelledby=${titleId} data-approval=${a.id}>
    <h3 id=${titleId}>${intent.summary ?? a.action}</h3>
    <dl class="facts">
      <div><dt>Agent</dt><dd><a href=${`#/agents/${encodeURIComponent(agentName)}`}>${agentName}</a></dd></div>
      <div><dt>Action</dt><dd><code>${a.action}</code></dd></div>
      ${intent.to ? html`<div><dt>To</dt><dd><code>${intent.to}</code></dd></div>` : null}
      ${(intent.spends ?? []).map((s) => html`<div><dt>Spends</dt><dd>${groupDigits(s.amount)} <span title=${s.asset}>${shortAsset(s.asset)}</span></dd></div>`)}
      <div><dt>Requested</dt><dd>${formatTime(a.createdAt)}</dd></div>
      <div><dt>Expires</dt><dd>${formatTime(a.expiresAt)} (${relativeTime(a.expiresAt)})</dd></div>
      <div><dt>Approval id</dt><dd><code>${a.id}</code></dd></div>
    </dl>
    <div><strong>Why it needs a human:</strong> <${Rules} violations=${a.summary?.violations} /></div>
    <div class="actions">
      <${ConfirmButton} label="Approve" confirmLabel="Confirm approve" question=${`Approve and sign ${a.id}?`} onConfirm=${() => onApprove(a)} />
      <label class="inline-field">Reason (optional) <input type="text" maxlength="500" value=${reason} onInput=${(e) => setReason(e.currentTarget.value)} /></label>
      <${ConfirmButton} kind="danger" label="Reject" confirmLabel="Confirm reject" question=${`Reject ${a.id}? The budget hold is released.`} onConfirm=${() => onReject(a, reason.trim())} />
    </div>
  </li>`;
}
