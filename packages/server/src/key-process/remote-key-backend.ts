import { Agent as HttpAgent, request } from 'node:http';
import { AirlockError, ERROR_CODES, type BoundSigningRequest, type EcdsaSignature, type ErrorCode, type ExtendedPublicKey, type KeyBackend, type ProducedSignature, type TreeHeadToSign } from '@airlock/core';
import { decodeWire, encodeWire, type KeyProcessMethod, type WireError } from './wire.ts';

const REQUEST_TIMEOUT_MS = 10_000;

/**
 * The daemon's KeyBackend when the keys live in a key process (AIRLOCK_KEY_PROCESS_SOCKET): every call is a
 * request over the Unix socket. Public keys are cached (a path's key never changes); everything that uses a
 * private key goes to the key process every time, agent signatures as bound requests (`signBound`), and the
 * key process decides. A key process that does not answer is `key_process_unavailable`: nothing is signed.
 */
export class RemoteKeyBackend implements KeyBackend {
  readonly kind = 'key-process';
  /**
   * Whether the key process's own backend repeats its signatures, as its `hello` says. Until then false: the
   * signing service then keeps every released signature, which is right for either backend.
   */
  deterministic = false;
  private readonly agent = new HttpAgent({ keepAlive: true, maxSockets: 64 });
  private readonly publicKeys = new Map<string, Uint8Array>();
  private readonly extendedKeys = new Map<string, ExtendedPublicKey>();
  readonly socketPath: string;

  constructor(socketPath: string) {
    this.socketPath = socketPath;
  }

  /**
   * The vault fingerprint the key process holds (the daemon checks it is its store's), and the log lines it
   * has lost since it started (a number from key processes that report it; the daemon's metrics show it).
   */
  async hello(timeoutMs = REQUEST_TIMEOUT_MS): Promise<{ fingerprint: string; deterministic: boolean; logLinesDropped?: number }> {
    const answer = (await this.call('hello', {}, timeoutMs)) as { fingerprint: string; deterministic?: boolean; logLinesDropped?: unknown };
    this.deterministic = answer.deterministic === true;
    const dropped = answer.logLinesDropped;
    return { fingerprint: answer.fingerprint, deterministic: this.deterministic, ...(Number.isSafeInteger(dropped) && (dropped as number) >= 0 ? { logLinesDropped: dropped as number } : {}) };
  }

  async getPublicKey(path: string): Promise<Uint8Array> {
    const cached = this.publicKeys.get(path);
    if (cached) return cached.slice();
    const key = (await this.call('getPublicKey', { path })) as Uint8Array;
    this.publicKeys.set(path, key.slice());
    return key;
  }

  async getExtendedPublicKey(path: string): Promise<ExtendedPublicKey> {
    const cached = this.extendedKeys.get(path);
    if (cached) return { ...cached, publicKey: cached.publicKey.slice(), chainCode: cached.chainCode.slice() };
    const key = (await this.call('getExtendedPublicKey', { path })) as ExtendedPublicKey;
    this.extendedKeys.set(path, key);
    return { ...key, publicKey: key.publicKey.slice(), chainCode: key.chainCode.slice() };
  }

  async signBound(bound: BoundSigningRequest): Promise<ProducedSignature[]> {
    return (await this.call('signBound', { ...bound })) as ProducedSignature[];
  }

  async signTreeHead(path: string, head: TreeHeadToSign): Promise<Uint8Array> {
    return (await this.call('signTreeHead', { path, head })) as Uint8Array;
  }

  /** Refused by the key process for every key (`unbound_digest`): kept so the port is whole and the refusal is its word. */
  async signDigest(path: string, digest: Uint8Array, scheme: 'ecdsa-secp256k1'): Promise<EcdsaSignature> {
    return (await this.call('signDigest', { path, digest, scheme })) as EcdsaSignature;
  }

  async signTaprootKeyPath(path: string, digest: Uint8Array): Promise<Uint8Array> {
    return (await this.call('signTaprootKeyPath', { path, digest })) as Uint8Array;
  }

  async signSchnorr(path: string, digest: Uint8Array): Promise<Uint8Array> {
    return (await this.call('signSchnorr', { path, digest })) as Uint8Array;
  }

  async nip44ConversationKey(path: string, peerXOnly: Uint8Array): Promise<Uint8Array> {
    return (await this.call('nip44ConversationKey', { path, peer: peerXOnly })) as Uint8Array;
  }

  async nip04SharedSecret(path: string, peerXOnly: Uint8Array): Promise<Uint8Array> {
    return (await this.call('nip04SharedSecret', { path, peer: peerXOnly })) as Uint8Array;
  }

  async deriveSecret(path: string, label: string): Promise<Uint8Array> {
    return (await this.call('deriveSecret', { path, label })) as Uint8Array;
  }

  close(): void {
    this.agent.destroy();
  }

  /** One request. Any transport failure is `key_process_unavailable`; the key process's own errors keep their code. */
  call(method: KeyProcessMethod, params: Record<string, unknown>, timeoutMs = REQUEST_TIMEOUT_MS): Promise<unknown> {
    const body = encodeWire(params);
    return new Promise((resolve, reject) => {
      const unavailable = (why: string) => new AirlockError('key_process_unavailable', `The key process does not answer (${why}); nothing was signed.`, {
        hints: ['Start it (`airlock key-process`, docs/custody.md) or check AIRLOCK_KEY_PROCESS_SOCKET and the socket\'s permissions.'],
      });
      const req = request({ socketPath: this.socketPath, path: `/${method}`, method: 'POST', agent: this.agent, timeout: timeoutMs, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', () => reject(unavailable('the answer was cut')));
        res.on('end', () => {
          let parsed: { result?: unknown; error?: WireError };
          try {
            parsed = decodeWire(Buffer.concat(chunks).toString('utf8')) as typeof parsed;
          } catch {
            return reject(unavailable('an unreadable answer'));
          }
          if (res.statusCode === 200 && parsed && 'result' in parsed) return resolve(parsed.result);
          reject(errorFrom(parsed?.error));
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e: NodeJS.ErrnoException) => reject(unavailable(e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? 'no one listens on its socket' : e.code === 'EACCES' ? 'permission denied on its socket' : e.message === 'timeout' ? 'timed out' : 'the connection failed')));
      req.end(body);
    });
  }
}

/** The key process's error as the daemon's: its stable code when it is one of ours, `internal` otherwise. */
function errorFrom(error: WireError | undefined): AirlockError {
  if (!error || typeof error.code !== 'string') return new AirlockError('internal', 'The key process answered with no error body; nothing was signed.');
  const code = (error.code in ERROR_CODES ? error.code : 'internal') as ErrorCode;
  const details = error.details && typeof error.details === 'object' ? error.details : undefined;
  return new AirlockError(code, typeof error.message === 'string' ? error.message : 'The key process refused.', details ? { details } : {});
}
