// Fast inference through onnxruntime-node (its CPU, WebGPU or CUDA execution provider: executionProvider.ts) on the ONNX graphs built in memory by graph.ts.
// onnxruntime-node is an OPTIONAL dependency: loadOnnxRuntime() returns { ort: null, reason } when it is missing or
// fails to load, and callers fall back to the tfjs model (createInferenceModel in inference.ts).
//
//   const rt = await loadOnnxRuntime();
//   const model = rt.ort ? await createOnnxModel(cfg, params, { threads: 2 }) : createInferenceModel(cfg, params);
//
// The model implements Denoiser (arch 'mdlm') and ArModel (arch 'ar', with a real KV cache: the graph takes
// past_key/value.{i} and returns present_key/value.{i}; a session feeds each call's present tensors back as past).
import type { ModelConfig } from '../../shared/config.ts';
import type { ArModel, ArSession, Denoiser, LogitRows } from '../types.ts';
import { positionRange, rowChunk } from '../model/logitRows.ts';
import { epDevice, executionProviders, EP_LABEL, type EpChoice } from './executionProvider.ts';
import { encodeModel } from './protobuf.ts';
import {
  ONNX_INPUT_TOKENS,
  ONNX_OUTPUT_HIDDEN,
  ONNX_OUTPUT_LOGITS,
  buildHeadModel,
  onnxModelBytes,
  pastKeyName,
  pastValueName,
  presentKeyName,
  presentValueName,
  type OnnxGraphOptions,
} from './graph.ts';

// The slice of the onnxruntime-node API used here, declared locally so this file type-checks (and the app runs)
// without the optional package installed.
export interface OrtTensor {
  readonly dims: readonly number[];
  readonly type: string;
  readonly data: unknown;
  dispose?(): void;
}
export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
export interface OrtSessionOptions {
  executionProviders?: string[];
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'layout' | 'all';
  executionMode?: 'sequential' | 'parallel';
  enableCpuMemArena?: boolean;
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /** Session config entries, nested by dots: { session: { intra_op: { allow_spinning: '0' } } }. */
  extra?: Record<string, unknown>;
}
export interface OrtModule {
  InferenceSession: { create(model: Uint8Array, options?: OrtSessionOptions): Promise<OrtSession> };
  Tensor: new (
    type: 'float32' | 'int32' | 'int64',
    data: Float32Array | Int32Array | BigInt64Array,
    dims: readonly number[],
  ) => OrtTensor;
  env: { versions?: Record<string, string> };
}

export type OnnxRuntimeLoad =
  { ort: OrtModule; version: string; reason?: undefined } | { ort: null; version?: undefined; reason: string };

let cached: Promise<OnnxRuntimeLoad> | null = null;

// Imported through a variable so TypeScript and bundlers do not require the optional package.
const ORT_PACKAGE = 'onnxruntime-node';

/** Loads onnxruntime-node once per process/thread. Never throws: { ort: null, reason } when it is unavailable. */
export function loadOnnxRuntime(): Promise<OnnxRuntimeLoad> {
  cached ??= (async (): Promise<OnnxRuntimeLoad> => {
    try {
      const modAny = (await import(ORT_PACKAGE)) as { default?: unknown } & Record<string, unknown>;
      const mod = (modAny.InferenceSession ? modAny : modAny.default) as OrtModule | undefined;
      if (!mod || typeof mod.InferenceSession?.create !== 'function' || typeof mod.Tensor !== 'function') {
        return { ort: null, reason: `${ORT_PACKAGE} loaded but does not export InferenceSession/Tensor` };
      }
      return { ort: mod, version: mod.env?.versions?.node ?? mod.env?.versions?.common ?? 'unknown' };
    } catch (e) {
      const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
      return { ort: null, reason: `${ORT_PACKAGE} could not be loaded (${msg})` };
    }
  })();
  return cached;
}

/** Opset of the graph createOnnxModel builds unless told otherwise. */
export const RUNTIME_OPSET = 20;

