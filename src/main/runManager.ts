// RunManager: queues runs, spawns one worker process per active run (up to a concurrency limit), relays control
// messages, and is the ONE writer of an app run's record status and metrics log (through RunStore); the worker only computes
// and reports. Host-agnostic: it imports nothing from Electron, the spawn function is injected (Electron passes a
// utilityProcess wrapper; the CLI and tests use forkSpawner from workerSpawner.ts, or a fake). A worker that dies
// is never restarted silently: its run becomes 'failed' with a typed exit reason, and resuming it is the user's call.
// What a worker's messages and its exit do to its run: workerMessages.ts; the events subscribers get: managerEvents.ts.
import { classifyExit, parseMainToWorker, type ExitReason, type MainToWorker } from '../shared/messages.ts';
import type { RunRecord, RunStatus } from '../shared/runState.ts';
import {
  RunConflictError,
  assertControllableHere,
  assertNotLive,
  assertRemovable,
  jobTotalSteps,
  newRunId,
  openOrResume,
  parseJobConfig,
  preflightJob,
  withLiveness,
} from './runLifecycle.ts';
import type { RunStore } from '../runs/runStore.ts';
import { ModelSampler } from './modelSampler.ts';
import { forkSpawner, DEFAULT_WORKER_ENTRY, type ChildLike, type Spawner } from './workerSpawner.ts';
import type { ManagerEvent } from './managerEvents.ts';
import { exitPatch, handleWorkerMessage, type Live, type WorkerLink } from './workerMessages.ts';

export type RunListener = (e: ManagerEvent) => void;

export interface RunManagerOptions {
  spawn?: Spawner;
  workerEntry?: string;
  /** Live worker processes at once; a paused run keeps its worker (and memory), so it counts. Default 1. */
  concurrency?: number;
  /** After 'stop', how long a worker may take to checkpoint and exit before it is killed. */
  stopGraceMs?: number;
  /** How long a worker may take to say 'ready'. */
  launchTimeoutMs?: number;
  /** After 'done'/'error', how long a worker may take to exit before it is killed. */
  exitGraceMs?: number;
  onWarning?: (line: string) => void;
}

const TERMINAL: ReadonlySet<RunStatus> = new Set(['done', 'failed', 'nan', 'stopped']);

export class RunManager {
  readonly store: RunStore;
  /** One-shot sampling from a checkpoint, in a worker of the same kind as the runs' (nothing is written). */
  readonly sampler: ModelSampler;
  private readonly spawn: Spawner;
  private readonly entry: string;
  private readonly concurrency: number;
  private readonly stopGraceMs: number;
  private readonly launchTimeoutMs: number;
  private readonly exitGraceMs: number;
  private readonly warn: (line: string) => void;
  private readonly live = new Map<string, Live>();
  private readonly queue: string[] = [];
  private readonly listeners = new Set<RunListener>();
  private readonly waiters = new Map<string, ((r: RunRecord) => void)[]>();
  /** What the worker-message handling (workerMessages.ts) may use of this manager. */
  private readonly link: WorkerLink;

  constructor(store: RunStore, opts: RunManagerOptions = {}) {
    this.store = store;
    this.spawn = opts.spawn ?? forkSpawner();
    this.entry = opts.workerEntry ?? DEFAULT_WORKER_ENTRY;
    this.sampler = new ModelSampler(this.spawn, this.entry);
    this.concurrency = Math.max(1, opts.concurrency ?? 1);
    this.stopGraceMs = opts.stopGraceMs ?? 60_000;
    this.launchTimeoutMs = opts.launchTimeoutMs ?? 120_000;
    this.exitGraceMs = opts.exitGraceMs ?? 10_000;
    this.warn = opts.onWarning ?? ((l) => console.warn(`run manager: ${l}`));
    this.link = {
      store: this.store,
      exitGraceMs: this.exitGraceMs,
      warn: this.warn,
      send: (id, msg) => this.send(id, msg),
      setStatus: (id, patch) => this.setStatus(id, patch),
      emit: (e) => this.emit(e),
      arm: (id, l, ms, fn) => this.arm(id, l, ms, fn),
      disarm: (l) => this.disarm(l),
      abort: (id, l, reason) => this.abort(id, l, reason),
    };
  }

  /** Validates the config (and a distillation's teacher, data and judge: preflightJob) and creates a queued run (not
   * started: call start()). A refused config creates nothing. */
  create(kind: RunRecord['kind'], config: unknown, opts: { id?: string } = {}): RunRecord {
    const cfg = parseJobConfig(kind, config);
    preflightJob(cfg);
    const now = new Date().toISOString();
    const id = opts.id ?? newRunId(kind);
    const rec = this.store.create({
      id,
      kind,
      config: cfg as unknown as Record<string, unknown>,
      status: 'queued',
      step: 0,
      totalSteps: jobTotalSteps(cfg),
      createdAt: now,
      updatedAt: now,
    });
    this.emit({ type: 'status', runId: id, record: rec });
    return rec;
  }

