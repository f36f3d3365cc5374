/**
 * One NIP-01 client connection to a relay (Node's built-in WebSocket): keeps named subscriptions (re-sent
 * after a reconnect), publishes events and waits for the relay's `OK`. Reconnects with backoff until closed.
 *
 * A relay is an untrusted third party (docs/nostr.md): every frame it sends is read as `unknown` and checked field
 * by field, and nothing it sends may throw out of a socket listener. An exception there is uncaught, and an
 * uncaught exception ends the daemon: one `["OK", id, true, {"toString": 1}]` did exactly that. Each listener
 * runs guarded; a frame that still cannot be handled (a bug in a callback) is dropped and reported, never with
 * its contents.
 */
import type { SignedNostrEvent } from './port.ts';
import { relayLabel } from '../relay-label.ts';

export interface RelayFilter {
  kinds?: number[];
  authors?: string[];
  since?: number;
  limit?: number;
  '#p'?: string[];
}

export interface RelayConnectionOptions {
  onEvent(subscriptionId: string, event: unknown): void;
  /** Where connection trouble is reported (never with event contents). */
  onProblem?(message: string): void;
}

const OK_TIMEOUT_MS = 10_000;
const MAX_BACKOFF_MS = 30_000;
/**
 * Larger frames are dropped unparsed. The largest frame a client here expects is an EVENT carrying a NIP-44
 * payload (at most ~100 KB of base64: the callers drop larger contents anyway); parsing megabytes of a relay's
 * JSON would only cost CPU and memory.
 */
const MAX_FRAME_CHARS = 1024 * 1024;
/** A relay's `OK` message and a `CLOSED` reason reach log lines: bounded and printable. */
const MAX_RELAY_TEXT_CHARS = 200;
/** At most one line per relay per interval about frames that could not be handled (a hostile relay can send many). */
const PROBLEM_REPORT_INTERVAL_MS = 60_000;

export class RelayConnection {
  readonly url: string;
  private socket: WebSocket | undefined;
  private readonly subscriptions = new Map<string, RelayFilter[]>();
  private readonly pendingOk = new Map<string, (result: { accepted: boolean; message: string }) => void>();
  private readonly options: RelayConnectionOptions;
  private closed = false;
  private backoffMs = 250;
  private opened: Promise<void> | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private unhandled = 0;
  private lastProblemReportAt = Number.NEGATIVE_INFINITY;

  constructor(url: string, options: RelayConnectionOptions) {
    this.url = url;
    this.options = options;
  }

  /** Opens the socket; resolves once it is open (or rejects if the first attempt fails). */
  connect(): Promise<void> {
    this.opened = new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.socket = ws;
      ws.onopen = this.guarded(() => {
        this.backoffMs = 250;
        for (const [id, filters] of this.subscriptions) ws.send(JSON.stringify(['REQ', id, ...filters]));
        resolve();
      });
      ws.onmessage = this.guarded((m: MessageEvent) => this.onMessage(m.data));
      ws.onerror = this.guarded(() => reject(new Error(`relay ${relayLabel(this.url)} did not accept the connection`)));
      ws.onclose = this.guarded(() => {
        this.socket = undefined;
        const waiting = [...this.pendingOk.values()];
        this.pendingOk.clear();
        for (const done of waiting) done({ accepted: false, message: 'error: connection closed' });
        if (!this.closed) this.scheduleReconnect();
      });
    });
    return this.opened;
  }

  private scheduleReconnect(): void {
    const wait = this.backoffMs;
    this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
    this.reconnectTimer = setTimeout(() => {
      this.connect().catch(() => this.options.onProblem?.(`relay ${relayLabel(this.url)}: reconnect failed; retrying`));
    }, wait);
    this.reconnectTimer.unref();
  }

  /** Opens or replaces (same id: NIP-01) a subscription. */
  subscribe(id: string, filters: RelayFilter[]): void {
    this.subscriptions.set(id, filters);
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(['REQ', id, ...filters]));
  }

  /** Sends an event; resolves with the relay's OK verdict (or a local failure, never a throw). */
  async publish(event: SignedNostrEvent): Promise<{ accepted: boolean; message: string }> {
    await this.opened?.catch(() => undefined);
    const ws = this.socket;
    if (!ws || ws.readyState !== WebSocket.OPEN) return { accepted: false, message: 'error: not connected' };
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pendingOk.delete(event.id);
        resolve({ accepted: false, message: 'error: no OK from the relay' });
      }, OK_TIMEOUT_MS);
      timer.unref();
      this.pendingOk.set(event.id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      try {
        ws.send(JSON.stringify(['EVENT', event]));
      } catch {
        // Closed between the check above and now: its close handler answers the waiting publish.
      }
    });
  }

  /**
   * NIP-01 relay-to-client messages. Only the fields this client acts on are read, each after a type check;
   * anything else (another shape, a type this client does not use, a subscription it never opened) is ignored.
   */
  private onMessage(data: unknown): void {
    if (typeof data !== 'string' || data.length > MAX_FRAME_CHARS) return;
    let msg: unknown;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (!Array.isArray(msg)) return;
    const [type, first, second, third] = msg as unknown[];
    if (type === 'EVENT') {
      if (typeof first === 'string' && this.subscriptions.has(first)) this.options.onEvent(first, second);
    } else if (type === 'OK') {
      if (typeof first !== 'string') return;
      const done = this.pendingOk.get(first);
      if (!done) return;
      this.pendingOk.delete(first);
      done({ accepted: second === true, message: relayText(third) });
    } else if (type === 'CLOSED') {
      if (typeof first === 'string' && this.subscriptions.has(first)) this.options.onProblem?.(`relay ${relayLabel(this.url)} closed subscription ${first}: ${relayText(second)}`);
    }
  }

  /** A socket listener that never throws: what it could not handle is counted and reported (throttled). */
  private guarded<A extends unknown[]>(listener: (...args: A) => void): (...args: A) => void {
    return (...args) => {
      try {
        listener(...args);
      } catch (e) {
        this.unhandled++;
        const now = Date.now();
        if (now - this.lastProblemReportAt < PROBLEM_REPORT_INTERVAL_MS) return;
        this.lastProblemReportAt = now;
        // The error's name only: its message may quote what the relay sent.
        this.options.onProblem?.(`relay ${relayLabel(this.url)}: dropped a message that could not be handled (${e instanceof Error ? e.name : typeof e}; ${this.unhandled} so far)`);
      }
    };
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.socket?.close();
  }
}

/** A relay-supplied string as it may appear in a log line: printable ASCII, bounded; anything else is ''. */
function relayText(value: unknown): string {
  return typeof value === 'string' ? value.slice(0, MAX_RELAY_TEXT_CHARS).replace(/[^\x20-\x7e]/g, '?') : '';
}