export interface OnnxModelOptions extends OnnxGraphOptions {
  /** Intra-op threads of the CPU execution provider (default: onnxruntime's choice, all cores). */
  threads?: number;
  /**
   * Let idle intra-op threads spin-wait (onnxruntime's default, true). Fastest on an otherwise idle machine; when
   * other processes compete for the cores (training next to sampling), false is faster (measured on 2 loaded cores:
   * 275 vs 377 ms per bench-5m forward).
   */
  spinning?: boolean;
  /** Execution provider and adapter (executionProvider.ts chooseEp); default the CPU EP. */
  choice?: EpChoice;
}

const CPU_EP: EpChoice = { ep: 'cpu', adapter: null };

/**
 * What every session of ours (inference and training) starts from. No CPU memory arena: an arena keeps its
 * session's largest run for good and is not shared, so a distillation step (teacher transformer and head, the
 * training step's 'logits' and 'backprop' graphs) held every session's peak at once: 11.2 GB at the official size
 * (162 M parameters, batch 8 x 1024 tokens) against 7.3 GB with plain allocations, the same numbers.
 */
export const SESSION_OPTIONS: Readonly<OrtSessionOptions> = {
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
  interOpNumThreads: 1,
  enableCpuMemArena: false,
  logSeverityLevel: 3,
};

/** Opens a session on `choice`'s EP; a GPU EP that cannot take the graph fails naming the EP and the adapter. */
export async function createSessionOn(
  ort: OrtModule,
  bytes: Uint8Array,
  so: OrtSessionOptions,
  choice: EpChoice,
): Promise<OrtSession> {
  try {
    return await ort.InferenceSession.create(bytes, { ...so, executionProviders: executionProviders(choice.ep) });
  } catch (e) {
    if (choice.ep === 'cpu') throw e;
    const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new Error(`onnxruntime's ${EP_LABEL[choice.ep]} could not open the model: ${msg}`);
  }
}

export interface OnnxModel extends Denoiser, ArModel {
  readonly config: ModelConfig;
  /** Human-readable runtime, e.g. "onnxruntime-node 1.30.0 (CPU EP, 2 threads)". */
  readonly device: string;
  /** mdlm: logits(tokens [B, seqLen], B); ar: full-recompute causal logits(tokens [B, len], B, len). [B, len, V] */
  logits(tokens: Int32Array, batch: number, len?: number): Promise<Float32Array>;
  /** The same logits by row: the transformer runs once (in chunks of sequences), the head per chunk of rows read. */
  forward(tokens: Int32Array, batch: number, len?: number): Promise<LogitRows>;
  dispose(): Promise<void>;
}

/** Tokens per transformer run of forward(): onnxruntime's arena keeps the largest run's activations (attention is
 * [sequences, heads, L, L]), so a batch of long sequences runs in chunks whose hidden states are then gathered. */
const FORWARD_CHUNK_TOKENS = 2048;

/**
 * Builds the ONNX graphs for `cfg` + `params` in memory and opens onnxruntime sessions on them (opts.choice's EP):
 * the transformer up to the head's input (graph.ts output 'hidden') and the head alone (buildHeadModel), so that
 * the head computes only the rows a caller reads and [batch, len, V] logits need never exist.
 * Throws when onnxruntime-node is unavailable (check loadOnnxRuntime() first to fall back).
 */
