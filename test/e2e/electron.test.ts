// The Electron app end to end (Playwright's _electron): the window opens, `window.sdtt` has exactly the API methods
// plus subscribe, and the page has no Node (`require`, `process`). Needs an Electron binary and the built app
// (out/main/index.js, out/preload/index.cjs, out/renderer/index.html): without them the test is reported SKIPPED
// with the reason, never passed. The window's security policy (window.ts) and the preload's allow-list are checked
// here too; those need no binary and always run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { API_METHODS } from '../../src/shared/api.ts';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { isAppUrl, navigationDecision, rendererCsp, secureWebPreferences } from '../../src/main/window.ts';
import { utilitySpawner } from '../../src/main/utilitySpawner.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');

/**
 * Path of the Electron executable, or why there is none. Never `require('electron')`: without a binary that call
 * tries to download one (no network here) and blocks.
 */
function electronBinary(): { path: string } | { missing: string } {
  const override = process.env.SDTT_ELECTRON_PATH;
  if (override)
    return existsSync(override) ? { path: override } : { missing: `SDTT_ELECTRON_PATH=${override} does not exist` };
  const pkg = join(ROOT, 'node_modules', 'electron');
  if (!existsSync(join(pkg, 'package.json'))) return { missing: 'the electron package is not installed' };
  const pathFile = join(pkg, 'path.txt');
  if (!existsSync(pathFile))
    return {
      missing: `${pathFile} is absent (the binary is fetched lazily on user machines; none can be installed here)`,
    };
  const rel = readFileSync(pathFile, 'utf8').trim();
  const exe = process.env.ELECTRON_OVERRIDE_DIST_PATH
    ? join(process.env.ELECTRON_OVERRIDE_DIST_PATH, rel)
    : join(pkg, 'dist', rel);
  return existsSync(exe) ? { path: exe } : { missing: `${exe} does not exist` };
}

function missingBuild(): string | null {
  const need = ['out/main/index.js', 'out/preload/index.cjs', 'out/renderer/index.html'].filter(
    (f) => !existsSync(join(ROOT, f)),
  );
  return need.length ? `the app is not built (missing ${need.join(', ')})` : null;
}

test('electron: window opens; window.sdtt is exactly the API; no Node in the page', { timeout: 60_000 }, async (t) => {
  const bin = electronBinary();
  if ('missing' in bin) return t.skip(`no Electron binary: ${bin.missing}`);
  const notBuilt = missingBuild();
  if (notBuilt) return t.skip(notBuilt);
  let pw: typeof import('playwright-core');
  try {
    pw = await import('playwright-core');
  } catch (e) {
    return t.skip(
      `playwright-core is not installed (${(e as Error).message.split('\n')[0]}): npm install --save-dev --save-exact playwright-core@1.65.1`,
    );
  }
  const ws = mkdtempSync(join(tmpdir(), 'sdtt-e2e-electron-'));
  const app = await pw._electron.launch({
    executablePath: bin.path,
    args: [ROOT],
    env: { ...process.env, SDTT_WORKSPACE: ws, ELECTRON_ENABLE_LOGGING: '1' } as Record<string, string>,
    timeout: 45_000,
  });
  try {
    const page = await app.firstWindow();
    await page.waitForLoadState('domcontentloaded');
    const shape = await page.evaluate(() => {
      const w = window as unknown as {
        sdtt?: Record<string, unknown>;
        require?: unknown;
        process?: unknown;
        module?: unknown;
      };
      return {
        keys: w.sdtt ? Object.keys(w.sdtt).sort() : null,
        allFunctions: w.sdtt ? Object.values(w.sdtt).every((v) => typeof v === 'function') : false,
        require: typeof w.require,
        process: typeof w.process,
        module: typeof w.module,
      };
    });
    assert.deepEqual(shape.keys, [...API_METHODS, 'subscribe'].sort());
    assert.equal(shape.allFunctions, true);
    assert.deepEqual([shape.require, shape.process, shape.module], ['undefined', 'undefined', 'undefined']);
    const info = await page.evaluate(() =>
      (
        window as unknown as { sdtt: { getInfo(r: object): Promise<{ host: string; workspace: string }> } }
      ).sdtt.getInfo({}),
    );
    assert.equal(info.host, 'electron');
    assert.equal(info.workspace, ws);
    const bad = await page.evaluate(() =>
      (window as unknown as { sdtt: { getRun(r: object): Promise<unknown> } }).sdtt.getRun({ id: '../x' }).then(
        () => 'resolved',
        (e: Error) => e.message,
      ),
    );
    assert.match(bad, /getRun: id/);
    const prefs = await app.evaluate(({ BrowserWindow }) => {
      const w = BrowserWindow.getAllWindows()[0]!;
      return { count: BrowserWindow.getAllWindows().length, url: w.webContents.getURL() };
    });
    assert.equal(prefs.count, 1);
    assert.ok(prefs.url.startsWith('file:') && prefs.url.endsWith('/out/renderer/index.html'), prefs.url);
  } finally {
    await app.close();
    rmSync(ws, { recursive: true, force: true });
  }
});

