// The console's only way to the daemon: same-origin fetch with the session cookie (sent by the browser,
// never readable here) and the X-Airlock-Console header, which the daemon requires on every cookie request.
// No token is kept in the page: the admin token is sent once, to the login route, and forgotten. What login
// answers as the session's proof is kept in sessionStorage and sent as that header: the browser sends the
// cookie to every port of this host, but sessionStorage belongs to this origin alone, so a server on another
// port that gets the cookie cannot use it.

const PROOF_KEY = 'airlock.console.proof';

function proof() {
  try {
    return sessionStorage.getItem(PROOF_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

/** Keeps the proof login answered (this tab, this origin). */
export function keepProof(value) {
  if (typeof value === 'string') sessionStorage.setItem(PROOF_KEY, value);
}

/** Forgets the proof (logout, or the daemon said the session ended). */
export function forgetProof() {
  try {
    sessionStorage.removeItem(PROOF_KEY);
  } catch {
    // Nothing kept.
  }
}

export class ApiError extends Error {
  constructor(status, code, message, violations) {
    super(message);
    this.status = status;
    this.code = code;
    this.violations = violations;
  }
}

/** Listeners told when the session ended (401): the app shows the login page. */
const loggedOut = new Set();
export function onLoggedOut(fn) {
  loggedOut.add(fn);
  return () => loggedOut.delete(fn);
}

export async function api(method, path, body) {
  const headers = { 'x-airlock-console': proof() ?? '1', accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, credentials: 'same-origin', cache: 'no-store', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  } catch {
    throw new ApiError(0, 'network', 'The daemon did not answer.');
  }
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    throw new ApiError(res.status, 'invalid_json', `Unexpected answer (${res.status}).`);
  }
  if (!res.ok) {
    const err = json?.error ?? {};
    if (res.status === 401 && path !== '/v1/console/session') {
      forgetProof();
      for (const fn of loggedOut) fn();
    }
    throw new ApiError(res.status, err.code ?? 'error', err.message ?? `Request failed (${res.status}).`, err.violations);
  }
  return json;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body ?? {});

/** Query string from an object, leaving out empty values. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
