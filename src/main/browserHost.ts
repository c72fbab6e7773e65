// The browser-mode host (docs/design/architecture.md "Browser mode"), beside the Electron host it mirrors
// (electronMain.ts): serves the built renderer (out/renderer) over HTTP and the SdttApi over a WebSocket at WS_PATH,
// backed by one RunManager + RunStore + ApiHost, exactly like the Electron main process. `sdtt serve` (cli/serve.ts)
// starts it.
//
// Security model:
// - Binds 127.0.0.1 unless --host is given (a warning is printed for a non-loopback address).
// - A random 32-byte token (hex) is generated at start (or --token) and printed inside the URL. The WebSocket
//   upgrade requires an Origin header naming this server (http://<host>:<port>; for a loopback bind also the
//   localhost / 127.0.0.1 / [::1] spellings) -> else HTTP 403, AND ?token= to match (constant-time compare) -> else
//   the upgrade is accepted and closed at once with 1008 "bad or missing token" (no API access, no events); the
//   socket is destroyed after the status line. The Host header must name the server too (DNS rebinding).
// - Static files are served WITHOUT the token: they are the public renderer bundle and contain no data; every
//   piece of data travels over the token-protected WebSocket. Paths are decoded once, any ".." segment, backslash
//   or NUL is refused (400) and the resolved file must lie inside the renderer folder (404 otherwise).
// - Headers: CSP (the renderer's <meta> policy plus frame-ancestors, connect-src narrowed to this server's ws://
//   origins), X-Content-Type-Options nosniff, X-Frame-Options DENY, Referrer-Policy no-referrer (the page URL holds
//   the token), no caching for index.html.
// - WebSocket frames are limited to MAX_REQUEST_BYTES plus a small envelope allowance; bigger frames close the
//   connection (1009). Requests inside the limit but over MAX_REQUEST_BYTES of params get a clear error answer.
// - Paths: every path a request names (export folder; a new run's data, teacher, judge, tokenizer file) must lie,
//   symlinks resolved, inside the workspace or a folder given with --allow (read/write), or the shipped assets/
//   (read only); anything else is refused (confinedPolicy in src/main/pathPolicy.ts). Printed at start-up.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, existsSync, realpathSync, statSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket } from 'ws';
import { ApiError, MAX_REQUEST_BYTES, WS_PATH, type RunEvent, type WsServerMessage } from '../shared/api.ts';
import { ApiHost } from './apiHost.ts';
import type { BackendInfo } from './hostInfo.ts';
import { assertFolders, confinedPolicy } from './pathPolicy.ts';
import { RunManager } from './runManager.ts';
import type { Spawner } from './workerSpawner.ts';
import { RunStore } from '../runs/runStore.ts';
import { rendererCsp } from './window.ts';

export const DEFAULT_RENDERER_DIR = fileURLToPath(new URL('../../out/renderer/', import.meta.url));
/** Room for the {"id":..,"method":..,"params":..} envelope around a request of MAX_REQUEST_BYTES. */
const ENVELOPE_BYTES = 4096;
/** A client that reads events slower than they come is dropped past this much unsent data. */
const MAX_BUFFERED_BYTES = 32 * 1024 * 1024;

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.otf': 'font/otf',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

export interface ServeOptions {
  host?: string;
  /** 0 = any free port. */
  port?: number;
  workspace?: string;
  /**
   * Folders besides the workspace that requests may read and write (`--allow`); each must exist. Every path a
   * request names (export folder, a new run's data / teacher / judge / tokenizer) must resolve, symlinks followed,
   * inside the workspace, one of these, or (read only) the shipped assets/; anything else is refused.
   */
  allow?: string[];
  token?: string;
  rendererDir?: string;
  /** Injected for tests; by default a RunManager with forkSpawner over <workspace>/runs. */
  manager?: RunManager;
  spawn?: Spawner;
  probeBackend?: (() => Promise<BackendInfo>) | null;
  log?: (line: string) => void;
}

export interface RunningServer {
  /** The URL to open, token included. */
  url: string;
  origin: string;
  port: number;
  host: string;
  token: string;
  api: ApiHost;
  manager: RunManager;
  server: Server;
  /** Stops accepting, closes every WebSocket (1001), then stops the runs (each checkpoints). */
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1';
}

const fmtHost = (h: string) => (h.includes(':') && !h.startsWith('[') ? `[${h}]` : h);

