// The DiT-style denoiser (docs/design/sdtt.md §2), without time conditioning, and its causal twin for the AR baseline.
//   x = Embed(tokens)
//   per block: x += gate1 * Dropout(Attn(mod(LN(x), shift1, scale1)));  x += gate2 * Dropout(MLP(mod(LN(x), shift2, scale2)))
//   out = Linear(mod(LN(x), shift, scale))           mod(h) = h * (1 + scale) + shift
// LN is weight-only; attention is bias-free with RoPE on q, k (non-causal for 'mdlm', causal for 'ar'); the MLP is
// d -> mlpRatio*d -> d with bias and tanh-GELU; the head is an untied Linear(d, V) with bias, zero-initialised.
// The modulation vectors (shift/scale/gate) start at 0, so every block starts as the identity and the output as
// uniform logits, like MDLM's adaLN-zero.
//
// Parameters live in ONE flat Float32Array (optimiser, EMA, checkpoints and data parallelism all use it) laid out
// by paramLayout() (paramLayout.ts), matrices in the PyTorch layout [out, in]. The engine transposes each matrix
// once per step (host, blocked) to get the [in, out] operand of its untransposed forward matMul; the backward uses
// the stored layout directly.
//
// This file holds the weights and the forward pass; the backward is in backward.ts, the dropout masks in
// dropout.ts and the inference wrapper (createInferenceModel, KV cache) in inference.ts.
import * as tf from '@tensorflow/tfjs-core';
import type { ModelConfig } from '../../shared/config.ts';
import { layoutMap } from './paramLayout.ts';
import type { Rng } from '../rng.ts';
import { dropoutMask } from './dropout.ts';
import {
  attentionFwd,
  geluFwd,
  linear,
  lnModFwd,
  ropeFwd,
  transposeHost,
  type AttnSaved,
  type LnSaved,
  type RopeTables,
  type T,
  type T2,
} from './kernels.ts';

// ---------------------------------------------------------------------------------------------------------------
// Device-side weights

export interface BlockWeights {
  norm1: T;
  shift1: T;
  scale1: T;
  gate1: T;
  norm2: T;
  shift2: T;
  scale2: T;
  gate2: T;
  wq: T2;
  wk: T2;
  wv: T2; // [d, d] forward operands ([in, out])
  wo: T2;
  w0: T2;
  b0: T;
  w2: T2;
  b2: T;
  // stored [out, in] layout, only uploaded when a backward pass will run
  wqkvT?: T2;
  woT?: T2;
  w0T?: T2;
  w2T?: T2;
}

export interface Weights {
  blocks: BlockWeights[];
  normf: T;
  shiftf: T;
  scalef: T;
  head: T2; // [d, Vh]
  headB: T; // [Vh]
  headT?: T2; // [Vh, d]
  /** Vocabulary id left out of the head (SUBS never predicts MASK during training), or -1. */
  excluded: number;
  /** The embedding stays on the host: the forward gathers rows there and its gradient is a host scatter-add. */
  emb: Float32Array;
}

/**
 * Uploads the parameters. `backward` also uploads the [out, in] matrices; `exclude` >= 0 drops that output row
 * of the head (used for MASK in the MDLM loss: its logit is -1e6, so its probability and gradient are exactly 0).
 */
