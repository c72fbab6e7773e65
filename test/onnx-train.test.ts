// The ONNX training step (onnx/trainGraph.ts + trainSession.ts) against the tfjs TfjsGradientEngine, which is itself
// checked against finite differences in gradients.test.ts: same loss, same gradient for every parameter tensor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ModelConfig } from '../src/shared/config.ts';
import { TfjsGradientEngine } from '../src/engine/model/gradients.ts';
import type { GradBatch } from '../src/engine/model/gradShards.ts';
import { loadOnnxRuntime } from '../src/engine/onnx/runtime.ts';
import { OnnxGradientEngine } from '../src/engine/onnx/trainSession.ts';
import { paramLayout } from '../src/engine/model/paramLayout.ts';
import { Rng } from '../src/engine/rng.ts';
import { mdlmBatch, noisyParams, randomTokens, teacherRows, tinyModel, useWasmBackend } from './helpers/fixtures.ts';
import { requirement } from './helpers/requirements.ts';

const ort = await loadOnnxRuntime();
// Skips outside CI only; under CI=true (.ci/run installs onnxruntime-node) its absence fails each test.
const ORT = requirement(ort.ort ? false : `onnxruntime-node is not installed (${ort.reason})`);
const skip = ORT.skip;
useWasmBackend();

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 1e-5 * Math.abs(b), `${what} ${a} vs ${b}`);

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

/** Both engines on the same params and batch (dropout seed 5): loss, gradients and eval loss agree; `extra` gets the onnx engine and its loss. */
async function compareEngines(
  cfg: ModelConfig,
  batch: GradBatch,
  opts: { threads?: number; extra?: (onnx: OnnxGradientEngine, loss: number) => Promise<void> } = {},
): Promise<void> {
  const onnx = await OnnxGradientEngine.create(cfg, { threads: opts.threads ?? 1 });
  const tfjs = await TfjsGradientEngine.create(cfg, { backend: 'wasm', threads: 1 });
  try {
    const params = noisyParams(cfg, 7);
    const ref = await tfjs.computeGradients(params, batch, 5);
    const got = await onnx.computeGradients(params, batch, 5);
    close(got.loss, ref.loss, 'loss');
    assertSameGradients(cfg, ref.grads, got.grads);
    close(await onnx.evalLoss(params, batch), await tfjs.evalLoss(params, batch), 'eval loss');
    await opts.extra?.(onnx, got.loss);
  } finally {
    await onnx.dispose();
    await tfjs.dispose();
  }
}

test("mdlm: the onnx training step gives the tfjs engine's loss and gradients", { skip }, async () => {
  ORT.check();
  const cfg = tinyModel();
  await compareEngines(cfg, mdlmBatch(cfg, 3, 5));
});

test("ar: the onnx training step gives the tfjs engine's loss and gradients", { skip }, async () => {
  ORT.check();
  const cfg = tinyModel({ arch: 'ar', maskId: -1 });
  await compareEngines(cfg, { kind: 'ar', tokens: randomTokens(3 * cfg.seqLen, cfg.vocabSize, 5), batch: 3 });
});

test(
  'mdlm with dropout: same masks, loss and gradients as the tfjs engine; eval mode drops nothing',
  { skip },
  async () => {
    ORT.check();
    const cfg = tinyModel({ dropout: 0.3 });
    const batch = mdlmBatch(cfg, 3, 6);
    await compareEngines(cfg, batch, {
      extra: async (onnx, loss) =>
        assert.notEqual(
          (await onnx.computeGradients(noisyParams(cfg, 7), batch, 6)).loss,
          loss,
          'another dropout seed gives other masks',
        ),
    });
  },
);

for (const divergence of ['kld', 'mse', 'tvd'] as const) {
  test(
    `distill (${divergence}, student dropout): the onnx logits -> host divergence -> backprop step matches the tfjs engine`,
    { skip },
    async () => {
      ORT.check();
      const cfg = tinyModel({ dropout: 0.1 });
      const m = mdlmBatch(cfg, 3, 7);
      // teacher rows: any log-softmax over V with the MASK column at -1e6, one row per masked position
      const targets = teacherRows(cfg, m.zt, new Rng(11));
      await compareEngines(cfg, { kind: 'distill', zt: m.zt, batch: 3, targets, divergence }, { threads: 2 });
    },
  );
}

test('a batch of several onnx chunks (1024 tokens each) sums to the same loss and gradients', { skip }, async () => {
  ORT.check();
  const cfg = tinyModel(); // L 8: 128 sequences per chunk, so 300 sequences run as 3 chunks
  await compareEngines(cfg, mdlmBatch(cfg, 300, 12), { threads: 2 });
});

test(
  'createGradientEngine: auto trains on onnxruntime here, a named tfjs backend on tfjs, onnx + a tfjs backend is an error',
  { skip },
  async () => {
    ORT.check();
    const { createGradientEngine } = await import('../src/engine/training/gradientEngine.ts');
    const cfg = tinyModel();
    const auto = await createGradientEngine(cfg, { backend: 'auto', threads: 2 });
    assert.equal(auto.backend, 'onnx');
    assert.match(auto.device, /^onnxruntime-node .*2 threads/);
    await auto.dispose();
    const wasm = await createGradientEngine(cfg, { backend: 'wasm', threads: 1 });
    assert.equal(wasm.backend, 'wasm');
    await wasm.dispose();
    await assert.rejects(
      createGradientEngine(cfg, { backend: 'wasm', threads: 1, runtime: 'onnx' }),
      /cannot be combined with --backend wasm/,
    );
  },
);
