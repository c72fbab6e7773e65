import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { ModelConfig } from '../src/shared/config.ts';
import { TfjsGradientEngine } from '../src/engine/model/gradients.ts';
import { makeShards, type GradBatch } from '../src/engine/model/gradShards.ts';
import { shardLossAndGrads } from '../src/engine/model/shardLoss.ts';
import { initParams, paramLayout } from '../src/engine/model/paramLayout.ts';
import { AdamW } from '../src/engine/training/optim.ts';
import { Rng } from '../src/engine/rng.ts';
import { assertGradsClose, noisyParams, tinyModel, useGradientEngine } from './helpers/fixtures.ts';

const mdlm = tinyModel();
const ar = tinyModel({ arch: 'ar', maskId: -1 });
const fx = useGradientEngine(mdlm);

function mdlmBatch(cfg: ModelConfig, B: number, seed: number, tMax = 0.95): Extract<GradBatch, { kind: 'mdlm' }> {
  const r = new Rng(seed);
  const L = cfg.seqLen;
  const x0 = Int32Array.from({ length: B * L }, () => {
    let x = r.int(cfg.vocabSize - 1);
    if (x >= cfg.maskId) x++; // any non-MASK id, wherever MASK sits
    return x;
  });
  const t = Float32Array.from({ length: B }, (_, b) => 0.2 + ((tMax - 0.2) * b) / Math.max(1, B - 1));
  const zt = x0.map((x, i) => (r.uniform() < t[Math.floor(i / L)] ? cfg.maskId : x));
  zt[0] = cfg.maskId; // at least one masked position
  return { kind: 'mdlm', x0, zt, t, batch: B };
}
const arBatch = (cfg: ModelConfig, B: number, seed: number): GradBatch => {
  const r = new Rng(seed);
  return { kind: 'ar', tokens: Int32Array.from({ length: B * cfg.seqLen }, () => r.int(cfg.vocabSize)), batch: B };
};

/** Whole-model gradient vs central differences (float32 forward, so h is large and the tolerance loose). */
function checkFiniteDifferences(cfg: ModelConfig, batch: GradBatch): void {
  const p = noisyParams(cfg, 1);
  const shard = makeShards(cfg, batch, 1)[0];
  const g = new Float32Array(p.length);
  shardLossAndGrads(cfg, p, shard, null, g);
  const r = new Rng(3);
  const q = Float32Array.from(p);
  let checked = 0;
  for (const e of paramLayout(cfg)) {
    for (let k = 0; k < 2; k++) {
      const i = e.offset + r.int(e.size);
      const h = 1e-2;
      q[i] = p[i] + h;
      const lp = shardLossAndGrads(cfg, q, shard, null, null);
      q[i] = p[i] - h;
      const lm = shardLossAndGrads(cfg, q, shard, null, null);
      q[i] = p[i];
      const fd = (lp - lm) / (2 * h);
      assert.ok(
        Math.abs(fd - g[i]) <= 2e-2 * Math.max(Math.abs(fd), Math.abs(g[i])) + 3e-4,
        `${e.name}[${i - e.offset}]: finite difference ${fd} vs gradient ${g[i]}`,
      );
      checked++;
    }
  }
  assert.ok(checked >= 2 * paramLayout(cfg).length);
}

test('mdlm: whole-model gradient matches finite differences (every tensor)', () => {
  checkFiniteDifferences(mdlm, mdlmBatch(mdlm, 3, 1));
});

test('mdlm with MASK in the middle of the vocabulary: gradient matches finite differences, MASK row gets 0', () => {
  const cfg = tinyModel({ maskId: 4 });
  const batch = mdlmBatch(cfg, 2, 2);
  checkFiniteDifferences(cfg, batch);
  const g = new Float32Array(initParams(cfg, 0).length);
  shardLossAndGrads(cfg, noisyParams(cfg, 1), makeShards(cfg, batch, 1)[0], null, g);
  const head = paramLayout(cfg).find((e) => e.name === 'backbone.output_layer.linear.weight')!;
  assert.ok(g.subarray(head.offset + 4 * 16, head.offset + 5 * 16).every((v) => v === 0));
});

test('ar: whole-model gradient matches finite differences (every tensor)', () => {
  checkFiniteDifferences(ar, arBatch(ar, 2, 4));
});

