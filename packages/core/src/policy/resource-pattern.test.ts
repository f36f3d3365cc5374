// Resource patterns are written in the form normaliseResource gives resources (WHATWG URL: lowercase host,
// punycode, default port dropped, path percent-encoded and dot segments resolved), wildcards kept in place;
// a pattern whose wildcards would not survive that is refused at validation, never matched by guesswork.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AirlockError } from '../errors.ts';
import { compileResourcePattern, normaliseResource } from './resource-pattern.ts';

const n = (u: string) => normaliseResource(u)!.resource;
const matches = (pattern: string, url: string) => compileResourcePattern(pattern, ['p']).test(n(url));
const refused = (pattern: string, message: RegExp) =>
  assert.throws(() => compileResourcePattern(pattern, ['rules', 0, 'match', 'resources', 0]), (e: AirlockError) => e.code === 'invalid_policy' && e.message.startsWith('rules[0].match.resources[0]') && message.test(e.message), pattern);

test('a default port in the pattern is dropped as in the resource (and a port that is not the default is kept)', () => {
  assert.equal(matches('https://api.example.com:443/admin/**', 'https://api.example.com/admin/keys'), true);
  assert.equal(matches('https://api.example.com:443/admin/**', 'https://api.example.com:443/admin/keys'), true);
  assert.equal(matches('http://api.example.com:80/x', 'http://api.example.com/x'), true);
  assert.equal(matches('https://API.Example.COM:0443/admin/*', 'https://api.example.com/admin/keys'), true, 'leading zeros: the same port');
  assert.equal(matches('https://api.example.com:8443/admin/**', 'https://api.example.com:8443/admin/keys'), true);
  assert.equal(matches('https://api.example.com:8443/admin/**', 'https://api.example.com/admin/keys'), false);
  assert.equal(matches('https://api.example.com:80/admin/**', 'https://api.example.com/admin/keys'), false, ':80 is not the https default');
  // A wildcard port is kept as written: any explicit port.
  assert.equal(matches('https://api.example.com:*/**', 'https://api.example.com:8443/x'), true);
  assert.equal(matches('https://**/**', 'https://a.b.c:8443/x/y'), true);
  assert.equal(matches('https://[::1]:443/**', 'https://[::1]/x'), true);
});

test('a Unicode host is written in punycode, as the resource is; wildcard labels beside it stay wildcards', () => {
  assert.equal(matches('https://bücher.example/**', 'https://bücher.example/book'), true);
  assert.equal(matches('https://bücher.example/**', 'https://xn--bcher-kva.example/book'), true);
  assert.equal(matches('https://*.bücher.example/**', 'https://shop.bücher.example/book'), true);
  assert.equal(matches('https://*.bücher.example/**', 'https://bücher.example/book'), false, '* is one label');
  assert.equal(matches('https://**.bücher.example/**', 'https://a.b.bücher.example/book'), true);
  assert.equal(matches('https://api-*.example.com/**', 'https://api-eu.example.com/x'), true, 'a wildcard inside an ASCII label');
  // Full-width letters map to ASCII under IDNA, as in the resource.
  assert.equal(matches('https://ｅｘａｍｐｌｅ.com/**', 'https://example.com/x'), true);
});

test('a non-ASCII path is percent-encoded, as the resource is; dot segments are resolved', () => {
  assert.equal(matches('https://api.example.com/café/**', 'https://api.example.com/café/menu'), true);
  assert.equal(matches('https://api.example.com/café/**', 'https://api.example.com/caf%C3%A9/menu'), true);
  assert.equal(matches('https://api.example.com/café*/*', 'https://api.example.com/cafés/menu'), true, 'a wildcard beside non-ASCII in a segment');
  assert.equal(matches('https://api.example.com/a b/*', 'https://api.example.com/a b/c'), true);
  assert.equal(matches('https://api.example.com/a/./b/*', 'https://api.example.com/a/b/c'), true);
  assert.equal(matches('https://api.example.com/a/x/../b/*', 'https://api.example.com/a/b/c'), true);
  assert.equal(matches('https://api.example.com/admin\\*', 'https://api.example.com/admin/keys'), true, 'a backslash is a slash in http(s) URL paths');
});

