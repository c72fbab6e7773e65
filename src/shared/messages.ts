// The worker protocol: one discriminated union per direction, each validated by zod on the receiving side (and,
// for main -> worker, on the sending side too), so a schema drift between main and worker fails loudly at the
// boundary instead of corrupting a run. Also the typed exit reasons of a worker process and their classifier.
import { z } from 'zod';
import type { EvalMetric, StepMetric } from './runState.ts';

/** Bounds that keep one message cheap to validate and store; anything larger is a bug or hostile. */
export const PROTOCOL_LIMITS = {
  /** Whole message, measured as JSON. */
  maxMessageBytes: 1 << 20,
  /** Nesting depth of any message (a run config is ~3 levels deep). */
  maxDepth: 32,
  maxPath: 4096,
  maxShortText: 4096,
  /** error.message / error.stack can legitimately be long (zod issue lists, deep stacks), but not megabytes. */
  maxLongText: 64 * 1024,
  /** Points in one metrics batch (the worker flushes every 200 ms; 10k points would be 50k steps/s). */
  maxPoints: 10_000,
} as const;

// Any JS number, NaN and +-Infinity included: a diverging eval loss is data to show, not a protocol error.
// (The fork channel uses 'advanced' serialization and Electron uses structured clone, so NaN survives transport.)
const AnyNumber = z.custom<number>((v) => typeof v === 'number', { message: 'expected a number' });
const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const ShortText = z.string().max(PROTOCOL_LIMITS.maxShortText);
const LongText = z.string().max(PROTOCOL_LIMITS.maxLongText);
const Path = z.string().min(1).max(PROTOCOL_LIMITS.maxPath);
/** Same rule as RunStore.dir(), so a run id in a message can never escape the runs folder; api.ts uses it too. */
export const RunId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'a run id is 1-128 letters, digits, ".", "_" or "-"');

export const StepMetricSchema = z
  .object({
    step: Count,
    loss: AnyNumber,
    lr: AnyNumber,
    gradNorm: AnyNumber,
    tokPerSec: AnyNumber,
    elapsedS: AnyNumber,
    round: Count.optional(),
  })
  .strict() satisfies z.ZodType<StepMetric>;
export const EvalMetricSchema = z
  .object({ step: Count, valLoss: AnyNumber, valPpl: AnyNumber, elapsedS: AnyNumber })
  .strict() satisfies z.ZodType<EvalMetric>;

export const JOB_KINDS = ['pretrain', 'pretrain-ar', 'distill'] as const;
export const JobKind = z.enum(JOB_KINDS);
export type JobKind = z.infer<typeof JobKind>;

export const JobSpec = z
  .object({
    kind: JobKind,
    runId: RunId,
    runDir: Path,
    /** Validated again by the job with the kind's own schema (PretrainConfig / DistillConfig); here only its shape as data. */
    config: z.record(z.string(), z.unknown()),
  })
  .strict();
export type JobSpec = z.infer<typeof JobSpec>;

/** Nucleus p of a sampler: (0, 1], 1 = the exact distribution. */
export const TopP = z.number().gt(0).max(1);
/** Samples to draw from one checkpoint (a worker job of its own, not a run: nothing is written). */
export const SAMPLE_LIMITS = { maxSteps: 4096, maxSamples: 16, maxPrefixChars: 2000 } as const;
export const SampleRequest = z
  .object({
    checkpoint: Path,
    /** MDLM sampling steps N (an AR checkpoint ignores it). */
    steps: z.number().int().min(1).max(SAMPLE_LIMITS.maxSteps),
    samples: z.number().int().min(1).max(SAMPLE_LIMITS.maxSamples),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1),
    prefix: z.string().max(SAMPLE_LIMITS.maxPrefixChars).optional(),
    /** Nucleus p (default: AR 0.95, MDLM 1 = exact). */
    topP: TopP.optional(),
    /** The model's training text (file or shards): mark the samples' words it never uses. */
    data: Path.optional(),
  })
  .strict();
export type SampleRequest = z.infer<typeof SampleRequest>;
export const SampleResult = z
  .object({
    checkpoint: Path,
    arch: z.enum(['mdlm', 'ar']),
    backend: ShortText,
    device: ShortText,
    steps: Count.nullable(),
    topP: TopP,
    seed: Count,
    texts: z.array(LongText).min(1).max(SAMPLE_LIMITS.maxSamples),
    /** With request.data: per text, the [start, end) spans of its words not in the training text, and the share of
     * the texts' words that are in it (null: no words to judge). */
    wordCheck: z
      .object({
        invented: z.array(z.array(z.tuple([Count, Count]))).max(SAMPLE_LIMITS.maxSamples),
        knownWords: z.number().min(0).max(1).nullable(),
      })
      .strict()
      .optional(),
    nfe: Count.optional(),
    seconds: z.number().min(0),
  })
  .strict();
export type SampleResult = z.infer<typeof SampleResult>;

