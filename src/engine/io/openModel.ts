// Opens a model for inference from a checkpoint folder, a run folder (its latest checkpoint) or a shipped model,
// with its tokenizer. Inference runs on onnxruntime-node when it is installed (5x faster than tfjs-wasm on CPU,
// same logits to 1e-5), else on the tfjs backend; the runtime and device actually used are returned, never silent.
import { isOnnxBackend, ONNX_BACKENDS, type BackendName, type ModelConfig } from '../../shared/config.ts';
import { cudaTfjsLoads, initBackend } from '../model/backend.ts';
import { createInferenceModel } from '../model/inference.ts';
import { createOnnxModel, loadOnnxRuntime, type OrtModule } from '../onnx/runtime.ts';
import { adapterLabel, chooseEp, onnxBackendLabel, type EpChoice } from '../onnx/executionProvider.ts';
import { readModelWeights } from './modelCheckpoint.ts';
import type { Tokenizer } from '../data/tokenizers.ts';
import { sha256Hex } from '../data/tokenizerFiles.ts';
import type { ArModel, Denoiser } from '../types.ts';

/** Which runtime computes: onnxruntime-node or tfjs (see onnxRuntimeFor). */
export type ComputeRuntime = 'auto' | 'onnx' | 'tfjs';

/** onnxruntime, loaded, with the execution provider and adapter a job computes on. */
export interface OnnxTarget {
  ort: OrtModule;
  version: string;
  choice: EpChoice;
}

/**
 * The one rule for which runtime computes (inference and training alike). An onnxruntime backend ('webgpu', 'cuda',
 * 'onnx-cpu') insists on its execution provider (an Error says why it cannot run here); a tfjs backend gives tfjs.
 * 'auto' takes onnxruntime on a GPU (CUDA EP, or WebGPU EP on a hardware adapter), then tfjs-node-gpu where it loads,
 * then onnxruntime's CPU EP, then tfjs. Runtime 'onnx' / 'tfjs' narrows 'auto' to one runtime. Returns the target,
 * or null for tfjs.
 */
export async function onnxRuntimeFor(backend: BackendName, runtime: ComputeRuntime): Promise<OnnxTarget | null> {
  const onnxBackend = isOnnxBackend(backend);
  if (runtime === 'onnx' && backend !== 'auto' && !onnxBackend)
    throw new Error(`--runtime onnx cannot be combined with --backend ${backend} (a tfjs backend)`);
  if (runtime === 'tfjs' && onnxBackend)
    throw new Error(`--runtime tfjs cannot be combined with --backend ${backend} (an onnxruntime execution provider)`);
  if (runtime === 'tfjs' || (backend !== 'auto' && !onnxBackend)) return null;
  const rt = await loadOnnxRuntime();
  if (!rt.ort) {
    if (runtime === 'onnx' || onnxBackend)
      throw new Error(`${onnxBackend ? `--backend ${backend}` : '--runtime onnx'}: ${rt.reason}`);
    return null;
  }
  const choice = chooseEp(onnxBackend ? ONNX_BACKENDS[backend] : 'auto');
  if (choice.ep === 'cpu' && backend === 'auto' && runtime === 'auto' && (await cudaTfjsLoads())) return null;
  return { ort: rt.ort, version: rt.version, choice };
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
): Promise<{ model: Inference; backend: string; device: string; adapter: string | null }> {
  const backendName = opts.backend ?? 'auto';
  const target = await onnxRuntimeFor(backendName, opts.runtime ?? 'auto');
  if (target) {
    const model = await createOnnxModel(cfg, params, { threads: opts.threads, choice: target.choice });
    return {
      model,
      backend: onnxBackendLabel(target.choice),
      device: model.device,
      adapter: adapterLabel(target.choice),
    };
  }
  const { backend, device } = await initBackend(backendName);
  return { model: createInferenceModel(cfg, params), backend, device, adapter: null };
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
