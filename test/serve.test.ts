// Browser mode (src/main/browserHost.ts, started by `sdtt serve`): static files (MIME, headers, no traversal), the WebSocket gate (token + Origin +
// Host), the API over the socket (ids, errors, frame limit, events to every client), and the CLI end to end
// (prints the URL with a token, answers, stops on SIGINT).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { MAX_REQUEST_BYTES, WS_PATH, type WsServerMessage } from '../src/shared/api.ts';
import { MODEL_PRESETS } from '../src/shared/presets.ts';
import { NOT_BUILT, startServer, type RunningServer } from '../src/main/browserHost.ts';

function tmp(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

async function withServer(
  fn: (s: RunningServer, dirs: { ws: string; renderer: string }) => Promise<void>,
  opts: { built?: boolean } = {},
): Promise<void> {
  const base = tmp('sdtt-serve-');
  const renderer = join(base, 'renderer');
  const ws = join(base, 'ws');
  mkdirSync(join(renderer, 'assets'), { recursive: true });
  mkdirSync(ws);
  writeFileSync(join(base, 'secret.txt'), 'TOP-SECRET');
  if (opts.built !== false) {
    writeFileSync(
      join(renderer, 'index.html'),
      '<!doctype html><title>SDTT</title><script type="module" src="./assets/app-1234.js"></script>',
    );
    writeFileSync(join(renderer, 'assets', 'app-1234.js'), 'console.log(1)');
    writeFileSync(join(renderer, 'assets', 'app-1234.css'), 'body{}');
    writeFileSync(join(renderer, 'assets', 'blob.xyz'), 'x');
  }
  const s = await startServer({
    port: 0,
    workspace: ws,
    rendererDir: renderer,
    probeBackend: async () => ({ backend: 'wasm', device: 'CPU (test)' }),
    spawn: () => {
      throw new Error('no workers in this test');
    },
    log: () => {},
  });
  try {
    await fn(s, { ws, renderer });
  } finally {
    await s.close();
    rmSync(base, { recursive: true, force: true });
  }
}

function get(
  s: RunningServer,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: s.port, path, method: 'GET', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A raw request line, for paths an HTTP client library would normalise or refuse. */
function rawGet(s: RunningServer, path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const sock = netConnect(s.port, '127.0.0.1', () =>
      sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nConnection: close\r\n\r\n`),
    );
    let text = '';
    sock.setEncoding('latin1').on('data', (c) => (text += c));
    sock.on('end', () => resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0), text }));
    sock.on('error', reject);
  });
}

type Conn =
  | {
      ok: true;
      ws: WebSocket;
      next: () => Promise<WsServerMessage>;
      call: (method: string, params: unknown) => Promise<WsServerMessage>;
    }
  | { ok: false; status: number };

function connect(url: string, origin?: string, headers: Record<string, string> = {}): Promise<Conn> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { ...(origin ? { origin } : {}), headers });
    const inbox: WsServerMessage[] = [];
    const waiting: ((m: WsServerMessage) => void)[] = [];
    ws.on('message', (d) => {
      const m = JSON.parse(String(d)) as WsServerMessage;
      const w = waiting.shift();
      if (w) w(m);
      else inbox.push(m);
    });
    const next = () => new Promise<WsServerMessage>((r) => (inbox.length ? r(inbox.shift()!) : waiting.push(r)));
    let id = 0;
    const call = async (method: string, params: unknown) => {
      const my = ++id;
      ws.send(JSON.stringify({ id: my, method, params }));
      for (;;) {
        const m = await next();
        if ('id' in m && m.id === my) return m;
      }
    };
    ws.on('unexpected-response', (_req, res) => {
      resolve({ ok: false, status: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.on('error', () => resolve({ ok: false, status: -1 }));
    ws.on('open', () => resolve({ ok: true, ws, next, call }));
  });
}

const wsUrl = (s: RunningServer, token: string | null) =>
  `ws://127.0.0.1:${s.port}${WS_PATH}${token === null ? '' : `?token=${encodeURIComponent(token)}`}`;

test('static: index and assets with MIME types and security headers', async () => {
  await withServer(async (s) => {
    const index = await get(s, '/');
    assert.equal(index.status, 200);
    assert.match(index.body, /<title>SDTT<\/title>/);
    assert.equal(index.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(index.headers['cache-control'], 'no-store');
    assert.equal(index.headers['x-content-type-options'], 'nosniff');
    assert.equal(index.headers['x-frame-options'], 'DENY');
    assert.equal(index.headers['referrer-policy'], 'no-referrer');
    const csp = String(index.headers['content-security-policy']);
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, new RegExp(`connect-src 'self' .*ws://127\\.0\\.0\\.1:${s.port}`));
    assert.doesNotMatch(csp, /unsafe/);
    assert.equal((await get(s, '/index.html')).status, 200);
    const js = await get(s, '/assets/app-1234.js');
    assert.equal(js.status, 200);
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.match(String(js.headers['cache-control']), /immutable/);
    assert.equal((await get(s, '/assets/app-1234.css')).headers['content-type'], 'text/css; charset=utf-8');
    assert.equal((await get(s, '/assets/blob.xyz')).headers['content-type'], 'application/octet-stream');
    assert.equal((await get(s, '/nope.js')).status, 404);
    assert.equal((await get(s, '/assets')).status, 404, 'a folder is not a file');
    assert.equal((await get(s, '/', { Host: 'evil.example:80' })).status, 403, 'foreign Host header (DNS rebinding)');
    assert.ok(s.url.startsWith(`http://127.0.0.1:${s.port}/?token=`));
    assert.match(s.token, /^[0-9a-f]{64}$/);
  });
});

test('static: no directory traversal, raw or encoded', async () => {
  await withServer(async (s) => {
    const attempts = [
      '/../package.json',
      '/../secret.txt',
      '/..%2fsecret.txt',
      '/%2e%2e/secret.txt',
      '/%2e%2e%2fsecret.txt',
      '/assets/../../secret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/%252e%252e/secret.txt',
      '/..%5csecret.txt',
      '/..\\secret.txt',
      '/assets/%2e%2e/%2e%2e/secret.txt',
      '/%00',
      '/index.html%00.js',
      '/%E0%A4%A',
      '//etc/passwd',
      '/' + encodeURIComponent(join(tmpdir(), 'x')),
    ];
    for (const p of attempts) {
      const r = await rawGet(s, p);
      assert.ok(r.status === 400 || r.status === 404, `${p} -> ${r.status}`);
      assert.doesNotMatch(r.text, /TOP-SECRET|"name": "sdtt-workbench"|root:/, p);
    }
  });
});

test('static: a clear message when the renderer is not built', async () => {
  await withServer(
    async (s) => {
      const r = await get(s, '/');
      assert.equal(r.status, 503);
      assert.equal(r.body.trim(), NOT_BUILT);
      assert.match(NOT_BUILT, /npm run build:renderer/);
    },
    { built: false },
  );
});

/**
 * Opens a socket with a bad token from an allowed Origin, immediately tries an API call, and reports how the server
 * ended it and whether ANY frame (answer or event) came back. The server must accept the upgrade and close with 1008
 * before answering anything: no API access without the token.
 */
function badTokenAttempt(
  url: string,
  origin: string,
): Promise<{ status: number; code: number; reason: string; frames: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { origin });
    let frames = 0;
    ws.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0, code: -1, reason: '', frames });
      ws.terminate();
    });
    ws.on('error', () => {});
    ws.on('open', () => {
      try {
        ws.send(JSON.stringify({ id: 1, method: 'listRuns', params: {} }));
        ws.send(JSON.stringify({ id: 2, method: 'getInfo', params: {} }));
      } catch {
        /* already closing */
      }
    });
    ws.on('message', () => frames++);
    ws.on('close', (code, reason) => resolve({ status: 101, code, reason: reason.toString(), frames }));
  });
}

