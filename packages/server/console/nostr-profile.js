// A Nostr kind 0 event (profile metadata, NIP-01/NIP-24) read as clients read it: its content is a JSON object of
// fields (name, about, picture, nip05, lud16...), and lud16 is where zaps and tips are paid. An agent can write a
// key twice: JSON.parse, and so the clients built on it, keep the LAST value, while a reader of the raw JSON sees the
// first (found by review). So the content is scanned key by key, each field shown with the value clients use, and
// every duplicate named with all its values; domains are shown in punycode when they hold non-ASCII characters.
import { html } from './html.js';
import { MarkedText } from './marked-text.js';

/** Fields whose value names a domain that receives something: payments (lud16), identity (nip05), a link. */
const DOMAIN_FIELDS = new Set(['lud16', 'nip05', 'website']);

/**
 * Reads kind 0 content. Returns `{fields: [{key, values}], duplicates: [{path, key, values}]}` for a JSON object
 * (fields in order of first appearance, `values` every value written for the key, the last one what clients use;
 * duplicates at any depth), else `{problem, message}` with problem `not-json`, `not-an-object` or `unreadable`.
 * Checks itself against JSON.parse: where the two differ it says so rather than show a reading clients may not share.
 */
export function readProfileContent(content) {
  let scanned;
  try {
    scanned = scanJson(String(content));
  } catch (e) {
    if (e instanceof RangeError) return { problem: 'unreadable', message: 'it is nested too deeply to read here' };
    return { problem: 'not-json', message: `it is not valid JSON (${e.message})` };
  }
  const { root, duplicates } = scanned;
  if (root.entries === undefined) {
    const v = root.value;
    return { problem: 'not-an-object', message: `it is JSON, but ${Array.isArray(v) ? 'an array' : v === null ? 'null' : `a ${typeof v}`}` };
  }
  const fields = new Map();
  for (const [key, value] of root.entries) {
    if (!fields.has(key)) fields.set(key, []);
    fields.get(key).push(value);
  }
  const reading = { fields: [...fields].map(([key, values]) => ({ key, values })), duplicates };
  // The same last value for every key as JSON.parse, and the same keys.
  const parsed = JSON.parse(content);
  const same = Object.keys(parsed).length === reading.fields.length && reading.fields.every((f) => Object.hasOwn(parsed, f.key) && JSON.stringify(parsed[f.key]) === JSON.stringify(f.values[f.values.length - 1]));
  return same ? reading : { problem: 'unreadable', message: 'this page reads it otherwise than JSON.parse does' };
}

/**
 * A strict JSON scan (RFC 8259, as JSON.parse accepts it) that keeps every key of every object, duplicates included.
 * Strings, numbers and literals are decoded by JSON.parse itself, one token at a time. Throws SyntaxError (with a
 * position, never the text) on anything JSON.parse would refuse.
 */
