// The worker's job loop: one job per worker process. It validates the job's config, runs the engine with hooks
// that turn progress into protocol events, batches step metrics (one message per flush interval, so a fast job
// cannot flood the channel), and honours pause/resume/stop between steps.
//
// One writer: the worker never touches the run record or its metrics log (the RunManager on the main side owns them); it
// only computes and reports. The engine, running here, writes checkpoints into <runDir>/checkpoints/.
import { join } from 'node:path';
import { PretrainConfig, describeConfigError } from '../shared/config.ts';
import { DistillConfig } from '../shared/distillConfig.ts';
import {
  PROTOCOL_LIMITS,
  parseMainToWorker,
  type JobSpec,
  type SampleRequest,
  type SampleResult,
  type WorkerToMain,
} from '../shared/messages.ts';
import type { StepMetric } from '../shared/runState.ts';
import type { TrainHooks, TrainResult } from '../engine/training/train.ts';
import type { DistillHooks, DistillResult } from '../engine/sdtt/distillTypes.ts';
import type { SampleTextOptions, SampleTextResult } from '../engine/sampling/sampleText.ts';
import type { Port } from './port.ts';
import { runPaths } from '../runs/runFolder.ts';

export type RunPretrain = (cfg: PretrainConfig, checkpointsDir: string, hooks: TrainHooks) => Promise<TrainResult>;
export type RunDistill = (cfg: DistillConfig, runDir: string, hooks: DistillHooks) => Promise<DistillResult>;
export type SampleTextFn = (modelPath: string, opts: SampleTextOptions) => Promise<SampleTextResult>;

/**
 * Hooks this loop offers beyond TrainHooks. `beforeStep` is awaited at the top of each training step if the engine
 * calls it: it yields to the event loop (so control messages are read even when the engine computes
 * synchronously) and holds a pause in place. Engines that do not call it get pause by checkpoint-and-restart.
 */
export interface JobHooks extends TrainHooks {
  beforeStep?(step: number): Promise<void>;
}

export interface JobLoopOptions {
  /** The engine entry; defaults to engine/train.ts (imported lazily so the loop loads without the engine). */
  runPretrain?: RunPretrain;
  /** The distillation entry; defaults to engine/distill.ts (imported lazily). */
  runDistill?: RunDistill;
  /** The sampling entry; defaults to engine/sampleText.ts (imported lazily). */
  sampleText?: SampleTextFn;
  /** The word check of sampled texts; defaults to engine/sampleText.ts's checkWords. */
  checkWords?: typeof import('../engine/sampling/sampleText.ts').checkWords;
  /** Minimum interval between metrics messages. */
  flushMs?: number;
  /** Metrics buffered beyond this are flushed early, bounding message size whatever the rate. */
  maxBuffered?: number;
  now?: () => number;
  /** Warnings (ignored control messages) go to stderr, where the RunManager keeps a tail. */
  warn?: (line: string) => void;
}

/** One run of a job's engine with the loop's hooks (run again after a checkpointed pause). */
type EngineRun = (hooks: JobHooks) => Promise<TrainResult | DistillResult>;
type Phase = 'idle' | 'running' | 'paused' | 'finished';
type ResumeSignal = 'resume' | 'stop';

export class JobLoop {
  /** Resolves with the exit code the process should end with (0 after `done`, 1 after `error`). */
  readonly finished: Promise<number>;
  private resolveFinished!: (code: number) => void;
  private phase: Phase = 'idle';
  private pauseRequested = false;
  private stopRequested = false;
  private sawBeforeStep = false;
  private wakeFromPause: ((s: ResumeSignal) => void) | null = null;
  private buffer: StepMetric[] = [];
  private lastFlush = -Infinity;
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private total = 0;
  private firstStep = 0;
  private startedAt = 0;
  private lastStep = 0;
  /** The last 'activity' text sent (null: training, or nothing reported). */
  private activity: string | null = null;
  private readonly flushMs: number;
  private readonly maxBuffered: number;
  private readonly now: () => number;
  private readonly warn: (line: string) => void;
  /** Sends are chained so events reach the host in the order they were produced. */
  private sendChain: Promise<void> = Promise.resolve();

