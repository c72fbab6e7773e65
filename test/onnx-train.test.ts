// The ONNX training step (onnx/trainGraph.ts + trainSession.ts) against the tfjs GradientEngine, which is itself
// checked against finite differences in gradients.test.ts: same loss, same gradient for every parameter tensor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ModelConfig } from '../src/shared/config.ts';
import type { GradBatch } from '../src/worker/engine/gradients.ts';
import { loadOnnxRuntime } from '../src/worker/engine/onnx/runtime.ts';
import { OnnxGradientEngine } from '../src/worker/engine/onnx/trainSession.ts';
import { paramLayout } from '../src/worker/engine/paramLayout.ts';
import { Rng } from '../src/worker/engine/rng.ts';
import { antitheticTimes, forwardMask } from '../src/worker/engine/mdlm.ts';
import { GradientEngine } from '../src/worker/engine/gradients.ts';
import { noisyParams, randomTokens, tinyModel, useWasmBackend } from './helpers/fixtures.ts';

const ort = await loadOnnxRuntime();
const skip = ort.ort ? false : `onnxruntime-node is not installed (${ort.reason})`;

function mdlmBatch(cfg: ModelConfig, B: number, seed: number): GradBatch {
  const r = new Rng(seed);
  const x0 = randomTokens(B * cfg.seqLen, cfg.vocabSize - 1, seed); // ids below MASK (the last id)
  const t = antitheticTimes(B, 1e-3, r);
  return { kind: 'mdlm', x0, zt: forwardMask(x0, t, cfg.seqLen, cfg.maskId, r), t, batch: B };
}

/** Per tensor: max |a − b| < 2e-4 · max |a| (float32 sums in a different order). */
function assertSameGradients(cfg: ModelConfig, a: Float32Array, b: Float32Array): void {
  for (const e of paramLayout(cfg)) {
    let scale = 0;
    let worst = 0;
    for (let i = e.offset; i < e.offset + e.size; i++) {
      scale = Math.max(scale, Math.abs(a[i]));
      worst = Math.max(worst, Math.abs(a[i] - b[i]));
    }
    assert.ok(scale > 0, `${e.name}: the reference gradient is all zero, the check would be empty`);
    assert.ok(worst <= 2e-4 * scale, `${e.name}: max difference ${worst} (scale ${scale})`);
  }
}

useWasmBackend();
for (const arch of ['mdlm', 'ar'] as const) {
  const cfg = tinyModel(arch === 'ar' ? { arch: 'ar', maskId: -1 } : {});
  test(`${arch}: the onnx training step gives the tfjs engine's loss and gradients`, { skip }, async () => {
    const onnx = await OnnxGradientEngine.create(cfg, { threads: 1 });
    const tfjs = await GradientEngine.create(cfg, { backend: 'wasm', threads: 1 });
    try {
      const params = noisyParams(cfg, 7);
      const batch: GradBatch = arch === 'ar' ? { kind: 'ar', tokens: randomTokens(3 * cfg.seqLen, cfg.vocabSize, 5), batch: 3 } : mdlmBatch(cfg, 3, 5);
      const ref = await tfjs.computeGradients(params, batch, 1);
      const got = await onnx.computeGradients(params, batch, 1);
      assert.ok(Math.abs(got.loss - ref.loss) <= 1e-5 * Math.abs(ref.loss), `loss ${got.loss} vs ${ref.loss}`);
      assertSameGradients(cfg, ref.grads, got.grads);
      assert.ok(Math.abs((await onnx.evalLoss(params, batch)) - ref.loss) <= 1e-5 * Math.abs(ref.loss));
    } finally {
      await onnx.dispose();
      await tfjs.dispose();
    }
  });
}

test('mdlm with dropout: same masks, loss and gradients as the tfjs engine; eval mode drops nothing', { skip }, async () => {
  const cfg = tinyModel({ dropout: 0.3 });
  const onnx = await OnnxGradientEngine.create(cfg, { threads: 1 });
  const tfjs = await GradientEngine.create(cfg, { backend: 'wasm', threads: 1 });
  try {
    const params = noisyParams(cfg, 8);
    const batch = mdlmBatch(cfg, 3, 6);
    const ref = await tfjs.computeGradients(params, batch, 42);
    const got = await onnx.computeGradients(params, batch, 42);
    assert.ok(Math.abs(got.loss - ref.loss) <= 1e-5 * Math.abs(ref.loss), `loss ${got.loss} vs ${ref.loss}`);
    assertSameGradients(cfg, ref.grads, got.grads);
    const other = await onnx.computeGradients(params, batch, 43);
    assert.notEqual(other.loss, got.loss, 'another dropout seed gives other masks');
    const evalRef = await tfjs.evalLoss(params, batch);
    assert.ok(Math.abs((await onnx.evalLoss(params, batch)) - evalRef) <= 1e-5 * evalRef);
  } finally {
    await onnx.dispose();
    await tfjs.dispose();
  }
});

for (const divergence of ['kld', 'mse', 'tvd'] as const) {
  test(`distill (${divergence}, student dropout): the onnx logits -> host divergence -> backprop step matches the tfjs engine`, { skip }, async () => {
    const cfg = tinyModel({ dropout: 0.1 });
    const onnx = await OnnxGradientEngine.create(cfg, { threads: 2 });
    const tfjs = await GradientEngine.create(cfg, { backend: 'wasm', threads: 1 });
    try {
      const params = noisyParams(cfg, 9);
      const m = mdlmBatch(cfg, 3, 7) as Extract<GradBatch, { kind: 'mdlm' }>;
      // teacher rows: any log-softmax over V with the MASK column at -1e6, one row per masked position
      const r = new Rng(11);
      const masked = m.zt.filter((x) => x === cfg.maskId).length;
      const V = cfg.vocabSize;
      const targets = new Float32Array(masked * V);
      for (let i = 0; i < masked; i++) {
        const row = Array.from({ length: V }, () => 2 * r.normal());
        row[cfg.maskId] = -Infinity;
        const lse = Math.log(row.reduce((a, x) => a + Math.exp(x), 0));
        row.forEach((x, v) => (targets[i * V + v] = v === cfg.maskId ? -1e6 : x - lse));
      }
      const batch: GradBatch = { kind: 'distill', zt: m.zt, batch: 3, targets, divergence };
      const ref = await tfjs.computeGradients(params, batch, 5);
      const got = await onnx.computeGradients(params, batch, 5);
      assert.ok(Math.abs(got.loss - ref.loss) <= 1e-5 * Math.abs(ref.loss), `loss ${got.loss} vs ${ref.loss}`);
      assertSameGradients(cfg, ref.grads, got.grads);
    } finally {
      await onnx.dispose();
      await tfjs.dispose();
    }
  });
}
