// Token draws from one row (docs/design/sdtt.md §3.1, §3.4, §6): the exact float64 inverse-CDF draw, nucleus
// (top-p), the float32 Gumbel-race ablation, and the argmax of the final denoising pass. Each reads one row of V
// values, so callers keep one row at a time, never a batch of them.
import type { Rng } from '../rng.ts';

/**
 * Inverse-CDF draw from a row of log-probs, float64, excluding `maskId`. Uses the row's own total mass as the
 * normaliser so that rounding in the row's log-sum-exp cannot make the draw fall off the end.
 */
export function sampleFromLogProbs(row: Float64Array, u: number, maskId: number): number {
  let total = 0;
  for (let v = 0; v < row.length; v++) if (v !== maskId) total += Math.exp(row[v]);
  const target = u * total;
  let cum = 0;
  let last = -1;
  for (let v = 0; v < row.length; v++) {
    if (v === maskId) continue;
    const p = Math.exp(row[v]);
    if (p <= 0) continue;
    cum += p;
    last = v;
    if (cum > target) return v;
  }
  if (last < 0) throw new Error('sampleFromLogProbs: row has no mass outside MASK');
  return last;
}

/**
 * Nucleus (top-p) draw from one row of logits, float64: softmax(logits / temperature), keep the smallest set of
 * most probable ids whose mass reaches p (ties broken by lower id, so the result is deterministic), renormalise,
 * inverse CDF with the uniform u. temperature <= 0 returns the argmax and ignores u.
 */
export function nucleusSample(logits: ArrayLike<number>, temperature: number, topP: number, u: number): number {
  const vocab = logits.length;
  if (temperature <= 0) return argmax(logits);
  if (!(topP > 0 && topP <= 1)) throw new Error(`nucleusSample: topP must be in (0, 1], got ${topP}`);

  let max = -Infinity;
  for (let v = 0; v < vocab; v++) max = Math.max(max, logits[v] / temperature);
  const probs = new Float64Array(vocab);
  let total = 0;
  for (let v = 0; v < vocab; v++) {
    probs[v] = Math.exp(logits[v] / temperature - max);
    total += probs[v];
  }

  if (topP >= 1) return inverseCdf(probs, null, vocab, u * total);

  // Only ids with mass >= (1 - topP) * total / vocab can be in the nucleus: the ids below that bound hold less than
  // (1 - topP) * total together, so the ids above it reach topP * total first. Sorting just those gives the same
  // nucleus as sorting the whole vocabulary, at a fraction of the cost for a peaked distribution.
  const floor = ((1 - topP) * total) / vocab;
  const order: number[] = [];
  for (let v = 0; v < vocab; v++) if (probs[v] >= floor) order.push(v);
  order.sort((a, b) => probs[b] - probs[a] || a - b);
  // Smallest prefix of the sorted ids whose mass reaches topP (always at least the argmax).
  let kept = 0;
  let keptMass = 0;
  while (kept < order.length && (kept === 0 || keptMass < topP * total)) keptMass += probs[order[kept++]];
  return inverseCdf(probs, order, kept, u * keptMass);
}

function inverseCdf(probs: Float64Array, order: number[] | null, count: number, target: number): number {
  let cum = 0;
  let last = order ? order[0] : 0;
  for (let k = 0; k < count; k++) {
    const v = order ? order[k] : k;
    if (probs[v] <= 0) continue;
    cum += probs[v];
    last = v;
    if (cum > target) return v;
  }
  return last; // only reached through rounding when u is within an ulp of 1
}

function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let v = 1; v < xs.length; v++) if (xs[v] > xs[best]) best = v;
  return best;
}

const TWO_POW_24 = 16777216;

/**
 * Ablation (docs/design/sdtt.md §6): the reference sampler in float32 — argmax_v p_v / E_v with E_v = 1e-10 − log(U_v + 1e-10),
 * U_v a float32 uniform (24-bit grid like torch.rand), every operation rounded to float32. The bounded E_v
 * truncates the Gumbel tail, i.e. lowers the effective temperature. Draws one uniform per non-MASK id.
 */
export function sampleFloat32Race(row: Float64Array, rng: Rng, maskId: number): number {
  const f = Math.fround;
  const tiny = f(1e-10);
  let best = -1;
  let bestScore = -Infinity;
  for (let v = 0; v < row.length; v++) {
    if (v === maskId) continue;
    const u = Math.floor(rng.uniform() * TWO_POW_24) / TWO_POW_24;
    const e = f(tiny - f(Math.log(f(u + tiny))));
    const score = f(f(Math.exp(f(row[v]))) / e);
    if (score > bestScore) {
      bestScore = score;
      best = v;
    }
  }
  return best;
}

/** Index of the largest logit of one row, MASK excluded (first index on ties). Used by the final denoising pass. */
export function argmaxNonMask(logits: Float32Array, rowOffset: number, vocab: number, maskId: number): number {
  let best = -1;
  let bestValue = -Infinity;
  for (let v = 0; v < vocab; v++) {
    if (v === maskId) continue;
    const x = logits[rowOffset + v];
    if (best < 0 || x > bestValue) {
      best = v;
      bestValue = x;
    }
  }
  return best;
}
