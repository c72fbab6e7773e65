// The typed API the renderer talks to: exposed by the preload as `window.sdtt` (Electron IPC) and by `sdtt serve`
// over a WebSocket (browser mode). Both hosts validate every request with these schemas before acting, and both
// answer with the same shapes, so the renderer cannot tell them apart.
import { z } from 'zod';
import { PretrainConfig } from './config.ts';
import { DistillConfig } from './distillConfig.ts';
import type { RunRecord } from './runState.ts';
import { RunId, SAMPLE_LIMITS, TopP, type SampleResult } from './messages.ts';

/** Upper bound on any one request, in bytes of JSON: a hostile or buggy caller cannot make a host parse megabytes. */
export const MAX_REQUEST_BYTES = 256 * 1024;

const FolderPath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => !p.includes('\0'), 'path contains a NUL byte');
/** Element type of exported weights: f16 halves the file (round-to-nearest-even; the loaders widen it back). */
export const ExportDtype = z.enum(['f32', 'f16']);
export type ExportDtype = z.infer<typeof ExportDtype>;
/** Layout of an export: the workbench's own, or the official MDLM one (HF mdlm-owt names and config, float32). */
export const ExportFormat = z.enum(['workbench', 'official']);
export type ExportFormat = z.infer<typeof ExportFormat>;

/** Request schemas, one per method; the method names double as the IPC channel allow-list. */
export const ApiRequests = {
  getInfo: z.object({}).strict(),
  listRuns: z.object({}).strict(),
  getRun: z.object({ id: RunId }).strict(),
  /** Metric points from index `from` on (incremental loading of long runs). */
  getMetrics: z.object({ id: RunId, from: z.number().int().min(0).default(0) }).strict(),
  createRun: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('distill'), id: RunId.optional(), config: DistillConfig }).strict(),
    z.object({ kind: z.literal('pretrain'), id: RunId.optional(), config: PretrainConfig }).strict(),
  ]),
  controlRun: z.object({ id: RunId, action: z.enum(['start', 'pause', 'resume', 'stop']) }).strict(),
  /** Deletes a run's folder (checkpoints, rounds, samples, metrics); refused ('conflict') while a process runs it. */
  deleteRun: z.object({ id: RunId }).strict(),
  listModels: z.object({}).strict(),
  getSamples: z.object({ id: RunId }).strict(),
  exportRound: z
    .object({
      id: RunId,
      round: z.number().int().min(-1).max(64),
      folder: FolderPath,
      dtype: ExportDtype.optional(),
      format: ExportFormat.optional(),
    })
    .strict(),
  /** Fresh samples from a run's model (round −1: a pretraining run's latest checkpoint, or a distillation's teacher). */
  sampleModel: z
    .object({
      id: RunId,
      round: z.number().int().min(-1).max(64),
      steps: z.number().int().min(1).max(SAMPLE_LIMITS.maxSteps),
      samples: z.number().int().min(1).max(SAMPLE_LIMITS.maxSamples),
      seed: z
        .number()
        .int()
        .min(0)
        .max(2 ** 31 - 1),
      prefix: z.string().max(SAMPLE_LIMITS.maxPrefixChars).optional(),
      topP: TopP.optional(),
    })
    .strict(),
  /**
   * What a model folder (or run folder, or official checkpoint) is, from its config.json and at most a safetensors
   * header, with the cost of one distillation step at `batchSize` (DistillConfig's bounds); never reads the weights.
   */
  inspectModel: z.object({ path: FolderPath, batchSize: z.number().int().min(1).max(4096) }).strict(),
  /**
   * One folder's subfolders, models and PyTorch files, for the new-run form's "Browse…" (a native dialog cannot hand
   * a path to a browser tab); no path = the workspace. Read policy as inspectModel; never reads weights.
   */
  browseFolder: z.object({ path: FolderPath.optional() }).strict(),
} as const;

export type ApiMethod = keyof typeof ApiRequests;
export const API_METHODS = Object.keys(ApiRequests) as ApiMethod[];
export type ApiRequest<M extends ApiMethod> = z.input<(typeof ApiRequests)[M]>;

