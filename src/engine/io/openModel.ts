// Opens a model for inference from a checkpoint folder, a run folder (its latest checkpoint) or a shipped model,
// with its tokenizer. Inference runs on onnxruntime-node when it is installed (5x faster than tfjs-wasm on CPU,
// same logits to 1e-5), else on the tfjs backend; the runtime and device actually used are returned, never silent.
import type { BackendName, ModelConfig } from '../../shared/config.ts';
import { cudaTfjsLoads, initBackend } from '../model/backend.ts';
import { createInferenceModel } from '../model/inference.ts';
import { createOnnxModel, loadOnnxRuntime, type OrtModule } from '../onnx/runtime.ts';
import { readModelWeights } from './modelCheckpoint.ts';
import type { Tokenizer } from '../data/tokenizers.ts';
import { sha256Hex } from '../data/tokenizerFiles.ts';
import type { ArModel, Denoiser } from '../types.ts';

/** Which runtime computes: onnxruntime-node or tfjs (see onnxRuntimeFor). */
export type ComputeRuntime = 'auto' | 'onnx' | 'tfjs';

/**
 * The one rule for which runtime computes (inference and training alike): runtime 'onnx' insists (an error says why
 * it cannot), 'tfjs' never tries onnxruntime; 'auto' takes onnxruntime when it loads, unless a tfjs backend is named
 * or tfjs-node-gpu loads (CUDA). Returns the loaded onnxruntime module, or null for tfjs.
 */
export async function onnxRuntimeFor(backend: BackendName, runtime: ComputeRuntime): Promise<OrtModule | null> {
  if (runtime === 'onnx' && backend !== 'auto')
    throw new Error(`--runtime onnx cannot be combined with --backend ${backend} (a tfjs backend)`);
  if (runtime === 'tfjs' || (runtime === 'auto' && (backend !== 'auto' || (await cudaTfjsLoads())))) return null;
  const rt = await loadOnnxRuntime();
  if (!rt.ort && runtime === 'onnx') throw new Error(`--runtime onnx: ${rt.reason}`);
  return rt.ort;
}

/** The inference model as callers use it: both interfaces, and a dispose that may be async. */
export type Inference = Denoiser & ArModel & { dispose(): void | Promise<void> };

export interface OpenedModel {
  config: ModelConfig;
  tokenizer: Tokenizer;
  model: Inference;
  checkpointDir: string;
  weights: 'ema' | 'raw';
  /** 'onnx' or the tfjs backend name. */
  backend: string;
  device: string;
  extra: Record<string, unknown>;
  /** sha256 of the loaded float32 weights (weightsSha256), when opts.hashWeights. */
  weightsSha256?: string;
}

/** sha256 (hex) of a weight vector's float32 bytes: a full content hash (distill.ts's paramsChecksum is a short one). */
export function weightsSha256(p: Float32Array): string {
  return sha256Hex(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
}

/** Builds an inference model for (cfg, params) on the runtime onnxRuntimeFor picks (`--backend wasm` means wasm). */
export async function createModelRuntime(
  cfg: ModelConfig,
  params: Float32Array,
  opts: { backend?: BackendName; runtime?: ComputeRuntime; threads?: number } = {},
): Promise<{ model: Inference; backend: string; device: string }> {
  const backendName = opts.backend ?? 'auto';
  if (await onnxRuntimeFor(backendName, opts.runtime ?? 'auto')) {
    const model = await createOnnxModel(cfg, params, { threads: opts.threads });
    return { model, backend: 'onnx', device: model.device };
  }
  const { backend, device } = await initBackend(backendName);
  return { model: createInferenceModel(cfg, params), backend, device };
}

export async function openModel(
  path: string,
  opts: {
    backend?: BackendName;
    weights?: 'ema' | 'raw';
    runtime?: ComputeRuntime;
    threads?: number;
    hashWeights?: boolean;
  } = {},
): Promise<OpenedModel> {
  const { config, tokenizer, checkpointDir, weights, params, extra } = readModelWeights(path, {
    weights: opts.weights,
  });
  const { model, backend, device } = await createModelRuntime(config, params, opts);
  return {
    config,
    tokenizer,
    model,
    checkpointDir,
    weights,
    backend,
    device,
    extra,
    ...(opts.hashWeights ? { weightsSha256: weightsSha256(params) } : {}),
  };
}
