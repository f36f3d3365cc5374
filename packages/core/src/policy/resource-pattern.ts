import { invalidPolicyAt, type PolicyPath } from './path.ts';

/**
 * URL patterns for paid resources (x402): `https://api.example.com/data/*`, `https://*.example.org/**`.
 * Scheme and host are matched label by label, the path segment by segment: `*` is one host label or one
 * path segment; `**` is any run of labels in the host (so `https://` + `**` + `/` + `**` is every https resource) and
 * anything, `/` included, in the path. Query and fragment never take part. A pattern without a
 * path matches only the root `/` (fail closed: write `/**` for a whole origin). The pattern is normalised as
 * resources are (`normalisePattern`): `https://API.example.com:443/café/*` is `https://api.example.com/caf%C3%A9/*`,
 * and `/%61dmin/**` is `/admin/**` (escapes as `normalisePercentEscapes` writes them).
 */
export interface ResourcePattern {
  readonly source: string;
  test(resource: string): boolean;
}

const escape = (s: string) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');

function globToRegex(part: string, one: string, any: string): string {
  return part
    .split(/(\*\*|\*)/)
    .map((piece) => (piece === '**' ? any : piece === '*' ? one : escape(piece)))
    .join('');
}

export function compileResourcePattern(source: string, path: PolicyPath): ResourcePattern {
  const m = /^(https?):\/\/([^/?#]+)(\/[^?#]*)?$/i.exec(source);
  if (!m) throw invalidPolicyAt(path, 'expected an http(s) URL pattern such as https://api.example.com/data/*');
  const scheme = m[1]!.toLowerCase();
  const { host, path: pathPart } = normalisePattern(scheme, m[2]!, m[3] ?? '/', source, path);
  // In the host, `**` is any number of labels (never a `/`); in the path it is anything.
  const regex = new RegExp(`^${scheme}://${globToRegex(host, '[^./:]+', '[^/]*')}${globToRegex(pathPart, '[^/]+', '.*')}$`, 'u');
  return { source, test: (resource) => regex.test(resource) };
}

/**
 * The pattern's host and path written as `normaliseResource` writes a resource (WHATWG URL: lowercase host,
 * IDNA to punycode, default port dropped, IPv4 forms canonical; the path percent-encoded, dot segments
 * resolved), so that `https://api.example.com:443/admin/**` or `https://bücher.example/**` match the resources
 * they name. The wildcards are masked as plain ASCII labels while the URL parser runs and restored after; a
 * pattern whose wildcards would not survive it unchanged (one inside a non-ASCII label, which punycode would
 * encode with it; one removed by a `..` segment) is refused rather than matched by guesswork.
 */
function normalisePattern(scheme: string, hostPart: string, pathPart: string, source: string, at: PolicyPath): { host: string; path: string } {
  // NFKC: IDNA maps full-width letters to ASCII, so a mask must not be spelled anywhere in that form either.
  const lower = source.normalize('NFKC').toLowerCase();
  let n = 0;
  let stem = 'wildcard';
  while (lower.includes(stem)) stem = `wildcard${++n}x`;
  // Two masks that are also valid in a host label and a path segment, and that no URL normalisation alters.
  const ANY = `${stem}any`;
  const ONE = `${stem}one`;
  const mask = (s: string) => s.replace(/\*\*|\*/g, (w) => (w === '**' ? ANY : ONE));
  const unmask = (s: string) => s.replaceAll(ANY, '**').replaceAll(ONE, '*');
  const count = (s: string) => (s.match(/\*\*|\*/g) ?? []).length;
  const refuse = (what: string) =>
    count(source) === 0
      ? invalidPolicyAt(at, 'expected an http(s) URL pattern such as https://api.example.com/data/* (this one is not a valid URL)')
      : invalidPolicyAt(at, `${what} cannot be normalised with its wildcards in place: write * and ** as whole host labels or within ASCII labels, and no . or .. segments next to them`);

  // A port written with a wildcard is kept as written (`*` matches any port); a numeric one goes through the parser.
  let hostname = hostPart;
  let port: string | undefined;
  const portMatch = /^(\[[^\]]*\]|[^:]*):([0-9*]*)$/.exec(hostPart);
  if (portMatch && portMatch[2]!.includes('*')) {
    hostname = portMatch[1]!;
    port = portMatch[2]!;
  }
  // The URL parser would end the host at a backslash (a slash in http(s) URLs), moving the rest into the path.
  if (hostPart.includes('\\')) throw refuse('the host');
  let parsed: URL;
  try {
    parsed = new URL(`${scheme}://${mask(hostname)}${mask(pathPart)}`);
  } catch {
    throw refuse('the pattern');
  }
  if (parsed.username !== '' || parsed.password !== '' || parsed.search !== '' || parsed.hash !== '') throw refuse('the pattern');
  const host = unmask(parsed.host);
  // Escapes are normalised after the masks are gone, so a decoded letter can never spell a mask.
  const path = normalisePercentEscapes(unmask(parsed.pathname));
  if (count(host) !== count(hostname)) throw refuse('the host');
  // A label holding a wildcard and punycode: the encoding was computed with the mask in it.
  if (parsed.hostname.split('.').some((label) => (label.includes(ANY) || label.includes(ONE)) && label.startsWith('xn--'))) throw refuse('the host');
  if (count(path) !== count(pathPart)) throw refuse('the path');
  return { host: port === undefined ? host : `${host}:${port}`, path };
}

export interface NormalisedResource {
  /** `scheme://host[:port]/path`: lowercase scheme and host, default port dropped, no query or fragment. */
  resource: string;
  /** `scheme://host[:port]`. */
  origin: string;
}

/** Normalises a paid-resource URL; undefined when it is not an absolute http(s) URL. */
export function normaliseResource(url: string): NormalisedResource | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
  if (u.username !== '' || u.password !== '') return undefined;
  return { resource: `${u.origin}${normalisePercentEscapes(u.pathname)}`, origin: u.origin };
}

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/**
 * RFC 3986 §6.2.2: an escape of an unreserved character is that character, and escapes are written in upper case,
 * so `/%61dmin/` is `/admin/` and `%c3%a9` is `%C3%A9`, as a server decoding the path reads them (the WHATWG
 * parser leaves escapes as written). Reserved and non-ASCII bytes stay escaped: decoding `%2F` would move a
 * segment boundary. Dot segments are already resolved by the parser, `%2e` forms included, so no segment becomes one.
 */
export function normalisePercentEscapes(path: string): string {
  if (!path.includes('%')) return path;
  return path.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => {
    const char = String.fromCharCode(Number.parseInt(hex, 16));
    return UNRESERVED.test(char) ? char : `%${hex.toUpperCase()}`;
  });
}
