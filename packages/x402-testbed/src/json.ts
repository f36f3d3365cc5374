import type { IncomingMessage, ServerResponse } from 'node:http';

/** JSON.stringify that writes bigints as decimal strings (x402 payloads and viem results carry bigints). */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
}

export function base64Json(value: unknown): string {
  return Buffer.from(toJson(value)).toString('base64');
}

export function fromBase64Json<T = unknown>(value: string): T {
  return JSON.parse(Buffer.from(value, 'base64').toString('utf8')) as T;
}

export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(toJson(body));
}