test('the patterns that already matched still do, and the wildcard masks never leak', () => {
  assert.equal(matches('https://api.example.com/data/*', 'https://API.example.com:443/data/prices?x=1#f'), true);
  assert.equal(matches('https://api.example.com/data/*', 'https://api.example.com/data/a/b'), false);
  assert.equal(matches('https://*.example.org/**', 'https://a.b.example.org/x'), false);
  assert.equal(matches('https://**.example.org/**', 'https://evil.io/x.example.org/y'), false);
  assert.equal(matches('https://api.example.com', 'https://api.example.com/data'), false, 'no path: the root only');
  // A pattern spelling the words the masks are made of is taken literally.
  assert.equal(matches('https://api.example.com/wildcardany/*', 'https://api.example.com/wildcardany/x'), true);
  assert.equal(matches('https://api.example.com/wildcardany/*', 'https://api.example.com/other/x'), false);
  assert.equal(matches('https://api.example.com/wildcard1xone/**', 'https://api.example.com/wildcard1xone/x'), true);
  assert.equal(matches('https://api.example.com/wildcard1xone/**', 'https://api.example.com/y/x'), false);
});

test('a pattern whose wildcards cannot be normalised in place is refused (invalid_policy at its path)', () => {
  // Punycode would encode the mask with the label: no pattern over the encoded form is right.
  refused('https://*bücher.example/**', /the host cannot be normalised/);
  refused('https://xn--*.example/**', /the host cannot be normalised/);
  // A `..` would remove the wildcard's segment.
  refused('https://api.example.com/a/*/../b', /the path cannot be normalised/);
  refused('https://api.example.com/a/**/%2e%2e/b', /the path cannot be normalised/);
  // The URL parser refuses it (a numeric last label makes it an IPv4 address).
  refused('https://*.0.0.1/**', /cannot be normalised/);
  refused('https://a b.example/x', /expected an http\(s\) URL pattern/);
  refused('https://user@api.example.com/**', /cannot be normalised/);
  refused('api.example.com/*', /expected an http\(s\) URL pattern/);
  // A backslash ends the host for the URL parser only: what follows would move from the host to the path.
  refused('https://api.example.com\\admin\\*', /expected an http\(s\) URL pattern|cannot be normalised/);
  refused('https://api.example.com\\admin', /expected an http\(s\) URL pattern/);
});

test('escapes of unreserved characters are decoded and the rest written in upper case, in resources and patterns alike', () => {
  assert.equal(n('https://api.example.com/%61dmin/%7Euser'), 'https://api.example.com/admin/~user');
  assert.equal(n('https://api.example.com/caf%c3%a9/a%2fb%3F'), 'https://api.example.com/caf%C3%A9/a%2Fb%3F', 'reserved and non-ASCII bytes stay escaped');
  assert.equal(n('https://api.example.com/%2e%2E/admin'), 'https://api.example.com/admin', 'dot segments were resolved by the parser first');
  assert.equal(n('https://api.example.com/a%2Eb/%252e'), 'https://api.example.com/a.b/%252e', 'an escaped percent is not decoded twice');
  assert.equal(matches('https://api.example.com/admin/**', 'https://api.example.com/%61dmin/keys'), true);
  assert.equal(matches('https://api.example.com/admin/**', 'https://api.example.com/%41dmin/keys'), false, 'paths are case-sensitive');
  assert.equal(matches('https://api.example.com/%61dmin/*', 'https://api.example.com/admin/keys'), true);
  assert.equal(matches('https://api.example.com/caf%c3%a9/*', 'https://api.example.com/café/menu'), true);
  // A decoded letter never spells the wildcard mask.
  assert.equal(matches('https://api.example.com/%77ildcard%61ny', 'https://api.example.com/x/y'), false);
  assert.equal(matches('https://api.example.com/%77ildcard%61ny', 'https://api.example.com/wildcardany'), true);
});
