// Which engine computes a training step's gradients: onnxruntime (onnx/trainSession.ts, on the execution provider
// openModel.ts onnxRuntimeFor picks: a GPU, else its CPU kernels, 3.5x the tfjs-wasm throughput on bench-5m), or
// tfjs (gradients.ts) where a tfjs backend is named or onnxruntime is missing. Both compute the same loss and
// gradients (tested).
import type { BackendName, ModelConfig } from '../../shared/config.ts';
import { TfjsGradientEngine } from '../model/gradients.ts';
import type { TrainingEngine } from '../types.ts';
import { OnnxGradientEngine } from '../onnx/trainSession.ts';
import { adapterLabel, epDevice, onnxBackendLabel } from '../onnx/executionProvider.ts';
import { initBackend } from '../model/backend.ts';
import { onnxRuntimeFor, type ComputeRuntime } from '../io/openModel.ts';

export type { TrainingEngine };

/** What backend 'auto' trains on here, without creating an engine: what the app shows beside "auto". */
export async function autoTrainingBackend(): Promise<{ backend: string; device: string; adapter: string | null }> {
  const target = await onnxRuntimeFor('auto', 'auto');
  if (!target) return { ...(await initBackend('auto')), adapter: null };
  const { choice, version } = target;
  return { backend: onnxBackendLabel(choice), device: epDevice(version, choice, ''), adapter: adapterLabel(choice) };
}

/** Runtime choice as for inference (openModel.ts onnxRuntimeFor): onnx when it applies, else tfjs. */
export async function createGradientEngine(
  cfg: ModelConfig,
  opts: { backend: BackendName; threads: number; runtime?: ComputeRuntime },
): Promise<TrainingEngine> {
  const target = await onnxRuntimeFor(opts.backend, opts.runtime ?? 'auto');
  if (target) return OnnxGradientEngine.create(cfg, { threads: opts.threads, choice: target.choice });
  return TfjsGradientEngine.create(cfg, { backend: opts.backend, threads: opts.threads });
}
