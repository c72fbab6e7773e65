// The SDTT distillation loss (docs/design/sdtt.md §4.3) on the student's head rows: the per-row divergence between the student's
// SUBS log-probs and the teacher's target log-probs, and its gradient w.r.t. the student logits. Host kernel: the
// tfjs side only supplies the logits and their (vectorised) softmax; everything else is one fused O(M·V) pass per
// row in float64 on the host, which on tfjs-wasm beats a chain of [M, V] elementwise ops (Exp/Log/Abs/Sign are
// scalar there, and every op allocates an [M, V] tensor). The formulas are those of sdtt/divergences.ts (the
// float64 reference it is tested against), with ignoreColumn = MASK:
//
//  - The student head has no MASK row (SUBS: its probability is exactly 0), so the student row is a proper
//    log-softmax over the V−1 non-MASK ids. The teacher's MASK column (≈ −1e6, or anything) is IGNORED: every
//    divergence compares the V−1 non-MASK entries only. mse still divides by V (the reference's convention: the
//    MASK column counts as a zero entry).
//  - log p_s = logit − logZ with logZ = logit[argmax] − log p[argmax] (p = softmax, float32): stable, never log 0.
//  - Terms weighted by a probability that is exactly 0 contribute 0 (no 0·∞ = NaN when a target is −1e6 or −∞);
//    identical log values differ by 0.
//  - Any NaN in a target row (non-MASK column) makes the loss NaN, so a broken teacher stops the run.
//  - Subgradients of |x| (tvd, tvd-log-l1): differences within float32 resolution (TIE_REL relative) are ties
//    with sign 0, so a student that equals its teacher gets a zero gradient, not float32 rounding noise · ±1.
import type { DivergenceName } from '../../shared/distillConfig.ts';

const TIE_REL = 1e-5;

let scratch: Float64Array | null = null;

/**
 * Loss Σ_r w_r · δ(student row r, target row r) and, with `dlogits` ([M, V−1]), its gradient w.r.t. the student
 * logits (overwritten). logits, p: [M, V−1] student head rows (MASK column dropped) and their softmax; targets:
 * [M, V] teacher log-probs (MASK column included, ignored); w: per-row weight (1/|S| of the whole batch).
 * dlogits may alias p (element (r, c) of the gradient is written after the last read of p[r, c]).
 * Three fused passes per row (argmax, loss, gradient); student column c is teacher column c + (c >= maskId).
 */
