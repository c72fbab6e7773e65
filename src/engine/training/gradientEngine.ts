// Which engine computes a training step's gradients. Backend 'auto': tfjs on the GPU when tfjs-node-gpu loads
// (CUDA), else onnxruntime-node's native CPU kernels when it is installed (onnx/trainSession.ts: 3.5x the
// tfjs-wasm throughput on bench-5m, see `sdtt bench train`), else tfjs on the best CPU backend. Naming a tfjs
// backend gives the tfjs engine (gradients.ts). Both compute the same loss and gradients (tested).
import type { BackendName, ModelConfig } from '../../shared/config.ts';
import { TfjsGradientEngine } from '../model/gradients.ts';
import type { TrainingEngine } from '../types.ts';
import { OnnxGradientEngine } from '../onnx/trainSession.ts';
import { loadOnnxRuntime } from '../onnx/runtime.ts';
import { initBackend } from '../model/backend.ts';
import { onnxRuntimeFor, type ComputeRuntime } from '../io/openModel.ts';

export type { TrainingEngine };

/** What backend 'auto' trains on here, without creating an engine: what the app shows beside "auto". */
export async function autoTrainingBackend(): Promise<{ backend: string; device: string }> {
  if (await onnxRuntimeFor('auto', 'auto'))
    return { backend: 'onnx', device: `onnxruntime-node ${(await loadOnnxRuntime()).version} (CPU EP)` };
  return initBackend('auto');
}

/** Runtime choice as for inference (openModel.ts onnxRuntimeFor): onnx when it applies, else tfjs. */
export async function createGradientEngine(
  cfg: ModelConfig,
  opts: { backend: BackendName; threads: number; runtime?: ComputeRuntime },
): Promise<TrainingEngine> {
  if (await onnxRuntimeFor(opts.backend, opts.runtime ?? 'auto'))
    return OnnxGradientEngine.create(cfg, { threads: opts.threads });
  return TfjsGradientEngine.create(cfg, { backend: opts.backend, threads: opts.threads });
}