  constructor(
    private readonly port: Port,
    private readonly opts: JobLoopOptions = {},
  ) {
    this.flushMs = opts.flushMs ?? 200;
    this.maxBuffered = opts.maxBuffered ?? 1000;
    this.now = opts.now ?? Date.now;
    this.warn = opts.warn ?? ((l) => process.stderr.write(`worker: ${l}\n`));
    this.finished = new Promise((r) => (this.resolveFinished = r));
  }

  /** Wires the port and announces readiness. */
  attach(): void {
    this.port.onMessage((raw) => this.handle(raw));
    this.emit({ type: 'ready' });
  }

  /** Handles one raw control message. Invalid ones are reported on stderr and ignored: the host validates what it
   * sends, so one here is a bug that should not cost a running job. */
  handle(raw: unknown): void {
    const parsed = parseMainToWorker(raw);
    if (!parsed.ok) return this.warn(parsed.error);
    const msg = parsed.message;
    switch (msg.type) {
      case 'start':
        if (this.phase !== 'idle') return this.warn(`ignoring a second 'start' (this worker runs one job)`);
        this.phase = 'running';
        void this.run(msg.job);
        return;
      case 'sample':
        if (this.phase !== 'idle') return this.warn(`ignoring 'sample' (this worker already has a job)`);
        this.phase = 'running';
        void this.sample(msg.request);
        return;
      case 'pause':
        if (this.phase !== 'running') return this.warn(`ignoring 'pause' while ${this.phase}`);
        this.pauseRequested = true;
        return;
      case 'resume':
        if (this.phase === 'paused') return this.wakeFromPause?.('resume');
        if (this.phase === 'running' && this.pauseRequested) {
          // The pause had not taken effect yet: cancel it and confirm, so the host's view is 'running' again.
          this.pauseRequested = false;
          this.emit({ type: 'resumed' });
          return;
        }
        return this.warn(`ignoring 'resume' while ${this.phase}`);
      case 'stop':
        if (this.phase === 'idle') {
          this.phase = 'finished';
          void this.finish({ type: 'done', status: 'stopped', step: 0, reason: 'stopped before it started' }, 0);
          return;
        }
        this.stopRequested = true;
        if (this.phase === 'paused') this.wakeFromPause?.('stop');
        return;
    }
  }

  /** Runs the job's engine until it returns, restarting it after a checkpointed pause; reports done or error. */
  private async run(job: JobSpec): Promise<void> {
    try {
      const runEngine = job.kind === 'distill' ? await this.distillEngine(job) : await this.pretrainEngine(job);
      let announced = false;
      for (;;) {
        const result = await runEngine(
          this.hooks(
            () => announced,
            () => (announced = true),
          ),
        );
        this.flush();
        if (result.status === 'stopped' && this.pauseRequested && !this.stopRequested) {
          // Pause without engine support: the engine checkpointed and returned; wait here, then run it again,
          // which resumes from that checkpoint exactly (same rng, data cursor, optimiser).
          const signal = await this.pauseHere(result.step);
          if (signal === 'resume') continue;
          return this.finish(
            { type: 'done', status: 'stopped', step: result.step, reason: 'stopped by user (while paused)' },
            0,
          );
        }
        return this.finish(
          {
            type: 'done',
            status: result.status,
            step: result.step,
            ...(result.reason ? { reason: result.reason.slice(0, 4000) } : {}),
          },
          0,
        );
      }
    } catch (e) {
      this.flush();
      return this.fail(e instanceof Error ? e : new Error(String(e)));
    }
  }

