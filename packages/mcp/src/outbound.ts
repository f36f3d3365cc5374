// Where pay_x402 and pay_l402 may send the model's requests. The model picks the URL, the method, the headers
// and the body, and reads the answer back, so without a check these tools reach whatever the MCP host can:
// cloud metadata (169.254.169.254 and others), services on loopback (the Airlock daemon's own routes among them),
// the private network. This fetch refuses such targets (ToolError `url_not_allowed`), checks the addresses the name
// resolves to (not only the name), connects to exactly the addresses it checked (a second, rebound DNS answer is
// never asked for), and follows no redirect: a 3xx comes back to the model, whose next call is checked again.
import { lookup as dnsLookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { networkInterfaces } from 'node:os';
import { Readable, Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { ToolError } from './results.ts';

/** What the operator re-allowed (AIRLOCK_MCP_ALLOW_PRIVATE_URLS): every private address, or these hosts. */
export type PrivateUrlAllowance = { kind: 'none' } | { kind: 'private' } | { kind: 'hosts'; hosts: Set<string> };

export interface OutboundOptions {
  /** The Airlock daemon (AIRLOCK_URL): never a target, whatever is allowed. */
  daemonUrl: string;
  allow?: PrivateUrlAllowance;
  /** Socket idle limit while connecting, waiting for the answer and reading it. Default 30 s. */
  idleTimeoutMs?: number;
  /**
   * Whole-exchange limit, from connecting to the last byte of the body: a server that trickles a byte now and then
   * never trips the idle limit, and would otherwise hold a tool call forever. Default 120 s.
   */
  deadlineMs?: number;
  /** Largest answer body read at all (the x402 client reads a 402's body in full). Default 16 MiB. */
  maxResponseBytes?: number;
}

export const ALLOW_PRIVATE_URLS_ENV = 'AIRLOCK_MCP_ALLOW_PRIVATE_URLS';

/** `1` (or `true`): every loopback and private address; else a comma-separated list of host names / addresses. */
export function parsePrivateUrlAllowance(value: string | undefined): PrivateUrlAllowance {
  const v = value?.trim() ?? '';
  if (v === '' || v === '0' || v.toLowerCase() === 'false') return { kind: 'none' };
  if (v === '1' || v.toLowerCase() === 'true') return { kind: 'private' };
  return { kind: 'hosts', hosts: new Set(v.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean)) };
}

/** Never reachable: unspecified ("this host": 0.0.0.0 connects to loopback), multicast, reserved, broadcast. */
const FORBIDDEN = new BlockList();
FORBIDDEN.addSubnet('0.0.0.0', 8, 'ipv4');
FORBIDDEN.addSubnet('224.0.0.0', 4, 'ipv4');
FORBIDDEN.addSubnet('240.0.0.0', 4, 'ipv4');
FORBIDDEN.addAddress('::', 'ipv6');
FORBIDDEN.addSubnet('ff00::', 8, 'ipv6');

/**
 * Cloud metadata and credential endpoints: never reachable, whatever the operator allows (they hand out the
 * host's cloud credentials). Not all are link-local, so the classes below would let some through once private
 * addresses are allowed (found by review): AWS's IPv6 IMDS and EKS Pod Identity sit in ULA space (fc00::/7),
 * Alibaba's in CGNAT space (100.64/10), Oracle's in 192.0.0.0/24, and Azure's WireServer in public space; GCP's
 * IPv6 metadata server (fd20:ce::254) and Scaleway's (fd00:42::42) in ULA space too (found by a second review), with
 * Scaleway's and Tencent's IPv4 ones (169.254.42.42, 169.254.0.23), which naming the host would otherwise re-allow.
 */
const METADATA = new BlockList();
for (const address of ['169.254.169.254', '169.254.170.2', '169.254.170.23', '169.254.42.42', '169.254.0.23', '100.100.100.200', '192.0.0.192', '168.63.129.16']) METADATA.addAddress(address, 'ipv4');
for (const address of ['fd20:ce::254', 'fd00:42::42']) METADATA.addAddress(address, 'ipv6');
// Whole prefixes where a provider keeps its metadata services: AWS (IMDS, EKS Pod Identity) and Akamai/Linode
// (fd00:a9fe:a9fe::1, found by a later review); a list of single addresses keeps falling behind.
METADATA.addSubnet('fd00:ec2::', 32, 'ipv6');
METADATA.addSubnet('fd00:a9fe:a9fe::', 48, 'ipv6');

/** Link-local: re-allowed only by naming the host. */
const LINK_LOCAL = new BlockList();
LINK_LOCAL.addSubnet('169.254.0.0', 16, 'ipv4');
LINK_LOCAL.addSubnet('fe80::', 10, 'ipv6');

/** Loopback, private networks (RFC 1918, ULA), CGNAT and the like: re-allowed by the operator setting. */
const PRIVATE = new BlockList();
for (const [net, bits] of [['127.0.0.0', 8], ['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['100.64.0.0', 10], ['192.0.0.0', 24], ['198.18.0.0', 15]] as const) PRIVATE.addSubnet(net, bits, 'ipv4');
PRIVATE.addAddress('::1', 'ipv6');
PRIVATE.addSubnet('fc00::', 7, 'ipv6');
PRIVATE.addSubnet('fec0::', 10, 'ipv6');

type AddressClass = 'public' | 'private' | 'link-local' | 'metadata' | 'forbidden';

/** The 16 bytes of an IPv6 address in any textual form (`::` compression, a dotted IPv4 tail), or undefined. */
function ipv6Bytes(address: string): Uint8Array | undefined {
  if (isIP(address) !== 6) return undefined;
  let text = address.toLowerCase().replace(/%.*$/, '');
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, undefined];
  const groups = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? left : [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
  if (all.length !== 8) return undefined;
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 255;
  });
  return bytes;
}

const startsWith = (bytes: Uint8Array, prefix: number[]) => prefix.every((b, i) => bytes[i] === b);
const v4At = (bytes: Uint8Array, at: number) => Array.from(bytes.subarray(at, at + 4)).join('.');

/**
 * What an IPv6 address reaches when it only wraps an IPv4 one, read from its bytes (any textual form):
 * IPv4-mapped (::ffff:0:0/96) and IPv4-translated (::ffff:0:0:0/96) reach that IPv4 address; so do NAT64
 * (64:ff9b::/96, RFC 6052) through a translator and 6to4 (2002::/16, RFC 3056) through a relay: each is
 * judged as the IPv4 address it carries. Forms no public server uses are refused outright: the deprecated
 * IPv4-compatible ::/96, a local-use NAT64 prefix (64:ff9b:1::/48, RFC 8215: where the IPv4 address sits is
 * the network's choice), Teredo (2001::/32, which carries an obfuscated client address), the discard-only
 * 100::/64 and documentation 2001:db8::/32.
 */
function throughIpv4(address: string): { v4: string } | { forbidden: true } | undefined {
  const b = ipv6Bytes(address);
  if (!b) return undefined;
  const zeros = (n: number) => Array<number>(n).fill(0);
  if (startsWith(b, [...zeros(10), 0xff, 0xff])) return { v4: v4At(b, 12) };
  if (startsWith(b, [...zeros(8), 0xff, 0xff, 0, 0])) return { v4: v4At(b, 12) };
  if (startsWith(b, [0, 0x64, 0xff, 0x9b, ...zeros(8)])) return { v4: v4At(b, 12) };
  if (startsWith(b, [0x20, 0x02])) return { v4: v4At(b, 2) };
  // ::/96 but for :: and ::1 (judged as themselves).
  if (startsWith(b, zeros(12)) && !(startsWith(b, zeros(15)) && b[15]! <= 1)) return { forbidden: true };
  if (startsWith(b, [0, 0x64, 0xff, 0x9b, 0, 1])) return { forbidden: true };
  if (startsWith(b, [0x20, 0x01, 0, 0])) return { forbidden: true };
  if (startsWith(b, [0x01, 0, ...zeros(6)])) return { forbidden: true };
  if (startsWith(b, [0x20, 0x01, 0x0d, 0xb8])) return { forbidden: true };
  return undefined;
}

export function classifyAddress(address: string): AddressClass {
  const family = isIP(address);
  if (family === 0) return 'forbidden';
  if (family === 6) {
    const inner = throughIpv4(address);
    if (inner) return 'forbidden' in inner ? 'forbidden' : classifyAddress(inner.v4);
  }
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (FORBIDDEN.check(address, type)) return 'forbidden';
  if (METADATA.check(address, type)) return 'metadata';
  if (LINK_LOCAL.check(address, type)) return 'link-local';
  if (PRIVATE.check(address, type)) return 'private';
  return 'public';
}

interface Resolved {
  address: string;
  family: 4 | 6;
}

async function resolve(hostname: string): Promise<Resolved[]> {
  const bare = hostname.replace(/^\[|\]$/g, '');
  const family = isIP(bare);
  if (family) return [{ address: bare, family: family as 4 | 6 }];
  try {
    const found = await dnsLookup(bare, { all: true, verbatim: true });
    return found.map((r) => ({ address: r.address, family: r.family as 4 | 6 }));
  } catch (e) {
    throw new ToolError('url_unresolvable', `The host ${bare} does not resolve (${(e as NodeJS.ErrnoException).code ?? 'error'}).`);
  }
}

const portOf = (url: URL): number => Number(url.port || (url.protocol === 'https:' ? 443 : 80));

function refused(url: URL, why: string): ToolError {
  return new ToolError('url_not_allowed', `${url.origin} is not a URL this tool fetches: ${why}.`, [
    `Only public http(s) URLs are fetched. The operator can re-allow private addresses with ${ALLOW_PRIVATE_URLS_ENV} (docs/mcp.md); the Airlock daemon and cloud metadata endpoints are never a target.`,
  ]);
}

/**
 * The addresses `url` may be fetched at, or a ToolError: every address the host resolves to must be allowed
 * (one private answer among public ones refuses the URL), and none may be the daemon's.
 */
export async function checkTarget(url: URL, options: OutboundOptions): Promise<Resolved[]> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw refused(url, 'only http and https are fetched');
  if (url.username || url.password) throw refused(url, 'URLs with credentials are not fetched');
  const daemon = new URL(options.daemonUrl);
  const port = portOf(url);
  if (url.origin === daemon.origin) throw refused(url, 'it is the Airlock daemon');
  const addresses = await resolve(url.hostname);
  if (addresses.length === 0) throw new ToolError('url_unresolvable', `The host ${url.hostname} does not resolve.`);
  const allow = options.allow ?? { kind: 'none' };
  const host = url.hostname.toLowerCase();
  const bare = host.replace(/^\[|\]$/g, '');
  const named = allow.kind === 'hosts' && [host, bare, `${host}:${port}`].some((h) => allow.hosts.has(h));
  let daemonAddresses: Resolved[] = [];
  if (portOf(daemon) === port) daemonAddresses = await resolve(daemon.hostname).catch(() => []);
  for (const { address } of addresses) {
    const cls = classifyAddress(address);
    if (cls === 'forbidden') throw refused(url, `${host} resolves to ${address}, an unspecified, multicast or reserved address`);
    if (cls === 'metadata') throw refused(url, `${host} resolves to ${address}, a cloud metadata address`);
    // The daemon, however it is named: the same address and port, or, when the daemon is on this host (AIRLOCK_URL
    // names loopback, the unspecified address or one of this host's interfaces), any address of this host on its
    // port: a daemon bound to every interface answers on each, whichever of them AIRLOCK_URL names (found by
    // review: with AIRLOCK_URL on the host's own address, 127.0.0.1 still reached it).
    // Compared as the host they reach (sameHost), not as text: ::ffff:<own address> and 64:ff9b::<own address>
    // reach the same daemon (found by review).
    const isDaemon = daemonAddresses.some((d) => sameHost(d.address, address) || (isThisHost(d.address) && isThisHost(address)));
    if (isDaemon) throw refused(url, 'it is the Airlock daemon');
    if (cls === 'public' || named) continue;
    if (cls === 'private' && allow.kind === 'private') continue;
    throw refused(url, `${host} resolves to ${address}, a ${cls === 'link-local' ? 'link-local (cloud metadata)' : 'loopback or private'} address`);
  }
  return addresses;
}

/** What an address reaches, in one spelling: the IPv4 address an IPv6 form carries, else the 16 bytes in hex. */
function hostKey(address: string): string {
  const inner = isIP(address) === 6 ? throughIpv4(address) : undefined;
  if (inner && 'v4' in inner) return inner.v4;
  if (isIP(address) === 4) return address;
  const bytes = ipv6Bytes(address);
  return bytes ? Buffer.from(bytes).toString('hex') : address.toLowerCase();
}

const sameHost = (a: string, b: string) => hostKey(a) === hostKey(b);

/** Loopback in any spelling: 127/8, or ::1 (as hostKey spells it). */
const isLoopback = (address: string) => /^127\./.test(hostKey(address)) || hostKey(address) === `${'0'.repeat(31)}1`;

/** The unspecified address in any spelling (0.0.0.0, ::): a connection to it reaches this host. */
const isUnspecified = (address: string) => hostKey(address) === '0.0.0.0' || hostKey(address) === '0'.repeat(32);

/** An address that reaches this host: loopback, unspecified or one of its interfaces. */
const isThisHost = (address: string) => isLoopback(address) || isUnspecified(address) || isOwnInterface(address);

/** An address of one of this host's own interfaces (a daemon bound to every interface answers on each), in any spelling. */
function isOwnInterface(address: string): boolean {
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => sameHost(i.address, address)));
}

