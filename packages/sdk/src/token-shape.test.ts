// What the SDK is given as a token or a daemon URL is never echoed: Node's fetch quotes a header value it refuses
// ("Headers.append: "Bearer …" is an invalid header value") and a URL with credentials ("Request cannot be
// constructed from a URL that includes credentials: http://user:pass@…"). The SDK refuses both first, with
// AirlockApiError invalid_request and a fixed message, and sends nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { airlockAccount } from './account.ts';
import { AirlockApiError, createAirlockHttp } from './http.ts';

const SESSION = `ses_0123456789abcdef.${'A'.repeat(43)}`;

describe('token and URL shape, before anything is sent', () => {
  let server: Server;
  let url = '';
  const seen: (string | undefined)[] = [];
  before(async () => {
    server = createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ agent: { address: '0x1111111111111111111111111111111111111111' } }));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  const refusedUnquoted = (secret: string, message: RegExp) => (e: unknown) => {
    assert.ok(e instanceof AirlockApiError, `not an AirlockApiError: ${String(e)}`);
    assert.equal(e.code, 'invalid_request');
    assert.match(e.message, message);
    assert.ok(!e.message.includes(secret) && !String(e.stack).includes(secret), e.message);
    return true;
  };

  test('a token with a control character (or a space, a quote) is refused, its value not quoted', async () => {
    const secretPart = 'TokSecret789';
    for (const token of [`ses_0123456789abcdef.${'A'.repeat(20)}\u0001${secretPart}`, `ses_0123456789abcdef.${secretPart}\nX-Injected: 1`, `adm_${secretPart} "quoted"`]) {
      const before = seen.length;
      await assert.rejects(airlockAccount({ url, token }), refusedUnquoted(secretPart, /does not look like an Airlock token/));
      assert.throws(() => createAirlockHttp({ url, token }), refusedUnquoted(secretPart, /does not look like an Airlock token/));
      assert.equal(seen.length, before, 'nothing was sent');
    }
  });

  test('a token read with its newline still works (fetch strips it from a header anyway)', async () => {
    const account = await airlockAccount({ url, token: `${SESSION}\n` });
    assert.equal(account.address, '0x1111111111111111111111111111111111111111');
    assert.equal(seen.at(-1), `Bearer ${SESSION}`);
  });

  test('a daemon URL with user:pass@ is refused, the URL not quoted', async () => {
    const secret = 'UrlPassSecret321';
    const withCredentials = url.replace('http://', `http://agent:${secret}@`);
    const before = seen.length;
    await assert.rejects(airlockAccount({ url: withCredentials, token: SESSION }), refusedUnquoted(secret, /carries a user name or password/));
    assert.throws(() => createAirlockHttp({ url: withCredentials, token: SESSION }), refusedUnquoted(secret, /carries a user name or password/));
    assert.equal(seen.length, before, 'nothing was sent');
  });
});