  /** The sampling job: samples from one checkpoint, answers 'sampled', then 'done'. A 'stop' meanwhile discards the
   * result (sampling is not interruptible; a host that needs the worker gone sooner kills it). */
  private async sample(req: SampleRequest): Promise<void> {
    try {
      const sampleText = this.opts.sampleText ?? (await import('../engine/sampling/sampleText.ts')).sampleText;
      const r = await sampleText(req.checkpoint, {
        steps: req.steps,
        samples: req.samples,
        seed: req.seed,
        prefix: req.prefix,
        topP: req.topP,
      });
      if (this.stopRequested)
        return this.finish({ type: 'done', status: 'stopped', step: 0, reason: 'stopped by user' }, 0);
      let wordCheck: SampleResult['wordCheck'];
      if (req.data) {
        try {
          const check = this.opts.checkWords ?? (await import('../engine/sampling/sampleText.ts')).checkWords;
          wordCheck = check(r.texts, req.data, r.tokenizer);
        } catch (e) {
          // The samples stand on their own: a training text that cannot be read only costs the marking.
          this.warn(`word check skipped: ${(e as Error).message}`);
        }
      }
      await this.emit({
        type: 'sampled',
        result: {
          checkpoint: r.checkpointDir,
          arch: r.arch,
          backend: r.backend,
          device: r.device,
          steps: r.steps,
          topP: r.topP,
          seed: r.seed,
          texts: r.texts,
          ...(wordCheck ? { wordCheck } : {}),
          ...(r.nfe !== undefined ? { nfe: r.nfe } : {}),
          seconds: r.seconds,
        },
      });
      return this.finish({ type: 'done', status: 'done', step: 0 }, 0);
    } catch (e) {
      return this.fail(e instanceof Error ? e : new Error(String(e)));
    }
  }

  /** The pretrain / pretrain-ar job: validates the config and returns one engine run with the given hooks. */
  private async pretrainEngine(job: JobSpec): Promise<EngineRun> {
    const parsed = PretrainConfig.safeParse(job.config);
    if (!parsed.success) throw new Error(describeConfigError(parsed.error, 'job config'));
    const cfg = parsed.data;
    if (cfg.kind !== job.kind) throw new Error(`job kind '${job.kind}' does not match config.kind '${cfg.kind}'`);
    const runPretrain = this.opts.runPretrain ?? (await import('../engine/training/train.ts')).runPretrain;
    const checkpointsDir = runPaths.checkpoints(job.runDir);
    this.total = cfg.steps;
    return (hooks) => runPretrain(cfg, checkpointsDir, hooks);
  }

  /**
   * The 'distill' job: like pretraining, plus 'round' / 'samples' events (the engine writes the files) and
   * 'activity' events for the evaluation phases, which send no metrics for minutes.
   */
  private async distillEngine(job: JobSpec): Promise<EngineRun> {
    const parsed = DistillConfig.safeParse(job.config);
    if (!parsed.success) throw new Error(describeConfigError(parsed.error, 'job config'));
    const cfg = parsed.data;
    const runDistill = this.opts.runDistill ?? (await import('../engine/sdtt/distill.ts')).runDistill;
    return (base) =>
      runDistill(cfg, job.runDir, {
        ...base,
        onStart: (info) => {
          this.total = info.totalSteps;
          base.onStart?.(info);
        },
        onRound: (line) => {
          this.flush();
          this.emit({ type: 'round', round: JSON.parse(JSON.stringify(line)) as Record<string, unknown> });
          this.setActivity(null); // the round's evaluation is over
        },
        onSamples: (round, files) => void this.emit({ type: 'samples', round, files: files.slice(0, 1000) }),
        onEvalProgress: (what) => {
          this.flush(); // the steps logged before the evaluation reach the host first
          this.setActivity(what);
        },
        beforeStep: async (step) => {
          this.setActivity(null); // training again (also before a pause takes hold)
          await base.beforeStep?.(step);
        },
      });
  }

  /** Sends an 'activity' event when it changes (beforeStep runs every step; only the first after an eval sends). */
  private setActivity(text: string | null): void {
    // Engine texts can quote error messages: cut to the protocol's bound rather than fail the run over a long one.
    const next = text === null ? null : text.slice(0, PROTOCOL_LIMITS.maxShortText) || null;
    if (next === this.activity) return;
    this.activity = next;
    this.emit({ type: 'activity', text: next });
  }

