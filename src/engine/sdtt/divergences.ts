// SDTT divergences (docs/design/sdtt.md §4.3): the float64 REFERENCE implementation. No training path calls it: the
// engines compute the loss in distillLoss.ts (tfjs, and the host rows of onnx/trainSession.ts); the tests check them
// against these formulas, as llm.c checks each kernel against a plain one.
//
// Inputs are log-prob rows [n, V] (student and teacher, SUBS, MASK column included) and a row mask [n]; the loss is
// the mean over the selected rows S (|S| = number of rows with mask[i] != 0), pooled over the batch:
//   kld        (default, "kl-bwd", reverse KL)  Σ_v p_s (log p_s − log p_t)
//   kl-fwd     (forward KL)                     Σ_v p_t (log p_t − log p_s)
//   mse        mean over |S|·V entries of (log p_s − log p_t)²   (so per row: (1/V) Σ_v (…)²)
//   tvd        paper, eq. 10                    ½ Σ_v |p_s − p_t|
//   tvd-log-l1 released code's "tvd"            Σ_v |log p_s − log p_t|
//
// MASK column: SUBS puts ≈ −1e6 there in both rows. Conventions that keep it harmless:
//   - a term weighted by a probability that is exactly 0 (exp(−1e6) = 0) contributes 0, even if the log
//     difference is ±∞ or NaN (no 0·∞);
//   - a log difference between two identical values (incl. −∞ vs −∞) is 0.
// Note: SUBS gives MASK = logit_M − 1e6 − logZ, so student and teacher MASK entries generally differ by O(1)
// (unless both come from the same logits). kld / kl-fwd / tvd ignore that (p = 0 on both sides), but mse and
// tvd-log-l1 count it, exactly like the released code. Pass `ignoreColumn: maskId` to leave the column out of
// every sum (mse then still divides by V, i.e. the column counts as a zero entry).
import { DIVERGENCE_NAMES, type DivergenceName } from '../../shared/distillConfig.ts';

export const DIVERGENCES = DIVERGENCE_NAMES;
export type { DivergenceName };

export type Rows = Float64Array | Float32Array;

export interface DivergenceOptions {
  /** Column (normally the MASK id) left out of every sum. */
  ignoreColumn?: number;
}

/** log p_s − log p_t with the convention that identical values (incl. ±∞) differ by 0. */
function logDiff(a: number, b: number): number {
  return a === b ? 0 : a - b;
}

/** Divergence of ONE row pair (offset = row start in both arrays). float64. */
export function rowDivergence(
  name: DivergenceName,
  s: Rows,
  tl: Rows,
  offset: number,
  V: number,
  opts: DivergenceOptions = {},
): number {
  const skip = opts.ignoreColumn ?? -1;
  let acc = 0;
  switch (name) {
    case 'kld':
      for (let v = 0; v < V; v++) {
        if (v === skip) continue;
        const ls = s[offset + v];
        const ps = Math.exp(ls);
        if (ps === 0) continue;
        acc += ps * logDiff(ls, tl[offset + v]);
      }
      return acc;
    case 'kl-fwd':
      for (let v = 0; v < V; v++) {
        if (v === skip) continue;
        const lt = tl[offset + v];
        const pt = Math.exp(lt);
        if (pt === 0) continue;
        acc += pt * logDiff(lt, s[offset + v]);
      }
      return acc;
    case 'mse':
      for (let v = 0; v < V; v++) {
        if (v === skip) continue;
        const d = logDiff(s[offset + v], tl[offset + v]);
        acc += d * d;
      }
      return acc / V;
    case 'tvd':
      for (let v = 0; v < V; v++) {
        if (v === skip) continue;
        acc += Math.abs(Math.exp(s[offset + v]) - Math.exp(tl[offset + v]));
      }
      return 0.5 * acc;
    case 'tvd-log-l1':
      for (let v = 0; v < V; v++) {
        if (v === skip) continue;
        acc += Math.abs(logDiff(s[offset + v], tl[offset + v]));
      }
      return acc;
    default:
      throw new Error(`unknown divergence ${String(name)}`);
  }
}

/**
 * Mean divergence over the rows with mask[i] != 0 (rows [n, V]; n = mask.length). Returns 0 when no row is selected
 * (an empty S contributes no loss). float64.
 */
export function divergence(
  name: DivergenceName,
  studentLogp: Rows,
  teacherLogp: Rows,
  V: number,
  mask: Uint8Array,
  opts: DivergenceOptions = {},
): number {
  const n = mask.length;
  if (studentLogp.length !== n * V || teacherLogp.length !== n * V) {
    throw new Error(
      `divergence: expected ${n}×${V} values, got student ${studentLogp.length}, teacher ${teacherLogp.length}`,
    );
  }
  let sum = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    if (!mask[i]) continue;
    sum += rowDivergence(name, studentLogp, teacherLogp, i * V, V, opts);
    count++;
  }
  return count === 0 ? 0 : sum / count;
}