/** host:port spellings a browser may use for this server: Host headers and Origins are checked against them. */
function allowedHosts(bindHost: string, port: number): Set<string> {
  const names = new Set<string>([bindHost]);
  if (isLoopback(bindHost)) for (const n of ['127.0.0.1', 'localhost', '::1']) names.add(n);
  if (bindHost === '0.0.0.0' || bindHost === '::') {
    names.add('127.0.0.1').add('localhost').add('::1');
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) names.add(a.address);
  }
  return new Set([...names].map((n) => `${fmtHost(n)}:${port}`.toLowerCase()));
}

/** Close reason sent (with code 1008) on an upgrade whose ?token= is wrong or missing. */
export const BAD_TOKEN_REASON = 'bad or missing token';

function tokenMatches(given: string | null, token: string): boolean {
  if (!given) return false;
  // Hash both so the comparison has a fixed length and leaks neither the token's length nor its prefix.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

/**
 * The 'error' listener of every server-side WebSocket. ws emits 'error' AFTER it has already started the close
 * itself: for a frame over maxPayload (1009), an invalid frame (1002) or bad UTF-8 (1007) it has sent the close frame
 * with that code, keeps reading (and discarding) what the client still sends, ends the socket once the client
 * answers, and destroys it if the handshake does not complete within its close timeout (30 s); a socket error
 * destroys the socket at once. Terminating here instead destroyed the socket while a client was still sending a big
 * frame: the unread data made the kernel reset the connection, the client lost the close frame and reported 1006.
 */
function ignoreSocketError(): void {}

function reject(socket: Duplex, status: 400 | 401 | 403 | 404, text: string): void {
  const body = `${text}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  socket.destroy();
}

export async function startServer(opts: ServeOptions = {}): Promise<RunningServer> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const bindHost = opts.host ?? '127.0.0.1';
  const workspace = resolve(opts.workspace ?? '.');
  const rendererDir = resolve(opts.rendererDir ?? DEFAULT_RENDERER_DIR);
  const token = opts.token ?? randomBytes(32).toString('hex');
  const allow = (opts.allow ?? []).map((d) => resolve(d));
  assertFolders(allow);
  const paths = confinedPolicy(workspace, allow);
  const manager =
    opts.manager ??
    new RunManager(new RunStore(workspace), {
      ...(opts.spawn ? { spawn: opts.spawn } : {}),
      onWarning: (l) => log(`warning: ${l}`),
    });
  const api = new ApiHost({
    manager,
    workspace,
    host: 'browser',
    paths,
    ...(opts.probeBackend !== undefined ? { probeBackend: opts.probeBackend } : {}),
    warn: (l) => log(`warning: ${l}`),
  });

  let hosts = new Set<string>();
  let csp = rendererCsp();
  const server = createServer((req, res) => serveStatic(req, res, rendererDir, hosts, csp));
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_REQUEST_BYTES + ENVELOPE_BYTES,
    clientTracking: true,
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://placeholder');
    } catch {
      return reject(socket, 400, 'Bad Request');
    }
    if (url.pathname !== WS_PATH) return reject(socket, 404, 'Not Found');
    const origin = req.headers.origin;
    const host = (req.headers.host ?? '').toLowerCase();
    let originHost = '';
    try {
      const o = origin ? new URL(origin) : null;
      if (o && o.protocol === 'http:' && origin === o.origin) originHost = o.host.toLowerCase();
    } catch {
      // malformed Origin: refused below
    }
    if (!originHost || !hosts.has(originHost) || !hosts.has(host)) return reject(socket, 403, 'Forbidden');
    if (!tokenMatches(url.searchParams.get('token'), token)) {
      // A browser only reports 1006 for a refused upgrade, which looks like a network drop. So for a page of this
      // server (Origin checked above) accept the upgrade and close at once with 1008: the client can tell the token
      // was rejected and stop retrying. The socket never gets a message handler and is never broadcast to.
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('error', ignoreSocketError);
        ws.close(1008, BAD_TOKEN_REASON);
        const kill = setTimeout(() => ws.terminate(), 2000);
        kill.unref();
        ws.on('close', () => clearTimeout(kill));
      });
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  wss.on('connection', (ws: WebSocket) => {
    let alive = true;
    ws.on('pong', () => (alive = true));
    const ping = setInterval(() => {
      if (!alive) return ws.terminate();
      alive = false;
      ws.ping();
    }, 30_000);
    ping.unref();
    ws.on('close', () => clearInterval(ping));
    ws.on('error', ignoreSocketError);
    ws.on('message', (data, isBinary) => {
      if (isBinary) return ws.close(1003, 'text frames only');
      void handleFrame(api, ws, data.toString());
    });
  });

  const unsubscribe = api.subscribe((e: RunEvent) => {
    const text = JSON.stringify({ event: e } satisfies WsServerMessage);
    for (const ws of wss.clients) {
      if (ws.readyState !== WebSocket.OPEN) continue;
      if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
        ws.terminate();
        continue;
      }
      ws.send(text);
    }
  });

  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(opts.port ?? 0, bindHost, () => {
      server.off('error', rej);
      res();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (opts.port ?? 0);
  hosts = allowedHosts(bindHost, port);
  // CSP host-sources cannot spell IPv6 literals; a page opened at http://[::1]:port still connects through 'self'.
  csp = rendererCsp({ connectSrc: [...hosts].filter((h) => !h.startsWith('[')).map((h) => `ws://${h}`) });
  const shownHost = bindHost === '0.0.0.0' || bindHost === '::' ? '127.0.0.1' : bindHost;
  const origin = `http://${fmtHost(shownHost)}:${port}`;

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      unsubscribe();
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const ws of wss.clients) ws.close(1001, 'server shutting down');
      wss.close();
      server.closeAllConnections?.();
      await manager.shutdown();
      await closed;
    })());

  return { url: `${origin}/?token=${token}`, origin, port, host: bindHost, token, api, manager, server, close };
}

