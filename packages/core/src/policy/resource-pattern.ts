import { invalidPolicyAt, type PolicyPath } from './path.ts';

/**
 * URL patterns for paid resources (x402): `https://api.example.com/data/*`, `https://*.example.org/**`.
 * Scheme and host are matched label by label, the path segment by segment: `*` is one host label or one
 * path segment; `**` is any run of labels in the host (so `https://` + `**` + `/` + `**` is every https resource) and
 * anything, `/` included, in the path. Query and fragment never take part. A pattern without a
 * path matches only the root `/` (fail closed: write `/**` for a whole origin).
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
  const host = m[2]!.toLowerCase();
  const pathPart = m[3] ?? '/';
  // In the host, `**` is any number of labels (never a `/`); in the path it is anything.
  const regex = new RegExp(`^${scheme}://${globToRegex(host, '[^./:]+', '[^/]*')}${globToRegex(pathPart, '[^/]+', '.*')}$`, 'u');
  return { source, test: (resource) => regex.test(resource) };
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
  return { resource: `${u.origin}${u.pathname}`, origin: u.origin };
}
