// Hand-written backward of the model (see kernels.ts for why not autograd): one block, the head's weight gradient,
// and freeing what the forward saved. Only the training engine (shardLoss.ts) uses it; it is kept apart from
// model.ts so that the model file reads as weights + forward pass, with the backward alongside here.
import * as tf from '@tensorflow/tfjs-core';
import type { ModelConfig } from '../../shared/config.ts';
import type { BlockOffsets, ParamEntry } from './paramLayout.ts';
import {
  addColSum,
  addInto,
  addWeightGrad,
  attentionBwd,
  colSum,
  geluBwd,
  linearBwdInput,
  lnModBwd,
  ropeBwd,
  ropeTables,
  type T,
  type T2,
} from './kernels.ts';
import type { BlockSaved, BlockWeights } from './model.ts';

/** Backward through one block: dx2 (gradient w.r.t. its output) -> gradient w.r.t. its input. */
export function blockBwd(
  cfg: ModelConfig,
  w: BlockWeights,
  s: BlockSaved,
  dx2: T2,
  rope: ReturnType<typeof ropeTables>,
  g: Float32Array,
  o: BlockOffsets,
): T2 {
  const d = cfg.dModel;
  return tf.tidy(() => {
    // x2 = x1 + gate2 * h2m, h2m = mask2 * (g @ W2 + b2)
    addInto(g, o.mod + 5 * d, colSum(tf.mul(dx2, s.h2m) as T2));
    let dh2 = tf.mul(dx2, w.gate2) as T2;
    if (s.mask2) dh2 = tf.mul(dh2, s.mask2) as T2;
    addColSum(dh2, g, o.b2);
    addWeightGrad(dh2, s.g, g, o.w2);
    const dpre = geluBwd(linearBwdInput(dh2, w.w2T!), s.pre, s.s);
    addColSum(dpre, g, o.b0);
    addWeightGrad(dpre, s.a2, g, o.w0);
    const da2 = linearBwdInput(dpre, w.w0T!);
    const dx1 = tf.add(
      dx2,
      lnModBwd(da2, s.ln2, w.norm2, w.scale2, g, { w: o.norm2, shift: o.mod + 3 * d, scale: o.mod + 4 * d }),
    ) as T2;
    // x1 = x + gate1 * hm, hm = mask1 * (attn(a1) @ Wo)
    addInto(g, o.mod + 2 * d, colSum(tf.mul(dx1, s.hm) as T2));
    let dh = tf.mul(dx1, w.gate1) as T2;
    if (s.mask1) dh = tf.mul(dh, s.mask1) as T2;
    addWeightGrad(dh, s.o, g, o.out);
    const at = attentionBwd(linearBwdInput(dh, w.woT!), s.attn);
    const N = dx2.shape[0];
    const dqkv = tf.concat(
      [tf.reshape(ropeBwd(at.dq, rope), [N, d]), tf.reshape(ropeBwd(at.dk, rope), [N, d]), tf.reshape(at.dv, [N, d])],
      1,
    ) as T2;
    addWeightGrad(dqkv, s.a1, g, o.qkv);
    const da1 = linearBwdInput(dqkv, w.wqkvT!);
    return tf.add(
      dx1,
      lnModBwd(da1, s.ln1, w.norm1, w.scale1, g, { w: o.norm1, shift: o.mod, scale: o.mod + d }),
    ) as T2;
  });
}

/** Adds the head's weight and bias gradients for dlogits [M, Vh] of input rows hm [M, d]; `excl` = the head row
 * left out of the forward (-1 = none): its gradient is 0. */
export function addHeadGrad(lm: Map<string, ParamEntry>, dlogits: T2, hm: T2, excl: number, grads: Float32Array): void {
  const Vh = dlogits.shape[1];
  const d = hm.shape[1];
  const hOff = lm.get('backbone.output_layer.linear.weight')!.offset;
  const bOff = lm.get('backbone.output_layer.linear.bias')!.offset;
  if (excl < 0 || excl === Vh) {
    addWeightGrad(dlogits, hm, grads, hOff);
    addColSum(dlogits, grads, bOff);
    return;
  }
  // MASK row in the middle: compute without it, then spread back around the (zero) MASK row.
  const tmp = new Float32Array(Vh * d + Vh);
  addWeightGrad(dlogits, hm, tmp, 0);
  addColSum(dlogits, tmp, Vh * d);
  addInto(grads, hOff, tmp.subarray(0, excl * d));
  addInto(grads, hOff + (excl + 1) * d, tmp.subarray(excl * d, Vh * d));
  addInto(grads, bOff, tmp.subarray(Vh * d, Vh * d + excl));
  addInto(grads, bOff + excl + 1, tmp.subarray(Vh * d + excl));
}

export function disposeSaved(s: BlockSaved): void {
  tf.dispose([
    s.ln1.xhat,
    s.ln1.rstd,
    s.a1,
    s.attn.q,
    s.attn.k,
    s.attn.v,
    s.attn.p,
    s.o,
    s.hm,
    s.ln2.xhat,
    s.ln2.rstd,
    s.a2,
    s.pre,
    s.s,
    s.g,
    s.h2m,
  ]);
  tf.dispose([s.mask1, s.mask2].filter((t): t is T => t !== null));
}