export function uploadWeights(
  cfg: ModelConfig,
  params: Float32Array,
  opts: { backward: boolean; exclude: number },
): Weights {
  const L = layoutMap(cfg);
  const d = cfg.dModel;
  const m = cfg.mlpRatio * d;
  const get = (name: string) => {
    const e = L.get(name)!;
    return params.subarray(e.offset, e.offset + e.size);
  };
  const vec = (a: Float32Array) => tf.tensor1d(a);
  // wasm copies tensor data into its heap at creation, so there one scratch buffer serves every transpose (less
  // GC churn); other backends (cpu) may keep a reference to the array, so they get fresh ones.
  const scratch = tf.getBackend() === 'wasm' ? new Float32Array(Math.max(cfg.vocabSize, m) * d) : null;
  const fwdMat = (a: Float32Array, out: number, inn: number) =>
    tf.tensor2d(transposeHost(a, out, inn, scratch ? scratch.subarray(0, out * inn) : undefined), [inn, out]);
  const blocks: BlockWeights[] = [];
  for (let i = 0; i < cfg.nLayers; i++) {
    const p = `backbone.blocks.${i}.`;
    const mod = get(p + 'modulation');
    const qkv = get(p + 'attn_qkv.weight');
    const wo = get(p + 'attn_out.weight');
    const w0 = get(p + 'mlp.0.weight');
    const w2 = get(p + 'mlp.2.weight');
    const b: BlockWeights = {
      norm1: vec(get(p + 'norm1.weight')),
      norm2: vec(get(p + 'norm2.weight')),
      shift1: vec(mod.subarray(0, d)),
      scale1: vec(mod.subarray(d, 2 * d)),
      gate1: vec(mod.subarray(2 * d, 3 * d)),
      shift2: vec(mod.subarray(3 * d, 4 * d)),
      scale2: vec(mod.subarray(4 * d, 5 * d)),
      gate2: vec(mod.subarray(5 * d, 6 * d)),
      wq: fwdMat(qkv.subarray(0, d * d), d, d),
      wk: fwdMat(qkv.subarray(d * d, 2 * d * d), d, d),
      wv: fwdMat(qkv.subarray(2 * d * d), d, d),
      wo: fwdMat(wo, d, d),
      w0: fwdMat(w0, m, d),
      b0: vec(get(p + 'mlp.0.bias')),
      w2: fwdMat(w2, d, m),
      b2: vec(get(p + 'mlp.2.bias')),
    };
    if (opts.backward) {
      b.wqkvT = tf.tensor2d(qkv, [3 * d, d]);
      b.woT = tf.tensor2d(wo, [d, d]);
      b.w0T = tf.tensor2d(w0, [m, d]);
      b.w2T = tf.tensor2d(w2, [d, m]);
    }
    blocks.push(b);
  }
  const fmod = get('backbone.output_layer.modulation');
  let hw = get('backbone.output_layer.linear.weight');
  let hb = get('backbone.output_layer.linear.bias');
  const V = cfg.vocabSize;
  let Vh = V;
  if (opts.exclude >= 0) {
    // Drop row `exclude` of the [V, d] head (a view when it is the last id, MASK's usual place).
    const x = opts.exclude;
    Vh = V - 1;
    if (x === V - 1) {
      hw = hw.subarray(0, Vh * d);
      hb = hb.subarray(0, Vh);
    } else {
      const w2 = new Float32Array(Vh * d);
      w2.set(hw.subarray(0, x * d));
      w2.set(hw.subarray((x + 1) * d), x * d);
      const b2 = new Float32Array(Vh);
      b2.set(hb.subarray(0, x));
      b2.set(hb.subarray(x + 1), x);
      hw = w2;
      hb = b2;
    }
  }
  return {
    blocks,
    normf: vec(get('backbone.output_layer.norm_final.weight')),
    shiftf: vec(fmod.subarray(0, d)),
    scalef: vec(fmod.subarray(d, 2 * d)),
    head: fwdMat(hw, Vh, d),
    headB: vec(hb),
    headT: opts.backward ? tf.tensor2d(hw, [Vh, d]) : undefined,
    excluded: opts.exclude,
    emb: get('backbone.vocab_embed.embedding'),
  };
}

export function disposeWeights(w: Weights): void {
  const all: T[] = [w.normf, w.shiftf, w.scalef, w.head, w.headB];
  if (w.headT) all.push(w.headT);
  for (const b of w.blocks) for (const t of Object.values(b)) if (t) all.push(t as T);
  tf.dispose(all);
}

// ---------------------------------------------------------------------------------------------------------------
// Forward

/** Host gather of embedding rows -> [N, d] tensor (no device copy of the whole table). */
export function embed(emb: Float32Array, tokens: Int32Array, d: number, vocab: number): T2 {
  const x = new Float32Array(tokens.length * d);
  for (let n = 0; n < tokens.length; n++) {
    const id = tokens[n];
    if (!(id >= 0 && id < vocab))
      throw new Error(`token id ${id} at position ${n} is outside the vocabulary [0, ${vocab})`);
    x.set(emb.subarray(id * d, (id + 1) * d), n * d);
  }
  return tf.tensor2d(x, [tokens.length, d]);
}

export interface BlockSaved {
  ln1: LnSaved;
  a1: T2;
  attn: AttnSaved;
  o: T2;
  hm: T2;
  mask1: T | null;
  ln2: LnSaved;
  a2: T2;
  pre: T2;
  s: T2;
  g: T2;
  h2m: T2;
  mask2: T | null;
}

