// Worker process entry (one per active job), started by the RunManager through Electron's utilityProcess or
// Node's child_process.fork. It says 'ready', runs the one job it is given, reports `done` (exit 0) or `error`
// (exit 1), and exits explicitly: tfjs and the message listener keep handles open that would otherwise keep the
// process alive after its job.
import { JobLoop } from './jobs.ts';
import { openPort, type Port } from './port.ts';

let port: Port;
try {
  port = openPort();
} catch (e) {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(1);
}

const loop = new JobLoop(port);

// Anything that escapes the job (a throw in a timer, a rejected promise nobody awaited) is fatal and reported.
const fatal = (e: unknown) => {
  const err = e instanceof Error ? e : new Error(String(e));
  process.stderr.write(`worker: fatal: ${err.stack ?? err.message}\n`);
  void loop.fail(err);
};
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

// The host went away (Node only): nobody is left to report to or to resume us; the last checkpoint stands.
port.onDisconnect(() => process.exit(0));

loop.attach();
const code = await loop.finished;
process.exit(code);