/** A lookup that answers with the addresses already checked: the connection goes where the check looked. */
function pinnedLookup(addresses: Resolved[]): LookupFunction {
  return ((_hostname: string, opts: { all?: boolean; family?: number }, callback: (...args: unknown[]) => void) => {
    const usable = opts?.family === 4 || opts?.family === 6 ? addresses.filter((a) => a.family === opts.family) : addresses;
    const list = usable.length ? usable : addresses;
    if (opts?.all) callback(null, list);
    else callback(null, list[0]!.address, list[0]!.family);
  }) as LookupFunction;
}

const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/** What an aborted request fails with: the signal's reason when it is an error (a tool's ToolError), else an AbortError. */
function abortReasonOf(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new DOMException('The operation was aborted.', 'AbortError');
}

/**
 * `fetch` for the paying tools: checkTarget on the URL, then one HTTP/1.1 request to the checked addresses
 * (node:http / node:https, TLS checked against the host name), no redirect followed, the body decompressed as
 * fetch would (gzip, deflate, br) and cut off with an error past `maxResponseBytes`.
 */
export function createOutboundFetch(options: OutboundOptions): typeof globalThis.fetch {
  const idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
  const deadlineMs = options.deadlineMs ?? 120_000;
  const maxResponseBytes = options.maxResponseBytes ?? 16 * 1024 * 1024;
  return async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const addresses = await checkTarget(url, options);
    const body = request.body ? Buffer.from(await request.arrayBuffer()) : undefined;
    const headers: Record<string, string> = { accept: '*/*', 'user-agent': 'airlock-mcp' };
    request.headers.forEach((value, name) => (headers[name] = value));
    // The tools refuse these from the model (fields.ts); dropped here too, so that node:http sends the URL's own Host
    // (a given Host reaches the wire and picks the virtual host that answers) and framing of its own.
    for (const hopByHop of ['host', 'connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade', 'te', 'trailer', 'expect', 'proxy-authorization', 'proxy-connection']) delete headers[hopByHop];
    if (body) headers['content-length'] = String(body.length);
    const hostname = url.hostname.replace(/^\[|\]$/g, '');
    const requestOptions: RequestOptions & { servername?: string } = {
      method: request.method,
      hostname,
      port: portOf(url),
      path: `${url.pathname}${url.search}`,
      headers,
      lookup: pinnedLookup(addresses),
      // A connection of its own (no pooled keep-alive socket: a pool is keyed by name, not by checked address).
      agent: false,
      ...(url.protocol === 'https:' && !isIP(hostname) ? { servername: hostname } : {}),
    };
    // The deadline and the caller's signal destroy whichever is in flight: the request (before the answer) or the
    // answer (while it is read). A tool's whole-call time limit comes as the signal, its ToolError as the reason.
    let inFlight: { destroy(error: Error): unknown } | undefined;
    request.signal.throwIfAborted();
    const aborted = () => inFlight?.destroy(abortReasonOf(request.signal));
    request.signal.addEventListener('abort', aborted, { once: true });
    const deadline = setTimeout(
      () => inFlight?.destroy(new ToolError('resource_timeout', `${url.origin} did not finish answering within ${deadlineMs / 1000} s.`)),
      deadlineMs,
    );
    deadline.unref();
    const finished = () => {
      clearTimeout(deadline);
      request.signal.removeEventListener('abort', aborted);
    };
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(requestOptions, resolve);
      inFlight = req;
      req.once('close', () => { if (inFlight === req) finished(); });
      req.setTimeout(idleTimeoutMs, () => req.destroy(new ToolError('resource_timeout', `${url.origin} did not answer within ${idleTimeoutMs / 1000} s.`)));
      req.once('error', (e: NodeJS.ErrnoException) => {
        if (e instanceof ToolError || e.name === 'AbortError' || e === request.signal.reason) reject(e);
        else reject(new ToolError('resource_unreachable', `Cannot reach ${url.origin} (${e.code ?? e.message}).`));
      });
      req.end(body);
    });
    inFlight = res;
    res.once('close', finished);
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 599) {
      res.destroy();
      throw new ToolError('invalid_response', `${url.origin} answered with HTTP status ${status}.`);
    }
    const responseHeaders = new Headers();
    try {
      for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) responseHeaders.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
    } catch {
      res.destroy();
      throw new ToolError('invalid_response', `${url.origin} answered with a header fetch cannot hold.`);
    }
    let responseBody: ReadableStream<Uint8Array> | null = null;
    if (NULL_BODY_STATUSES.has(status) || request.method === 'HEAD') res.resume();
    else {
      let read = 0;
      const limit = new Transform({
        transform(chunk: Buffer, _enc, done) {
          read += chunk.length;
          if (read > maxResponseBytes) done(new ToolError('response_too_large', `${url.origin} answered with more than ${maxResponseBytes} bytes.`));
          else done(null, chunk);
        },
      });
      let stream: Readable = res;
      const encoding = (res.headers['content-encoding'] ?? '').trim().toLowerCase();
      const decoder = encoding === 'gzip' || encoding === 'x-gzip' ? createGunzip() : encoding === 'deflate' ? createInflate() : encoding === 'br' ? createBrotliDecompress() : undefined;
      if (decoder) {
        stream.once('error', (e) => decoder.destroy(e));
        stream = stream.pipe(decoder);
      }
      stream.once('error', (e) => limit.destroy(e));
      limit.once('close', () => res.destroy());
      responseBody = Readable.toWeb(stream.pipe(limit)) as ReadableStream<Uint8Array>;
    }
    const response = new Response(responseBody, { status, statusText: res.statusMessage ?? '', headers: responseHeaders });
    Object.defineProperty(response, 'url', { value: request.url });
    return response;
  };
}