/**
 * Gradient of ONE row's divergence w.r.t. the student's LOGITS z (not its log-probs), assuming
 * log p_s = logSoftmax(z) + const-per-column (SUBS adds −1e6 to the MASK logit, which does not change the
 * Jacobian). Written into `out` (length V). For the batch loss divide by |S|. With p = exp(log p_s):
 *   kld:        p ⊙ (d − KL),             d = log p_s − log p_t, KL = Σ p d
 *   kl-fwd:     p − p_t
 *   mse:        (2/V) (d − p Σ_v d_v)
 *   tvd:        ½ p ⊙ (g − Σ_v p_v g_v),  g = sign(p_s − p_t)
 *   tvd-log-l1: g − p Σ_v g_v,            g = sign(d)   (sign(0) = 0, like torch's |x|' at 0)
 * An ignored column contributes nothing to the sums (its own d, g are treated as 0).
 */
export function rowGradLogits(
  name: DivergenceName,
  s: Rows,
  tl: Rows,
  offset: number,
  V: number,
  out: Float64Array,
  opts: DivergenceOptions = {},
): Float64Array {
  const skip = opts.ignoreColumn ?? -1;
  const p = (v: number): number => Math.exp(s[offset + v]);
  switch (name) {
    case 'kld': {
      const kl = rowDivergence('kld', s, tl, offset, V, opts);
      // With an ignored column c the entropy part no longer cancels exactly: + p_j([j≠c] − Σ_{v≠c} p_v).
      const massKept = skip >= 0 && skip < V ? 1 - p(skip) : 1;
      for (let v = 0; v < V; v++) {
        const pv = p(v);
        if (pv === 0) {
          out[v] = 0;
        } else if (v === skip) {
          out[v] = pv * (-kl - massKept);
        } else {
          out[v] = pv * (logDiff(s[offset + v], tl[offset + v]) - kl + 1 - massKept);
        }
      }
      return out;
    }
    case 'kl-fwd': {
      // d/dz_j Σ_v p_t,v (lt_v − ls_v) = −Σ_v p_t,v (δ_vj − p_j) = p_j·Σ_v p_t,v − p_t,j
      let mass = 0;
      for (let v = 0; v < V; v++) if (v !== skip) mass += Math.exp(tl[offset + v]);
      for (let v = 0; v < V; v++) out[v] = p(v) * mass - (v === skip ? 0 : Math.exp(tl[offset + v]));
      return out;
    }
    case 'mse': {
      let sumD = 0;
      for (let v = 0; v < V; v++) if (v !== skip) sumD += logDiff(s[offset + v], tl[offset + v]);
      for (let v = 0; v < V; v++) {
        const d = v === skip ? 0 : logDiff(s[offset + v], tl[offset + v]);
        out[v] = (2 / V) * (d - p(v) * sumD);
      }
      return out;
    }
    case 'tvd': {
      let pg = 0;
      for (let v = 0; v < V; v++) if (v !== skip) pg += p(v) * Math.sign(p(v) - Math.exp(tl[offset + v]));
      for (let v = 0; v < V; v++) {
        const g = v === skip ? 0 : Math.sign(p(v) - Math.exp(tl[offset + v]));
        out[v] = 0.5 * p(v) * (g - pg);
      }
      return out;
    }
    case 'tvd-log-l1': {
      let sumG = 0;
      for (let v = 0; v < V; v++) if (v !== skip) sumG += Math.sign(logDiff(s[offset + v], tl[offset + v]));
      for (let v = 0; v < V; v++) {
        const g = v === skip ? 0 : Math.sign(logDiff(s[offset + v], tl[offset + v]));
        out[v] = g - p(v) * sumG;
      }
      return out;
    }
    default:
      throw new Error(`unknown divergence ${String(name)}`);
  }
}

/** kld (reverse KL) gradient of one row w.r.t. the student logits: p_s ⊙ ((log p_s − log p_t) − KL). */
export function kldGradLogits(
  studentRow: Rows,
  teacherRow: Rows,
  out = new Float64Array(studentRow.length),
): Float64Array {
  return rowGradLogits('kld', studentRow, teacherRow, 0, studentRow.length, out);
}

/**
 * Gradient of the batch loss divergence(name, …) w.r.t. the student logits [n, V]: rowGradLogits / |S| on the
 * selected rows, 0 elsewhere.
 */
export function divergenceGradLogits(
  name: DivergenceName,
  studentLogp: Rows,
  teacherLogp: Rows,
  V: number,
  mask: Uint8Array,
  opts: DivergenceOptions = {},
): Float64Array {
  const n = mask.length;
  const out = new Float64Array(n * V);
  let count = 0;
  for (let i = 0; i < n; i++) if (mask[i]) count++;
  if (count === 0) return out;
  for (let i = 0; i < n; i++) {
    if (!mask[i]) continue;
    const row = out.subarray(i * V, (i + 1) * V);
    rowGradLogits(name, studentLogp, teacherLogp, i * V, V, row, opts);
    for (let v = 0; v < V; v++) row[v] /= count;
  }
  return out;
}
