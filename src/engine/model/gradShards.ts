// Splitting a training batch into per-thread shards (host only, no tfjs): the batch kinds, each shard's loss rows
// with their targets and already-normalised weights, sub-shards for chunking, and the per-worker dropout seed.
// Shared by the tfjs engine (gradients.ts, shardLoss.ts) and the onnx training engine (onnx/trainSession.ts), so
// both split, weight and seed a batch identically.
import type { ModelConfig } from '../../shared/config.ts';
import type { DivergenceName } from '../../shared/distillConfig.ts';
import { gatherTargets, maskedBefore } from '../sdtt/distillLoss.ts';

export type GradBatch =
  | { kind: 'mdlm'; x0: Int32Array; zt: Int32Array; t: Float32Array; batch: number }
  | { kind: 'ar'; tokens: Int32Array; batch: number }
  // targets [nMasked, V]: teacher log-probs (SUBS rows, MASK column ≈ -1e6, ignored) for the masked positions of zt
  // [B, L], in row-major (b, l) order.
  | { kind: 'distill'; zt: Int32Array; batch: number; targets: Float32Array; divergence: DivergenceName };

/** A slice of the batch for one thread: model input, and the positions that carry loss with target and weight. */
export interface Shard {
  tokens: Int32Array; // [B, L] model input (zt for mdlm)
  B: number;
  rows: Int32Array; // flat positions n = b*L + l with a loss term
  targets: Int32Array;
  weights: Float32Array; // per-row loss weight, already divided by the global normaliser
  /** distill: [rows, V] teacher log-probs of the loss rows (targets is then empty). */
  soft?: Float32Array;
  divergence?: DivergenceName;
}

/** Splits a batch into `parts` shards, sequences interleaved (seq i -> shard i mod parts) so that the
 * stratified t values, and with them the number of masked rows, are balanced across threads. */
export function makeShards(cfg: ModelConfig, batch: GradBatch, parts: number): Shard[] {
  const L = cfg.seqLen;
  const Btot = batch.batch;
  const V = cfg.vocabSize;
  const input = batch.kind === 'ar' ? batch.tokens : batch.zt;
  if (input.length !== Btot * L)
    throw new Error(`batch: expected ${Btot} x ${L} = ${Btot * L} tokens, got ${input.length}`);
  if (batch.kind !== 'ar' && cfg.arch !== 'mdlm')
    throw new Error(`an ${batch.kind} batch needs an mdlm model (got arch '${cfg.arch}')`);
  if (batch.kind === 'ar' && cfg.arch !== 'ar')
    throw new Error(`an ar batch needs an ar model (got arch '${cfg.arch}')`);
  if (batch.kind === 'mdlm' && (batch.x0.length !== input.length || batch.t.length !== Btot)) {
    throw new Error(
      `mdlm batch: x0 has ${batch.x0.length} tokens and t ${batch.t.length} values, expected ${input.length} and ${Btot}`,
    );
  }
  const before = batch.kind === 'distill' ? maskedBefore(batch.zt, Btot, L, cfg.maskId, batch.targets.length, V) : null;
  const shards: Shard[] = [];
  const nParts = Math.min(parts, Btot);
  for (let p = 0; p < nParts; p++) {
    const seqs: number[] = [];
    for (let b = p; b < Btot; b += parts) seqs.push(b);
    const B = seqs.length;
    const tokens = new Int32Array(B * L);
    const rows: number[] = [];
    const targets: number[] = [];
    const weights: number[] = [];
    seqs.forEach((b, j) => {
      tokens.set(input.subarray(b * L, (b + 1) * L), j * L);
      if (batch.kind !== 'ar') {
        const w = batch.kind === 'mdlm' ? 1 / (batch.t[b] * Btot * L) : 1 / before![Btot]; // distill: 1/|S|
        for (let l = 0; l < L; l++) {
          if (batch.zt[b * L + l] !== cfg.maskId) continue;
          if (batch.kind === 'mdlm') {
            const x = batch.x0[b * L + l];
            if (x === cfg.maskId) throw new Error(`x0 contains the MASK id ${x} at sequence ${b}, position ${l}`);
            targets.push(x);
          }
          rows.push(j * L + l);
          weights.push(w);
        }
      } else {
        const w = 1 / (Btot * (L - 1));
        for (let l = 0; l < L - 1; l++) {
          rows.push(j * L + l);
          targets.push(batch.tokens[b * L + l + 1]);
          weights.push(w);
        }
      }
    });
    const shard: Shard = {
      tokens,
      B,
      rows: Int32Array.from(rows),
      targets: Int32Array.from(targets),
      weights: Float32Array.from(weights),
    };
    if (batch.kind === 'distill') {
      shard.divergence = batch.divergence;
      shard.soft = nParts === 1 ? batch.targets : gatherTargets(batch.targets, before!, seqs, V); // no copy in-process
    }
    shards.push(shard);
  }
  return shards;
}

/** Sequences [j0, j1) of a shard, rows re-based (rows are sorted by construction). */
export function subShard(s: Shard, L: number, j0: number, j1: number): Shard {
  let a = 0;
  while (a < s.rows.length && s.rows[a] < j0 * L) a++;
  let b = a;
  while (b < s.rows.length && s.rows[b] < j1 * L) b++;
  return {
    tokens: s.tokens.subarray(j0 * L, j1 * L),
    B: j1 - j0,
    rows: s.rows.slice(a, b).map((r) => r - j0 * L),
    targets: s.targets.subarray(a, b),
    weights: s.weights.subarray(a, b),
    soft: s.soft?.subarray(
      (a * s.soft.length) / Math.max(1, s.rows.length),
      (b * s.soft.length) / Math.max(1, s.rows.length),
    ),
    divergence: s.divergence,
  };
}

/** Per-worker dropout seed: derived from the step's seed and the worker index. */
export function workerDropoutSeed(seed: number, index: number): number {
  return (seed ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0;
}