test('mdlm loss of the zero-head model = sum over masked of log(V-1)/t, over B*L', async () => {
  const batch = mdlmBatch(mdlm, 4, 5);
  let expected = 0;
  for (let i = 0; i < batch.zt.length; i++)
    if (batch.zt[i] === mdlm.maskId) expected += Math.log(mdlm.vocabSize - 1) / batch.t[Math.floor(i / mdlm.seqLen)];
  expected /= 4 * mdlm.seqLen;
  const params = initParams(mdlm, 0);
  const loss = await fx.engine.evalLoss(params, batch);
  assert.ok(Math.abs(loss - expected) < 1e-5 * expected, `${loss} vs ${expected}`);
  const { loss: l2, grads } = await fx.engine.computeGradients(params, batch, 1);
  assert.ok(Math.abs(l2 - expected) < 1e-5 * expected);
  assert.equal(grads.length, params.length);
  // carry-over only: nothing masked => loss 0 and zero gradient
  const none = { ...batch, zt: batch.x0 };
  const r = await fx.engine.computeGradients(noisyParams(mdlm, 2), none, 1);
  assert.equal(r.loss, 0);
  assert.ok(r.grads.every((v) => v === 0));
});

test('ar loss of the zero-head model is log(V)', async () => {
  const e = await TfjsGradientEngine.create(ar, { backend: 'wasm', threads: 1 });
  const loss = await e.evalLoss(initParams(ar, 0), arBatch(ar, 3, 1));
  assert.ok(Math.abs(loss - Math.log(ar.vocabSize)) < 1e-6);
  await e.dispose();
});

test('data parallel: threads=2 gives the threads=1 loss and gradients, deterministically', async () => {
  const p = noisyParams(mdlm, 7);
  const batch = mdlmBatch(mdlm, 5, 8); // odd batch: unequal shards
  const one = await fx.engine.computeGradients(p, batch, 1);
  const dp = await TfjsGradientEngine.create(mdlm, { backend: 'wasm', threads: 2 });
  try {
    assert.equal(dp.threads, 2);
    assert.equal(dp.backend, 'wasm');
    const two = await dp.computeGradients(p, batch, 1);
    assert.ok(Math.abs(two.loss - one.loss) < 1e-5 * one.loss);
    let scale = 0;
    for (const v of one.grads) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < p.length; i++)
      assert.ok(Math.abs(two.grads[i] - one.grads[i]) < 1e-4 * scale, `grad ${i}: ${two.grads[i]} vs ${one.grads[i]}`);
    const again = await dp.computeGradients(p, batch, 1);
    assert.deepEqual(again.grads, two.grads);
    assert.equal(again.loss, two.loss);
    assert.ok(Math.abs((await dp.evalLoss(p, batch)) - one.loss) < 1e-5 * one.loss);
  } finally {
    await dp.dispose();
  }
});

test('dropout: same seed => same gradients, other seed => different; evalLoss has no dropout', async () => {
  const cfg = tinyModel({ dropout: 0.3 });
  const e = await TfjsGradientEngine.create(cfg, { backend: 'wasm', threads: 1 });
  const p = noisyParams(cfg, 3);
  const batch = mdlmBatch(cfg, 2, 3);
  const a = await e.computeGradients(p, batch, 11);
  const b = await e.computeGradients(p, batch, 11);
  const c = await e.computeGradients(p, batch, 12);
  assert.deepEqual(a.grads, b.grads);
  assert.notDeepEqual(a.grads, c.grads);
  assert.ok(Math.abs((await e.evalLoss(p, batch)) - (await fx.engine.evalLoss(p, batch))) < 1e-6);
  await e.dispose();
});

test('no tensor leaks across training steps', async () => {
  const p = noisyParams(mdlm, 4);
  await fx.engine.computeGradients(p, mdlmBatch(mdlm, 2, 1), 1);
  const n = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    await fx.engine.computeGradients(p, mdlmBatch(mdlm, 2, i), i);
    await fx.engine.evalLoss(p, mdlmBatch(mdlm, 2, i));
    assert.equal(tf.memory().numTensors, n);
  }
});

