import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from './html.js';

/** A status shown as text (never as colour alone). */
export function StatusBadge({ status }) {
  return html`<span class=${`badge badge-${status}`}>${status}</span>`;
}

export function DecisionBadge({ decision }) {
  if (!decision) return html`<span class="muted">—</span>`;
  return html`<span class=${`badge decision-${decision}`}>${decision.replace('_', ' ')}</span>`;
}

/** An error from the daemon, announced to screen readers. */
export function ErrorNote({ error }) {
  if (!error) return null;
  return html`<p class="note note-error" role="alert"><strong>${error.code ?? 'error'}</strong>: ${error.message}</p>`;
}

export function Loading({ what = 'Loading' }) {
  return html`<p class="muted" role="status">${what}…</p>`;
}

/**
 * Loads data on mount and whenever `deps` change; `reload()` fetches again. Returns { data, error, loading }.
 * A response that arrives after a newer request started is dropped.
 */
export function useLoad(load, deps = []) {
  const [state, setState] = useState({ data: undefined, error: undefined, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, error: undefined, loading: false }),
      (error) => live && setState({ data: undefined, error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

/**
 * A button for an action that changes something: the first press asks, the second (Confirm) acts. Keyboard
 * focus moves to Confirm and back, so the whole exchange works without a pointer.
 */
export function ConfirmButton({ label, confirmLabel, question, onConfirm, kind = 'primary', disabled }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(undefined);
  const confirmRef = useRef(null);
  const labelRef = useRef(null);
  const wasAsking = useRef(false);
  useEffect(() => {
    if (asking) confirmRef.current?.focus();
    else if (wasAsking.current) labelRef.current?.focus();
    wasAsking.current = asking;
  }, [asking]);
  const act = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await onConfirm();
      setAsking(false);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  if (!asking) return html`<span><button type="button" ref=${labelRef} class=${`btn btn-${kind}`} disabled=${disabled} onClick=${() => setAsking(true)}>${label}</button><${ErrorNote} error=${error} /></span>`;
  return html`<span class="confirm" role="group" aria-label=${question}>
    <span class="confirm-question">${question}</span>
    <button type="button" class=${`btn btn-${kind}`} disabled=${busy} ref=${confirmRef} onClick=${act}>${busy ? 'Working…' : confirmLabel}</button>
    <button type="button" class="btn btn-secondary" disabled=${busy} onClick=${() => setAsking(false)}>Cancel</button>
  </span>`;
}

/** The rules behind a decision: each violation (rule, code, limit, used, requested), else the allow rule or the error code. */
export function Rules({ violations, allowedBy, code }) {
  if (Array.isArray(violations) && violations.length) {
    return html`<ul class="rules">${violations.map((v) => html`<li><code>${v.rule}</code> <span class="code">${v.code}</span>${v.limit !== undefined ? html` <span class="muted">limit ${v.limit}${v.used !== undefined ? `, used ${v.used}` : ''}${v.requested !== undefined ? `, requested ${v.requested}` : ''}</span>` : null}</li>`)}</ul>`;
  }
  if (Array.isArray(allowedBy) && allowedBy.length) return html`<span>allowed by ${allowedBy.map((r) => html`<code>${r}</code> `)}</span>`;
  if (code) return html`<span class="code">${code}</span>`;
  return html`<span class="muted">—</span>`;
}