// ---- main -> worker -------------------------------------------------------------------------------------------
export const MainToWorker = z.discriminatedUnion('type', [
  z.object({ type: z.literal('start'), job: JobSpec }).strict(),
  /** Instead of 'start': draw samples, answer 'sampled' (then 'done'), exit. */
  z.object({ type: z.literal('sample'), request: SampleRequest }).strict(),
  z.object({ type: z.literal('pause') }).strict(),
  z.object({ type: z.literal('resume') }).strict(),
  z.object({ type: z.literal('stop') }).strict(),
]);
export type MainToWorker = z.infer<typeof MainToWorker>;

// ---- worker -> main -------------------------------------------------------------------------------------------
export const DONE_STATUSES = ['done', 'stopped', 'nan'] as const;
export const WorkerToMain = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready') }).strict(),
  z
    .object({
      type: z.literal('started'),
      backend: ShortText,
      device: ShortText,
      params: Count,
      startStep: Count,
      resumedFrom: Path.optional(),
      trainTokens: Count.optional(),
      valTokens: Count.optional(),
      /** The job's exact total (distill: known once the teacher's seqLen is). */
      totalSteps: Count.optional(),
    })
    .strict(),
  z
    .object({ type: z.literal('metrics'), points: z.array(StepMetricSchema).min(1).max(PROTOCOL_LIMITS.maxPoints) })
    .strict(),
  z.object({ type: z.literal('eval'), metric: EvalMetricSchema }).strict(),
  z.object({ type: z.literal('checkpoint'), step: Count, dir: Path }).strict(),
  /** etaS is null until a step has been timed. */
  z.object({ type: z.literal('progress'), step: Count, total: Count, etaS: z.number().min(0).nullable() }).strict(),
  z.object({ type: z.literal('paused'), step: Count.optional() }).strict(),
  z.object({ type: z.literal('resumed') }).strict(),
  z
    .object({ type: z.literal('done'), status: z.enum(DONE_STATUSES), step: Count, reason: ShortText.optional() })
    .strict(),
  z.object({ type: z.literal('error'), message: LongText, stack: LongText.optional() }).strict(),
  /** distill: a round finished; `round` is its line of the rounds file (already written to the run folder by the engine). */
  z.object({ type: z.literal('round'), round: z.record(z.string(), z.unknown()) }).strict(),
  /** distill: samples/<round>-<steps>.json files were (re)written (round −1 = the teacher). */
  z.object({ type: z.literal('samples'), round: z.number().int().min(-1), files: z.array(Path).max(1000) }).strict(),
  /**
   * distill: what a long non-training phase (the per-round evaluation) is doing now, e.g. "round 0: self-BLEU", so a
   * UI can show progress where no metrics flow for minutes; null once training steps run again.
   */
  z.object({ type: z.literal('activity'), text: ShortText.min(1).nullable() }).strict(),
  /** The answer to 'sample'. */
  z.object({ type: z.literal('sampled'), result: SampleResult }).strict(),
]);
export type WorkerToMain = z.infer<typeof WorkerToMain>;
export type WorkerEventOf<T extends WorkerToMain['type']> = Extract<WorkerToMain, { type: T }>;

const MAIN_TO_WORKER_TYPES = ['start', 'sample', 'pause', 'resume', 'stop'];
const WORKER_TO_MAIN_TYPES = [
  'ready',
  'started',
  'metrics',
  'eval',
  'checkpoint',
  'progress',
  'paused',
  'resumed',
  'done',
  'error',
  'round',
  'samples',
  'activity',
  'sampled',
];

export type ParseResult<T> = { ok: true; message: T } | { ok: false; error: string };

export function parseMainToWorker(raw: unknown): ParseResult<MainToWorker> {
  return parseWith(MainToWorker, MAIN_TO_WORKER_TYPES, raw, 'main->worker');
}

export function parseWorkerToMain(raw: unknown): ParseResult<WorkerToMain> {
  return parseWith(WorkerToMain, WORKER_TO_MAIN_TYPES, raw, 'worker->main');
}

