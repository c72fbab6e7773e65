import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { ModelConfig } from '../src/shared/config.ts';
import { DIVERGENCE_NAMES, type DivergenceName } from '../src/shared/distillConfig.ts';
import { TfjsGradientEngine } from '../src/engine/model/gradients.ts';
import { makeShards, type GradBatch } from '../src/engine/model/gradShards.ts';
import { shardLossAndGrads } from '../src/engine/model/shardLoss.ts';
import { subsLogProbs } from '../src/engine/model/mdlm.ts';
import { createInferenceModel } from '../src/engine/model/inference.ts';
import { paramLayout } from '../src/engine/model/paramLayout.ts';
import { Rng } from '../src/engine/rng.ts';
import { divergence } from '../src/engine/sdtt/divergences.ts';
import { assertGradsClose, noisyParams, tinyModel, useGradientEngine } from './helpers/fixtures.ts';

type DistillBatch = Extract<GradBatch, { kind: 'distill' }>;

const cfg = tinyModel();
const fx = useGradientEngine(cfg);
const NOISE = 0.3;

function noisyZt(c: ModelConfig, B: number, seed: number): Int32Array {
  const r = new Rng(seed);
  const zt = Int32Array.from({ length: B * c.seqLen }, () => {
    if (r.uniform() < 0.5) return c.maskId;
    const x = r.int(c.vocabSize - 1);
    return x >= c.maskId ? x + 1 : x;
  });
  zt[0] = c.maskId;
  return zt;
}

/** SUBS log-probs [B*L, V] (float64) of a model with `params` on zt. */
async function subsOf(c: ModelConfig, params: Float32Array, zt: Int32Array, B: number): Promise<Float64Array> {
  const m = createInferenceModel(c, params);
  try {
    return subsLogProbs(await m.logits(zt, B), zt, c.vocabSize, c.maskId);
  } finally {
    m.dispose();
  }
}

/** The masked rows of full [B*L, V] log-probs, as float32 targets in (b, l) order. */
function maskedRows(c: ModelConfig, full: Float64Array, zt: Int32Array): Float32Array {
  const V = c.vocabSize;
  const out: number[] = [];
  for (let i = 0; i < zt.length; i++) if (zt[i] === c.maskId) for (let v = 0; v < V; v++) out.push(full[i * V + v]);
  return Float32Array.from(out);
}

/** A distill batch whose targets come from a second ("teacher") model. */
async function distillBatch(c: ModelConfig, B: number, seed: number, name: DivergenceName): Promise<DistillBatch> {
  const zt = noisyZt(c, B, seed);
  const teacher = await subsOf(c, noisyParams(c, seed + 50, 0.5), zt, B);
  return { kind: 'distill', zt, batch: B, targets: maskedRows(c, teacher, zt), divergence: name };
}

/** The float64 reference: divergence() on the student's own SUBS log-probs, MASK column ignored. */
async function reference(c: ModelConfig, params: Float32Array, b: DistillBatch): Promise<number> {
  const V = c.vocabSize;
  const student = await subsOf(c, params, b.zt, b.batch);
  const teacher = new Float64Array(student.length);
  const mask = Uint8Array.from(b.zt, (x) => (x === c.maskId ? 1 : 0));
  let k = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i]) teacher.set(b.targets.subarray(k * V, ++k * V), i * V);
  return divergence(b.divergence, student, teacher, V, mask, { ignoreColumn: c.maskId });
}

const close = (a: number, b: number, rel: number, msg: string) =>
  assert.ok(Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b)) + 1e-7, `${msg}: ${a} vs ${b}`);