export interface FwdCtx {
  B: number;
  L: number; // new positions per sequence in this call
  rope: RopeTables;
  attnMask: T | null;
  /** Train-mode dropout on the residual branches: host RNG -> {0, 1/(1-p)} masks. */
  dropout?: { p: number; rng: Rng };
  save: boolean;
  /** KV cache: per layer, the keys/values of earlier positions [B, Lc, H, hd]; replaced by the extended ones. */
  kv?: { k: T | null; v: T | null }[];
}

/** One block. Returns the new residual stream; with ctx.save also everything the backward needs. */
export function blockFwd(
  cfg: ModelConfig,
  w: BlockWeights,
  x: T2,
  ctx: FwdCtx,
  layer: number,
): { x: T2; saved?: BlockSaved } {
  const { B, L } = ctx;
  const H = cfg.nHeads;
  const hd = cfg.dModel / H;
  const N = B * L;
  const drop = ctx.dropout && ctx.dropout.p > 0 ? ctx.dropout : null;
  const mask1 = drop ? dropoutMask(N, cfg.dModel, drop.p, drop.rng) : null;
  const mask2 = drop ? dropoutMask(N, cfg.dModel, drop.p, drop.rng) : null;
  const res = tf.tidy((): tf.TensorContainer => {
    const ln1 = lnModFwd(x, w.norm1, w.shift1, w.scale1);
    const a1 = ln1.y;
    const q = ropeFwd(tf.reshape(linear(a1, w.wq), [B, L, H, hd]), ctx.rope);
    let k = ropeFwd(tf.reshape(linear(a1, w.wk), [B, L, H, hd]), ctx.rope);
    let v = tf.reshape(linear(a1, w.wv), [B, L, H, hd]);
    const cache = ctx.kv?.[layer];
    if (cache) {
      if (cache.k && cache.v) {
        k = tf.concat([cache.k, k], 1);
        v = tf.concat([cache.v, v], 1);
      }
      tf.dispose([cache.k, cache.v] as T[]);
      cache.k = tf.keep(k);
      cache.v = tf.keep(v);
    }
    const at = attentionFwd(q, k, v, ctx.attnMask);
    const h = linear(at.o, w.wo);
    const hm = mask1 ? (tf.mul(h, mask1) as T2) : h;
    const x1 = tf.add(x, tf.mul(hm, w.gate1)) as T2;
    const ln2 = lnModFwd(x1, w.norm2, w.shift2, w.scale2);
    const a2 = ln2.y;
    const pre = linear(a2, w.w0, w.b0);
    const ge = geluFwd(pre);
    const h2 = linear(ge.y, w.w2, w.b2);
    const h2m = mask2 ? (tf.mul(h2, mask2) as T2) : h2;
    const x2 = tf.add(x1, tf.mul(h2m, w.gate2)) as T2;
    if (!ctx.save) return { x: x2 };
    const saved: BlockSaved = {
      ln1: ln1.saved,
      a1,
      attn: at.saved,
      o: at.o,
      hm,
      mask1,
      ln2: ln2.saved,
      a2,
      pre,
      s: ge.s,
      g: ge.y,
      h2m,
      mask2,
    };
    return { x: x2, saved } as unknown as tf.TensorContainer;
  });
  if (!ctx.save) tf.dispose([mask1, mask2].filter((t): t is T2 => t !== null));
  return res as unknown as { x: T2; saved?: BlockSaved };
}

/** Embedding -> blocks -> final LN + modulation. Returns the head input [N, d]. */
export function trunkFwd(
  cfg: ModelConfig,
  w: Weights,
  tokens: Int32Array,
  ctx: FwdCtx,
): { h: T2; saved: BlockSaved[]; lnf?: LnSaved } {
  let x = embed(w.emb, tokens, cfg.dModel, cfg.vocabSize);
  const saved: BlockSaved[] = [];
  for (let i = 0; i < cfg.nLayers; i++) {
    const r = blockFwd(cfg, w.blocks[i], x, ctx, i);
    x.dispose(); // the backward needs only what blocks save (LN stats etc.), never the residual stream itself
    if (ctx.save) saved.push(r.saved!);
    x = r.x;
  }
  const f = lnModFwd(x, w.normf, w.shiftf, w.scalef);
  x.dispose();
  return { h: f.y, saved, lnf: ctx.save ? f.saved : (tf.dispose([f.saved.xhat, f.saved.rstd]), undefined) };
}
