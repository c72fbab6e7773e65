// Small interfaces that let samplers, evaluators and checkpoints work without knowing about tfjs.
import type { GradBatch } from './model/gradShards.ts';

/** A named float32 tensor on the host (weights, optimiser moments, EMA). Row-major. */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}
export type NamedTensors = Map<string, HostTensor>;

/**
 * The logits of one forward pass, read by row so that [batch, len, vocab] need never exist on the host
 * (model/logitRows.ts). Rows are flat positions b·len + l.
 */
export interface LogitRows {
  /** batch · len. */
  readonly positions: number;
  /** Logits per row. */
  readonly vocab: number;
  /**
   * Calls visit(k, logits, offset) for k = 0, 1, ... in order, where logits[offset .. offset + vocab) are the float32
   * logits of position rows[k]. The array is only valid during the call (it is reused for the next chunk of rows).
   */
  forEachRow(rows: ArrayLike<number>, visit: (k: number, logits: Float32Array, offset: number) => void): Promise<void>;
  /** Frees what the forward pass holds (the transformer's output); rows cannot be read afterwards. */
  dispose(): void;
}

/**
 * A denoiser as samplers see it: token ids [batch, seqLen] in, raw logits [batch, seqLen, vocab] out
 * (float32, row-major). SUBS and everything probabilistic happens in the sampler in float64.
 */
export interface Denoiser {
  readonly vocabSize: number;
  readonly seqLen: number;
  readonly maskId: number;
  logits(tokens: Int32Array, batch: number): Promise<Float32Array>;
  /** The same logits, computed by row on demand (bounded memory); without it, logitRows wraps `logits`. */
  forward?(tokens: Int32Array, batch: number, len: number): Promise<LogitRows>;
}

/** An autoregressive model with a KV cache, as AR samplers and the judge see it. */
export interface ArModel {
  readonly vocabSize: number;
  readonly seqLen: number;
  readonly eosId: number;
  /** Full-recompute causal logits for [batch, len] tokens: [batch, len, vocab]. */
  logits(tokens: Int32Array, batch: number, len: number): Promise<Float32Array>;
  /** The same causal logits, computed by row on demand (bounded memory); without it, logitRows wraps `logits`. */
  forward?(tokens: Int32Array, batch: number, len: number): Promise<LogitRows>;
  /** Opens a KV-cache session for `batch` sequences. */
  session(batch: number): ArSession;
}

export interface ArSession {
  /** Appends `len` tokens per sequence ([batch, len]) and returns the logits of the last one: [batch, vocab]. */
  append(tokens: Int32Array, len: number): Promise<Float32Array>;
  /** Number of positions already in the cache. */
  readonly length: number;
  dispose(): void;
}

/** A training step's gradient computation: the tfjs engine (model/gradients.ts TfjsGradientEngine) or onnxruntime's
 * (onnx/trainSession.ts OnnxGradientEngine); training/gradientEngine.ts picks one. */
export interface TrainingEngine {
  /** 'onnx' or the tfjs backend's name. */
  readonly backend: string;
  readonly device: string;
  /** The GPU adapter it computes on, described (onnx/executionProvider.ts describeAdapter); null on a CPU. */
  readonly adapter: string | null;
  readonly threads: number;
  computeGradients(
    params: Float32Array,
    batch: GradBatch,
    dropoutSeed: number,
  ): Promise<{ loss: number; grads: Float32Array }>;
  evalLoss(params: Float32Array, batch: GradBatch): Promise<number>;
  dispose(): Promise<void>;
}