function scanJson(text) {
  const MAX_DEPTH = 100;
  let i = 0;
  const duplicates = [];
  const fail = (what) => {
    throw new SyntaxError(`${what} at character ${i}`);
  };
  const space = () => {
    while (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r') i++;
  };
  const token = (start) => {
    try {
      return JSON.parse(text.slice(start, i));
    } catch {
      i = start;
      return fail('a malformed value');
    }
  };
  const string = () => {
    const start = i;
    if (text[i] !== '"') fail('a string expected');
    for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
    if (i >= text.length) fail('an unterminated string');
    i++;
    return token(start);
  };
  const value = (path) => {
    if (path.length > MAX_DEPTH) throw new RangeError('nested too deeply');
    space();
    const start = i;
    if (text[i] === '{') {
      i++;
      const entries = [];
      space();
      if (text[i] === '}') i++;
      else {
        for (;;) {
          space();
          const key = string();
          space();
          if (text[i] !== ':') fail("':' expected");
          i++;
          entries.push([key, value([...path, key]).value]);
          space();
          if (text[i] === ',') i++;
          else if (text[i] === '}') break;
          else fail("',' or '}' expected");
        }
        i++;
      }
      const byKey = new Map();
      for (const [key, v] of entries) byKey.set(key, [...(byKey.get(key) ?? []), v]);
      for (const [key, values] of byKey) if (values.length > 1) duplicates.push({ path, key, values });
      return { entries, value: Object.fromEntries(entries) };
    }
    if (text[i] === '[') {
      i++;
      const items = [];
      space();
      if (text[i] === ']') i++;
      else {
        for (;;) {
          items.push(value([...path, items.length]).value);
          space();
          if (text[i] === ',') i++;
          else if (text[i] === ']') break;
          else fail("',' or ']' expected");
        }
        i++;
      }
      return { value: items };
    }
    if (text[i] === '"') return { value: string() };
    while (i < text.length && /[-+.0-9a-zA-Z]/.test(text[i])) i++;
    if (i === start) fail('a value expected');
    return { value: token(start) };
  };
  const root = value([]);
  space();
  if (i !== text.length) fail('text after the JSON value');
  return { root, duplicates };
}

/**
 * The host a lud16 (`name@domain`), nip05 (`name@domain`) or website (a URL) value sends to, as browsers and
 * clients resolve it: `{host, punycode}` (punycode when the domain has non-ASCII characters, or is written in
 * xn-- form), or `{problem}` when the value is not of the field's form.
 */
export function domainOf(key, value) {
  if (typeof value !== 'string') return { problem: 'not a string' };
  let domain;
  if (key === 'website') {
    try {
      const url = new URL(/^[a-z][a-z0-9+.-]*:/i.test(value) ? value : `https://${value}`);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') return { problem: `a ${url.protocol} link, not a web address` };
      return describeHost(url.hostname, url.hostname);
    } catch {
      return { problem: 'not a URL' };
    }
  }
  const parts = value.split('@');
  if (parts.length === 2 && parts[0] !== '') domain = parts[1];
  else if (key === 'nip05' && parts.length === 1) domain = value;
  else return { problem: `not of the form name@domain${parts.length > 2 ? ' (more than one @: clients may read different domains)' : ''}` };
  try {
    const url = new URL(`http://${domain}`);
    if (url.host !== url.hostname || url.pathname !== '/' || url.search || url.hash || url.username || /[/?#\\:@]/.test(domain)) return { problem: 'the part after @ is not a plain domain' };
    return describeHost(domain, url.hostname);
  } catch {
    return { problem: 'the part after @ is not a domain' };
  }
}

function describeHost(written, host) {
  return { host, punycode: host.split('.').some((label) => label.startsWith('xn--')) || host !== written.toLowerCase() };
}

/** A JSON value as the card shows it: a string as its text, anything else as JSON. */
function shown(value) {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The fields of a held kind 0 event, as clients will read them, with what an operator must check flagged. */
export function ProfileFields({ content }) {
  const reading = readProfileContent(content);
  const times = (n) => (n === 2 ? 'twice' : `${n} times`);
  return html`<section class="profile" aria-label="Profile fields (kind 0 content)">
    <h4>The profile as clients will read it (kind 0 content, field by field)</h4>
    ${reading.problem
      ? html`<p class="note note-error" data-warning=${reading.problem}><strong>${reading.problem === 'unreadable' ? 'The content could not be checked field by field' : 'The content is not a JSON object'}:</strong> ${reading.message}. Clients expect an object of profile fields and may ignore it or read it differently; read the content as sent, below.</p>`
      : null}
    ${(reading.duplicates ?? []).map((d) => {
      const where = [...d.path, d.key].join('.');
      const last = d.values[d.values.length - 1];
      return html`<p class="note note-error" data-warning="duplicate-key"><strong><${MarkedText} text=${where} /> appears ${times(d.values.length)}</strong>: clients use the LAST value: <code class="field-value"><${MarkedText} text=${shown(last)} /></code>.
        Ignored by clients, though a reader of the raw content may take ${d.values.length > 2 ? 'them' : 'it'} for the value: ${d.values.slice(0, -1).map((v, i) => html`${i ? ', ' : ''}<code class="field-value"><${MarkedText} text=${shown(v)} /></code>`)}.</p>`;
    })}
    ${reading.fields?.length === 0 ? html`<p class="muted">No fields.</p>` : null}
    ${reading.fields?.length ? html`<dl class="profile-fields">
      ${reading.fields.map(({ key, values }) => {
        const value = values[values.length - 1];
        const domain = DOMAIN_FIELDS.has(key) ? domainOf(key, value) : undefined;
        return html`<div data-kind0-field=${key}>
          <dt><${MarkedText} text=${key} />${values.length > 1 ? html`<br /><span class="field-warning">written ${times(values.length)}: the last value is shown</span>` : null}</dt>
          <dd><code class="field-value" data-field-value><${MarkedText} text=${shown(value)} /></code>
            ${domain?.problem ? html`<br /><span class="field-warning" data-warning="domain">Check: ${domain.problem}.</span>` : null}
            ${domain?.punycode ? html`<br /><span class="field-warning" data-warning="domain">The domain is not plain ASCII: clients resolve it as <code><${MarkedText} text=${domain.host} /></code>${domain.host.includes('xn--') ? ' (punycode)' : ''}.</span>` : null}
          </dd>
        </div>`;
      })}
    </dl>` : null}
  </section>`;
}