for (const name of DIVERGENCE_NAMES) {
  test(`${name}: engine loss equals the float64 reference (MASK last and in the middle)`, async () => {
    for (const c of [cfg, tinyModel({ maskId: 4 })]) {
      const e = c === cfg ? fx.engine : await TfjsGradientEngine.create(c, { backend: 'wasm', threads: 1 });
      try {
        const p = noisyParams(c, 1, NOISE);
        const b = await distillBatch(c, 3, 2, name);
        const ref = await reference(c, p, b);
        assert.ok(ref > 1e-3, `reference ${ref} should be clearly non-zero`);
        close(await e.evalLoss(p, b), ref, 1e-4, `evalLoss maskId ${c.maskId}`);
        close((await e.computeGradients(p, b, 1)).loss, ref, 1e-4, `computeGradients maskId ${c.maskId}`);
      } finally {
        if (e !== fx.engine) await e.dispose();
      }
    }
  });

  test(`${name}: whole-model gradient matches finite differences`, async () => {
    for (const c of [cfg, tinyModel({ maskId: 4 })]) {
      const p = noisyParams(c, 3, NOISE);
      const shard = makeShards(c, await distillBatch(c, 2, 4, name), 1)[0];
      const g = new Float32Array(p.length);
      shardLossAndGrads(c, p, shard, null, g);
      const r = new Rng(5);
      const q = Float32Array.from(p);
      for (const e of paramLayout(c)) {
        if (!/attn_qkv|mlp\.0\.weight|modulation|embedding|linear\.(weight|bias)/.test(e.name)) continue;
        // embedding: the MASK row (always used); head: a row other than MASK (whose gradient is 0, checked below)
        const row = e.name.endsWith('embedding')
          ? c.maskId
          : e.name.endsWith('linear.weight')
            ? (c.maskId + 1) % c.vocabSize
            : -1;
        const i = row >= 0 ? e.offset + row * 16 + r.int(16) : e.offset + r.int(e.size);
        const h = 1e-2;
        q[i] = p[i] + h;
        const lp = shardLossAndGrads(c, q, shard, null, null);
        q[i] = p[i] - h;
        const lm = shardLossAndGrads(c, q, shard, null, null);
        q[i] = p[i];
        const fd = (lp - lm) / (2 * h);
        assert.ok(
          Math.abs(fd - g[i]) <= 3e-2 * Math.max(Math.abs(fd), Math.abs(g[i])) + 3e-4,
          `maskId ${c.maskId} ${e.name}[${i - e.offset}]: finite difference ${fd} vs gradient ${g[i]}`,
        );
      }
      // the MASK head row never gets a gradient
      const head = paramLayout(c).find((e) => e.name === 'backbone.output_layer.linear.weight')!;
      assert.ok(g.subarray(head.offset + c.maskId * 16, head.offset + (c.maskId + 1) * 16).every((v) => v === 0));
    }
  });
}

test('student == teacher (dropout 0): loss 0 and ~zero gradients for every divergence', async () => {
  const p = noisyParams(cfg, 7, NOISE);
  const zt = noisyZt(cfg, 3, 8);
  const targets = maskedRows(cfg, await subsOf(cfg, p, zt, 3), zt);
  for (const name of DIVERGENCE_NAMES) {
    const { loss, grads } = await fx.engine.computeGradients(
      p,
      { kind: 'distill', zt, batch: 3, targets, divergence: name },
      1,
    );
    assert.ok(Math.abs(loss) < 1e-6, `${name}: loss ${loss}`);
    let gmax = 0;
    for (const v of grads) gmax = Math.max(gmax, Math.abs(v));
    assert.ok(gmax < 1e-5, `${name}: max |grad| ${gmax}`);
  }
});

test('threads=2 equals threads=1 (odd batch: unequal shards and masked counts, pooled 1/|S|)', async () => {
  const dp = await TfjsGradientEngine.create(cfg, { backend: 'wasm', threads: 2 });
  try {
    const p = noisyParams(cfg, 9, NOISE);
    for (const name of ['kld', 'tvd'] as const) {
      const b = await distillBatch(cfg, 5, 10, name);
      const saved = Float32Array.from(b.targets);
      const one = await fx.engine.computeGradients(p, b, 1);
      const two = await dp.computeGradients(p, b, 1);
      close(two.loss, one.loss, 1e-5, `${name} loss`);
      close(two.loss, await reference(cfg, p, b), 1e-4, `${name} vs reference`);
      let scale = 0;
      for (const v of one.grads) scale = Math.max(scale, Math.abs(v));
      for (let i = 0; i < p.length; i++)
        assert.ok(
          Math.abs(two.grads[i] - one.grads[i]) < 1e-4 * scale,
          `${name} grad ${i}: ${two.grads[i]} vs ${one.grads[i]}`,
        );
      close(await dp.evalLoss(p, b), one.loss, 1e-5, `${name} evalLoss`);
      // the caller's targets survive (per-shard copies are moved to the workers, never the caller's array)
      assert.deepEqual(b.targets, saved);
    }
    const bad = await distillBatch(cfg, 3, 11, 'kld');
    bad.targets[5 * cfg.vocabSize + 2] = NaN;
    assert.ok(!Number.isFinite((await dp.computeGradients(p, bad, 1)).loss));
  } finally {
    await dp.dispose();
  }
});

