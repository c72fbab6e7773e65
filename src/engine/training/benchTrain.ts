// `sdtt bench train --model bench-5m` (or `--config FILE`, any model shape): training throughput over full steps
// (forward + backward + gradient all-reduce + AdamW on the flat vector), on the real MDLM loss, plus eval-mode
// forward throughput of the inference model. The weights are random: no data, no shipped model. The PyTorch peer
// (shared/bench/torch_peer.py) times bench-5m's shapes.
import { z } from 'zod';
import { ModelConfig, type BackendName } from '../../shared/config.ts';
import { MODEL_PRESETS } from '../../shared/presets.ts';
import type { GradBatch } from '../model/gradShards.ts';
import { logitRows, positionRange } from '../model/logitRows.ts';
import { createGradientEngine } from './gradientEngine.ts';
import { OnnxGradientEngine } from '../onnx/trainSession.ts';
import { createModelRuntime, type ComputeRuntime } from '../io/openModel.ts';
import { antitheticTimes, EPS_NOISE, forwardMask } from '../model/mdlm.ts';
import { initParams, paramCount } from '../model/paramLayout.ts';
import { AdamW } from './optim.ts';
import { Rng } from '../rng.ts';

export interface BenchTrainResult {
  bench: 'train';
  /** 'bench-5m', or the name of the --config file's model. */
  model: string;
  backend: string;
  device: string;
  /** The GPU adapter (name, vendor, graphics API), or null on a CPU. */
  adapter: string | null;
  /** GPU EP: what a step holds on the device, estimated before the first step (onnx/deviceMemory.ts). */
  step_memory_estimate_bytes: number | null;
  /** GPU memory the process held after the timed steps where the driver tells it (nvidia-smi), else null. */
  gpu_memory_used_bytes: number | null;
  threads: number;
  params: number;
  batch: number;
  seq_len: number;
  steps: number;
  ms_per_step: number;
  train_tok_per_s: number;
  fwd_tok_per_s: number;
  fwd_device: string;
}

export const BENCH_BATCH = 16;

/** bench-5m: 4096 tokens + MASK (V = 4097), d 256, 4 layers, 4 heads, seq 128, dropout 0. */
export function bench5mConfig(arch: 'mdlm' | 'ar' = 'mdlm'): ModelConfig {
  return ModelConfig.parse({
    ...MODEL_PRESETS['bench-5m'],
    arch,
    vocabSize: 4097,
    eosId: 4095,
    maskId: arch === 'mdlm' ? 4096 : -1,
  });
}

/** A model the benchmarks run on: its name in the JSON line and its MDLM config (benchArConfig gives the AR twin). */
export interface BenchModel {
  name: string;
  config: ModelConfig;
}

export function bench5m(): BenchModel {
  return { name: 'bench-5m', config: bench5mConfig('mdlm') };
}

/** The same shape as the causal AR model (sampling with a KV cache), on the same vocabulary. */
export function benchArConfig(cfg: ModelConfig): ModelConfig {
  return ModelConfig.parse({ ...cfg, arch: 'ar', maskId: -1 });
}

/**
 * A benchmark model from a model-config object (a `--config FILE`'s JSON): ModelConfig's keys, where arch, eosId and
 * maskId may be left out and are then bench-5m's convention (arch 'mdlm', the last id MASK, the one before EOS), and
 * mlpRatio, dropout, ropeBase take ModelConfig's defaults. Validated by ModelConfig itself, so a bad key or value
 * fails with its path; arch must be 'mdlm' (the benchmarks derive the AR model from it).
 */
export function benchModelConfig(raw: Record<string, unknown>): z.ZodSafeParseResult<ModelConfig> {
  const V = raw.vocabSize;
  const filled = {
    arch: 'mdlm',
    ...(typeof V === 'number' ? { eosId: V - 2, maskId: V - 1 } : {}),
    ...raw,
  };
  return ModelConfig.superRefine((c, ctx) => {
    if (c.arch !== 'mdlm')
      ctx.addIssue({
        code: 'custom',
        path: ['arch'],
        message: `the benchmarks take an 'mdlm' config (they build its AR twin themselves), got '${c.arch}'`,
      });
  }).safeParse(filled);
}

