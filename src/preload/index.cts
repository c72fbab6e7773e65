// Preload of the app window (sandboxed, so CommonJS and no imports but 'electron'): exposes `window.sdtt`, exactly
// one function per API method plus subscribe(), and nothing else. Each function forwards its request to main
// ('sdtt:<method>'), where the sender is checked and the payload validated; the page never sees ipcRenderer or an
// IpcRendererEvent. Main answers { ok, result } | { ok: false, error: { message, code } }; errors are rethrown.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import type { ApiMethod } from '../shared/api.ts' with { 'resolution-mode': 'import' };

// The allow-list, spelt out because a sandboxed preload cannot load shared/api.ts at run time; the two checks
// below fail to compile if it drifts from ApiMethod in either direction.
const METHODS = [
  'getInfo',
  'listRuns',
  'getRun',
  'getMetrics',
  'createRun',
  'controlRun',
  'deleteRun',
  'listModels',
  'getSamples',
  'exportRound',
  'sampleModel',
  'inspectModel',
  'browseFolder',
] as const satisfies readonly ApiMethod[];
type Missing = Exclude<ApiMethod, (typeof METHODS)[number]>;
const exhaustive: [Missing] extends [never] ? true : Missing = true;
void exhaustive;

type Reply = { ok: true; result: unknown } | { ok: false; error: { message: string; code: string } };

const api: Record<string, unknown> = {};
for (const method of METHODS) {
  api[method] = async (req: unknown) => {
    const reply = (await ipcRenderer.invoke(`sdtt:${method}`, req ?? {})) as Reply;
    if (reply && reply.ok === true) return reply.result;
    const err = new Error(reply?.error?.message ?? `${method} failed`);
    err.name = 'ApiError';
    (err as Error & { code?: string }).code = reply?.error?.code ?? 'internal';
    throw err;
  };
}
api.subscribe = (listener: (e: unknown) => void) => {
  if (typeof listener !== 'function') throw new TypeError('subscribe(listener): listener must be a function');
  const handler = (_e: IpcRendererEvent, event: unknown) => listener(event);
  ipcRenderer.on('sdtt:event', handler);
  return () => void ipcRenderer.removeListener('sdtt:event', handler);
};

contextBridge.exposeInMainWorld('sdtt', Object.freeze(api));