// ---- policy checks that need no binary ----------------------------------------------------------------------
const pages = { indexUrl: pathToFileURL(join(ROOT, 'out', 'renderer', 'index.html')).href };

test('window policy: secure webPreferences', () => {
  const p = secureWebPreferences('/x/preload.cjs');
  assert.deepEqual(
    [
      p.contextIsolation,
      p.sandbox,
      p.nodeIntegration,
      p.nodeIntegrationInWorker,
      p.nodeIntegrationInSubFrames,
      p.webSecurity,
      p.allowRunningInsecureContent,
      p.webviewTag,
    ],
    [true, true, false, false, false, true, false, false],
  );
  assert.equal(p.preload, '/x/preload.cjs');
});

test('window policy: only the app page is trusted; http(s) links go external; everything else is denied', () => {
  assert.equal(isAppUrl(pages.indexUrl, pages), true);
  assert.equal(isAppUrl(`${pages.indexUrl}#/runs/a`, pages), true);
  assert.equal(isAppUrl(pathToFileURL(join(ROOT, 'out', 'renderer', 'other.html')).href, pages), false);
  assert.equal(isAppUrl('file:///etc/passwd', pages), false);
  assert.equal(isAppUrl('http://localhost:5173/', pages), false, 'no dev server configured');
  assert.equal(isAppUrl('http://localhost:5173/', { ...pages, devServerUrl: 'http://localhost:5173' }), true);
  assert.equal(isAppUrl('http://localhost:5174/', { ...pages, devServerUrl: 'http://localhost:5173' }), false);
  assert.equal(isAppUrl(undefined, pages), false);
  assert.equal(isAppUrl('not a url', pages), false);
  assert.equal(navigationDecision(pages.indexUrl, pages), 'allow');
  assert.equal(navigationDecision('https://arxiv.org/abs/2410.21035', pages), 'external');
  assert.equal(navigationDecision('http://example.com/', pages), 'external');
  for (const u of [
    'file:///etc/passwd',
    'javascript:alert(1)',
    'data:text/html,<script>1</script>',
    'smb://host/share',
    'https://user:pw@example.com/',
    'chrome://settings',
    'about:blank',
  ]) {
    assert.equal(navigationDecision(u, pages), 'deny', u);
  }
});

