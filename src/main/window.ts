// Security policy of the app's one window, as pure functions (no electron import) so that both hosts share it and
// tests can check it without an Electron binary: the Content-Security-Policy (Electron's response header and
// `sdtt serve`'s), the BrowserWindow webPreferences, and which URLs may send IPC, be navigated to, or be opened
// externally.

/**
 * The renderer's CSP, the same directives as the <meta> in src/renderer/index.html, plus what only a header can say
 * (frame-ancestors). `connectSrc` adds WebSocket origins for browser mode; Electron needs none (IPC only).
 */
export function rendererCsp(opts: { connectSrc?: string[] } = {}): string {
  return [
    "default-src 'self'",
    `connect-src ${["'self'", ...(opts.connectSrc ?? [])].join(' ')}`,
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** webPreferences of the app window: isolated, sandboxed, no Node in any frame or worker. */
export function secureWebPreferences(preload: string) {
  return {
    preload,
    contextIsolation: true,
    sandbox: true,
    nodeIntegration: false,
    nodeIntegrationInWorker: false,
    nodeIntegrationInSubFrames: false,
    webSecurity: true,
    allowRunningInsecureContent: false,
    webviewTag: false,
    experimentalFeatures: false,
    navigateOnDragDrop: false,
    spellcheck: false,
    safeDialogs: true,
  } as const;
}

export interface AppPages {
  /** file:// URL of out/renderer/index.html. */
  indexUrl: string;
  /** Dev server origin (vite), only when running from a dev server; never in a packaged app. */
  devServerUrl?: string;
}

function parse(url: string): URL | null {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}

/** True when `url` is the app's own page: the index file exactly (any hash/query), or a page of the dev server. */
export function isAppUrl(url: string | undefined | null, pages: AppPages): boolean {
  if (!url) return false;
  const u = parse(url);
  const index = parse(pages.indexUrl);
  if (!u || !index) return false;
  if (u.protocol === 'file:' && index.protocol === 'file:')
    return u.host === index.host && u.pathname === index.pathname;
  if (pages.devServerUrl) {
    const dev = parse(pages.devServerUrl);
    if (dev && (dev.protocol === 'http:' || dev.protocol === 'https:') && u.origin === dev.origin) return true;
  }
  return false;
}

/**
 * What to do with a navigation or window.open to `url`: 'allow' only for the app's own page (a reload), 'external'
 * for http(s) links (opened in the user's browser after a confirmation), 'deny' for everything else (file://,
 * javascript:, data:, custom schemes, ...).
 */
export function navigationDecision(url: string, pages: AppPages): 'allow' | 'external' | 'deny' {
  if (isAppUrl(url, pages)) return 'allow';
  const u = parse(url);
  if (u && (u.protocol === 'https:' || u.protocol === 'http:') && u.hostname && !u.username && !u.password)
    return 'external';
  return 'deny';
}
