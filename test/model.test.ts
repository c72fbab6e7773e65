import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { ModelConfig } from '../src/shared/config.ts';
import { createInferenceModel } from '../src/engine/model/inference.ts';
import { initParams, paramCount, paramLayout } from '../src/engine/model/paramLayout.ts';
import { maxAbsDiff, noisyParams, randomTokens as tokens, tinyModel, useWasmBackend } from './helpers/fixtures.ts';

useWasmBackend();

const mdlm = tinyModel();
const ar = tinyModel({ arch: 'ar', seqLen: 12, maskId: -1, eosId: 10 });

test('paramLayout: MDLM DiT names, PyTorch [out, in] shapes, contiguous offsets', () => {
  const l = paramLayout(mdlm);
  const names = l.map((e) => e.name);
  assert.deepEqual(names.slice(0, 10), [
    'backbone.vocab_embed.embedding',
    'backbone.blocks.0.norm1.weight',
    'backbone.blocks.0.attn_qkv.weight',
    'backbone.blocks.0.attn_out.weight',
    'backbone.blocks.0.norm2.weight',
    'backbone.blocks.0.mlp.0.weight',
    'backbone.blocks.0.mlp.0.bias',
    'backbone.blocks.0.mlp.2.weight',
    'backbone.blocks.0.mlp.2.bias',
    'backbone.blocks.0.modulation',
  ]);
  assert.deepEqual(names.slice(-4), [
    'backbone.output_layer.norm_final.weight',
    'backbone.output_layer.modulation',
    'backbone.output_layer.linear.weight',
    'backbone.output_layer.linear.bias',
  ]);
  const shape = (n: string) => l.find((e) => e.name === n)!.shape;
  assert.deepEqual(shape('backbone.vocab_embed.embedding'), [11, 16]);
  assert.deepEqual(shape('backbone.blocks.1.attn_qkv.weight'), [48, 16]);
  assert.deepEqual(shape('backbone.blocks.1.mlp.0.weight'), [64, 16]);
  assert.deepEqual(shape('backbone.blocks.1.mlp.2.weight'), [16, 64]);
  assert.deepEqual(shape('backbone.blocks.1.modulation'), [6, 16]);
  assert.deepEqual(shape('backbone.output_layer.linear.weight'), [11, 16]);
  let off = 0;
  for (const e of l) {
    assert.equal(e.offset, off, e.name);
    assert.equal(
      e.size,
      e.shape.reduce((a, b) => a * b, 1),
    );
    off += e.size;
  }
  assert.equal(paramCount(mdlm), off);
  // bench-5m size as the torch peer counts it (+ LN/modulation differences): sanity on the order of magnitude.
  const bench = ModelConfig.parse({
    arch: 'mdlm',
    vocabSize: 4097,
    dModel: 256,
    nLayers: 4,
    nHeads: 4,
    seqLen: 128,
    maskId: 4096,
    eosId: 4095,
  });
  assert.equal(paramCount(bench), 5261569);
});

test('initParams is deterministic: N(0, 0.02) matrices, LN weights 1, modulation/biases/head 0', () => {
  const a = initParams(mdlm, 3);
  assert.deepEqual(a, initParams(mdlm, 3));
  assert.notDeepEqual(a, initParams(mdlm, 4));
  const get = (n: string) => {
    const e = paramLayout(mdlm).find((x) => x.name === n)!;
    return a.subarray(e.offset, e.offset + e.size);
  };
  assert.ok(get('backbone.blocks.0.norm1.weight').every((v) => v === 1));
  assert.ok(get('backbone.blocks.1.modulation').every((v) => v === 0));
  assert.ok(get('backbone.output_layer.linear.weight').every((v) => v === 0));
  assert.ok(get('backbone.output_layer.linear.bias').every((v) => v === 0));
  const qkv = get('backbone.blocks.0.attn_qkv.weight');
  const std = Math.sqrt(qkv.reduce((s, v) => s + v * v, 0) / qkv.length);
  assert.ok(std > 0.015 && std < 0.025, `std ${std}`);
});

