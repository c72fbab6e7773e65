// Electron main process: ONE BrowserWindow with secure defaults (window.ts), the SdttApi over IPC (one
// ipcMain.handle per API method, each checking the sender frame and validating the payload through ApiHost), run
// events forwarded to the renderer, workers as utility processes.
//
// IPC contract with the preload (src/preload/index.cts):
//   invoke 'sdtt:<method>' (req)  ->  { ok: true, result } | { ok: false, error: { message, code } }
//   send   'sdtt:event'    (RunEvent)
// Errors travel as data because Electron reduces a rejected invoke to a message string, losing ApiError's code.
import {
  app,
  BrowserWindow,
  dialog,
  ipcMain,
  session,
  shell,
  utilityProcess,
  type IpcMainInvokeEvent,
  type WebContents,
} from 'electron';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { API_METHODS, ApiError } from '../shared/api.ts';
import { ApiHost } from './apiHost.ts';
import { userChoicePolicy } from './pathPolicy.ts';
import { RunManager } from './runManager.ts';
import { DEFAULT_WORKER_ENTRY } from './workerSpawner.ts';
import { RunStore } from '../runs/runStore.ts';
import { utilitySpawner } from './utilitySpawner.ts';
import { isAppUrl, navigationDecision, rendererCsp, secureWebPreferences, type AppPages } from './window.ts';

const appRoot = app.getAppPath();
const rendererIndex = join(appRoot, 'out', 'renderer', 'index.html');
/** Built preload (tsc/vite output of src/preload/index.cts); must be CommonJS for a sandboxed renderer. */
const preloadPath = process.env.SDTT_PRELOAD ?? join(appRoot, 'out', 'preload', 'index.cjs');
/** Dev server (vite / electron-vite); ignored in a packaged app. */
const devServerUrl = !app.isPackaged
  ? (process.env.ELECTRON_RENDERER_URL ?? process.env.SDTT_DEV_SERVER_URL)
  : undefined;
const pages: AppPages = { indexUrl: pathToFileURL(rendererIndex).href, ...(devServerUrl ? { devServerUrl } : {}) };
/** Where runs/ lives: SDTT_WORKSPACE, else <userData>/workspace. */
const workspace = process.env.SDTT_WORKSPACE ?? join(app.getPath('userData'), 'workspace');

let win: BrowserWindow | null = null;
let api: ApiHost | null = null;
let manager: RunManager | null = null;

function workerSpawn() {
  // A build ships out/worker/index.js; from source the .ts worker runs under tsx.
  const built = join(appRoot, 'out', 'worker', 'index.js');
  const fromSource = !existsSync(built);
  const entry = fromSource ? DEFAULT_WORKER_ENTRY : built;
  const spawn = utilitySpawner({
    fork: utilityProcess.fork,
    execArgv: fromSource ? ['--import', import.meta.resolve('tsx')] : [],
    onOutput: (s) => process.stderr.write(s),
  });
  return { entry, spawn };
}

/** The sender must be our window's main frame showing our own page. */
function trustedSender(e: IpcMainInvokeEvent): boolean {
  const frame = e.senderFrame;
  return (
    !!win &&
    !win.isDestroyed() &&
    e.sender === win.webContents &&
    !!frame &&
    frame.parent === null &&
    isAppUrl(frame.url, pages)
  );
}

function registerIpc(host: ApiHost): void {
  for (const method of API_METHODS) {
    ipcMain.handle(`sdtt:${method}`, async (e, req: unknown) => {
      if (!trustedSender(e)) {
        console.warn(`sdtt: refused IPC ${method} from ${e.senderFrame?.url ?? 'an unknown frame'}`);
        return {
          ok: false,
          error: {
            message: `${method}: refused: the request did not come from the app window`,
            code: 'invalid-request',
          },
        };
      }
      try {
        return { ok: true, result: await host.call(method, req) };
      } catch (err) {
        const a = err instanceof ApiError ? err : new ApiError((err as Error)?.message ?? String(err), 'internal');
        return { ok: false, error: { message: a.message, code: a.code } };
      }
    });
  }
}

