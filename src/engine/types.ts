// Small interfaces that let samplers, evaluators and checkpoints work without knowing about tfjs.
import type { GradBatch } from './model/gradShards.ts';

/** A named float32 tensor on the host (weights, optimiser moments, EMA). Row-major. */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}
export type NamedTensors = Map<string, HostTensor>;

/**
 * A denoiser as samplers see it: token ids [batch, seqLen] in, raw logits [batch, seqLen, vocab] out
 * (float32, row-major). SUBS and everything probabilistic happens in the sampler in float64.
 */
export interface Denoiser {
  readonly vocabSize: number;
  readonly seqLen: number;
  readonly maskId: number;
  logits(tokens: Int32Array, batch: number): Promise<Float32Array>;
}

/** An autoregressive model with a KV cache, as AR samplers and the judge see it. */
export interface ArModel {
  readonly vocabSize: number;
  readonly seqLen: number;
  readonly eosId: number;
  /** Full-recompute causal logits for [batch, len] tokens: [batch, len, vocab]. */
  logits(tokens: Int32Array, batch: number, len: number): Promise<Float32Array>;
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