test('an injected NaN in the targets gives a non-finite loss, for every divergence', async () => {
  const p = noisyParams(cfg, 12, NOISE);
  for (const name of DIVERGENCE_NAMES) {
    const b = await distillBatch(cfg, 2, 13, name);
    b.targets[cfg.vocabSize + 3] = NaN; // second masked row, a non-MASK column
    assert.ok(!Number.isFinite((await fx.engine.computeGradients(p, b, 1)).loss), name);
    assert.ok(!Number.isFinite(await fx.engine.evalLoss(p, b)), name);
  }
});

test('-1e6 / -Infinity target entries do not produce NaN where a probability is 0', async () => {
  const p = noisyParams(cfg, 14, NOISE);
  const b = await distillBatch(cfg, 2, 15, 'kl-fwd');
  for (let r = 0; r < b.targets.length / cfg.vocabSize; r++) b.targets[r * cfg.vocabSize + cfg.maskId] = -Infinity;
  for (const name of ['kl-fwd', 'tvd', 'kld', 'mse', 'tvd-log-l1'] as const) {
    const r = await fx.engine.computeGradients(p, { ...b, divergence: name }, 1);
    assert.ok(Number.isFinite(r.loss), `${name}: ${r.loss}`);
    assert.ok(r.grads.every(Number.isFinite), name);
  }
});

test('nothing masked: loss 0 and zero gradients', async () => {
  const zt = noisyZt(cfg, 2, 16).map((x) => (x === cfg.maskId ? 1 : x));
  const r = await fx.engine.computeGradients(
    noisyParams(cfg, 2, NOISE),
    { kind: 'distill', zt, batch: 2, targets: new Float32Array(0), divergence: 'kld' },
    1,
  );
  assert.equal(r.loss, 0);
  assert.ok(r.grads.every((v) => v === 0));
});

test('train mode: dropout deterministic per seed, evalLoss without dropout', async () => {
  const dcfg = tinyModel({ dropout: 0.3 });
  const e = await TfjsGradientEngine.create(dcfg, { backend: 'wasm', threads: 1 });
  try {
    const p = noisyParams(dcfg, 17, NOISE);
    const b = await distillBatch(dcfg, 2, 18, 'kld');
    const a1 = await e.computeGradients(p, b, 3);
    const a2 = await e.computeGradients(p, b, 3);
    const c = await e.computeGradients(p, b, 4);
    assert.deepEqual(a1.grads, a2.grads);
    assert.notEqual(a1.loss, c.loss);
    close(await e.evalLoss(p, b), await reference(dcfg, p, b), 1e-4, 'evalLoss = dropout-free reference');
  } finally {
    await e.dispose();
  }
});

test('no tensor leak across distill steps; malformed batches are rejected', async () => {
  const p = noisyParams(cfg, 19, NOISE);
  const b = await distillBatch(cfg, 2, 20, 'kld');
  await fx.engine.computeGradients(p, b, 1);
  const n = tf.memory().numTensors;
  for (const name of DIVERGENCE_NAMES) {
    await fx.engine.computeGradients(p, { ...b, divergence: name }, 2);
    await fx.engine.evalLoss(p, { ...b, divergence: name });
    assert.equal(tf.memory().numTensors, n, name);
  }
  await assert.rejects(
    fx.engine.computeGradients(p, { ...b, targets: b.targets.subarray(1) }, 1),
    /targets has \d+ values, expected \d+ masked positions x 11/,
  );
  const ar = tinyModel({ arch: 'ar', maskId: -1 });
  assert.throws(() => makeShards(ar, b, 1), /needs an mdlm model/);
});

test('large shards run in chunks (512 tokens): same loss as the reference and as two unchunked shards', async () => {
  const p = noisyParams(cfg, 21, NOISE);
  const b = await distillBatch(cfg, 100, 22, 'kld'); // in-process: chunks of 64 + 36 sequences
  const whole = await fx.engine.computeGradients(p, b, 0);
  close(whole.loss, await reference(cfg, p, b), 1e-4, 'chunked vs reference');
  const dp = await TfjsGradientEngine.create(cfg, { backend: 'wasm', threads: 2 }); // 50 + 50: no chunking
  try {
    const split = await dp.computeGradients(p, b, 0);
    close(split.loss, whole.loss, 1e-5, 'loss');
    assertGradsClose(whole.grads, split.grads, p.length);
  } finally {
    await dp.dispose();
  }
});