export async function benchTrain(opts: {
  backend: BackendName;
  threads: number;
  runtime?: ComputeRuntime;
  steps?: number;
  warmup?: number;
  /** Default bench-5m. */
  model?: BenchModel;
  /** Progress lines (the CLI writes them to stderr). */
  log?: (line: string) => void;
}): Promise<BenchTrainResult> {
  const steps = Math.max(1, opts.steps ?? 5);
  const warmup = Math.max(0, opts.warmup ?? 1);
  const model = opts.model ?? bench5m();
  const cfg = model.config;
  const log = opts.log ?? (() => undefined);
  const B = BENCH_BATCH;
  const L = cfg.seqLen;
  const rng = new Rng(1234);
  const makeBatch = (): GradBatch => {
    const x0 = new Int32Array(B * L);
    for (let i = 0; i < x0.length; i++) x0[i] = rng.int(cfg.vocabSize - 1);
    const t = antitheticTimes(B, EPS_NOISE, rng);
    return { kind: 'mdlm', x0, zt: forwardMask(x0, t, L, cfg.maskId, rng), t, batch: B };
  };

  log(
    `${model.name}: ${paramCount(cfg)} parameters (d ${cfg.dModel}, ${cfg.nLayers} layers, ${cfg.nHeads} heads, ` +
      `seq ${L}, vocab ${cfg.vocabSize}), batch ${B}`,
  );
  const params = initParams(cfg, 0);
  // A zero head makes every gradient but the head's exactly 0 on the first step; perturb it so the timed steps
  // do the same work as steps of a real run.
  for (let i = 0; i < params.length; i++) if (params[i] === 0) params[i] = 1e-3 * rng.normal();
  const adam = new AdamW(params.length, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
  const engine = await createGradientEngine(cfg, {
    backend: opts.backend,
    threads: opts.threads,
    runtime: opts.runtime,
  });
  log(`train on ${engine.backend} | ${engine.device}`);
  let msPerStep: number;
  let gpuMemoryUsed: number | null;
  try {
    const step = async (what: string) => {
      const t = performance.now();
      const { grads } = await engine.computeGradients(params, makeBatch(), rng.nextU32());
      adam.step(params, grads, 3e-4);
      log(`${what}: ${Math.round(performance.now() - t)} ms`);
    };
    for (let i = 0; i < warmup; i++) await step(`warm-up step ${i + 1}/${warmup}`);
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await step(`step ${i + 1}/${steps}`);
    msPerStep = (performance.now() - t0) / steps;
    gpuMemoryUsed = engine instanceof OnnxGradientEngine ? engine.gpuMemoryUsed() : null;
  } finally {
    await engine.dispose();
  }

  // Eval-mode forward of the denoiser, batch 16, on the matching inference runtime (onnx or tfjs).
  const { model: fwd, device: fwdDevice } = await createModelRuntime(cfg, params, {
    backend: opts.backend,
    runtime: opts.runtime,
    threads: opts.runtime === 'tfjs' ? undefined : opts.threads,
  });
  let fwdMs: number;
  try {
    const x = makeBatch() as Extract<GradBatch, { kind: 'mdlm' }>;
    // Every row's logits are computed, as a whole-logits forward would, but read by row (never [B, L, V] at once).
    const forward = async () => {
      const rows = await logitRows(fwd, x.zt, B);
      await rows.forEachRow(positionRange(0, rows.positions), () => {});
      rows.dispose();
    };
    await forward();
    const n = 3;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await forward();
    fwdMs = (performance.now() - t0) / n;
    log(`eval forward: ${Math.round(fwdMs)} ms per batch | ${fwdDevice}`);
  } finally {
    await fwd.dispose();
  }
  return {
    bench: 'train',
    model: model.name,
    backend: engine.backend,
    device: engine.device,
    adapter: engine.adapter,
    step_memory_estimate_bytes: engine instanceof OnnxGradientEngine ? (engine.stepMemory?.total ?? null) : null,
    gpu_memory_used_bytes: gpuMemoryUsed,
    threads: engine.threads,
    params: params.length,
    batch: B,
    seq_len: L,
    steps,
    ms_per_step: Math.round(msPerStep * 10) / 10,
    train_tok_per_s: Math.round((B * L * 1000) / msPerStep),
    fwd_tok_per_s: Math.round((B * L * 1000) / fwdMs),
    fwd_device: fwdDevice,
  };
}