async function handleFrame(api: ApiHost, ws: WebSocket, text: string): Promise<void> {
  let id = 0;
  let reply: WsServerMessage;
  try {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      throw new ApiError('the frame is not JSON', 'invalid-request');
    }
    if (!msg || typeof msg !== 'object' || Array.isArray(msg))
      throw new ApiError('expected {"id", "method", "params"}', 'invalid-request');
    const m = msg as { id?: unknown; method?: unknown; params?: unknown };
    if (typeof m.id === 'number' && Number.isSafeInteger(m.id)) id = m.id;
    else throw new ApiError('"id" must be an integer', 'invalid-request');
    if (typeof m.method !== 'string') throw new ApiError('"method" must be a string', 'invalid-request');
    reply = { id, ok: true, result: await api.call(m.method, m.params) };
  } catch (e) {
    const err = e instanceof ApiError ? e : new ApiError((e as Error)?.message ?? String(e), 'internal');
    reply = { id, ok: false, error: { message: err.message, code: err.code } };
  }
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(reply));
}

function securityHeaders(res: ServerResponse, csp: string): void {
  res.setHeader('Content-Security-Policy', csp);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
}

function sendText(res: ServerResponse, status: number, text: string, type = 'text/plain; charset=utf-8'): void {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

export const NOT_BUILT =
  'The renderer is not built: run `npm run build:renderer` (it writes out/renderer/index.html), then reload.';

function serveStatic(req: IncomingMessage, res: ServerResponse, root: string, hosts: Set<string>, csp: string): void {
  securityHeaders(res, csp);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return sendText(res, 405, 'Method Not Allowed');
  }
  if (!hosts.has((req.headers.host ?? '').toLowerCase()))
    return sendText(res, 403, 'Forbidden: unexpected Host header');
  const rawPath = (req.url ?? '/').split(/[?#]/, 1)[0]!;
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    return sendText(res, 400, 'Bad Request: malformed path');
  }
  if (
    !path.startsWith('/') ||
    path.includes('\0') ||
    path.includes('\\') ||
    path.split('/').some((s) => s === '..') ||
    /%2e|%2f|%5c/i.test(path)
  ) {
    return sendText(res, 400, 'Bad Request: path not allowed');
  }
  if (path === '/' || path === '/index.html') {
    if (!existsSync(join(root, 'index.html'))) return sendText(res, 503, NOT_BUILT);
    path = '/index.html';
  }
  const file = resolve(root, `.${path}`);
  const rel = relative(root, file);
  if (!rel || rel.startsWith('..') || isAbsolute(rel)) return sendText(res, 404, 'Not Found');
  let real: string;
  try {
    real = realpathSync(file);
    const realRoot = realpathSync(root);
    if (real !== realRoot && !real.startsWith(realRoot + sep)) return sendText(res, 404, 'Not Found');
    if (!statSync(real).isFile()) return sendText(res, 404, 'Not Found');
  } catch {
    return sendText(res, 404, 'Not Found');
  }
  const size = statSync(real).size;
  res.statusCode = 200;
  res.setHeader('Content-Type', MIME[extname(real).toLowerCase()] ?? 'application/octet-stream');
  res.setHeader('Content-Length', size);
  // index.html must never be cached (it names the current hashed bundles); vite's /assets/* names are hashed.
  res.setHeader(
    'Cache-Control',
    path === '/index.html'
      ? 'no-store'
      : path.startsWith('/assets/')
        ? 'public, max-age=31536000, immutable'
        : 'no-cache',
  );
  if (req.method === 'HEAD') return void res.end();
  createReadStream(real)
    .on('error', () => res.destroy())
    .pipe(res);
}