test('window policy: CSP matches the renderer <meta> and allows no inline or eval', () => {
  const csp = rendererCsp();
  const html = existsSync(join(ROOT, 'src/renderer/index.html'))
    ? readFileSync(join(ROOT, 'src/renderer/index.html'), 'utf8')
    : '';
  const meta = /http-equiv="Content-Security-Policy"\s+content="([^"]+)"/.exec(html)?.[1];
  const directives = (s: string) =>
    new Map(
      s
        .split(';')
        .map((d) => d.trim().split(/\s+/))
        .map(([k, ...v]) => [k!, v.join(' ')]),
    );
  if (meta) {
    const m = directives(meta);
    const c = directives(csp);
    for (const [k, v] of m) if (k !== 'connect-src') assert.equal(c.get(k), v, `${k} differs from the renderer's meta`);
  }
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
  assert.match(csp, /frame-ancestors 'none'/);
});

test('preload: exposes one function per API method plus subscribe, and requires only electron', () => {
  const src = readFileSync(join(ROOT, 'src/preload/index.cts'), 'utf8');
  const list = /const METHODS = \[([^\]]+)\]/.exec(src)?.[1];
  assert.ok(list, 'METHODS list found');
  assert.deepEqual(
    [...list.matchAll(/'([A-Za-z]+)'/g)].map((m) => m[1]),
    API_METHODS,
  );
  const runtimeImports = [...src.matchAll(/^import (?!type)[^;]*from '([^']+)'/gm)].map((m) => m[1]);
  assert.deepEqual(runtimeImports, ['electron']);
  assert.match(src, /exposeInMainWorld\('sdtt'/);
  assert.equal(src.match(/exposeInMainWorld/g)?.length, 1);
});

test('utilitySpawner maps a UtilityProcess onto ChildLike (fake fork)', async () => {
  class FakeUtility extends EventEmitter {
    pid = 4242;
    stdout = new PassThrough();
    stderr = new PassThrough();
    posted: unknown[] = [];
    killed = 0;
    postMessage(m: unknown) {
      this.posted.push(m);
    }
    kill() {
      this.killed++;
      return true;
    }
  }
  const forks: { entry: string; args?: string[]; options?: Record<string, unknown>; child: FakeUtility }[] = [];
  const output: string[] = [];
  const spawn = utilitySpawner({
    fork: ((entry: string, args?: string[], options?: Record<string, unknown>) => {
      const child = new FakeUtility();
      forks.push({ entry, args, options, child });
      return child;
    }) as never,
    execArgv: ['--import', 'tsx'],
    tailBytes: 16,
    onOutput: (s) => output.push(s),
  });
  const c = spawn('/w/index.js', ['a']);
  const f = forks[0]!;
  assert.deepEqual(
    [f.entry, f.args, f.options?.execArgv, f.options?.stdio],
    ['/w/index.js', ['a'], ['--import', 'tsx'], ['ignore', 'pipe', 'pipe']],
  );
  assert.equal(c.pid, 4242);
  const got: unknown[] = [];
  const exits: [number | null, string | null][] = [];
  const errors: string[] = [];
  c.on('message', (m) => got.push(m));
  c.on('exit', (code, sig) => exits.push([code, sig]));
  c.on('error', (e) => errors.push(e.message));
  c.send({ type: 'pause' });
  assert.deepEqual(f.child.posted, [{ type: 'pause' }]);
  f.child.emit('message', { type: 'ready', n: NaN });
  assert.deepEqual(got, [{ type: 'ready', n: NaN }]);
  f.child.stderr.write('0123456789abcdefXYZ');
  f.child.stdout.write('hello');
  await new Promise((r) => setImmediate(r));
  assert.equal(c.stderrTail(), '3456789abcdefXYZ', 'keeps the last tailBytes');
  assert.deepEqual(output.sort(), ['0123456789abcdefXYZ', 'hello']);
  f.child.emit('error', 'FatalError', 'v8::foo', 'report');
  assert.deepEqual(errors, ['FatalError at v8::foo']);
  c.kill('SIGKILL');
  assert.equal(f.child.killed, 1);
  f.child.emit('exit', 137);
  assert.deepEqual(exits, [[137, null]]);
  c.send({ type: 'stop' });
  assert.equal(f.child.posted.length, 1, 'nothing is posted after exit');
});