  /** Creates the run or reopens an existing one with the same config (steps may grow), as queued. For the CLI. */
  open(kind: RunRecord['kind'], config: unknown, id: string): RunRecord {
    if (this.live.has(id)) throw new Error(`run "${id}" is already active in this process`);
    const rec = openOrResume(this.store, id, kind, parseJobConfig(kind, config), { status: 'queued' });
    this.emit({ type: 'status', runId: id, record: rec });
    return rec;
  }

  /** Queues the run and starts it as soon as a slot is free. Continues from its last checkpoint if it has one. */
  start(id: string): RunRecord {
    if (this.live.has(id) || this.queue.includes(id)) return this.store.read(id);
    const rec = this.store.read(id);
    if (rec.status === 'done') throw new Error(`run "${id}" is done; reopen it with more steps to continue`);
    assertNotLive(rec);
    this.queue.push(id);
    // A queued run has no process (yet): a pid left from an earlier one would read as "held elsewhere" if reused.
    const queued =
      rec.status === 'queued' && rec.pid === undefined
        ? rec
        : this.setStatus(id, { status: 'queued', reason: undefined, pid: undefined });
    this.pump();
    return this.live.has(id) ? this.store.read(id) : queued;
  }

  /** Resumes a paused worker in place, or (no live worker: stopped, failed, app restarted) queues the run again. */
  resume(id: string): RunRecord {
    const l = this.live.get(id);
    if (!l) return this.start(id);
    l.pauseRequested = false;
    if (l.ready) this.send(id, { type: 'resume' });
    return this.store.read(id);
  }

  /** Pauses between steps (status 'paused' once the worker confirms). A queued run leaves the queue. */
  pause(id: string): RunRecord {
    const l = this.live.get(id);
    if (l) {
      l.pauseRequested = true;
      if (l.ready) this.send(id, { type: 'pause' });
      return this.store.read(id);
    }
    assertControllableHere(this.get(id), 'pause');
    if (this.dequeue(id)) return this.setStatus(id, { status: 'paused', pid: undefined });
    return this.get(id);
  }

  /** Asks the worker to checkpoint and finish as 'stopped'; kills it if it has not exited after stopGraceMs. */
  stop(id: string): RunRecord {
    const l = this.live.get(id);
    if (l) {
      // Already asked, or the worker already said done/error: its exit deadline stands.
      if (l.stopRequested || l.final) return this.store.read(id);
      l.stopRequested = true;
      if (!l.ready) {
        l.stopKilled = true; // nothing computed yet: no checkpoint to wait for
        l.child.kill('SIGKILL');
        return this.store.read(id);
      }
      this.send(id, { type: 'stop' });
      this.arm(id, l, this.stopGraceMs, () => {
        l.stopKilled = true;
        l.child.kill('SIGKILL');
      });
      return this.store.read(id);
    }
    const rec = this.get(id);
    assertControllableHere(rec, 'stop');
    if (this.dequeue(id) || rec.status === 'paused')
      return this.setStatus(id, { status: 'stopped', reason: 'stopped before it ran again' });
    return rec;
  }

  /**
   * Deletes a run's folder (checkpoints, rounds, samples, metrics) and emits 'deleted'. Refused (RunConflictError)
   * while the run is active or queued here, or held by another live process (runLifecycle.assertRemovable).
   */
  remove(id: string): { dir: string; files: number; bytes: number } {
    if (this.live.has(id) || this.queue.includes(id)) {
      throw new RunConflictError(
        `run "${id}" is ${this.live.has(id) ? this.store.read(id).status : 'queued to start'} in this app: stop it first, then delete it`,
      );
    }
    assertRemovable(this.store.read(id));
    const removed = this.store.remove(id);
    this.emit({ type: 'deleted', runId: id });
    return removed;
  }

  /** run.json, except that a run whose process is gone (not one of ours) reads as stopped (withLiveness). */
  get(id: string): RunRecord {
    return this.viewed(this.store.read(id));
  }

  list(): RunRecord[] {
    return this.store.list().map((r) => this.viewed(r));
  }

  private viewed(rec: RunRecord): RunRecord {
    return this.live.has(rec.id) ? rec : withLiveness(rec);
  }

  /** What a live run's evaluation is doing now (see the 'activity' event); undefined while training or not live. */
  activity(id: string): string | undefined {
    return this.live.get(id)?.activity;
  }

  activeIds(): string[] {
    return [...this.live.keys()];
  }

  queuedIds(): string[] {
    return [...this.queue];
  }

  subscribe(listener: RunListener): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** Resolves when the run reaches done/failed/nan/stopped. */
  wait(id: string): Promise<RunRecord> {
    const rec = this.get(id);
    if (TERMINAL.has(rec.status) && !this.live.has(id)) return Promise.resolve(rec);
    return new Promise((r) => this.waiters.set(id, [...(this.waiters.get(id) ?? []), r]));
  }

  /** Stops every active run (each checkpoints) and waits for the workers to exit; queued runs stay queued; a
   * sampling job is killed (it writes nothing). */
  async shutdown(): Promise<void> {
    this.sampler.dispose();
    this.queue.length = 0;
    const ids = [...this.live.keys()];
    for (const id of ids) this.stop(id);
    await Promise.all(ids.map((id) => this.wait(id)));
  }

