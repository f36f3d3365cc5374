// A webhook receiver for tests: a real node:http server on 127.0.0.1:0 that checks every delivery's signature
// with plain node:crypto (independently of Airlock's code, exactly as docs/operations.md tells a receiver to) and
// answers as the test scripts it: a status, or never (a hanging receiver).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedDelivery {
  headers: IncomingMessage['headers'];
  /** The raw body, as received. */
  body: string;
  event: any;
  receivedAt: number;
  /** The signature checked out with the receiver's secret and the timestamp is within 300 s. */
  verified: boolean;
  /** What the receiver answered (undefined: it hung). */
  answered?: number;
}

export type Answer = number | 'hang';

export interface WebhookReceiver {
  url: string;
  /** The secret the receiver checks with (set it to the one POST /v1/webhooks returned). */
  secret: string;
  received: ReceivedDelivery[];
  /** Answers for the next requests, in order; once empty, `otherwise`. */
  script: Answer[];
  otherwise: Answer;
  /** Resolves when `count` deliveries have arrived (rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedDelivery[]>;
  close(): Promise<void>;
}

/** The check a receiver does, written with node:crypto only (docs/operations.md has the same code). */
export function verifyWithNodeCrypto(secret: string, header: string | undefined, rawBody: string, nowSeconds = Math.floor(Date.now() / 1000)): boolean {
  const parts = Object.fromEntries((header ?? '').split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > 300 || typeof parts.v1 !== 'string') return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  const given = Buffer.from(parts.v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const hanging = new Set<ServerResponse>();
  const waiters: { count: number; resolve: () => void }[] = [];
  const receiver: WebhookReceiver = {
    url: '',
    secret: '',
    received: [],
    script: [],
    otherwise: 200,
    async waitFor(count, timeoutMs = 15_000) {
      if (receiver.received.length < count) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`the receiver got ${receiver.received.length} deliveries, expected ${count}`)), timeoutMs);
          waiters.push({ count, resolve: () => (clearTimeout(timer), resolve()) });
        });
      }
      return receiver.received;
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const signature = req.headers['airlock-signature'];
      const delivery: ReceivedDelivery = {
        headers: req.headers,
        body,
        event: JSON.parse(body),
        receivedAt: Date.now(),
        verified: verifyWithNodeCrypto(receiver.secret, Array.isArray(signature) ? signature[0] : signature, body),
      };
      receiver.received.push(delivery);
      const answer = receiver.script.length > 0 ? receiver.script.shift()! : receiver.otherwise;
      if (answer === 'hang') hanging.add(res);
      else {
        delivery.answered = answer;
        res.writeHead(answer, { 'content-type': 'text/plain' }).end('ok');
      }
      for (const w of waiters.splice(0)) {
        if (receiver.received.length >= w.count) w.resolve();
        else waiters.push(w);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/airlock-hook`;
  return receiver;
}
