/**
 * One NIP-01 client connection to a relay (Node's built-in WebSocket): keeps named subscriptions (re-sent
 * after a reconnect), publishes events and waits for the relay's `OK`. Reconnects with backoff until closed.
 */
import type { SignedNostrEvent } from './port.ts';

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

  constructor(url: string, options: RelayConnectionOptions) {
    this.url = url;
    this.options = options;
  }

  /** Opens the socket; resolves once it is open (or rejects if the first attempt fails). */
  connect(): Promise<void> {
    this.opened = new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.socket = ws;
      ws.onopen = () => {
        this.backoffMs = 250;
        for (const [id, filters] of this.subscriptions) ws.send(JSON.stringify(['REQ', id, ...filters]));
        resolve();
      };
      ws.onmessage = (m) => this.onMessage(String(m.data));
      ws.onerror = () => reject(new Error(`relay ${this.url} did not accept the connection`));
      ws.onclose = () => {
        this.socket = undefined;
        for (const done of this.pendingOk.values()) done({ accepted: false, message: 'error: connection closed' });
        this.pendingOk.clear();
        if (!this.closed) this.scheduleReconnect();
      };
    });
    return this.opened;
  }

  private scheduleReconnect(): void {
    const wait = this.backoffMs;
    this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
    this.reconnectTimer = setTimeout(() => {
      this.connect().catch(() => this.options.onProblem?.(`relay ${this.url}: reconnect failed; retrying`));
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
      ws.send(JSON.stringify(['EVENT', event]));
    });
  }

  private onMessage(text: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (!Array.isArray(msg)) return;
    if (msg[0] === 'EVENT' && typeof msg[1] === 'string') this.options.onEvent(msg[1], msg[2]);
    else if (msg[0] === 'OK' && typeof msg[1] === 'string') {
      this.pendingOk.get(msg[1])?.({ accepted: msg[2] === true, message: String(msg[3] ?? '') });
      this.pendingOk.delete(msg[1]);
    } else if (msg[0] === 'CLOSED' && typeof msg[1] === 'string') this.options.onProblem?.(`relay ${this.url} closed subscription ${msg[1]}`);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.socket?.close();
  }
}
