// NIP-98: a `u` tag whose dot segment hides behind an encoded semicolon or an encoded control character (found by
// review 2026-12-05). Policy judges the URL as WHATWG parses it, `/v1/%2e%2e%3b/admin` as a path under `/v1/`, while
// the event signs the tag as written. A decoding proxy in front of a servlet container turns `%2e%2e%3b` into `..;`,
// and the container drops the `;params` and resolves `..`: the request reaches `/admin`, and the server checks the
// token against the URL as written, which the tag is. `..;/` was refused, its encoded form was signed. An encoded
// NUL or tab is the same story (a server that decodes it truncates or trims there); raw ones were already refused.
// nostr-tools' getToken against Airlock as the signer (what an agent's client does), over HTTP on SQLite: the
// check is in the Nostr adapter, before any store is touched.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as nip98 from 'nostr-tools/nip98';
import { verifyEvent, type EventTemplate } from 'nostr-tools/pure';
import { provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const POLICY = {
  version: 1,
  rules: [
    { type: 'allow', name: 'api-auth', match: { actions: ['nostr.http_auth'] } },
    { type: 'nostr_http_auth', name: 'public-only', urls: ['https://api.example.com/v1/**'], methods: ['GET'] },
  ],
};

describe('NIP-98 u tags with an encoded semicolon or control character are refused (sqlite)', () => {
  let h: Harness;
  let token: string;
  before(async () => {
    h = await startHarness({ store: 'sqlite' });
    ({ token } = await provisionAgent(h, { policy: POLICY, actions: ['nostr.http_auth'] }));
  });
  after(async () => h.close());

  /** nostr-tools' getToken with Airlock signing: the status Airlock answered, and the token when it signed. */
  const getToken = async (url: string): Promise<{ status: number; code?: string; token?: string }> => {
    let status = 0;
    let code: string | undefined;
    const sign = async (event: EventTemplate) => {
      const res = await h.call('POST', '/v1/sign/nostr-http-auth', { token, body: event });
      status = res.status;
      code = res.body.error?.code;
      if (res.status !== 200) throw new Error(code);
      assert.ok(verifyEvent(res.body.event));
      return res.body.event;
    };
    const signed = await nip98.getToken(url, 'GET', sign).catch(() => undefined);
    return { status, ...(code ? { code } : {}), ...(signed ? { token: signed } : {}) };
  };

  test('a dot segment behind an encoded ;params or an encoded control character is not signed', async () => {
    for (const url of [
      'https://api.example.com/v1/%2e%2e%3b/admin/users',
      'https://api.example.com/v1/..%3B/admin/users',
      'https://api.example.com/v1/..%3bjsessionid=x/admin/users',
      'https://api.example.com/v1/.%3b/..%3b/admin/users',
      'https://api.example.com/v1/..%00/admin/users',
      'https://api.example.com/v1/..%09/admin/users',
      'https://api.example.com/v1/%2e%2e%7f/admin/users',
      // Found by the review of the fix: a trimmed encoded space, IIS's %u, overlong UTF-8.
      'https://api.example.com/v1/..%20/admin/users',
      'https://api.example.com/v1/%2e%2e%20/admin/users',
      'https://api.example.com/v1/%20../admin/users',
      'https://api.example.com/v1/%u002e%u002e/admin/users',
      'https://api.example.com/v1/%c0%ae%c0%ae/admin/users',
      'https://api.example.com/v1/%e0%80%ae%e0%80%ae/admin/users',
    ]) {
      const out = await getToken(url);
      assert.equal(out.status, 400, `${url}: signed, a token for what a decoding proxy routes to /admin`);
      assert.equal(out.code, 'invalid_request', url);
      assert.equal(out.token, undefined, url);
    }
  });

  test('the same paths without a hidden dot segment are still signed as written', async () => {
    for (const url of ['https://api.example.com/v1/files/report%3B2026.pdf', 'https://api.example.com/v1/a%20b', 'https://api.example.com/v1/...;x/y', 'https://api.example.com/v1/%20/x', 'https://api.example.com/v1/caf%c3%a9']) {
      const out = await getToken(url);
      assert.equal(out.status, 200, url);
      const event = JSON.parse(Buffer.from(out.token!.replace(/^Nostr /, ''), 'base64').toString('utf8'));
      assert.deepEqual(event.tags.find((t: string[]) => t[0] === 'u'), ['u', url]);
    }
  });
});