function parseWith<T>(schema: z.ZodType<T>, types: string[], raw: unknown, dir: string): ParseResult<T> {
  if (raw === null || typeof raw !== 'object')
    return {
      ok: false,
      error: `${dir} message rejected: expected an object with a "type", got ${raw === null ? 'null' : typeof raw}`,
    };
  const shape = checkPlainData(raw);
  if (shape) return { ok: false, error: `${dir} message rejected: ${shape}` };
  let size: number;
  try {
    size = JSON.stringify(raw).length;
  } catch (e) {
    return { ok: false, error: `${dir} message rejected: not serialisable (${(e as Error).message})` };
  }
  if (size > PROTOCOL_LIMITS.maxMessageBytes)
    return {
      ok: false,
      error: `${dir} message rejected: ${size} bytes exceeds the ${PROTOCOL_LIMITS.maxMessageBytes}-byte limit`,
    };
  const type = (raw as { type?: unknown }).type;
  // A clearer error than zod's generic "invalid discriminator" for the most common drift: a new message type.
  if (typeof type !== 'string' || !types.includes(type)) {
    return {
      ok: false,
      error: `${dir} message rejected: unknown type ${JSON.stringify(typeof type === 'string' ? type.slice(0, 64) : type)}; expected one of ${types.join(', ')}`,
    };
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues
      .slice(0, 8)
      .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
    return { ok: false, error: `${dir} '${type}' message rejected: ${issues.join('; ')}` };
  }
  return { ok: true, message: r.data };
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Messages must be plain data: objects with Object.prototype (or null) prototypes, arrays and primitives, with no
 * prototype-pollution keys and bounded depth. zod's record() would copy a "__proto__" key onto the result, so this
 * runs before the schema. Returns an error text, or undefined when the value is acceptable.
 */
export function checkPlainData(v: unknown, depth = 0, path = ''): string | undefined {
  if (depth > PROTOCOL_LIMITS.maxDepth)
    return `nested deeper than ${PROTOCOL_LIMITS.maxDepth} levels at ${path || '(root)'}`;
  if (v === null || typeof v !== 'object') {
    if (typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint')
      return `${path || '(root)'}: ${typeof v} is not plain data`;
    return undefined;
  }
  if (depth === 0 && Array.isArray(v)) return 'expected an object with a "type", got an array';
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const e = checkPlainData(v[i], depth + 1, `${path}[${i}]`);
      if (e) return e;
    }
    return undefined;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return `${path || '(root)'}: not a plain object`;
  for (const k of Object.keys(v)) {
    if (FORBIDDEN_KEYS.has(k)) return `forbidden key "${k}" at ${path || '(root)'}`;
    const e = checkPlainData((v as Record<string, unknown>)[k], depth + 1, path ? `${path}.${k}` : k);
    if (e) return e;
  }
  return undefined;
}

// ---- exit reasons -------------------------------------------------------------------------------------------
export const EXIT_REASONS = ['clean', 'crashed', 'killed', 'out-of-memory', 'launch-failed'] as const;
export type ExitReason = (typeof EXIT_REASONS)[number];

const OOM_PATTERNS = [
  /JavaScript heap out of memory/i,
  /Reached heap limit/i,
  /Allocation failed - /i,
  /\bout of memory\b/i,
  /ERR_WORKER_OUT_OF_MEMORY/,
];
const KILL_SIGNALS = new Set(['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT']);

/**
 * Classifies how a worker process ended. `launched` is false when the worker never said 'ready' (its module
 * failed to load, tsx was missing, ...); leave it out when unknown. Order matters: an OOM abort is also a
 * SIGABRT/134, and a kill before 'ready' is still a kill.
 */
export function classifyExit(
  code: number | null,
  signal: string | null,
  stderrTail = '',
  opts: { launched?: boolean } = {},
): ExitReason {
  if (OOM_PATTERNS.some((p) => p.test(stderrTail))) return 'out-of-memory';
  // V8 aborts the process on heap exhaustion: SIGABRT, which shells and Electron report as exit code 134.
  if (code === 134 || signal === 'SIGABRT') return 'out-of-memory';
  if ((signal && KILL_SIGNALS.has(signal)) || code === 137 || code === 143) return 'killed';
  if (opts.launched === false) return 'launch-failed';
  if (code === 0 && !signal) return 'clean';
  return 'crashed';
}

/** One line for run.json's `reason`, starting with the exit reason so the UI and tests can key on it. */
export function describeExit(reason: ExitReason, code: number | null, signal: string | null, stderrTail = ''): string {
  const how = signal ? `signal ${signal}` : `exit code ${code}`;
  const last = lastLine(stderrTail);
  const tail = last ? `; last output: ${last}` : '';
  switch (reason) {
    case 'clean':
      return `clean: the worker exited (${how}) without reporting a result`;
    case 'killed':
      return `killed: the worker was killed (${how}); resume continues from the last checkpoint`;
    case 'out-of-memory':
      return `out-of-memory: the worker ran out of memory (${how}); try a smaller batch or model, then resume${tail}`;
    case 'launch-failed':
      return `launch-failed: the worker did not start (${how})${tail}`;
    case 'crashed':
      return `crashed: the worker crashed (${how})${tail}`;
  }
}

/** The line of a process's output that best says why it ended (the error line, else the last one), cut to 300 characters. */
export function lastLine(text: string): string {
  // The last line of a Node crash is usually a stack frame; the line naming the error is more useful.
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const errLine = [...lines].reverse().find((x) => /error|exception|fatal/i.test(x) && !x.startsWith('at '));
  const l = errLine ?? lines[lines.length - 1] ?? '';
  return l.length > 300 ? `${l.slice(0, 300)}...` : l;
}
