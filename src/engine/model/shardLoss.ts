// Loss and gradient of ONE shard on the current tfjs backend: uploads the weights, runs the forward (model.ts) in
// chunks, the loss head (cross-entropy or the SDTT divergence) on the loss rows only, and the hand-written backward
// (backward.ts). The engine (gradients.ts) calls it in-process; each gradient worker (gradWorker.ts) calls it on its
// own shard. See gradients.ts for the losses.
import * as tf from '@tensorflow/tfjs-core';
import type { ModelConfig } from '../../shared/config.ts';
import { distillRowsLoss } from '../sdtt/distillLoss.ts';
import {
  causalMask,
  scatterAddRows,
  disposeRope,
  heapView,
  linear,
  linearBwdInput,
  lnModBwd,
  read,
  ropeTables,
  view,
  type RopeTables,
  type T2,
} from './kernels.ts';
import { addHeadGrad, blockBwd, disposeSaved } from './backward.ts';
import { disposeWeights, trunkFwd, uploadWeights, type Weights } from './model.ts';
import { blockOffsets, layoutMap, type ParamEntry } from './paramLayout.ts';
import { Rng } from '../rng.ts';
import { subShard, type Shard } from './gradShards.ts';

/** Tokens per forward/backward chunk: a wasm heap never shrinks, so one chunk's peak sets it (base-5m: 512 -> 172 MB, 1024 -> 248 MB; same speed). */
const MAX_CHUNK_TOKENS = 512;

interface StepCtx {
  cfg: ModelConfig;
  w: Weights;
  lm: Map<string, ParamEntry>;
  rope: RopeTables;
  attnMask: T2 | null;
  dropout?: { p: number; rng: Rng };
}

/**
 * Loss of one shard; with `grads` (zero-filled, params.length) also adds d(loss)/d(params) into it.
 * `dropoutSeed`: train-mode dropout (null = eval mode). Runs synchronously on the current tfjs backend; the
 * weights are uploaded once, then the shard runs in chunks of at most MAX_CHUNK_TOKENS tokens (losses and
 * gradients are sums, so chunks simply add up).
 */
export function shardLossAndGrads(
  cfg: ModelConfig,
  params: Float32Array,
  s: Shard,
  dropoutSeed: number | null,
  grads: Float32Array | null,
): number {
  const L = cfg.seqLen;
  const ctx: StepCtx = {
    cfg,
    w: uploadWeights(cfg, params, { backward: grads !== null, exclude: cfg.arch === 'mdlm' ? cfg.maskId : -1 }),
    lm: layoutMap(cfg),
    rope: ropeTables(L, cfg.dModel / cfg.nHeads, cfg.ropeBase, 0),
    attnMask: cfg.arch === 'ar' ? causalMask(L, L, 0) : null,
    dropout: dropoutSeed !== null && cfg.dropout > 0 ? { p: cfg.dropout, rng: new Rng(dropoutSeed) } : undefined,
  };
  const per = Math.max(1, Math.floor(MAX_CHUNK_TOKENS / L));
  try {
    let loss = 0;
    for (let j = 0; j < s.B; j += per)
      loss += chunkLossAndGrads(ctx, s.B <= per ? s : subShard(s, L, j, Math.min(s.B, j + per)), grads);
    return loss;
  } finally {
    disposeWeights(ctx.w);
    disposeRope(ctx.rope);
    ctx.attnMask?.dispose();
  }
}

function chunkLossAndGrads(ctx: StepCtx, s: Shard, grads: Float32Array | null): number {
  const { cfg, w, lm, rope, attnMask, dropout } = ctx;
  const L = cfg.seqLen;
  const d = cfg.dModel;
  const V = cfg.vocabSize;
  const N = s.B * L;
  const backward = grads !== null;
  const excl = w.excluded;
  const Vh = excl >= 0 ? V - 1 : V;
  return tf.tidy(() => {
    const fw = trunkFwd(cfg, w, s.tokens, { B: s.B, L, rope, attnMask, dropout, save: backward });
    const M = s.rows.length;
    let loss = 0;
    let dh: T2;
    if (M === 0) {
      dh = tf.zeros([N, d]);
    } else {
      // Head on the loss rows only (without the excluded MASK row).
      const rowsT = tf.tensor1d(s.rows, 'int32');
      const hm = tf.gather(fw.h, rowsT) as T2;
      const logits = linear(hm, w.head, w.headB);
      const p = tf.softmax(logits);
      let dlogits: T2;
      if (s.soft) {
        // SDTT: divergence to the teacher rows, on the host (distillLoss.ts). On wasm the gradient overwrites p in
        // place (p is dead afterwards; no 16 MB upload); the views are consumed before any allocation.
        const inPlace = heapView(p);
        const dl = backward ? (inPlace ?? new Float32Array(M * Vh)) : null;
        loss = distillRowsLoss(s.divergence!, view(logits), inPlace ?? read(p), s.soft, s.weights, V, excl, dl);
        if (!backward) return loss;
        dlogits = inPlace ? p : tf.tensor2d(dl!, [M, Vh]);
      } else {
        // Cross-entropy; targets re-indexed past the excluded (MASK) row. -log p[x] = logsumexp - logit[x],
        // logsumexp = max - log(max p): exact and never log(0), using the vectorised Softmax instead of Exp.
        const tgt = s.targets.map((x) => (excl >= 0 && x > excl ? x - 1 : x));
        const flatIdx = tf.tensor1d(
          Int32Array.from(tgt, (x, r) => r * Vh + x),
          'int32',
        );
        const [lmax, pmax, lt] = [tf.max(logits, -1), tf.max(p, -1), tf.gather(tf.reshape(logits, [-1]), flatIdx)].map(
          read,
        );
        for (let r = 0; r < M; r++) loss += s.weights[r] * (lmax[r] - Math.log(pmax[r]) - lt[r]);
        if (!backward) return loss;
        // d loss / d logits = w_r * (p - onehot(x))
        const pairs = Int32Array.from({ length: 2 * M }, (_, i) => (i & 1 ? tgt[i >> 1] : i >> 1)); // (row, target)
        const onehot = tf.scatterND(tf.tensor2d(pairs, [M, 2], 'int32'), tf.tensor1d(s.weights), [M, Vh]);
        dlogits = tf.sub(tf.mul(p, tf.tensor2d(s.weights, [M, 1])), onehot) as T2;
      }
      addHeadGrad(lm, dlogits, hm, excl, grads);
      const dhm = linearBwdInput(dlogits, w.headT!);
      dh = tf.scatterND(tf.reshape(rowsT, [M, 1]), dhm, [N, d]) as T2;
    }
    if (!backward) return loss;
    const g = grads;
    const fmod = lm.get('backbone.output_layer.modulation')!.offset;
    let dx = lnModBwd(dh, fw.lnf!, w.normf, w.scalef, g, {
      w: lm.get('backbone.output_layer.norm_final.weight')!.offset,
      shift: fmod,
      scale: fmod + d,
    });
    for (let i = cfg.nLayers - 1; i >= 0; i--) {
      const next = blockBwd(cfg, w.blocks[i], fw.saved[i], dx, rope, g, blockOffsets(lm, i));
      disposeSaved(fw.saved[i]);
      dx.dispose();
      dx = next;
    }
    // Embedding gradient: scatter-add rows on the host (wasm has no UnsortedSegmentSum).
    scatterAddRows(g, lm.get('backbone.vocab_embed.embedding')!.offset, s.tokens, view(dx), d);
    return loss;
  });
}