  private hooks(announced: () => boolean, markAnnounced: () => void): JobHooks {
    return {
      onStart: (info) => {
        this.firstStep = info.startStep;
        this.lastStep = info.startStep;
        this.startedAt = this.now();
        // A restart after a (checkpointed) pause is the same job continuing; 'started' is sent once.
        if (announced()) return;
        markAnnounced();
        this.emit({
          type: 'started',
          backend: info.backend,
          device: info.device,
          params: info.params,
          startStep: info.startStep,
          ...(info.resumedFrom ? { resumedFrom: info.resumedFrom } : {}),
          trainTokens: info.trainTokens,
          valTokens: info.valTokens,
          ...('totalSteps' in info && typeof info.totalSteps === 'number' ? { totalSteps: info.totalSteps } : {}),
        });
      },
      onStep: (m) => {
        this.lastStep = m.step;
        this.buffer.push({ ...m });
        const now = this.now();
        // Flushing here as well as from a timer matters: a synchronous engine never lets the timer fire mid-run.
        if (now - this.lastFlush >= this.flushMs || this.buffer.length >= this.maxBuffered) this.flush();
        else if (!this.flushTimer)
          this.flushTimer = setTimeout(() => this.flush(), Math.max(0, this.lastFlush + this.flushMs - now));
      },
      onEval: (m) => {
        this.flush(); // keep metrics before the eval that follows them
        this.emit({ type: 'eval', metric: { ...m } });
      },
      onCheckpoint: (step, dir) => {
        this.flush();
        this.emit({ type: 'checkpoint', step, dir });
      },
      // Pause falls back to "stop here" only for engines that never call beforeStep.
      shouldStop: () => this.stopRequested || (this.pauseRequested && !this.sawBeforeStep),
      beforeStep: async (step) => {
        this.sawBeforeStep = true;
        await new Promise<void>((r) => setImmediate(r)); // let queued control messages in
        if (this.pauseRequested && !this.stopRequested) {
          this.flush();
          await this.pauseHere(step);
          // On 'stop' while paused, the engine runs one more step, sees shouldStop and checkpoints.
        }
      },
    };
  }

  private async pauseHere(step: number): Promise<ResumeSignal> {
    this.phase = 'paused';
    this.emit({ type: 'paused', step });
    const signal = await new Promise<ResumeSignal>((r) => (this.wakeFromPause = r));
    this.wakeFromPause = null;
    this.pauseRequested = false;
    this.phase = 'running';
    if (signal === 'resume') {
      this.emit({ type: 'resumed' });
      // The pause should not count against throughput or ETA.
      this.firstStep = step;
      this.startedAt = this.now();
    }
    return signal;
  }

  /** Sends buffered metrics (and the progress they imply) as one message. */
  flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.buffer.length === 0) return;
    const points = this.buffer;
    this.buffer = [];
    this.lastFlush = this.now();
    this.emit({ type: 'metrics', points });
    this.emit({ type: 'progress', step: this.lastStep, total: this.total, etaS: this.eta() });
  }

  private eta(): number | null {
    const done = this.lastStep - this.firstStep;
    if (done <= 0) return null;
    const perStep = (this.now() - this.startedAt) / 1000 / done;
    return Math.max(0, (this.total - this.lastStep) * perStep);
  }

  private emit(msg: WorkerToMain): Promise<void> {
    // A send that fails means the host is gone (handled by onDisconnect / the exit code); swallowing it here keeps
    // the un-awaited emits from turning into unhandled rejections, which would be reported as fatal.
    this.sendChain = this.sendChain.then(() => this.port.send(msg)).catch(() => {});
    return this.sendChain;
  }

  private async finish(msg: WorkerToMain, code: number): Promise<void> {
    this.phase = 'finished';
    await this.emit(msg); // never rejects; if the host is gone the exit code still tells the truth
    this.resolveFinished(code);
  }

  /** Reports a fatal error; the process should then exit with code 1. */
  async fail(err: Error): Promise<void> {
    if (this.phase === 'finished') return;
    this.flush();
    await this.finish(
      {
        type: 'error',
        message: err.message.slice(0, 60_000) || err.name,
        ...(err.stack ? { stack: err.stack.slice(0, 60_000) } : {}),
      },
      1,
    );
  }
}
