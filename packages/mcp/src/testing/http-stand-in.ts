// Small pieces of the stand-in HTTP servers the MCP tests run (a stand-in Airlock, a paid API): listening on a free
// loopback port, and reading a request's JSON body.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listens on a free port of 127.0.0.1; the server's base URL. */
export async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** The request's body as JSON (`{}` when empty). */
export async function bodyOf(req: IncomingMessage): Promise<any> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
}

/**
 * For a stand-in's async handler: `void (async () => { … })().catch(answerFailure(res))`. A handler that throws
 * (a request cut off mid-body, a stand-in bug) answers 500 instead of leaving an unhandled rejection, which Node's
 * test runner charges to the whole file after its tests have passed (found in CI: a late poll reached a stand-in
 * RPC after the next test had reset its state).
 */
export function answerFailure(res: ServerResponse): (e: unknown) => void {
  return (e) => {
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'stand_in_failed', message: String(e) } }));
  };
}