  private dequeue(id: string): boolean {
    const i = this.queue.indexOf(id);
    if (i >= 0) this.queue.splice(i, 1);
    return i >= 0;
  }

  private pump(): void {
    while (this.live.size < this.concurrency && this.queue.length) this.launch(this.queue.shift()!);
  }

  private launch(id: string): void {
    let child: ChildLike;
    try {
      child = this.spawn(this.entry, []);
    } catch (e) {
      this.setStatus(
        id,
        { status: 'failed', reason: `launch-failed: ${(e as Error).message}`, pid: undefined },
        { reason: 'launch-failed', code: null, signal: null },
      );
      this.settle(id);
      return;
    }
    const l: Live = { child, ready: false, stopRequested: false, pauseRequested: false, stopKilled: false };
    this.live.set(id, l);
    let exited = false;
    child.on('message', (raw) => {
      if (!exited) handleWorkerMessage(this.link, id, l, raw);
    });
    child.on('error', (err) => {
      if (l.ready) return this.warn(`run ${id}: worker error: ${err.message}`);
      // Never launched: some hosts emit no 'exit' after a spawn error, so settle here.
      l.final ??= { status: 'failed', reason: `launch-failed: ${err.message}` };
      if (!exited) {
        exited = true;
        this.onExit(id, l, null, null);
      }
    });
    child.on('exit', (code, signal) => {
      if (exited) return;
      exited = true;
      this.onExit(id, l, code, signal);
    });
    this.arm(id, l, this.launchTimeoutMs, () => {
      l.final = {
        status: 'failed',
        reason: `launch-failed: the worker did not report ready within ${this.launchTimeoutMs} ms`,
      };
      child.kill('SIGKILL');
    });
    this.setStatus(id, { status: 'running', reason: undefined, pid: child.pid });
  }

  /** Ends a worker that broke the contract; its run fails with `reason`. */
  private abort(id: string, l: Live, reason: string): void {
    this.warn(`run ${id}: ${reason}`);
    if (!l.final) l.final = { status: 'failed', reason };
    l.child.kill('SIGKILL');
  }

  private onExit(id: string, l: Live, code: number | null, signal: string | null): void {
    this.disarm(l);
    this.live.delete(id);
    const tail = l.child.stderrTail();
    const reason = classifyExit(code, signal, tail, { launched: l.ready });
    const patch = exitPatch(l, reason, code, signal, tail, this.stopGraceMs);
    try {
      this.setStatus(id, { ...patch, pid: undefined }, { reason, code, signal });
    } catch (e) {
      // Disk full: the store writes it as soon as there is room (and reads show it meanwhile); clients learn it now.
      let unrecorded: Error | null = e as Error;
      try {
        unrecorded = this.store.updateEventually(id, { ...patch, pid: undefined });
        this.emit({ type: 'status', runId: id, record: this.store.read(id), exit: { reason, code, signal } });
      } catch {
        // run.json unreadable (folder removed): nothing to retry
      }
      if (unrecorded)
        this.warn(
          `run ${id}: cannot record its end (${patch.status}) yet: ${unrecorded.message}; retried until it can be written`,
        );
    }
    this.settle(id);
  }

  private settle(id: string): void {
    const ws = this.waiters.get(id);
    if (ws) {
      this.waiters.delete(id);
      let rec: RunRecord | undefined;
      try {
        rec = this.store.read(id);
      } catch {
        // unreadable run folder: waiters still need an answer
      }
      for (const w of ws) w(rec ?? ({ id, status: 'failed' } as RunRecord));
    }
    this.pump();
  }

  private send(id: string, msg: MainToWorker): void {
    const l = this.live.get(id);
    if (!l) return;
    const checked = parseMainToWorker(msg); // the same contract the worker applies, caught here first
    if (!checked.ok) return this.abort(id, l, checked.error);
    try {
      l.child.send(checked.message);
    } catch (e) {
      this.warn(`run ${id}: cannot send '${msg.type}': ${(e as Error).message}`);
    }
  }

  private arm(id: string, l: Live, ms: number, fn: () => void): void {
    this.disarm(l);
    l.timer = setTimeout(() => {
      if (this.live.get(id) === l) fn();
    }, ms); // not unref'd: a kill deadline must fire even when the child is all that keeps the loop alive
  }

  private disarm(l: Live): void {
    if (l.timer) clearTimeout(l.timer);
    l.timer = undefined;
  }

  private setStatus(
    id: string,
    patch: Partial<RunRecord>,
    exit?: { reason: ExitReason; code: number | null; signal: string | null },
  ): RunRecord {
    const rec = this.store.update(id, patch);
    this.emit({ type: 'status', runId: id, record: rec, ...(exit ? { exit } : {}) });
    return rec;
  }

  private emit(e: ManagerEvent): void {
    for (const fn of this.listeners) {
      try {
        fn(e);
      } catch (err) {
        this.warn(`a run listener threw: ${(err as Error).message}`);
      }
    }
  }
}