test('a tiny model overfits a few sequences with Adam', async () => {
  // One fixed noisy batch (4 sequences, one mask draw, t <= 0.5): memorising it must drive the loss to ~0.
  // (A fully masked sequence would have an irreducible loss: without absolute positions every MASK looks alike.)
  const p = initParams(mdlm, 0);
  const adam = new AdamW(p.length, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
  const batch = mdlmBatch(mdlm, 4, 21, 0.5);
  const first = await fx.engine.evalLoss(p, batch);
  for (let i = 0; i < 100; i++) {
    const { grads } = await fx.engine.computeGradients(p, batch, i);
    adam.step(p, grads, 1e-2);
  }
  const last = await fx.engine.evalLoss(p, batch);
  assert.ok(last < 0.05 * first, `loss ${first} -> ${last}`);
});

test('errors reach the caller: bad token ids (in-process and in workers), unavailable backend', async () => {
  const bad = mdlmBatch(mdlm, 2, 1);
  bad.zt = Int32Array.from(bad.zt);
  bad.zt[3] = 99;
  const p = noisyParams(mdlm, 1);
  await assert.rejects(fx.engine.computeGradients(p, bad, 1), /token id 99 at position 3/);
  await assert.rejects(fx.engine.computeGradients(p.subarray(1), mdlmBatch(mdlm, 2, 1), 1), /expected \d+ parameters/);
  const dp = await TfjsGradientEngine.create(mdlm, { backend: 'wasm', threads: 2 });
  try {
    await assert.rejects(dp.computeGradients(p, bad, 1), /token id 99/);
    // the pool survives a failed step
    const ok = await dp.computeGradients(p, mdlmBatch(mdlm, 2, 1), 1);
    assert.ok(Number.isFinite(ok.loss));
  } finally {
    await dp.dispose();
  }
  await assert.rejects(
    TfjsGradientEngine.create(mdlm, { backend: 'tensorflow', threads: 2 }),
    /backend 'tensorflow' is unavailable/,
  );
  // a worker that dies makes later calls fail fast instead of hanging
  const broken = await TfjsGradientEngine.create(mdlm, { backend: 'wasm', threads: 2 });
  const pool = (broken as unknown as { pool: { workers: { worker: { terminate(): Promise<number> } }[] } }).pool;
  await pool.workers[1].worker.terminate();
  await assert.rejects(
    broken.computeGradients(p, mdlmBatch(mdlm, 2, 1), 1),
    /gradient worker pool is broken: gradient worker 1 exited/,
  );
  await broken.dispose();
  await assert.rejects(broken.evalLoss(p, mdlmBatch(mdlm, 2, 1)), /after dispose/);
});

test('ar batches run data-parallel too', async () => {
  const one = await TfjsGradientEngine.create(ar, { backend: 'wasm', threads: 1 });
  const two = await TfjsGradientEngine.create(ar, { backend: 'wasm', threads: 2 });
  try {
    const p = noisyParams(ar, 3);
    const b = arBatch(ar, 3, 2);
    const [a, c] = [await one.computeGradients(p, b, 0), await two.computeGradients(p, b, 0)];
    assert.ok(Math.abs(a.loss - c.loss) < 1e-5 * a.loss);
    let worst = 0;
    for (let i = 0; i < p.length; i++) worst = Math.max(worst, Math.abs(a.grads[i] - c.grads[i]));
    assert.ok(worst < 1e-5, `max grad difference ${worst}`);
  } finally {
    await one.dispose();
    await two.dispose();
  }
});

test('large shards run in chunks (512 tokens) with the same loss and gradients', async () => {
  const p = noisyParams(mdlm, 9);
  const batch = mdlmBatch(mdlm, 100, 9); // 800 tokens: in-process = chunks of 64 + 36 sequences
  const whole = await fx.engine.computeGradients(p, batch, 0);
  const dp = await TfjsGradientEngine.create(mdlm, { backend: 'wasm', threads: 2 }); // 50 + 50: no chunking
  try {
    const split = await dp.computeGradients(p, batch, 0);
    assert.ok(Math.abs(whole.loss - split.loss) < 1e-5 * whole.loss);
    assertGradsClose(whole.grads, split.grads, p.length);
  } finally {
    await dp.dispose();
  }
});
