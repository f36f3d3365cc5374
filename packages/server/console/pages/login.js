import { useState } from 'preact/hooks';
import { keepProof, post } from '../api.js';
import { ErrorNote } from '../components.js';
import { html } from '../html.js';

/**
 * The admin token is typed here once and sent to POST /v1/console/session, which answers with an HttpOnly
 * cookie and the session's proof (kept in sessionStorage: api.js). The token is cleared from the form right away
 * and never stored by the page.
 */
export function LoginPage({ onLoggedIn }) {
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(undefined);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    const sent = token.trim();
    setToken('');
    try {
      keepProof((await post('/v1/console/session', { token: sent })).proof);
      onLoggedIn();
    } catch (err) {
      setError(err.code === 'unauthenticated' ? { code: err.code, message: 'That is not the admin token of this daemon.' } : err);
    } finally {
      setBusy(false);
    }
  };
  return html`<main id="main" class="login">
    <h1 id="page-title" tabindex="-1">Airlock console</h1>
    <p>Log in with the admin token <code>airlock init</code> printed. It is exchanged for a session that ends after 30 minutes unused or 8 hours at most; the page never keeps the token.</p>
    <form onSubmit=${submit} aria-describedby="login-help">
      <label for="token">Admin token</label>
      <input id="token" name="token" type="password" autocomplete="off" spellcheck=${false} required value=${token} onInput=${(e) => setToken(e.currentTarget.value)} />
      <p id="login-help" class="muted">Starts with <code>adm_</code>.</p>
      <button type="submit" class="btn btn-primary" disabled=${busy}>${busy ? 'Logging in…' : 'Log in'}</button>
    </form>
    <${ErrorNote} error=${error} />
  </main>`;
}
