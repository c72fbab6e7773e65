// Browser-mode implementation of SdttApi over the `sdtt serve` WebSocket (one JSON text frame per message, see
// WsClientMessage / WsServerMessage in shared/api.ts). Reconnects with exponential backoff; a request in flight
// when the connection drops is rejected with a message saying so (it may or may not have run on the server).
import {
  API_METHODS,
  ApiError,
  type ApiMethod,
  type ApiRequest,
  type ApiResponses,
  type RunEvent,
  type SdttApi,
  type WsClientMessage,
  type WsServerMessage,
} from '../../shared/api.ts';
import { backoffDelay } from '../lib/backoff.ts';

/** 'failed' is terminal: the server rejected the token (close code 1008); the client does not retry. */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed' | 'failed';
export interface ConnectionStatus {
  state: ConnectionState;
  /** Why the last connection ended / what is wrong, for the header. */
  detail?: string;
  /** When state is 'reconnecting': ms until the next attempt. */
  retryInMs?: number;
  attempt: number;
}

/** The subset of the DOM WebSocket this client uses (so tests can pass a fake). */
export interface WsLike {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
}
export type WsFactory = (url: string) => WsLike;

interface Pending {
  method: ApiMethod;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer?: ReturnType<typeof setTimeout>;
}

export interface WsClientOptions {
  factory?: WsFactory;
  /** How long a request made while disconnected waits for the connection before it fails (ms). */
  queueTimeoutMs?: number;
  /** How long a sent request waits for its answer (ms); generous: exportRound / getMetrics can be slow. */
  requestTimeoutMs?: number;
  backoff?: (attempt: number) => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
}

export class WsApiClient {
  private ws: WsLike | null = null;
  private nextId = 1;
  /** Sent, waiting for the answer. */
  private inflight = new Map<number, Pending>();
  /** Not yet sent (no open connection). */
  private queue: { msg: WsClientMessage; p: Pending }[] = [];
  private listeners = new Set<(e: RunEvent) => void>();
  private stateListeners = new Set<(s: ConnectionStatus) => void>();
  private reconnectListeners = new Set<() => void>();
  private attempt = 0;
  private everOpened = false;
  private retryTimer: unknown = null;
  private disposed = false;
  status: ConnectionStatus = { state: 'connecting', attempt: 0 };
  readonly api: SdttApi;
  private readonly o: Required<WsClientOptions>;