export async function createOnnxModel(
  cfg: ModelConfig,
  params: Float32Array,
  opts: OnnxModelOptions = {},
): Promise<OnnxModel> {
  const rt = await loadOnnxRuntime();
  if (!rt.ort) throw new Error(`ONNX runtime unavailable: ${rt.reason}`);
  const ort = rt.ort;
  // Opset 20 by default here: its Gelu op (approximate = tanh) replaces 7 elementwise nodes per block (measured
  // ~5% faster on bench-5m); exportOnnx keeps opset 17 for the widest compatibility.
  const opset = opts.opset ?? RUNTIME_OPSET;
  const choice = opts.choice ?? CPU_EP;
  const so: OrtSessionOptions = { ...SESSION_OPTIONS };
  if (opts.spinning === false) so.extra = { session: { intra_op: { allow_spinning: '0' } } };
  if (opts.threads !== undefined) {
    if (!(Number.isInteger(opts.threads) && opts.threads >= 1))
      throw new Error(`threads must be a positive integer, got ${opts.threads}`);
    so.intraOpNumThreads = opts.threads;
  }
  // The serialized graphs are dropped once their session holds the weights (a second copy of them otherwise).
  const session = await createSessionOn(ort, onnxModelBytes(cfg, params, { opset, output: 'hidden' }), so, choice);
  const head = await createSessionOn(ort, encodeModel(buildHeadModel(cfg, params, { opset })), so, choice);
  const causal = cfg.arch === 'ar';
  const { vocabSize: V, seqLen: S, nLayers, nHeads: H, dModel: d } = cfg;
  const hd = d / H;
  const rowsPerHeadRun = rowChunk(V);
  let disposed = false;
  // One graph run at a time: concurrent runs would only fight over the same intra-op threads, and a KV session
  // must see its previous step finished before it feeds the present tensors back.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <R>(f: () => Promise<R>): Promise<R> => {
    const r = queue.then(f, f);
    queue = r.catch(() => undefined);
    return r;
  };

  const checkTokens = (tokens: Int32Array, B: number, len: number) => {
    if (disposed) throw new Error('ONNX model used after dispose()');
    if (!(Number.isInteger(B) && B >= 1)) throw new Error(`batch must be a positive integer, got ${B}`);
    if (!(Number.isInteger(len) && len >= 1)) throw new Error(`length must be a positive integer, got ${len}`);
    if (tokens.length !== B * len) throw new Error(`expected ${B} x ${len} = ${B * len} tokens, got ${tokens.length}`);
    for (let n = 0; n < tokens.length; n++) {
      const id = tokens[n];
      if (!(id >= 0 && id < V)) throw new Error(`token id ${id} at position ${n} is outside the vocabulary [0, ${V})`);
    }
  };
  const checkLength = (len: number) => {
    if (!causal && len !== S) throw new Error(`the denoiser takes sequences of exactly ${S} tokens, got ${len}`);
    if (len > S) throw new Error(`sequence length ${len} exceeds the model's seqLen ${S}`);
  };

  const emptyPast = (B: number): OrtTensor => new ort.Tensor('float32', new Float32Array(0), [B, H, 0, hd]);

  /** One run of the transformer: hidden [B·len, d]; for 'ar', `past` holds 2 * nLayers tensors (k, v per layer) or
   * null for none, and the present tensors come back. */
  const trunk = async (
    tokens: Int32Array,
    B: number,
    len: number,
    past: OrtTensor[] | null,
  ): Promise<{ hidden: OrtTensor; present: OrtTensor[] }> => {
    const feeds: Record<string, OrtTensor> = { [ONNX_INPUT_TOKENS]: new ort.Tensor('int32', tokens, [B, len]) };
    if (causal) {
      for (let i = 0; i < nLayers; i++) {
        feeds[pastKeyName(i)] = past ? past[2 * i] : emptyPast(B);
        feeds[pastValueName(i)] = past ? past[2 * i + 1] : emptyPast(B);
      }
    }
    const out = await session.run(feeds);
    const hidden = out[ONNX_OUTPUT_HIDDEN];
    if (!(hidden.data instanceof Float32Array) || hidden.data.length !== B * len * d)
      throw new Error(`ONNX hidden: unexpected output ${hidden.type} [${hidden.dims}]`);
    const present: OrtTensor[] = [];
    if (causal) for (let i = 0; i < nLayers; i++) present.push(out[presentKeyName(i)], out[presentValueName(i)]);
    return { hidden, present };
  };

  /** Visits the logits of hidden's rows `rows`, computing them rowsPerHeadRun at a time. */
  const headRows = async (
    hidden: Float32Array,
    rows: ArrayLike<number>,
    visit: (k: number, logits: Float32Array, offset: number) => void,
  ): Promise<void> => {
    if (disposed) throw new Error('ONNX model used after dispose()');
    const positions = hidden.length / d;
    const gathered = new Float32Array(Math.min(rowsPerHeadRun, rows.length) * d);
    for (let k0 = 0; k0 < rows.length; k0 += rowsPerHeadRun) {
      const n = Math.min(rowsPerHeadRun, rows.length - k0);
      for (let k = 0; k < n; k++) {
        const p = rows[k0 + k];
        if (!(Number.isInteger(p) && p >= 0 && p < positions))
          throw new Error(`logit row ${p} outside [0, ${positions})`);
        gathered.set(hidden.subarray(p * d, (p + 1) * d), k * d);
      }
      const input = new ort.Tensor('float32', gathered.subarray(0, n * d), [n, d]);
      const out = await serial(() => head.run({ [ONNX_OUTPUT_HIDDEN]: input }));
      const logits = out[ONNX_OUTPUT_LOGITS].data as Float32Array;
      for (let k = 0; k < n; k++) visit(k0 + k, logits, k * V);
      out[ONNX_OUTPUT_LOGITS].dispose?.();
    }
  };

  const forward = async (tokens: Int32Array, batch: number, len: number): Promise<LogitRows> => {
    checkLength(len);
    checkTokens(tokens, batch, len);
    const per = Math.max(1, Math.floor(FORWARD_CHUNK_TOKENS / len));
    let hidden: Float32Array | null = new Float32Array(batch * len * d);
    for (let b0 = 0; b0 < batch; b0 += per) {
      const n = Math.min(per, batch - b0);
      const out = await serial(() => trunk(tokens.subarray(b0 * len, (b0 + n) * len), n, len, null));
      hidden.set(out.hidden.data as Float32Array, b0 * len * d);
      for (const t of [out.hidden, ...out.present]) t.dispose?.();
    }
    return {
      positions: batch * len,
      vocab: V,
      async forEachRow(rows, visit) {
        if (!hidden) throw new Error('logit rows read after dispose()');
        await headRows(hidden, rows, visit);
      },
      dispose() {
        hidden = null;
      },
    };
  };

  const cpuDetail = `${opts.threads ?? 'default'} threads${opts.spinning === false ? ', no spinning' : ''}, `;
  const device = epDevice(rt.version, choice, `${choice.ep === 'cpu' ? cpuDetail : ''}opset ${opset}`);

  return {
    config: cfg,
    device,
    vocabSize: V,
    seqLen: S,
    maskId: cfg.maskId,
    eosId: cfg.eosId,
    forward(tokens: Int32Array, batch: number, len?: number): Promise<LogitRows> {
      return forward(tokens, batch, len ?? tokens.length / batch);
    },
    async logits(tokens: Int32Array, batch: number, len?: number): Promise<Float32Array> {
      const rows = await forward(tokens, batch, len ?? tokens.length / batch);
      const out = new Float32Array(rows.positions * V);
      await rows.forEachRow(positionRange(0, rows.positions), (k, logits, offset) =>
        out.set(logits.subarray(offset, offset + V), k * V),
      );
      rows.dispose();
      return out;
    },
    session(batch: number): ArSession {
      if (!causal) throw new Error('session() needs a causal (arch "ar") model');
      if (!(Number.isInteger(batch) && batch >= 1)) throw new Error(`batch must be a positive integer, got ${batch}`);
      let past: OrtTensor[] | null = null;
      let length = 0;
      let closed = false;
      return {
        get length() {
          return length;
        },
        async append(tokens: Int32Array, len: number): Promise<Float32Array> {
          const r = await serial(async () => {
            if (closed) throw new Error('AR session used after dispose()');
            if (length + len > S) throw new Error(`sequence length ${length + len} exceeds the model's seqLen ${S}`);
            checkTokens(tokens, batch, len);
            const r = await trunk(tokens, batch, len, past);
            if (past) for (const t of past) t.dispose?.();
            past = r.present;
            length += len;
            return r.hidden;
          });
          // logits of the last new position per sequence: [batch, V]
          const out = new Float32Array(batch * V);
          const last = Int32Array.from({ length: batch }, (_, b) => b * len + len - 1);
          await headRows(r.data as Float32Array, last, (k, logits, offset) =>
            out.set(logits.subarray(offset, offset + V), k * V),
          );
          r.dispose?.();
          return out;
        },
        dispose() {
          closed = true;
          if (past) for (const t of past) t.dispose?.();
          past = null;
        },
      };
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await queue.catch(() => undefined);
      await session.release();
      await head.release();
    },
  };
}