export interface AppInfo {
  version: string;
  workspace: string;
  host: 'electron' | 'browser';
  /** Backend the next job will get with 'auto', and its device, e.g. "wasm" / "CPU (wasm, SIMD, 1 thread)". */
  backend: string;
  device: string;
}

export interface ModelInfo {
  id: string;
  label: string;
  path: string;
  arch: 'mdlm' | 'ar';
  params: number;
  source: 'shipped' | 'run';
}

/** How a model folder is laid out: ours, or one of the official MDLM / SDTT layouts (engine/io/officialCheckpoint.ts). */
export type ModelLayout = 'workbench' | 'hf-mdlm' | 'sdtt-branch' | 'torch-file';

/** The cost of one distillation step with a model as the teacher (and its copy as the student); an estimate. */
export interface DistillStepEstimate {
  batchSize: number;
  /** Floating-point operations of the step: the student's forward and backward, the teacher's two forwards. */
  flops: number;
  /** Host memory at the step's peak, in bytes, and what it is made of. */
  peakBytes: number;
  memory: { weights: number; activations: number; targets: number };
  /** This machine's measured matmul rate (`sdtt backend`), GFLOP/s; null when it was not measured. */
  gflops: number | null;
  /** `flops` at that rate (a lower bound: a real step is slower); null without a rate. */
  secondsPerStep: number | null;
}

export interface ModelSummary {
  /** The path as checked (absolute) and the folder or file actually read (a run folder's latest checkpoint). */
  path: string;
  checkpoint: string;
  layout: ModelLayout;
  arch: 'mdlm' | 'ar';
  /** Parameters as the workbench trains them (an official model's adaLN and sigma_map fold away on import). */
  params: number;
  vocabSize: number;
  seqLen: number;
  dModel: number;
  nLayers: number;
  nHeads: number;
  /** Tokenizer kind ('byte', 'compact-gpt2', 'gpt2'), or null when none is recorded and none fits by size. */
  tokenizer: string | null;
  /** Why the model cannot be a distillation teacher as it is (empty when nothing stands in the way). */
  problems: string[];
  estimate: DistillStepEstimate;
}

/** A browseFolder entry: a workbench model (checkpoint or run folder), an official MDLM / SDTT checkpoint (a folder
 * or a .ckpt / .pt / .pth / .bin file), or a folder to open. */
export type FolderEntryKind = 'model' | 'official' | 'folder';

export interface FolderEntry {
  name: string;
  /** Absolute, under the listed folder's path as named (not its real path), ready for inspectModel or createRun. */
  path: string;
  kind: FolderEntryKind;
}

export interface FolderListing {
  /** The folder listed, absolute. */
  path: string;
  /** Its parent, or null at the top of what this host may read (a policy folder, the filesystem root). */
  parent: string | null;
  /** Where browsing can start: the workspace, the --allow folders, the shipped models (those this host may read). */
  roots: { label: string; path: string }[];
  /** Models (workbench and official) first, then folders, each by name; hidden entries and plain files left out. */
  entries: FolderEntry[];
  /** The folder holds more than the entries returned (at most 500, the first by name). */
  truncated: boolean;
}

export interface MetricPoint {
  type: 'train' | 'eval';
  step: number;
  [key: string]: unknown;
}

/** A model sampled at `steps` steps and scored (same shape as `sdtt eval` results): gen_ppl / gen_ppl_se are null
 * without a judge; known_words (share of the samples' words found in the training text) is null or absent when
 * not computed. */
export interface EvalSummaryRow {
  steps: number;
  gen_ppl: number | null;
  gen_ppl_se: number | null;
  entropy: number;
  known_words?: number | null;
}

export interface RoundSummary {
  round: number;
  teacherSteps: number;
  studentSteps: number;
  label: string;
  status: 'pending' | 'running' | 'done';
  /** First / last optimiser step of the round as completed-step counts (1-based, like MetricPoint.step). */
  firstStep: number;
  lastStep: number;
  /** Evaluation rows of the student after the round, one per sampling step count. */
  eval?: EvalSummaryRow[];
  /** Held-out NELBO of the student after the round (nats/token), when the engine computed it. */
  heldoutNelbo?: number;
}