test('websocket: refused without the token, with a wrong token, from a foreign or missing Origin', async () => {
  await withServer(async (s) => {
    const own = s.origin;
    // A bad or missing token from this server's own page: upgraded, then closed at once with 1008 and no data, so
    // the browser can tell "token rejected" (terminal) from a network drop (1006 only).
    const rejected = { status: 101, code: 1008, reason: 'bad or missing token', frames: 0 };
    assert.deepEqual(await badTokenAttempt(wsUrl(s, null), own), rejected, 'no token');
    assert.deepEqual(await badTokenAttempt(wsUrl(s, ''), own), rejected, 'empty token');
    assert.deepEqual(await badTokenAttempt(wsUrl(s, 'f'.repeat(64)), own), rejected, 'wrong token');
    assert.deepEqual(await badTokenAttempt(wsUrl(s, s.token.slice(0, -1)), own), rejected, 'token prefix');
    assert.deepEqual(await badTokenAttempt(wsUrl(s, s.token + '0'), own), rejected, 'token + suffix');
    // ...also while an authorised client is connected and busy (the bad socket gets nothing meant for it).
    {
      const good = await connect(wsUrl(s, s.token), own);
      assert.ok(good.ok);
      const bad = badTokenAttempt(wsUrl(s, 'f'.repeat(64)), own);
      await good.call('listRuns', {});
      assert.deepEqual(await bad, rejected);
      good.ws.close();
    }
    // A bad token from a foreign / missing Origin is still refused at the HTTP level.
    assert.deepEqual(await connect(wsUrl(s, 'f'.repeat(64)), 'http://evil.example'), { ok: false, status: 403 });
    assert.deepEqual(await connect(wsUrl(s, null)), { ok: false, status: 403 });
    assert.deepEqual(await connect(wsUrl(s, s.token), 'http://evil.example'), { ok: false, status: 403 });
    assert.deepEqual(await connect(wsUrl(s, s.token), `http://127.0.0.1:${s.port + 1}`), { ok: false, status: 403 });
    assert.deepEqual(await connect(wsUrl(s, s.token), `https://127.0.0.1:${s.port}`), { ok: false, status: 403 });
    assert.deepEqual(await connect(wsUrl(s, s.token), 'null'), { ok: false, status: 403 });
    assert.deepEqual(await connect(wsUrl(s, s.token)), { ok: false, status: 403 }, 'no Origin header');
    assert.deepEqual(await connect(wsUrl(s, s.token), own, { Host: `evil.example:${s.port}` }), {
      ok: false,
      status: 403,
    });
    assert.deepEqual(await connect(`ws://127.0.0.1:${s.port}/other?token=${s.token}`, own), { ok: false, status: 404 });
    // the localhost spelling of the same loopback server is accepted
    const alt = await connect(wsUrl(s, s.token), `http://localhost:${s.port}`);
    assert.ok(alt.ok);
    alt.ws.close();
  });
});