  constructor(
    readonly url: string,
    opts: WsClientOptions = {},
  ) {
    this.o = {
      factory: opts.factory ?? ((u) => new WebSocket(u) as unknown as WsLike),
      queueTimeoutMs: opts.queueTimeoutMs ?? 15_000,
      requestTimeoutMs: opts.requestTimeoutMs ?? 10 * 60_000,
      backoff: opts.backoff ?? ((a) => backoffDelay(a)),
      setTimer: opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms)),
      clearTimer: opts.clearTimer ?? ((t) => clearTimeout(t as ReturnType<typeof setTimeout>)),
    };
    const api: Record<string, unknown> = {};
    for (const m of API_METHODS) api[m] = (req: unknown) => this.call(m, req);
    api.subscribe = (l: (e: RunEvent) => void) => {
      this.listeners.add(l);
      return () => this.listeners.delete(l);
    };
    this.api = api as unknown as SdttApi;
    this.connect();
  }

  onStatus(l: (s: ConnectionStatus) => void): () => void {
    this.stateListeners.add(l);
    l(this.status);
    return () => this.stateListeners.delete(l);
  }

  /** Called after every re-established connection (not the first): refetch what events may have been missed. */
  onReconnect(l: () => void): () => void {
    this.reconnectListeners.add(l);
    return () => this.reconnectListeners.delete(l);
  }

  dispose(): void {
    this.disposed = true;
    if (this.retryTimer !== null) this.o.clearTimer(this.retryTimer);
    this.ws?.close(1000, 'client closed');
    this.failAll('the client was closed');
    this.setStatus({ state: 'closed', detail: 'closed', attempt: this.attempt });
  }

  private setStatus(s: ConnectionStatus): void {
    this.status = s;
    for (const l of this.stateListeners) l(s);
  }

  private connect(): void {
    if (this.disposed) return;
    this.retryTimer = null;
    this.setStatus({
      state: this.everOpened ? 'reconnecting' : 'connecting',
      detail: this.status.detail,
      attempt: this.attempt,
    });
    let ws: WsLike;
    try {
      ws = this.o.factory(this.url);
    } catch (e) {
      this.scheduleReconnect(`cannot open ${redact(this.url)}: ${(e as Error).message}`);
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      const wasReconnect = this.everOpened;
      this.everOpened = true;
      this.attempt = 0;
      this.setStatus({ state: 'open', attempt: 0 });
      const queued = this.queue;
      this.queue = [];
      for (const q of queued) {
        if (q.p.timer !== undefined) this.o.clearTimer(q.p.timer);
        this.send(q.msg, q.p);
      }
      if (wasReconnect) for (const l of this.reconnectListeners) l();
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.handle(ev.data);
    };
    ws.onerror = () => {
      /* onclose follows with the code */
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      const why = closeReason(ev.code, ev.reason, this.everOpened);
      if (ev.code === 1008) {
        // The server refused our token: retrying cannot help. Terminal state, everything pending fails now.
        const detail =
          'the server rejected the access token (bad or missing token): open the exact URL that `sdtt serve` printed';
        this.failAll(`not connected to the SDTT server: ${detail}`);
        this.setStatus({ state: 'failed', detail, attempt: this.attempt });
        return;
      }
      this.failInflight(
        `connection to the SDTT server lost (${why}) before it answered; the request may or may not have run`,
      );
      this.scheduleReconnect(why);
    };
  }

  private scheduleReconnect(detail: string): void {
    if (this.disposed) return;
    const delay = this.o.backoff(this.attempt++);
    this.setStatus({
      state: this.everOpened ? 'reconnecting' : 'connecting',
      detail,
      retryInMs: delay,
      attempt: this.attempt,
    });
    this.retryTimer = this.o.setTimer(() => this.connect(), delay);
  }

  private call(method: ApiMethod, params: unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.disposed) return reject(new ApiError(`${method}: the client was closed`, 'internal'));
      if (this.status.state === 'failed')
        return reject(
          new ApiError(`${method}: not connected to the SDTT server: ${this.status.detail ?? 'failed'}`, 'internal'),
        );
      const p: Pending = { method, resolve, reject };
      const msg: WsClientMessage = { id: this.nextId++, method, params: params ?? {} };
      if (this.ws && this.status.state === 'open') this.send(msg, p);
      else {
        const entry = { msg, p };
        this.queue.push(entry);
        p.timer = this.o.setTimer(() => {
          const i = this.queue.indexOf(entry);
          if (i >= 0) this.queue.splice(i, 1);
          reject(
            new ApiError(
              `${method}: not connected to the SDTT server (${this.status.detail ?? this.status.state}); gave up after ${Math.round(this.o.queueTimeoutMs / 1000)}s`,
              'internal',
            ),
          );
        }, this.o.queueTimeoutMs) as ReturnType<typeof setTimeout>;
      }
    });
  }

  private send(msg: WsClientMessage, p: Pending): void {
    this.inflight.set(msg.id, p);
    p.timer = this.o.setTimer(() => {
      if (this.inflight.delete(msg.id))
        p.reject(
          new ApiError(
            `${p.method}: no answer from the SDTT server after ${Math.round(this.o.requestTimeoutMs / 1000)}s`,
            'internal',
          ),
        );
    }, this.o.requestTimeoutMs) as ReturnType<typeof setTimeout>;
    try {
      this.ws!.send(JSON.stringify(msg));
    } catch (e) {
      this.inflight.delete(msg.id);
      this.o.clearTimer(p.timer);
      p.reject(new ApiError(`${p.method}: could not send: ${(e as Error).message}`, 'internal'));
    }
  }

  private handle(data: unknown): void {
    let m: WsServerMessage;
    try {
      m = JSON.parse(String(data)) as WsServerMessage;
    } catch {
      console.warn('sdtt: ignoring a non-JSON frame from the server');
      return;
    }
    if ('event' in m) {
      for (const l of this.listeners) {
        try {
          l(m.event);
        } catch (e) {
          console.error('sdtt: event listener failed', e);
        }
      }
      return;
    }
    const p = this.inflight.get(m.id);
    if (!p) return;
    this.inflight.delete(m.id);
    if (p.timer !== undefined) this.o.clearTimer(p.timer);
    if (m.ok) p.resolve(m.result);
    else p.reject(new ApiError(m.error?.message ?? `${p.method} failed`, m.error?.code ?? 'internal'));
  }

  private failInflight(message: string): void {
    const all = [...this.inflight.values()];
    this.inflight.clear();
    for (const p of all) {
      if (p.timer !== undefined) this.o.clearTimer(p.timer);
      p.reject(new ApiError(`${p.method}: ${message}`, 'internal'));
    }
  }

  private failAll(message: string): void {
    this.failInflight(message);
    const q = this.queue;
    this.queue = [];
    for (const { p } of q) {
      if (p.timer !== undefined) this.o.clearTimer(p.timer);
      p.reject(new ApiError(`${p.method}: ${message}`, 'internal'));
    }
  }
}

function redact(url: string): string {
  return url.replace(/token=[^&]*/, 'token=…');
}

function closeReason(code: number, reason: string, everOpened: boolean): string {
  if (reason) return `${reason} (code ${code})`;
  if (code === 1008) return 'rejected by the server: bad or missing token (code 1008)';
  if (code === 1006 && !everOpened)
    return 'could not connect: server not running, or the token in the URL was rejected';
  if (code === 1006) return 'connection dropped';
  if (code === 1001) return 'server going away';
  return `closed with code ${code}`;
}

/** ws(s)://<host>/api?token=<token> for the page at `loc`; token from the page URL's ?token=. */
export function wsUrlFor(
  loc: { protocol: string; host: string; search: string },
  path: string,
): { url: string; token: string | null } {
  const token = new URLSearchParams(loc.search).get('token');
  const proto = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return { url: `${proto}//${loc.host}${path}?token=${encodeURIComponent(token ?? '')}`, token };
}

export type { ApiRequest, ApiResponses };