export interface SampleCell {
  /** -1 = the teacher, r = the student after round r. */
  round: number;
  steps: number;
  seed: number;
  text: string;
  /** Generative perplexity under the judge; null when the run has no judge. */
  genPpl: number | null;
  entropy: number;
  latencyMs: number;
  /** [start, end) UTF-16 spans of `text`'s words that occur nowhere in the training text (invented words); absent
   * when not checked. */
  inventedWords?: [number, number][];
  /** Token ids per sampling step (for the unmasking replay), MASK included; optional to keep payloads small. */
  trajectory?: number[][];
  tokenTexts?: string[];
}

export interface RunDetail {
  record: RunRecord;
  rounds: RoundSummary[];
  /** A distillation's original teacher evaluated like the students (round −1), once the run has computed it. */
  teacherEval?: EvalSummaryRow[];
  metricsCount: number;
  /** A live distillation's current evaluation step (the latest 'activity' event), absent while it trains. */
  activity?: string;
}

export type RunEvent =
  | { type: 'status'; record: RunRecord }
  | { type: 'metrics'; runId: string; points: MetricPoint[] }
  | { type: 'round'; runId: string; round: RoundSummary }
  | { type: 'samples'; runId: string }
  /** A run (re)started from its checkpoint at `fromStep`: metrics logged after it were dropped and will be redone. */
  | { type: 'restarted'; runId: string; fromStep: number }
  /** What a distillation's evaluation is doing now ("round 0: self-BLEU"); null once training steps resume. */
  | { type: 'activity'; runId: string; text: string | null }
  /** The run was deleted (deleteRun, from any client): drop it and its metrics. */
  | { type: 'deleted'; runId: string };

export interface ApiResponses {
  getInfo: AppInfo;
  listRuns: RunRecord[];
  getRun: RunDetail;
  getMetrics: { points: MetricPoint[]; next: number };
  createRun: RunRecord;
  controlRun: RunRecord;
  /** The deleted folder, and how many files / bytes went with it. */
  deleteRun: { id: string; folder: string; files: number; bytes: number };
  listModels: ModelInfo[];
  getSamples: SampleCell[];
  exportRound: { folder: string; files: string[] };
  sampleModel: SampleResult;
  inspectModel: ModelSummary;
  browseFolder: FolderListing;
}

/** What the renderer sees as `window.sdtt` (and what the WebSocket client implements). */
export type SdttApi = {
  [M in ApiMethod]: (req: ApiRequest<M>) => Promise<ApiResponses[M]>;
} & {
  /** Live events; returns the unsubscribe function. */
  subscribe(listener: (e: RunEvent) => void): () => void;
};

export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: 'invalid-request' | 'not-found' | 'conflict' | 'internal' = 'internal',
  ) {
    super(message);
  }
}

/** Validates a request for `method`, throwing an ApiError that names the method and each bad field. */
export function parseApiRequest<M extends ApiMethod>(
  method: string,
  payload: unknown,
): { method: M; req: z.output<(typeof ApiRequests)[M]> } {
  if (!Object.hasOwn(ApiRequests, method))
    throw new ApiError(`unknown method "${String(method).slice(0, 64)}"`, 'invalid-request');
  const size = JSON.stringify(payload ?? {}).length;
  if (size > MAX_REQUEST_BYTES)
    throw new ApiError(
      `${method}: request of ${size} bytes exceeds the ${MAX_REQUEST_BYTES}-byte limit`,
      'invalid-request',
    );
  const parsed = ApiRequests[method as M].safeParse(payload ?? {});
  if (!parsed.success) {
    throw new ApiError(
      `${method}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(request)'}: ${i.message}`).join('; ')}`,
      'invalid-request',
    );
  }
  return { method: method as M, req: parsed.data as z.output<(typeof ApiRequests)[M]> };
}

/** Browser mode wire format (one JSON text frame each way). The token travels in the WebSocket URL (?token=). */
export type WsClientMessage = { id: number; method: ApiMethod; params: unknown };
export type WsServerMessage =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { message: string; code: ApiError['code'] } }
  | { event: RunEvent };

/** Path of the WebSocket endpoint served by `sdtt serve`. */
export const WS_PATH = '/api';