test('websocket: right token + own origin -> the API answers by id, errors are typed, events reach every client', async () => {
  await withServer(async (s, dirs) => {
    const a = await connect(wsUrl(s, s.token), s.origin);
    const b = await connect(wsUrl(s, s.token), s.origin);
    assert.ok(a.ok && b.ok);
    const info = await a.call('getInfo', {});
    assert.ok('ok' in info && info.ok);
    assert.deepEqual(info.result, {
      version: (await import('../package.json', { with: { type: 'json' } })).default.version,
      workspace: dirs.ws,
      host: 'browser',
      backend: 'wasm',
      device: 'CPU (test)',
    });

    // ids are echoed, out-of-order answers are matched by id
    a.ws.send(JSON.stringify({ id: 41, method: 'listRuns', params: {} }));
    a.ws.send(JSON.stringify({ id: 42, method: 'getRun', params: { id: 'missing' } }));
    const got = [await a.next(), await a.next()].sort((x, y) => ('id' in x && 'id' in y ? x.id - y.id : 0));
    assert.deepEqual(got[0], { id: 41, ok: true, result: [] });
    assert.deepEqual(got[1], {
      id: 42,
      ok: false,
      error: { message: `no run "missing" in ${join(dirs.ws, 'runs')}`, code: 'not-found' },
    });

    const bad = await a.call('rmRf', {});
    assert.deepEqual(bad, { id: 2, ok: false, error: { message: 'unknown method "rmRf"', code: 'invalid-request' } });
    const trav = await a.call('getRun', { id: '../x' });
    assert.ok('ok' in trav && !trav.ok && trav.error.code === 'invalid-request' && /id/.test(trav.error.message));
    a.ws.send('not json');
    assert.deepEqual(await a.next(), {
      id: 0,
      ok: false,
      error: { message: 'the frame is not JSON', code: 'invalid-request' },
    });
    a.ws.send(JSON.stringify({ id: 'x', method: 'getInfo' }));
    assert.deepEqual(await a.next(), {
      id: 0,
      ok: false,
      error: { message: '"id" must be an integer', code: 'invalid-request' },
    });
    const big = await a.call('getRun', { id: 'x'.repeat(MAX_REQUEST_BYTES) });
    assert.ok('ok' in big && !big.ok && /exceeds the 262144-byte limit/.test(big.error.message));

    // a run created by one client: its status event reaches both (its data must exist: runs are checked before they are created)
    writeFileSync(join(dirs.ws, 'x.txt'), 'some training text');
    const config = {
      kind: 'pretrain',
      model: { arch: 'mdlm', vocabSize: 258, eosId: 256, maskId: 257, ...MODEL_PRESETS.tiny },
      optim: {},
      data: 'x.txt',
      tokenizer: 'byte',
      steps: 5,
    };
    const created = await a.call('createRun', { kind: 'pretrain', id: 'r1', config });
    assert.ok('ok' in created && created.ok, JSON.stringify(created));
    const ev = await b.next();
    assert.ok(
      'event' in ev && ev.event.type === 'status' && ev.event.record.id === 'r1' && ev.event.record.status === 'queued',
    );

    // frames above the limit close the connection (1009)
    const closed = new Promise<number>((r) => a.ws.on('close', (code) => r(code)));
    a.ws.send('x'.repeat(MAX_REQUEST_BYTES + 64 * 1024));
    assert.equal(await closed, 1009);
    b.ws.close();
  });
});

