// Fast inference through onnxruntime-node (its CPU, WebGPU or CUDA execution provider: executionProvider.ts) on the ONNX graph built in memory by graph.ts.
// onnxruntime-node is an OPTIONAL dependency: loadOnnxRuntime() returns { ort: null, reason } when it is missing or
// fails to load, and callers fall back to the tfjs model (createInferenceModel in inference.ts).
//
//   const rt = await loadOnnxRuntime();
//   const model = rt.ort ? await createOnnxModel(cfg, params, { threads: 2 }) : createInferenceModel(cfg, params);
//
// The model implements Denoiser (arch 'mdlm') and ArModel (arch 'ar', with a real KV cache: the graph takes
// past_key/value.{i} and returns present_key/value.{i}; a session feeds each call's present tensors back as past).
import type { ModelConfig } from '../../shared/config.ts';
import type { ArModel, ArSession, Denoiser } from '../types.ts';
import { epDevice, executionProviders, EP_LABEL, type EpChoice } from './executionProvider.ts';
import {
  ONNX_INPUT_TOKENS,
  ONNX_OUTPUT_LOGITS,
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
  dispose(): Promise<void>;
}

/**
 * Builds the ONNX graph for `cfg` + `params` in memory and opens an onnxruntime session on it (opts.choice's EP).
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
  const bytes = onnxModelBytes(cfg, params, { opset: opts.opset ?? RUNTIME_OPSET });
  const choice = opts.choice ?? CPU_EP;
  const so: OrtSessionOptions = {
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    interOpNumThreads: 1,
    logSeverityLevel: 3,
  };
  if (opts.spinning === false) so.extra = { session: { intra_op: { allow_spinning: '0' } } };
  if (opts.threads !== undefined) {
    if (!(Number.isInteger(opts.threads) && opts.threads >= 1))
      throw new Error(`threads must be a positive integer, got ${opts.threads}`);
    so.intraOpNumThreads = opts.threads;
  }
  const session = await createSessionOn(ort, bytes, so, choice);
  const causal = cfg.arch === 'ar';
  const { vocabSize: V, seqLen: S, nLayers, nHeads: H } = cfg;
  const hd = cfg.dModel / H;
  let disposed = false;
  // One forward at a time: concurrent runs would only fight over the same intra-op threads, and a KV session
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

  const emptyPast = (B: number): OrtTensor => new ort.Tensor('float32', new Float32Array(0), [B, H, 0, hd]);

  /** One forward of the graph. For 'ar', `past` holds 2 * nLayers tensors (k, v per layer) or null for none. */
  const forward = async (
    tokens: Int32Array,
    B: number,
    len: number,
    past: OrtTensor[] | null,
  ): Promise<{ logits: Float32Array; present: OrtTensor[] }> => {
    const feeds: Record<string, OrtTensor> = { [ONNX_INPUT_TOKENS]: new ort.Tensor('int32', tokens, [B, len]) };
    if (causal) {
      for (let i = 0; i < nLayers; i++) {
        feeds[pastKeyName(i)] = past ? past[2 * i] : emptyPast(B);
        feeds[pastValueName(i)] = past ? past[2 * i + 1] : emptyPast(B);
      }
    }
    const out = await session.run(feeds);
    const lt = out[ONNX_OUTPUT_LOGITS];
    const logits = lt.data as Float32Array;
    if (!(logits instanceof Float32Array) || logits.length !== B * len * V)
      throw new Error(`ONNX logits: unexpected output ${lt.type} [${lt.dims}]`);
    const present: OrtTensor[] = [];
    if (causal) for (let i = 0; i < nLayers; i++) present.push(out[presentKeyName(i)], out[presentValueName(i)]);
    return { logits, present };
  };

  const cpuDetail = `${opts.threads ?? 'default'} threads${opts.spinning === false ? ', no spinning' : ''}, `;
  const device = epDevice(
    rt.version,
    choice,
    `${choice.ep === 'cpu' ? cpuDetail : ''}opset ${opts.opset ?? RUNTIME_OPSET}`,
  );

  return {
    config: cfg,
    device,
    vocabSize: V,
    seqLen: S,
    maskId: cfg.maskId,
    eosId: cfg.eosId,
    logits(tokens: Int32Array, batch: number, len?: number): Promise<Float32Array> {
      return serial(async () => {
        const l = len ?? tokens.length / batch;
        if (!causal && l !== S) throw new Error(`the denoiser takes sequences of exactly ${S} tokens, got ${l}`);
        if (l > S) throw new Error(`sequence length ${l} exceeds the model's seqLen ${S}`);
        checkTokens(tokens, batch, l);
        return (await forward(tokens, batch, l, null)).logits;
      });
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
        append(tokens: Int32Array, len: number): Promise<Float32Array> {
          return serial(async () => {
            if (closed) throw new Error('AR session used after dispose()');
            if (length + len > S) throw new Error(`sequence length ${length + len} exceeds the model's seqLen ${S}`);
            checkTokens(tokens, batch, len);
            const r = await forward(tokens, batch, len, past);
            if (past) for (const t of past) t.dispose?.();
            past = r.present;
            length += len;
            // logits of the last new position per sequence: [batch, V]
            if (len === 1) return r.logits;
            const outv = new Float32Array(batch * V);
            for (let b = 0; b < batch; b++)
              outv.set(r.logits.subarray((b * len + len - 1) * V, (b * len + len) * V), b * V);
            return outv;
          });
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
    },
  };
}
