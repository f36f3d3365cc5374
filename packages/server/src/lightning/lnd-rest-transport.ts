// HTTPS to one LND REST listener: the macaroon in the header LND's REST proxy reads, LND's own certificate as the
// only one trusted, and bodies read as newline-delimited JSON (how LND's REST proxy streams server-streaming RPCs).
// It knows nothing about payments; lnd-rest.ts gives the answers their meaning.
import { X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Agent, request, type RequestOptions } from 'node:https';
import { checkServerIdentity, type PeerCertificate, type TLSSocket } from 'node:tls';

/** The deadline of a call passed; `afterAnswer` tells whether LND had started answering (status line received). */
export class LndDeadlineReached extends Error {
  readonly afterAnswer: boolean;
  constructor(afterAnswer: boolean) {
    super(afterAnswer ? 'LND did not finish answering in time' : 'LND did not answer in time');
    this.name = 'LndDeadlineReached';
    this.afterAnswer = afterAnswer;
  }
}

export interface LndTransportOptions {
  baseUrl: URL;
  macaroonHex: string;
  /** LND's tls.cert (PEM): the only CA, and the one certificate accepted under any host name. */
  certPem: string;
  connectTimeoutMs: number;
}

export interface LndAnswer {
  status: number;
  /** The body's lines (LND ends each JSON value with "\n"); throws LndDeadlineReached or the transport error. */
  lines(): AsyncGenerator<string>;
  /** The whole body, for unary answers and error bodies. */
  text(): Promise<string>;
  /** Stops reading and closes the connection (a payment LND is routing is not cancelled by this). */
  close(): void;
}

// An answer larger than this is not one LND gives for these calls (a Payment with many HTLC attempts is a few
// tens of kilobytes); reading stops rather than buffering whatever a broken or hostile peer sends.
const MAX_LINE_BYTES = 1 << 20;

export class LndTransport {
  private readonly options: LndTransportOptions;
  private readonly agent: Agent;
  private readonly open = new Set<{ destroy(error?: Error): void }>();

  constructor(options: LndTransportOptions) {
    this.options = options;
    const pinned = new X509Certificate(options.certPem).fingerprint256;
    // The given certificate is the only CA: OpenSSL must chain the server's certificate to it (dates checked).
    // LND's own tls.cert is self-signed and names localhost and the node's addresses, rarely the name a remote
    // client uses (a Docker service name, a VPN address), so when the server presents exactly that certificate
    // it is accepted under any name: an exact pin says more than a name. Any other certificate (one issued
    // by a CA the operator gave instead) must also carry the host name, as TLS clients check by default.
    this.agent = new Agent({
      keepAlive: false,
      ca: options.certPem,
      checkServerIdentity: (host: string, cert: PeerCertificate) => (cert.fingerprint256 === pinned ? undefined : checkServerIdentity(host, cert)),
    });
  }

  /** Sends one request; resolves when the status line and headers arrive. Rejects on transport trouble. */
  send(method: 'GET' | 'POST', path: string, body: unknown, deadlineMs: number): Promise<LndAnswer> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
    const headers: Record<string, string | number> = { 'Grpc-Metadata-macaroon': this.options.macaroonHex, Accept: 'application/json' };
    if (payload) Object.assign(headers, { 'Content-Type': 'application/json', 'Content-Length': payload.length });
    const requestOptions: RequestOptions = { method, agent: this.agent, headers };
    return new Promise((resolve, reject) => {
      let response: IncomingMessage | undefined;
      const req = request(new URL(path, this.options.baseUrl), requestOptions);
      const handle = { destroy: (error?: Error) => (response ? response.destroy(error) : req.destroy(error)) };
      this.open.add(handle);
      const deadline = setTimeout(() => handle.destroy(new LndDeadlineReached(response !== undefined)), Math.max(0, deadlineMs - Date.now()));
      const finish = () => {
        clearTimeout(deadline);
        this.open.delete(handle);
      };
      req.on('socket', (socket) => {
        const tls = socket as TLSSocket;
        if (!tls.connecting) return;
        const timer = setTimeout(() => req.destroy(new Error(`no TLS connection to LND within ${this.options.connectTimeoutMs} ms`)), this.options.connectTimeoutMs);
        tls.once('secureConnect', () => clearTimeout(timer));
        tls.once('close', () => clearTimeout(timer));
      });
      req.on('error', (error) => {
        finish();
        reject(error);
      });
      req.on('response', (res) => {
        response = res;
        res.on('close', finish);
        res.setEncoding('utf8');
        resolve({
          status: res.statusCode ?? 0,
          lines: () => readLines(res),
          text: async () => {
            let text = '';
            for await (const line of readLines(res)) text += `${line}\n`;
            return text;
          },
          close: () => {
            finish();
            res.destroy();
          },
        });
      });
      req.end(payload);
    });
  }

  /** Aborts every call still open (they reject) and stops the agent. */
  close(): void {
    for (const handle of this.open) handle.destroy(new Error('the LND backend was closed'));
    this.open.clear();
    this.agent.destroy();
  }
}

async function* readLines(res: IncomingMessage): AsyncGenerator<string> {
  let buffered = '';
  for await (const chunk of res as AsyncIterable<string>) {
    buffered += chunk;
    let end: number;
    while ((end = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
      if (line.trim() !== '') yield line;
    }
    if (buffered.length > MAX_LINE_BYTES) {
      res.destroy();
      throw new Error('LND sent a line longer than any answer it gives');
    }
  }
  // Node ends an incomplete chunked body with an error ("aborted"), so reaching here means the body is whole.
  if (buffered.trim() !== '') yield buffered;
}
