// Input fields shared by the tools, each with the description a model reads in the JSON schema.
import { z } from 'zod';
import { ToolError } from '../results.ts';

export const chainIdField = z.number().int().positive().describe('EVM chain id, e.g. 8453 for Base, 1 for Ethereum mainnet, 31337 for a local anvil chain.');
export const addressField = z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'a 0x-prefixed 20-byte hex address');
export const amountField = z
  .string()
  .regex(/^\d{1,78}$/, 'a non-negative integer string')
  .describe('Amount in base units as a decimal string (no decimal point): 1 USDC (6 decimals) is "1000000", 1 ETH is "1000000000000000000".');
export const tokenField = addressField.optional().describe('ERC-20 token contract address; omit for the chain\'s native coin (ETH).');

export const transferShape = {
  chainId: chainIdField,
  to: addressField.describe('Recipient address.'),
  amount: amountField,
  token: tokenField,
};

export const DEFAULT_MAX_BODY_CHARS = 20_000;

/** The request a paying fetch tool (pay_x402, pay_l402) sends; `headersNote` adds what that tool does with headers. */
export function paidFetchShape(headersNote = '') {
  return {
    url: z.url({ protocol: /^https?$/ }).describe('The resource URL (http or https, on the public internet: private and loopback addresses are refused unless the operator allows them). Redirects are not followed: a 3xx answer is returned with its `location`.'),
    method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).default('GET').describe('HTTP method. Default GET.'),
    headers: z
      .record(z.string(), z.string())
      .optional()
      .describe(`Extra request headers, e.g. {"accept":"application/json"}. Names are HTTP tokens; values are Latin-1 text without control characters (tab allowed).${headersNote}`),
    body: z.string().optional().describe('Request body (for POST/PUT/PATCH), sent as is.'),
    maxBodyChars: z.number().int().min(1).max(1_000_000).default(DEFAULT_MAX_BODY_CHARS).describe(`Longest response body returned, in characters; longer ones are cut. Default ${DEFAULT_MAX_BODY_CHARS}.`),
  };
}

/**
 * Headers that say where and how the request travels, which the tool sets from the URL and the body: never the
 * model's. A model's `Host` reached the wire (node:http sends a given Host in place of the URL's), so the request
 * went to the URL's checked address but another virtual host answered, was paid and got the L402 credential,
 * while Airlock judged the payment under the URL's resource (found by review).
 */
const SET_BY_THE_TOOL = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade', 'te', 'trailer', 'expect', 'proxy-authorization', 'proxy-connection']);

/** An HTTP header name: a token (RFC 7230 §3.2.6). */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A header value as node:http sends it: visible ASCII, Latin-1 obs-text, space and tab (RFC 7230 §3.2): no CR, LF, NUL. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * The model's request headers, checked before anything is fetched or signed: a name that is no token or a value
 * fetch or node:http would refuse is `invalid_request` (found by review: they failed later as `internal`, with
 * undici's message), as is a header that says where the request travels (`SET_BY_THE_TOOL`) or a name in
 * `reserved` (headers the tool sets itself). Values are not echoed: a model may have put a secret in one.
 */
export function checkRequestHeaders(headers: Record<string, string> | undefined, reserved?: { names: string[]; why: string }): void {
  for (const [name, value] of Object.entries(headers ?? {})) {
    const shown = JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name);
    if (!HEADER_NAME.test(name)) {
      throw new ToolError('invalid_request', `headers: ${shown} is not a header name.`, ["A header name is letters, digits and !#$%&'*+-.^_`|~ only (RFC 7230 token)."]);
    }
    if (!HEADER_VALUE.test(value)) {
      throw new ToolError('invalid_request', `headers: the value of ${shown} holds a character a header cannot carry.`, ['Header values are Latin-1 text without CR, LF, NUL or other control characters (tab is allowed).']);
    }
    if (SET_BY_THE_TOOL.has(name.toLowerCase())) {
      throw new ToolError('invalid_request', `headers: ${shown} is set by this tool.`, ['The host comes from the URL, and the connection and length headers from the request itself; send the request without them.']);
    }
    if (reserved?.names.includes(name.toLowerCase())) throw new ToolError('invalid_request', `headers: ${shown} is not accepted here.`, [reserved.why]);
  }
}

/** A response body read up to a byte limit: `cut` when there was more (the rest was not read; the stream is cancelled). */
export interface CappedBody {
  text: string;
  cut: boolean;
}

/** Characters dropped from the end of a body cut while reading: more than a secret (a 64-hex preimage) cut in two. */
const CUT_TAIL_CHARS = 64;

/**
 * Bytes read of a body before it is cut: enough for `maxBodyChars` characters of any UTF-8 (4 bytes each at
 * most) and a margin, so that what a tool returns (the first `maxBodyChars` characters) was read whole.
 */
export function bodyByteCap(maxBodyChars: number): number {
  return maxBodyChars * 4 + 1024;
}

/**
 * Reads `response`'s body up to bodyByteCap(maxBodyChars) bytes, then cancels the rest. A cut body loses its
 * last CUT_TAIL_CHARS characters: a secret the reading cut in two (which redaction, matching whole secrets,
 * would miss) is not returned in part.
 */
export async function readCappedBody(response: Response, maxBodyChars: number): Promise<CappedBody> {
  if (!response.body) return { text: '', cut: false };
  const cap = bodyByteCap(maxBodyChars);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let read = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { text: text + decoder.decode(), cut: false };
    const room = cap - read;
    if (value.byteLength > room) {
      text += decoder.decode(value.subarray(0, room), { stream: true });
      await reader.cancel().catch(() => {});
      return { text: text.slice(0, Math.max(0, text.length - CUT_TAIL_CHARS)), cut: true };
    }
    read += value.byteLength;
    text += decoder.decode(value, { stream: true });
  }
}

/**
 * The response body as a tool returns it: cut at `maxBodyChars`, saying so (`bodyLength` when the whole body was
 * read; a body cut while reading has no known length).
 */
export function returnedBody(body: CappedBody, maxBodyChars: number): { body: string; truncated?: true; bodyLength?: number } {
  if (body.cut) return { body: body.text.slice(0, maxBodyChars), truncated: true };
  return body.text.length > maxBodyChars ? { body: body.text.slice(0, maxBodyChars), truncated: true, bodyLength: body.text.length } : { body: body.text };
}

/** What both paying tools answer about the response itself: status, type, a redirect's target and the body. */
export function answerFields(response: Response, body: CappedBody, maxBodyChars: number) {
  return { status: response.status, ok: response.ok, contentType: response.headers.get('content-type'), ...redirectOf(response), ...returnedBody(body, maxBodyChars) };
}

/** Where a redirect answer points: the tools follow none, so the model sees it and may call again with it. */
export function redirectOf(response: Response): { location: string } | Record<string, never> {
  const location = response.status >= 300 && response.status < 400 ? response.headers.get('location') : null;
  if (location === null) return {};
  try {
    return { location: new URL(location, response.url || undefined).href };
  } catch {
    return { location };
  }
}
