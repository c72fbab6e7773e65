// The Electron Spawner for the RunManager: one `utilityProcess.fork` per job. Maps Electron's UtilityProcess onto
// ChildLike: send -> postMessage (structured clone, so NaN metrics survive), 'message' as is, 'exit' with the exit
// code (Electron reports no signal: null), a launch failure / fatal V8 error -> 'error', stderr tail kept from the
// piped stderr. Only Electron's types are needed here; the module is handed in, so this file imports no runtime
// electron and its logic is the same as forkSpawner's.
import type { UtilityProcess, ForkOptions } from 'electron';
import type { MainToWorker } from '../shared/messages.ts';
import type { ChildLike, Spawner } from './workerSpawner.ts';

export interface UtilitySpawnerOptions {
  /** `utilityProcess.fork` from electron (main process, after app 'ready'). */
  fork: (modulePath: string, args?: string[], options?: ForkOptions) => UtilityProcess;
  /** e.g. ['--import', tsxUrl] to run the .ts worker from source; [] for a built .js entry. */
  execArgv?: string[];
  tailBytes?: number;
  onOutput?: (text: string) => void;
  serviceName?: string;
}

export function utilitySpawner(opts: UtilitySpawnerOptions): Spawner {
  const tailBytes = opts.tailBytes ?? 8192;
  return (entry, args) => {
    const child = opts.fork(entry, args, {
      execArgv: opts.execArgv ?? [],
      stdio: ['ignore', 'pipe', 'pipe'],
      serviceName: opts.serviceName ?? 'SDTT worker',
    });
    let tail = '';
    let exited = false;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (s: string) => {
      tail = (tail + s).slice(-tailBytes);
      opts.onOutput?.(s);
    });
    // stdout must be drained or a chatty worker blocks on a full pipe.
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (s: string) => opts.onOutput?.(s));
    child.on('exit', () => (exited = true));
    const like: ChildLike = {
      get pid() {
        return child.pid;
      },
      send: (msg: MainToWorker) => {
        if (!exited) child.postMessage(msg);
      },
      on(event: 'message' | 'exit' | 'error', listener: (...a: never[]) => void) {
        if (event === 'message') child.on('message', listener as (m: unknown) => void);
        else if (event === 'exit')
          child.on('exit', (code: number) => (listener as (c: number | null, s: string | null) => void)(code, null));
        else
          child.on('error', (type: string, location: string) =>
            (listener as (e: Error) => void)(new Error(`${type} at ${location}`)),
          );
        return like;
      },
      // UtilityProcess.kill() takes no signal (SIGTERM on POSIX); a stop deadline therefore reads as 'killed' only
      // through the RunManager's own bookkeeping (stopKilled), which does not rely on the signal.
      kill: () => void child.kill(),
      stderrTail: () => tail,
    } as ChildLike;
    return like;
  };
}
