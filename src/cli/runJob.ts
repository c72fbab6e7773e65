// The run plumbing `sdtt pretrain` and `sdtt distill` share: open (or resume) the run folder, turn the first
// Ctrl-C / SIGTERM into a graceful stop (the engine checkpoints first; a second one aborts), a progress bar, the
// engine hooks that keep the run record and its metrics log current, and the run's final status.
import type { PretrainConfig } from '../shared/config.ts';
import type { DistillConfig } from '../shared/distillConfig.ts';
import type { RunRecord } from '../shared/runState.ts';
import { RunStore } from '../runs/runStore.ts';
import { openOrResume, resumeStep } from '../main/runLifecycle.ts';
import { ProgressBar } from './progress.ts';

/** What a job sees of its run while the engine runs. The arrow members are safe to pass as engine hooks. */
export interface CliRun {
  readonly store: RunStore;
  readonly id: string;
  readonly runDir: string;
  readonly record: RunRecord;
  /** The progress bar; a job may replace it once the engine knows the real total (onStart). */
  bar: ProgressBar;
  /** The loss of the last train metric passed to trainStep (NaN before the first). */
  readonly lastLoss: number;
  /** onStart: drops metrics past the resume point; records backend, device, step (and `extra`) in run.json. */
  started: (info: { backend: string; device: string; startStep: number }, extra?: Partial<RunRecord>) => void;
  /** onStep: appends the train metric, remembers its loss and moves the bar (`text` after the bar). */
  trainStep: (m: { step: number; loss: number }, text: string) => void;
  /** onEval: appends the eval metric. */
  evalMetric: (m: object) => void;
  /** onCheckpoint: records the checkpointed step in run.json. */
  checkpointed: (step: number) => void;
  /** shouldStop: true after the first SIGINT / SIGTERM. */
  shouldStop: () => boolean;
  /**
   * beforeStep: yields one event-loop turn. An in-process engine (threads 1) resolves every await as a microtask,
   * and signals are only delivered on a loop turn: without this, Ctrl-C / SIGTERM would wait for the whole run.
   */
  beforeStep: () => Promise<void>;
}

export interface CliJobOptions {
  workspace: string;
  id: string;
  kind: RunRecord['kind'];
  cfg: PretrainConfig | DistillConfig;
  /** Progress bar label. */
  label: string;
  /** Progress bar total (default: the run record's totalSteps). */
  total?: number;
  /** How the final line prints the last loss. */
  formatLoss: (loss: number) => string;
  /** The runs folder's store (default: a RunStore of `workspace`); tests pass one whose writer fills the disk. */
  store?: RunStore;
}

export interface CliJobResult {
  status: RunRecord['status'];
  reason?: string;
  step: number;
}

/**
 * Opens the run, runs `job` with the signal handlers installed, records the result (or the failure, rethrown) in
 * run.json, prints the "run <id>: <status> at step ..." line, then `report`. Exit code 0 when done or stopped.
 */
export async function runCliJob<R extends CliJobResult>(
  opts: CliJobOptions,
  job: (run: CliRun) => Promise<R>,
  report: (result: R, run: CliRun) => void = () => {},
): Promise<number> {
  const store = opts.store ?? new RunStore(opts.workspace);
  const { id } = opts;
  const existed = store.exists(id);
  const record = openOrResume(store, id, opts.kind, opts.cfg, {
    status: 'running',
    pid: process.pid,
    ownPid: process.pid,
  });
  const runDir = store.dir(id);
  // What the engine will do: resume from the newest checkpoint, or start over (run.json's step may have moved past it).
  const from = resumeStep(store, id);
  const note =
    from !== null
      ? ` (resuming at step ${from} from checkpoints/${from})`
      : existed
        ? ' (no checkpoint to resume from: starting over at step 0)'
        : '';
  console.error(`run ${id}: ${runDir}${note}`);

  let stopRequested = false;
  const onSignal = () => {
    if (stopRequested) process.exit(130);
    stopRequested = true;
    console.error('\nstopping after this step (checkpoint first); press Ctrl-C again to abort');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let lastLoss = NaN;
  const run: CliRun = {
    store,
    id,
    runDir,
    record,
    bar: new ProgressBar(opts.label, opts.total ?? record.totalSteps, record.step),
    get lastLoss() {
      return lastLoss;
    },
    started: (info, extra) => {
      store.truncateMetricsAfter(id, info.startStep);
      store.update(id, {
        backend: info.backend,
        device: info.device,
        status: 'running',
        pid: process.pid,
        step: info.startStep,
        ...extra,
      });
    },
    trainStep: (m, text) => {
      store.appendMetric(id, { type: 'train', ...m });
      lastLoss = m.loss;
      run.bar.update(m.step, text);
    },
    evalMetric: (m) => store.appendMetric(id, { type: 'eval', ...m }),
    checkpointed: (step) => store.update(id, { step }),
    shouldStop: () => stopRequested,
    beforeStep: () => new Promise<void>((resolve) => setImmediate(resolve)),
  };
  let result: R;
  try {
    result = await job(run);
  } catch (e) {
    run.bar.done();
    // One message: the failure itself (a full disk names its file), and whether run.json could record it.
    const unrecorded = recordEnd(store, id, { status: 'failed', reason: (e as Error).message, pid: undefined });
    throw unrecorded
      ? new Error(`${(e as Error).message}${notRecorded('failed', unrecorded, (e as Error).message)}`, { cause: e })
      : e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  run.bar.done();
  const unrecorded = recordEnd(store, id, {
    status: result.status,
    reason: result.reason,
    step: result.step,
    pid: undefined,
  });
  console.error(
    `run ${id}: ${result.status} at step ${result.step}${result.reason ? ` (${result.reason})` : ''}; last loss ${opts.formatLoss(lastLoss)}`,
  );
  report(result, run);
  if (unrecorded) throw new Error(`${unrecorded.message}${notRecorded(result.status, unrecorded, unrecorded.message)}`);
  return result.status === 'done' || result.status === 'stopped' ? 0 : 1;
}

/** Writes the run's end into run.json; when the disk has no room, RunStore keeps retrying it: the write's error then. */
function recordEnd(store: RunStore, id: string, patch: Partial<RunRecord>): Error | null {
  try {
    return store.updateEventually(id, patch);
  } catch (e) {
    return e as Error; // run.json unreadable: nothing to retry
  }
}

/** The tail of the one error line when run.json could not record the end (`told`: what the line already says). */
function notRecorded(status: RunRecord['status'], err: Error, told: string): string {
  return `; run.json is not marked ${status} yet${err.message === told ? '' : ` (${err.message})`}: retried until this process exits, after which \`sdtt runs\` shows the run interrupted`;
}
