// GPU memory of a training step on an onnxruntime GPU EP: an estimate before the first step (to refuse a model that
// cannot fit, naming the numbers), and the process's measured use where the driver tells it (nvidia-smi). The step
// runs the batch in chunks of whole sequences (trainSession.ts: up to 8192 tokens, fewer where half the adapter's
// memory would not hold them), so what it holds is bounded by one chunk's activations plus the parameters and their
// gradients, whatever the batch size.
import { spawnSync } from 'node:child_process';
import type { ModelConfig } from '../../shared/config.ts';
import { formatBytes } from '../../shared/units.ts';
import { paramCount } from '../model/paramLayout.ts';
import { describeAdapter, type GpuAdapter } from './executionProvider.ts';

const F32 = 4;
/** Share of the device's memory a job may plan to use: the driver, the display and Dawn's own buffers need the rest. */
const USABLE_SHARE = 0.9;

export interface StepMemory {
  params: number;
  gradients: number;
  activations: number;
  logits: number;
  total: number;
}

/**
 * Bytes a training step holds on the device for a chunk of `chunkTokens` tokens: the parameters (fed as inputs) and
 * their gradients, the forward activations the backward pass keeps (per token and layer: about 17·d floats of
 * norms, projections, the MLP's 4·d hidden twice, residuals, plus H·L attention probabilities), doubled for the
 * gradients flowing back through them, and the output head's logits, probabilities and their gradient.
 */
export function trainingStepMemory(cfg: ModelConfig, chunkTokens: number): StepMemory {
  const n = paramCount(cfg);
  const { dModel: d, nLayers, nHeads: H, seqLen: L, vocabSize: V } = cfg;
  const params = n * F32;
  const gradients = n * F32;
  const activations = 2 * chunkTokens * nLayers * (17 * d + H * L) * F32;
  const logits = 3 * chunkTokens * V * F32;
  return { params, gradients, activations, logits, total: params + gradients + activations + logits };
}

/** Throws before training when the estimate does not fit the adapter's memory (where the driver tells its size). */
export function assertStepFits(cfg: ModelConfig, chunkTokens: number, adapter: GpuAdapter | null): StepMemory {
  const m = trainingStepMemory(cfg, chunkTokens);
  if (adapter?.memoryBytes && m.total > USABLE_SHARE * adapter.memoryBytes)
    throw new Error(
      `the model does not fit on ${describeAdapter(adapter)}: a training step needs about ${formatBytes(m.total)} ` +
        `(parameters ${formatBytes(m.params)}, gradients ${formatBytes(m.gradients)}, activations of a ` +
        `${chunkTokens}-token chunk ${formatBytes(m.activations)}, logits ${formatBytes(m.logits)}), more than ` +
        `${Math.round(USABLE_SHARE * 100)}% of its ${formatBytes(adapter.memoryBytes)}`,
    );
  return m;
}

/**
 * GPU memory this process uses now, as nvidia-smi reports it, or null where it cannot tell (no NVIDIA driver; the
 * WebGPU EP on Vulkan, D3D12 or Metal exposes no memory counter). onnxruntime's buffer cache never shrinks during a
 * session, so after a job's steps this is its peak.
 */
export function measuredGpuMemory(pid = process.pid): number | null {
  const r = spawnSync('nvidia-smi', ['--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (r.status !== 0) return null;
  let mib = 0;
  let found = false;
  for (const line of r.stdout.split('\n')) {
    const [p, used] = line.split(',').map((s) => s.trim());
    if (Number(p) === pid) {
      mib += Number(used);
      found = true;
    }
  }
  return found ? mib * 2 ** 20 : null;
}
