// `sdtt bench train --model bench-5m`: training throughput over full steps (forward + backward + gradient
// all-reduce + AdamW on the flat vector), on the real MDLM loss, plus eval-mode forward throughput of the
// inference model. The PyTorch peer (shared/bench/torch_peer.py) times the same shapes.
import { ModelConfig, type BackendName } from '../../shared/config.ts';
import { MODEL_PRESETS } from '../../shared/presets.ts';
import type { GradBatch } from '../model/gradShards.ts';
import { createGradientEngine } from './gradientEngine.ts';
import { createModelRuntime, type ComputeRuntime } from '../io/openModel.ts';
import { antitheticTimes, EPS_NOISE, forwardMask } from '../model/mdlm.ts';
import { initParams } from '../model/paramLayout.ts';
import { AdamW } from './optim.ts';
import { Rng } from '../rng.ts';

export interface BenchTrainResult {
  bench: 'train';
  model: 'bench-5m';
  backend: string;
  device: string;
  threads: number;
  params: number;
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

export async function benchTrain(opts: {
  backend: BackendName;
  threads: number;
  runtime?: ComputeRuntime;
  steps?: number;
  warmup?: number;
}): Promise<BenchTrainResult> {
  const steps = Math.max(1, opts.steps ?? 5);
  const warmup = Math.max(0, opts.warmup ?? 1);
  const cfg = bench5mConfig('mdlm');
  const B = BENCH_BATCH;
  const L = cfg.seqLen;
  const rng = new Rng(1234);
  const makeBatch = (): GradBatch => {
    const x0 = new Int32Array(B * L);
    for (let i = 0; i < x0.length; i++) x0[i] = rng.int(cfg.vocabSize - 1);
    const t = antitheticTimes(B, EPS_NOISE, rng);
    return { kind: 'mdlm', x0, zt: forwardMask(x0, t, L, cfg.maskId, rng), t, batch: B };
  };

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
  let msPerStep: number;
  try {
    const step = async () => {
      const { grads } = await engine.computeGradients(params, makeBatch(), rng.nextU32());
      adam.step(params, grads, 3e-4);
    };
    for (let i = 0; i < warmup; i++) await step();
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await step();
    msPerStep = (performance.now() - t0) / steps;
  } finally {
    await engine.dispose();
  }

  // Eval-mode forward of the denoiser, batch 16, on the matching inference runtime (onnx or tfjs).
  const { model, device: fwdDevice } = await createModelRuntime(cfg, params, {
    backend: opts.backend,
    runtime: opts.runtime,
    threads: opts.runtime === 'tfjs' ? undefined : opts.threads,
  });
  let fwdMs: number;
  try {
    const x = makeBatch() as Extract<GradBatch, { kind: 'mdlm' }>;
    await model.logits(x.zt, B);
    const n = 3;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await model.logits(x.zt, B);
    fwdMs = (performance.now() - t0) / n;
  } finally {
    await model.dispose();
  }
  return {
    bench: 'train',
    model: 'bench-5m',
    backend: engine.backend,
    device: engine.device,
    threads: engine.threads,
    params: params.length,
    ms_per_step: Math.round(msPerStep * 10) / 10,
    train_tok_per_s: Math.round((B * L * 1000) / msPerStep),
    fwd_tok_per_s: Math.round((B * L * 1000) / fwdMs),
    fwd_device: fwdDevice,
  };
}
