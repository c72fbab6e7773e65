// The worker's one channel to its host, whichever host started it: an Electron utilityProcess (process.parentPort,
// messages arrive wrapped as { data }) or Node's child_process.fork (process.send / process.on('message')).
// Detected at runtime so the worker never imports electron and runs unchanged under the CLI and in tests.
import type { WorkerToMain } from '../shared/messages.ts';

export interface Port {
  readonly host: 'electron' | 'node';
  /** Resolves once the message has been handed to the channel (so exiting afterwards does not drop it). */
  send(msg: WorkerToMain): Promise<void>;
  /** Raw, unvalidated payloads; the job loop validates them. */
  onMessage(listener: (raw: unknown) => void): void;
  /** The host went away (Node only; Electron kills its utility processes itself). */
  onDisconnect(listener: () => void): void;
}

/** The parts of `process` the adapter uses, so tests can pass fakes. */
export interface ProcessLike {
  parentPort?: {
    on(event: 'message', listener: (e: { data: unknown }) => void): unknown;
    postMessage(msg: unknown): void;
  };
  send?: (msg: unknown, sendHandle?: undefined, options?: object, callback?: (err: Error | null) => void) => boolean;
  on(event: 'message', listener: (msg: unknown) => void): unknown;
  on(event: 'disconnect', listener: () => void): unknown;
}

export class NoChannelError extends Error {
  constructor() {
    super(
      'the worker was started without an IPC channel: run it through the RunManager (utilityProcess or child_process.fork), not directly',
    );
  }
}

export function openPort(proc: ProcessLike = process as unknown as ProcessLike): Port {
  const pp = proc.parentPort;
  if (pp && typeof pp.postMessage === 'function') {
    return {
      host: 'electron',
      // postMessage queues synchronously on the Mojo pipe; yielding once lets it go out before an exit.
      send: (msg) => {
        pp.postMessage(msg);
        return new Promise((r) => setImmediate(r));
      },
      onMessage: (listener) => void pp.on('message', (e) => listener(e?.data)),
      onDisconnect: () => {},
    };
  }
  const send = proc.send;
  if (typeof send === 'function') {
    return {
      host: 'node',
      send: (msg) =>
        new Promise((resolve, reject) => {
          send.call(proc, msg, undefined, {}, (err) => (err ? reject(err) : resolve()));
        }),
      onMessage: (listener) => void proc.on('message', listener),
      onDisconnect: (listener) => void proc.on('disconnect', listener),
    };
  }
  throw new NoChannelError();
}