test('fresh model: zero head gives exactly uniform (zero) logits', async () => {
  const m = createInferenceModel(mdlm, initParams(mdlm, 0));
  const out = await m.logits(tokens(2 * 8, 11, 1), 2);
  assert.equal(out.length, 2 * 8 * 11);
  assert.ok(out.every((v) => v === 0));
  m.dispose();
});

test('mdlm denoiser is non-causal, ar model is causal', async () => {
  const x = tokens(8, 10, 2);
  const y = Int32Array.from(x);
  y[7] = (y[7] + 1) % 10;
  const m = createInferenceModel(mdlm, noisyParams(mdlm, 1));
  const [a, b] = [await m.logits(x, 1), await m.logits(y, 1)];
  assert.ok(maxAbsDiff(a.subarray(0, 11), b.subarray(0, 11)) > 1e-4, 'position 0 must see position 7');
  m.dispose();
  const c = createInferenceModel(ar, noisyParams(ar, 1));
  const [p, q] = [await c.logits(x, 1, 8), await c.logits(y, 1, 8)];
  assert.equal(maxAbsDiff(p.subarray(0, 7 * 11), q.subarray(0, 7 * 11)), 0, 'positions < 7 must not see position 7');
  assert.ok(maxAbsDiff(p.subarray(7 * 11), q.subarray(7 * 11)) > 1e-4);
  c.dispose();
  await assert.rejects(createInferenceModel(mdlm, initParams(mdlm, 0)).logits(tokens(7, 10, 1), 1), /exactly 8 tokens/);
});

test('AR KV-cache session logits equal full-recompute logits', async () => {
  const m = createInferenceModel(ar, noisyParams(ar, 5, 0.2));
  const B = 3;
  const L = 10;
  const x = tokens(B * L, 11, 9);
  const full = await m.logits(x, B, L);
  const s = m.session(B);
  // a 4-token prompt, then one token at a time; RoPE positions continue from the cache length
  const chunks = [4, 1, 1, 2, 1, 1];
  let pos = 0;
  for (const len of chunks) {
    const part = new Int32Array(B * len);
    for (let b = 0; b < B; b++) part.set(x.subarray(b * L + pos, b * L + pos + len), b * len);
    const last = await s.append(part, len);
    pos += len;
    assert.equal(s.length, pos);
    for (let b = 0; b < B; b++) {
      const ref = full.subarray((b * L + pos - 1) * 11, (b * L + pos) * 11);
      assert.ok(maxAbsDiff(last.subarray(b * 11, (b + 1) * 11), ref) < 1e-4, `seq ${b} position ${pos - 1}`);
    }
  }
  s.dispose();
  await assert.rejects(s.append(x.subarray(0, B), 1), /after dispose/);
  m.dispose();
});

test('inference leaks no tensors (logits, sessions, dispose)', async () => {
  const before = tf.memory().numTensors;
  const m = createInferenceModel(ar, noisyParams(ar, 2));
  const loaded = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    await m.logits(tokens(2 * 6, 11, i), 2, 6);
    assert.equal(tf.memory().numTensors, loaded);
    const s = m.session(2);
    await s.append(tokens(2 * 3, 11, i), 3);
    await s.append(tokens(2, 11, i + 1), 1);
    s.dispose();
    assert.equal(tf.memory().numTensors, loaded);
  }
  m.dispose();
  assert.equal(tf.memory().numTensors, before);
  const d = createInferenceModel(mdlm, noisyParams(mdlm, 2));
  for (let i = 0; i < 3; i++) await d.logits(tokens(16, 11, i), 2);
  d.dispose();
  assert.equal(tf.memory().numTensors, before);
  await assert.rejects(d.logits(tokens(16, 11, 0), 2), /after dispose/);
});
