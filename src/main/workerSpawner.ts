// How the RunManager starts a worker: the ChildLike contract a worker process must meet, the Spawner that makes one,
// and forkSpawner, the child_process.fork implementation used by the CLI, browser mode and tests (the Electron one
// is utilitySpawner.ts).
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { MainToWorker } from '../shared/messages.ts';

/** What the manager needs of a child process; child_process.fork and Electron's utilityProcess both fit. */
export interface ChildLike {
  readonly pid?: number;
  send(msg: MainToWorker): void;
  on(event: 'message', listener: (raw: unknown) => void): unknown;
  /** Fires once, after the last message has been delivered. Electron gives no signal: pass null. */
  on(event: 'exit', listener: (code: number | null, signal: string | null) => void): unknown;
  /** Launch errors (e.g. the executable is missing); an 'exit' may or may not follow. */
  on(event: 'error', listener: (err: Error) => void): unknown;
  kill(signal?: NodeJS.Signals): void;
  /** The last few KB of the child's stderr, for exit classification and failure reasons. */
  stderrTail(): string;
}
export type Spawner = (entry: string, args: string[]) => ChildLike;

export const DEFAULT_WORKER_ENTRY = fileURLToPath(new URL('../worker/index.ts', import.meta.url));

/** child_process.fork running the worker under tsx (a compiled build passes its .js entry and `execArgv: []`). */
export function forkSpawner(
  opts: { execArgv?: string[]; tailBytes?: number; onOutput?: (text: string) => void } = {},
): Spawner {
  const execArgv = opts.execArgv ?? ['--import', import.meta.resolve('tsx')];
  const tailBytes = opts.tailBytes ?? 8192;
  return (entry, args) => {
    // 'advanced' serialization keeps NaN/Infinity in metrics (JSON would turn them into null).
    const cp = fork(entry, args, { execArgv, serialization: 'advanced', stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    let tail = '';
    cp.stderr?.setEncoding('utf8').on('data', (s: string) => {
      tail = (tail + s).slice(-tailBytes);
      opts.onOutput?.(s);
    });
    // stdout must be drained or a chatty worker blocks on a full pipe.
    cp.stdout?.setEncoding('utf8').on('data', (s: string) => opts.onOutput?.(s));
    return {
      get pid() {
        return cp.pid;
      },
      send: (msg) => void (cp.connected && cp.send(msg)),
      on(event: string, listener: (...a: never[]) => void) {
        // 'close' (not 'exit'): it fires after stdio and the IPC channel drained, so no message arrives after it.
        cp.on(event === 'exit' ? 'close' : event, listener as (...a: unknown[]) => void);
        return this;
      },
      kill: (signal) => void cp.kill(signal),
      stderrTail: () => tail,
    } as ChildLike;
  };
}