async function confirmExternal(url: string): Promise<void> {
  const parent = win && !win.isDestroyed() ? win : undefined;
  const opts = {
    type: 'question' as const,
    buttons: ['Cancel', 'Open in browser'],
    defaultId: 0,
    cancelId: 0,
    message: 'Open this link in your web browser?',
    detail: url.length > 500 ? `${url.slice(0, 500)}…` : url,
  };
  const { response } = parent ? await dialog.showMessageBox(parent, opts) : await dialog.showMessageBox(opts);
  if (response === 1) await shell.openExternal(url);
}

function hardenContents(wc: WebContents): void {
  wc.on('will-navigate', (e, url) => {
    const d = navigationDecision(url, pages);
    if (d === 'allow') return;
    e.preventDefault();
    if (d === 'external') void confirmExternal(url);
  });
  wc.on('will-redirect', (e, url) => {
    if (navigationDecision(url, pages) !== 'allow') e.preventDefault();
  });
  wc.on('will-attach-webview', (e) => e.preventDefault());
  wc.setWindowOpenHandler(({ url }) => {
    if (navigationDecision(url, pages) === 'external') void confirmExternal(url);
    return { action: 'deny' };
  });
}

function createWindow(): BrowserWindow {
  const w = new BrowserWindow({
    width: 1400,
    height: 900,
    show: false,
    title: 'SDTT Workbench',
    webPreferences: secureWebPreferences(preloadPath),
  });
  // will-navigate / window-open rules come from app 'web-contents-created' (hardenContents), once per contents.
  w.once('ready-to-show', () => w.show());
  if (devServerUrl) void w.loadURL(devServerUrl);
  else if (existsSync(rendererIndex)) void w.loadFile(rendererIndex);
  else {
    const msg = `The renderer is not built: run \`npm run build:renderer\` (missing ${rendererIndex}).`;
    void w.loadURL(`data:text/plain;charset=utf-8,${encodeURIComponent(msg)}`);
  }
  w.on('closed', () => (win = null));
  return w;
}

app.enableSandbox();
// One instance per user: two would both write the same runs folder.
if (!app.requestSingleInstanceLock()) app.quit();
else boot();

function boot(): void {
  app.on('second-instance', () => {
    if (win) {
      if (win.isMinimized()) win.restore();
      win.focus();
    }
  });
  // Any other window / webview that ever appears gets the same rules.
  app.on('web-contents-created', (_e, wc) => hardenContents(wc));

  app.whenReady().then(() => {
    const csp = rendererCsp();
    session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
      callback({
        responseHeaders: {
          ...details.responseHeaders,
          'Content-Security-Policy': [csp],
          'X-Content-Type-Options': ['nosniff'],
        },
      });
    });
    session.defaultSession.setPermissionRequestHandler((_wc, _permission, callback) => callback(false));
    session.defaultSession.setPermissionCheckHandler(() => false);

    const { entry, spawn } = workerSpawn();
    manager = new RunManager(new RunStore(workspace), { spawn, workerEntry: entry });
    // The export folder is typed by the user in this window: anywhere, but never into assets/, a run's checkpoints
    // folder or through a dangling symlink (pathPolicy.ts checks it in main before anything is written).
    api = new ApiHost({ manager, workspace, host: 'electron', version: app.getVersion(), paths: userChoicePolicy() });
    registerIpc(api);
    win = createWindow();
    api.subscribe((e) => {
      if (win && !win.isDestroyed()) win.webContents.send('sdtt:event', e);
    });
    app.on('activate', () => {
      if (!win) win = createWindow();
    });
  });

  let quitting = false;
  app.on('before-quit', (e) => {
    // Active runs checkpoint and stop before the app exits (the RunManager waits for their workers).
    if (quitting || !manager || manager.activeIds().length === 0) return;
    e.preventDefault();
    quitting = true;
    void manager.shutdown().finally(() => app.quit());
  });
  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
}
