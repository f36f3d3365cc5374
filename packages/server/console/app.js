// The Airlock operator console: Preact + htm, no build step. Served by the daemon under /console/ with a
// CSP that allows only its own scripts; it talks to the daemon's API with the console session cookie.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, forgetProof, get, onLoggedOut } from './api.js';
import { html } from './html.js';
import { LoginPage } from './pages/login.js';
import { PAGES } from './pages/index.js';

/** `#/agents/bot-1?x=1` -> the page whose pattern matches, its params and the query. */
function route(hash) {
  const [path, search = ''] = (hash.replace(/^#/, '') || '/fleet').split('?');
  for (const page of PAGES) {
    const names = [];
    const pattern = new RegExp(`^${page.path.replace(/:([a-z]+)/gi, (_m, name) => (names.push(name), '([^/]+)'))}$`);
    const m = pattern.exec(path);
    if (m) return { page, params: Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(m[i + 1])])), query: new URLSearchParams(search), path };
  }
  return { page: undefined, params: {}, query: new URLSearchParams(search), path };
}

function useHash() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function App() {
  // undefined: asking the daemon; false: logged out; true: a live console session.
  const [session, setSession] = useState(undefined);
  const hash = useHash();
  useEffect(() => {
    get('/v1/console/session').then((s) => setSession(s.active === true), () => setSession(false));
    return onLoggedOut(() => setSession(false));
  }, []);
  const current = route(hash);
  useEffect(() => {
    document.title = session === false ? 'Log in · Airlock console' : `${current.page?.title ?? 'Not found'} · Airlock console`;
    // After navigation, focus goes to the new page's heading so a screen reader announces it.
    document.getElementById('page-title')?.focus({ preventScroll: true });
  }, [hash, session]);

  if (session === undefined) return html`<p class="boot" role="status">Connecting…</p>`;
  if (session === false) return html`<${LoginPage} onLoggedIn=${() => setSession(true)} />`;
  const logout = async () => {
    await api('DELETE', '/v1/console/session').catch(() => undefined);
    forgetProof();
    setSession(false);
  };
  const Page = current.page?.component;
  return html`<div class="layout">
    <a class="skip-link" href="#main" onClick=${(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>Skip to content</a>
    <header class="topbar">
      <span class="brand">Airlock</span>
      <nav aria-label="Main">
        <ul>${PAGES.filter((p) => p.nav).map((p) => html`<li><a href=${`#${p.path}`} aria-current=${current.page === p ? 'page' : undefined}>${p.title}</a></li>`)}</ul>
      </nav>
      <button type="button" class="btn btn-secondary" onClick=${logout}>Log out</button>
    </header>
    <main id="main" tabindex="-1">
      ${Page ? html`<${Page} key=${current.path} params=${current.params} query=${current.query} />` : html`<section><h1 id="page-title" tabindex="-1">Not found</h1><p><a href="#/fleet">Back to the fleet</a></p></section>`}
    </main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));
