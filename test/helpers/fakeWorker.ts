// A fake worker process for RunManager / ModelSampler tests: records what it is sent and killed with, says what the
// test makes it say, exits when told (or when killed). `setup` builds a RunManager over a temp workspace spawning them.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseMainToWorker, type MainToWorker, type WorkerToMain } from '../../src/shared/messages.ts';
import { RunStore } from '../../src/runs/runStore.ts';
import { RunManager } from '../../src/main/runManager.ts';
import type { ManagerEvent } from '../../src/main/managerEvents.ts';
import type { ChildLike } from '../../src/main/workerSpawner.ts';

let pidSeq = 90000;
export class FakeChild extends EventEmitter implements ChildLike {
  readonly pid = ++pidSeq;
  sent: MainToWorker[] = [];
  killed: (string | undefined)[] = [];
  tail = '';
  exited = false;
  /** What kill() does: by default the process dies of the signal. */
  onKill: (signal?: string) => void = (s) => this.exit(null, s ?? 'SIGTERM');
  send(msg: MainToWorker): void {
    assert.ok(parseMainToWorker(msg).ok, 'the manager only sends valid messages');
    this.sent.push(msg);
  }
  kill(signal?: NodeJS.Signals): void {
    this.killed.push(signal);
    setImmediate(() => this.onKill(signal));
  }
  stderrTail(): string {
    return this.tail;
  }
  say(msg: WorkerToMain | Record<string, unknown>): void {
    this.emit('message', msg);
  }
  exit(code: number | null, signal: string | null = null): void {
    if (this.exited) return;
    this.exited = true;
    this.emit('exit', code, signal);
  }
  /** ready -> (start) -> started. */
  boot(startStep = 0): void {
    this.say({ type: 'ready' });
    this.say({ type: 'started', backend: 'fake', device: 'none', params: 10, startStep });
  }
  finish(status: 'done' | 'stopped' | 'nan' = 'done', step = 20): void {
    this.say({ type: 'done', status, step });
    this.exit(0);
  }
}

export function setupManager(opts: { concurrency?: number; stopGraceMs?: number; spawnThrows?: boolean } = {}) {
  const ws = mkdtempSync(join(tmpdir(), 'sdtt-rm-'));
  const store = new RunStore(ws);
  const children: FakeChild[] = [];
  const events: ManagerEvent[] = [];
  const warnings: string[] = [];
  const mgr = new RunManager(store, {
    concurrency: opts.concurrency,
    stopGraceMs: opts.stopGraceMs,
    exitGraceMs: 50,
    onWarning: (l) => warnings.push(l),
    spawn: () => {
      if (opts.spawnThrows) throw new Error('spawn EACCES');
      const c = new FakeChild();
      children.push(c);
      return c;
    },
  });
  mgr.subscribe((e) => events.push(e));
  const cleanup = () => {
    // End every fake worker still "alive" (and any the queue starts meanwhile) so no deadline timer outlives the test.
    for (let live = children.filter((c) => !c.exited); live.length; live = children.filter((c) => !c.exited))
      live.forEach((c) => c.exit(null, 'SIGKILL'));
    rmSync(ws, { recursive: true, force: true });
  };
  return { ws, store, mgr, children, events, warnings, cleanup };
}

export const tick = () => new Promise((r) => setImmediate(r));