test(
  'cli: `serve` prints the URL with a token, answers over the socket, stops on SIGINT',
  { timeout: 50_000 },
  async () => {
    const ws = tmp('sdtt-serve-cli-');
    const child = spawn(
      process.execPath,
      [join(import.meta.dirname, '..', 'bin', 'sdtt.js'), 'serve', '--port', '0', '--workspace', ws],
      {
        cwd: process.cwd(),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (s) => (err += s));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no URL printed: ${out}\n${err}`)), 30_000);
        child.stdout.setEncoding('utf8').on('data', (s) => {
          out += s;
          const m = /open (http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{64})\n/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
      });
      const u = new URL(url);
      const c = await connect(`ws://${u.host}${WS_PATH}?token=${u.searchParams.get('token')}`, u.origin);
      assert.ok(c.ok);
      const info = await c.call('getInfo', {});
      assert.ok('ok' in info && info.ok, JSON.stringify(info));
      assert.equal((info.result as { host: string }).host, 'browser');
      const bad = await badTokenAttempt(`ws://${u.host}${WS_PATH}?token=nope`, u.origin);
      assert.deepEqual([bad.code, bad.frames], [1008, 0], JSON.stringify(bad));
      child.kill('SIGINT');
      assert.equal(await exited, 0, err);
      assert.match(out, /stopped/);
    } finally {
      child.kill('SIGKILL');
      rmSync(ws, { recursive: true, force: true });
    }
  },
);
