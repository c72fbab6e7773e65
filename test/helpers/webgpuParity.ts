// Run by test/webgpu.test.ts in a child process started with a Vulkan driver in its environment (the Vulkan loader
// reads it at start-up): computes a tiny model's forward, a pretraining step and a distillation step on onnxruntime's
// CPU EP and on its WebGPU EP, and prints one JSON line comparing them. The test asserts the tolerances.
import type { ModelConfig } from '../../src/shared/config.ts';
import type { GradBatch } from '../../src/engine/model/gradShards.ts';
import { paramLayout } from '../../src/engine/model/paramLayout.ts';
import { chooseEp, type EpChoice } from '../../src/engine/onnx/executionProvider.ts';
import { createOnnxModel } from '../../src/engine/onnx/runtime.ts';
import { OnnxGradientEngine } from '../../src/engine/onnx/trainSession.ts';
import { Rng } from '../../src/engine/rng.ts';
import { mdlmBatch, noisyParams, randomTokens, teacherRows, tinyModel } from './fixtures.ts';

/** Per parameter tensor: the worst |cpu − gpu| and the cpu gradient's max |g| (its scale). */
interface TensorDiff {
  name: string;
  worst: number;
  scale: number;
}

function tensorDiffs(cfg: ModelConfig, cpu: Float32Array, gpu: Float32Array): TensorDiff[] {
  return paramLayout(cfg).map((e) => {
    let worst = 0;
    let scale = 0;
    for (let i = e.offset; i < e.offset + e.size; i++) {
      scale = Math.max(scale, Math.abs(cpu[i]));
      worst = Math.max(worst, Math.abs(cpu[i] - gpu[i]));
    }
    return { name: e.name, worst, scale };
  });
}

function distillBatch(cfg: ModelConfig, seed: number): GradBatch {
  const m = mdlmBatch(cfg, 3, seed);
  return { kind: 'distill', zt: m.zt, batch: 3, targets: teacherRows(cfg, m.zt, new Rng(seed + 1)), divergence: 'kld' };
}

async function step(cfg: ModelConfig, choice: EpChoice, batch: GradBatch) {
  const engine = await OnnxGradientEngine.create(cfg, { threads: 1, choice });
  try {
    return { ...(await engine.computeGradients(noisyParams(cfg, 7), batch, 5)), device: engine.device };
  } finally {
    await engine.dispose();
  }
}

async function compareStep(cfg: ModelConfig, gpu: EpChoice, batch: GradBatch) {
  const a = await step(cfg, { ep: 'cpu', adapter: null }, batch);
  const b = await step(cfg, gpu, batch);
  return { cpuLoss: a.loss, gpuLoss: b.loss, device: b.device, tensors: tensorDiffs(cfg, a.grads, b.grads) };
}

async function compareForward(cfg: ModelConfig, gpu: EpChoice) {
  const params = noisyParams(cfg, 7);
  const tokens = randomTokens(2 * cfg.seqLen, cfg.vocabSize, 3);
  const out: Float32Array[] = [];
  for (const choice of [{ ep: 'cpu', adapter: null } as EpChoice, gpu]) {
    const m = await createOnnxModel(cfg, params, { choice });
    out.push(await m.logits(tokens, 2));
    await m.dispose();
  }
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < out[0].length; i++) {
    scale = Math.max(scale, Math.abs(out[0][i]));
    worst = Math.max(worst, Math.abs(out[0][i] - out[1][i]));
  }
  return { worst, scale };
}

const gpu = chooseEp('webgpu');
const cfg = tinyModel({ dropout: 0.1 });
console.log(
  JSON.stringify({
    adapter: gpu.adapter,
    forward: await compareForward(tinyModel(), gpu),
    pretrain: await compareStep(cfg, gpu, mdlmBatch(cfg, 3, 5)),
    distill: await compareStep(cfg, gpu, distillBatch(cfg, 9)),
  }),
);