export function distillRowsLoss(
  name: DivergenceName,
  logits: Float32Array,
  p: Float32Array,
  targets: Float32Array,
  w: Float32Array,
  V: number,
  maskId: number,
  dlogits: Float32Array | null,
): number {
  const M = w.length;
  const Vh = V - 1;
  if (logits.length !== M * Vh || p.length !== M * Vh || targets.length < M * V)
    throw new Error(`distill loss: shapes do not match ${M} rows x ${V}`);
  if (!scratch || scratch.length !== Vh) scratch = new Float64Array(Vh);
  const q = scratch; // per column: log-prob difference (kld, mse), teacher prob (kl-fwd) or sign (tvd, tvd-log-l1)
  let loss = 0;
  for (let r = 0; r < M; r++) {
    const o = r * Vh;
    const to = r * V;
    let am = o;
    for (let i = o + 1; i < o + Vh; i++) if (p[i] > p[am]) am = i;
    const logZ = logits[am] - Math.log(p[am]); // log p_s = logit - logZ
    const wr = w[r];
    let row = 0;
    let sumT = 0; // NaN iff a target is NaN (a +Infinity log-prob is invalid anyway)
    switch (name) {
      case 'kld': {
        for (let c = 0, k = to; c < Vh; c++, k++) {
          if (c === maskId) k++;
          const t = targets[k];
          sumT += t;
          const ls = logits[o + c] - logZ;
          const d = ls === t ? 0 : ls - t;
          q[c] = d;
          if (p[o + c] !== 0) row += p[o + c] * d;
        }
        if (dlogits) {
          for (let c = 0; c < Vh; c++) {
            const pc = p[o + c];
            dlogits[o + c] = pc === 0 ? 0 : wr * pc * (q[c] - row);
          }
        }
        break;
      }
      case 'kl-fwd': {
        let mass = 0;
        for (let c = 0, k = to; c < Vh; c++, k++) {
          if (c === maskId) k++;
          const t = targets[k];
          sumT += t;
          const qc = Math.exp(t);
          q[c] = qc;
          mass += qc;
          const ls = logits[o + c] - logZ;
          if (qc !== 0 && ls !== t) row += qc * (t - ls);
        }
        if (dlogits) for (let c = 0; c < Vh; c++) dlogits[o + c] = wr * (p[o + c] * mass - q[c]);
        break;
      }
      case 'mse': {
        let sumD = 0;
        for (let c = 0, k = to; c < Vh; c++, k++) {
          if (c === maskId) k++;
          const t = targets[k];
          sumT += t;
          const ls = logits[o + c] - logZ;
          const d = ls === t ? 0 : ls - t;
          q[c] = d;
          sumD += d;
          row += d * d;
        }
        row /= V; // the reference's mean over V entries (the ignored MASK column counts as 0)
        if (dlogits) {
          const f = (2 / V) * wr;
          for (let c = 0; c < Vh; c++) dlogits[o + c] = f * (q[c] - p[o + c] * sumD);
        }
        break;
      }
      case 'tvd': {
        let pg = 0;
        for (let c = 0, k = to; c < Vh; c++, k++) {
          if (c === maskId) k++;
          const t = targets[k];
          sumT += t;
          const pc = p[o + c];
          const qc = Math.exp(t);
          const diff = pc - qc;
          row += Math.abs(diff);
          const tol = TIE_REL * Math.max(pc, qc);
          const g = +(diff > tol) - +(diff < -tol); // sign, 0 within float32 resolution; branch-free
          q[c] = g;
          pg += pc * g;
        }
        row *= 0.5;
        if (dlogits) for (let c = 0; c < Vh; c++) dlogits[o + c] = wr * 0.5 * p[o + c] * (q[c] - pg);
        break;
      }
      case 'tvd-log-l1': {
        let sumG = 0;
        for (let c = 0, k = to; c < Vh; c++, k++) {
          if (c === maskId) k++;
          const t = targets[k];
          sumT += t;
          const ls = logits[o + c] - logZ;
          const d = ls === t ? 0 : ls - t;
          row += Math.abs(d);
          const tol = TIE_REL * Math.max(1, -t);
          const g = +(d > tol) - +(d < -tol);
          q[c] = g;
          sumG += g;
        }
        if (dlogits) for (let c = 0; c < Vh; c++) dlogits[o + c] = wr * (q[c] - p[o + c] * sumG);
        break;
      }
      default:
        throw new Error(`unknown divergence ${String(name)}`);
    }
    loss += sumT !== sumT ? NaN : wr * row;
  }
  return loss;
}

/** before[b] = masked positions of zt [B, L] in sequences < b (before[B] = |S|); checks targets has |S| rows of V. */
export function maskedBefore(
  zt: Int32Array,
  B: number,
  L: number,
  maskId: number,
  targetsLength: number,
  V: number,
): Int32Array {
  const before = new Int32Array(B + 1);
  for (let b = 0; b < B; b++) {
    let c = 0;
    for (let l = 0; l < L; l++) if (zt[b * L + l] === maskId) c++;
    before[b + 1] = before[b] + c;
  }
  if (targetsLength !== before[B] * V)
    throw new Error(
      `distill batch: targets has ${targetsLength} values, expected ${before[B]} masked positions x ${V}`,
    );
  return before;
}

/** The target rows of sequences `seqs` (in that order), copied into a fresh array [rows, V]. */
export function gatherTargets(targets: Float32Array, before: Int32Array, seqs: number[], V: number): Float32Array {
  let n = 0;
  for (const b of seqs) n += before[b + 1] - before[b];
  const out = new Float32Array(n * V);
  let k = 0;
  for (const b of seqs) {
    out.set(targets.subarray(before[b] * V, before[b + 1] * V), k);
    k += (before[b + 1] - before[b]) * V;
  }
  return out;
}
