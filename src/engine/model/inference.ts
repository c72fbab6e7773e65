// The inference wrapper (eval mode: no dropout) for samplers, evaluators and the AR judge: uploads the weights
// once and runs the forward pass of model.ts, either full-recompute (mdlm denoiser, AR logits) or incrementally with
// a KV cache (ArSession). Kept apart from model.ts, which holds only the weights and the forward pass itself.
import * as tf from '@tensorflow/tfjs-core';
import type { ModelConfig } from '../../shared/config.ts';
import type { ArModel, ArSession, Denoiser } from '../types.ts';
import { causalMask, disposeRope, linear, read, ropeTables, type T, type T2 } from './kernels.ts';
import { disposeWeights, trunkFwd, uploadWeights, type FwdCtx } from './model.ts';

export interface InferenceModel extends Denoiser, ArModel {
  readonly config: ModelConfig;
  /** mdlm: logits(tokens [B, seqLen], B); ar: full-recompute causal logits(tokens [B, len], B, len). [B, len, V] */
  logits(tokens: Int32Array, batch: number, len?: number): Promise<Float32Array>;
  dispose(): void;
}

export function createInferenceModel(cfg: ModelConfig, params: Float32Array): InferenceModel {
  // Private copy: the embedding is read on the host and the cpu backend may alias arrays, while callers update
  // their parameter (or EMA) vectors in place.
  const w = uploadWeights(cfg, Float32Array.from(params), { backward: false, exclude: -1 });
  const hd = cfg.dModel / cfg.nHeads;
  const causal = cfg.arch === 'ar';
  let disposed = false;
  const check = () => {
    if (disposed) throw new Error('inference model used after dispose()');
  };

  // Runs `len` new positions per sequence (starting at `offset`) and returns logits of all of them, or only of
  // the last one per sequence. Everything but the result and the (kept) KV cache is freed.
  const run = (
    tokens: Int32Array,
    B: number,
    len: number,
    offset: number,
    kv: FwdCtx['kv'],
    lastOnly: boolean,
  ): Float32Array => {
    check();
    if (tokens.length !== B * len) throw new Error(`expected ${B} x ${len} = ${B * len} tokens, got ${tokens.length}`);
    if (offset + len > cfg.seqLen)
      throw new Error(`sequence length ${offset + len} exceeds the model's seqLen ${cfg.seqLen}`);
    const rope = ropeTables(len, hd, cfg.ropeBase, offset);
    const attnMask = causal ? causalMask(len, offset + len, offset) : null;
    try {
      const out = tf.tidy(() => {
        const { h } = trunkFwd(cfg, w, tokens, { B, L: len, rope, attnMask, save: false, kv });
        let hh: T2 = h;
        if (lastOnly)
          hh = tf.reshape(tf.slice(tf.reshape(h, [B, len, cfg.dModel]), [0, len - 1, 0], [B, 1, cfg.dModel]), [
            B,
            cfg.dModel,
          ]);
        return linear(hh, w.head, w.headB);
      });
      const data = read(out);
      out.dispose();
      return data;
    } finally {
      disposeRope(rope);
      attnMask?.dispose();
    }
  };

  return {
    config: cfg,
    vocabSize: cfg.vocabSize,
    seqLen: cfg.seqLen,
    maskId: cfg.maskId,
    eosId: cfg.eosId,
    async logits(tokens: Int32Array, batch: number, len?: number): Promise<Float32Array> {
      const l = len ?? tokens.length / batch;
      if (!causal && l !== cfg.seqLen)
        throw new Error(`the denoiser takes sequences of exactly ${cfg.seqLen} tokens, got ${l}`);
      return run(tokens, batch, l, 0, undefined, false);
    },
    session(batch: number): ArSession {
      if (!causal) throw new Error('session() needs a causal (arch "ar") model');
      const kv: NonNullable<FwdCtx['kv']> = Array.from({ length: cfg.nLayers }, () => ({ k: null, v: null }));
      let length = 0;
      return {
        get length() {
          return length;
        },
        async append(tokens: Int32Array, len: number): Promise<Float32Array> {
          if (kv.length === 0) throw new Error('ArSession used after dispose()');
          // RoPE positions continue from the cache length; keys of the new tokens are appended to the cache.
          const out = run(tokens, batch, len, length, kv, true);
          length += len;
          return out;
        },
        dispose() {
          for (const c of kv) tf.dispose([c.k, c.v].filter((t): t is T => t !== null));
          kv.length = 0;
        },
      };
    },
    dispose() {
      if (!disposed) disposeWeights(w);
      disposed = true;
    },
  };
}
