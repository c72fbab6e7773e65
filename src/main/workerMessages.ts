// What one worker's messages and its exit do to its run, split out of runManager.ts, which owns the queue, the
// processes and their timers: handleWorkerMessage checks a message against the worker protocol (messages.ts) and
// records it through the RunManager (run.json, the metrics log, events), reaching the manager only through the
// WorkerLink it is given; exitPatch is the record patch a worker's exit leaves.
import {
  describeExit,
  parseWorkerToMain,
  type ExitReason,
  type MainToWorker,
  type WorkerToMain,
} from '../shared/messages.ts';
import type { RunRecord, RunStatus } from '../shared/runState.ts';
import type { RunStore } from '../runs/runStore.ts';
import type { ManagerEvent } from './managerEvents.ts';
import type { ChildLike } from './workerSpawner.ts';

/** The RunManager's state of one live worker. */
export interface Live {
  child: ChildLike;
  ready: boolean;
  stopRequested: boolean;
  pauseRequested: boolean;
  stopKilled: boolean;
  final?: { status: RunStatus; step?: number; reason?: string };
  /** The worker's latest 'activity', for clients that (re)open the run mid-evaluation. Gone with the worker. */
  activity?: string;
  timer?: ReturnType<typeof setTimeout>;
}

/** What handleWorkerMessage may do to the RunManager: its store, and the private operations it lends. */
export interface WorkerLink {
  readonly store: RunStore;
  readonly exitGraceMs: number;
  warn(line: string): void;
  send(id: string, msg: MainToWorker): void;
  setStatus(id: string, patch: Partial<RunRecord>): RunRecord;
  emit(e: ManagerEvent): void;
  arm(id: string, l: Live, ms: number, fn: () => void): void;
  disarm(l: Live): void;
  abort(id: string, l: Live, reason: string): void;
}

/** Handles one raw message of the worker of run `id`; a message that breaks the protocol, or cannot be recorded, ends it. */
export function handleWorkerMessage(link: WorkerLink, id: string, l: Live, raw: unknown): void {
  const parsed = parseWorkerToMain(raw);
  if (!parsed.ok) return link.abort(id, l, `protocol error: ${parsed.error}`);
  const msg: WorkerToMain = parsed.message;
  try {
    switch (msg.type) {
      case 'ready': {
        if (l.ready) return;
        l.ready = true;
        link.disarm(l);
        const rec = link.store.read(id);
        link.send(id, {
          type: 'start',
          job: { kind: rec.kind, runId: id, runDir: link.store.dir(id), config: rec.config },
        });
        if (l.pauseRequested) link.send(id, { type: 'pause' });
        return;
      }
      case 'started':
        // Work after the checkpoint the engine resumed from is redone, so its metrics go.
        link.store.truncateMetricsAfter(id, msg.startStep);
        link.setStatus(id, {
          backend: msg.backend,
          device: msg.device,
          step: msg.startStep,
          ...(msg.totalSteps !== undefined ? { totalSteps: msg.totalSteps } : {}),
        });
        link.emit({
          type: 'started',
          runId: id,
          backend: msg.backend,
          device: msg.device,
          params: msg.params,
          startStep: msg.startStep,
          ...(msg.resumedFrom ? { resumedFrom: msg.resumedFrom } : {}),
        });
        return;
      case 'metrics':
        for (const p of msg.points) link.store.appendMetric(id, { type: 'train', ...p });
        link.emit({ type: 'metrics', runId: id, points: msg.points });
        return;
      case 'eval':
        link.store.appendMetric(id, { type: 'eval', ...msg.metric });
        link.emit({ type: 'eval', runId: id, metric: msg.metric });
        return;
      case 'checkpoint':
        // run.json's step is the resumable step: the last checkpoint.
        link.store.update(id, { step: msg.step });
        link.emit({ type: 'checkpoint', runId: id, step: msg.step, dir: msg.dir });
        return;
      case 'progress':
        link.emit({ type: 'progress', runId: id, step: msg.step, total: msg.total, etaS: msg.etaS });
        return;
      case 'round':
        link.emit({ type: 'round', runId: id, round: msg.round });
        return;
      case 'samples':
        link.emit({ type: 'samples', runId: id, round: msg.round });
        return;
      case 'activity':
        l.activity = msg.text ?? undefined;
        link.emit({ type: 'activity', runId: id, text: msg.text });
        return;
      case 'paused':
        link.setStatus(id, { status: 'paused' });
        return;
      case 'resumed':
        link.setStatus(id, { status: 'running' });
        return;
      case 'done':
        l.final = { status: msg.status, step: msg.step, reason: msg.reason };
        link.arm(id, l, link.exitGraceMs, () => l.child.kill('SIGKILL'));
        return;
      case 'error':
        l.final = { status: 'failed', reason: msg.message.split('\n')[0].slice(0, 2000) || 'worker error' };
        if (msg.stack) link.warn(`run ${id}: ${msg.stack}`);
        link.arm(id, l, link.exitGraceMs, () => l.child.kill('SIGKILL'));
        return;
    }
  } catch (e) {
    // The run folder cannot be written (disk full, removed): the job's results would be lost, so end it.
    link.abort(id, l, `cannot record the run: ${(e as Error).message}`);
  }
}

/** The patch of run.json once the worker has exited: its own final word, a stop, or a failure described from the exit. */
export function exitPatch(
  l: Live,
  reason: ExitReason,
  code: number | null,
  signal: string | null,
  tail: string,
  stopGraceMs: number,
): Partial<RunRecord> {
  let patch: Partial<RunRecord>;
  if (l.final)
    patch = {
      status: l.final.status,
      reason: l.final.reason,
      ...(l.final.step !== undefined ? { step: l.final.step } : {}),
    };
  else if (l.stopRequested && (l.stopKilled || reason === 'killed')) {
    patch = {
      status: 'stopped',
      reason: l.ready
        ? `stopped: the worker did not stop within ${stopGraceMs} ms and was killed; resume continues from the last checkpoint`
        : 'stopped before it started',
    };
  } else patch = { status: 'failed', reason: describeExit(reason, code, signal, tail) };
  return patch;
}
