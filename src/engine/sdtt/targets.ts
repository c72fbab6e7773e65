// SDTT teacher targets (docs/design/sdtt.md §4.1, Algorithm 1 of the paper): the teacher takes K ancestral sub-steps of size
// Δ_r from z_t; every position masked in z_t receives the teacher's full SUBS log-prob row from the sub-step
// that revealed it, or from the last sub-step if it is still masked at the end.
//
// Everything probabilistic is float64 (subsRowLogProbs + ancestralStep); the stored targets are float32.
import { EPS_SAMPLE, SUBS_NEG_INF, subsRowLogProbs } from '../model/mdlm.ts';
import { logitRows } from '../model/logitRows.ts';
import type { Rng } from '../rng.ts';
import { ancestralStepRows } from '../sampling/sampler.ts';
import type { Denoiser } from '../types.ts';

export interface TeacherTargetOptions {
  /** Teacher sub-steps per student step, K = m/k (default 2). */
  K?: number;
  /**
   * Random numbers. One Rng: sub-step i = 0..K−1, then sequence b = 0..B−1, each sequence's ancestralStep draws
   * in its documented order (reveal uniforms of masked positions, then token draws of revealed ones).
   * An array of B Rngs: sequence b draws only from rng[b] (same per-sequence order), so a sequence's targets
   * do not depend on the rest of the batch.
   */
  rng: Rng | readonly Rng[];
  /** Released-code sub-step times τ_i = t·w_i + (1−t)(t−KΔ), w = linspace(1,0,K) (docs/design/sdtt.md §4.2). */
  legacyTimeGrid?: boolean;
  maskId: number;
  /** ε_s, lower clamp of the sub-step start times (default EPS_SAMPLE = 1e-5). */
  epsS?: number;
  /**
   * 'full' (default): targets is [B, L, V]. 'masked': only the rows of positions masked in z_t, in (b, l) order,
   * [|S|, V] — what the loss reads; saves a [B, L, V] array and its copy per training step (64 MB at batch 32).
   */
  layout?: 'full' | 'masked';
}

export interface TeacherTargets {
  /**
   * [B, L, V] teacher SUBS log-probs, float32. Positions masked in z_t: the row of the sub-step that revealed them
   * (or of the last sub-step). Positions NOT masked in z_t: the carry-over row (0 at the observed token, −1e6
   * elsewhere) — never used by the loss, which only looks at masked positions. With layout 'masked': [|S|, V], the
   * rows of the masked positions only, in (b, l) order.
   */
  targets: Float32Array;
  /** [B, L] 1 where z_t == MASK (the loss set S). */
  masked: Uint8Array;
  /** [B, L] index of the sub-step that revealed the position, or −1 (not masked in z_t, or still masked at the end). */
  revealedAt: Int8Array;
  /** Teacher forward passes actually run (≤ K: a sub-step with no MASK left anywhere in the batch needs none). */
  nfe: number;
}

/**
 * Start times τ_0..τ_{K−1} of the K sub-steps for one sequence with time t (each sub-step goes τ_i → τ_i − Δ_r).
 * Paper grid: τ_i = max(t − i·Δ_r, ε_s). Legacy grid: τ_i = max(t·w_i + (1−t)(t − K·Δ_r), ε_s),
 * w_i = 1 − i/(K−1) (w = [1] for K = 1). float64.
 */
export function subStepTimes(
  t: number,
  deltaR: number,
  K: number,
  legacyTimeGrid = false,
  epsS = EPS_SAMPLE,
): Float64Array {
  const taus = new Float64Array(K);
  for (let i = 0; i < K; i++) {
    let tau: number;
    if (legacyTimeGrid) {
      const w = K === 1 ? 1 : 1 - i / (K - 1);
      tau = t * w + (1 - t) * (t - K * deltaR);
    } else {
      tau = t - i * deltaR;
    }
    taus[i] = Math.max(tau, epsS);
  }
  return taus;
}

/**
 * Teacher targets for a batch z_t [B, L] with per-sequence times t [B] and teacher step Δ_r (docs/design/sdtt.md §4.1).
 *
 *   z = z_t
 *   for i in 0..K−1:
 *     logp = SUBS(teacher(z))                       (one forward of the whole batch, read by row; eval mode)
 *     per sequence b: τ = τ_i(t_b); z' = ancestralStep(z_b, τ → τ − Δ_r, logp)   (τ − Δ_r < 0 reveals all)
 *     positions with z' != z take logp there; revealedAt = i
 *   positions masked in z_t and never revealed take the last sub-step's logp (revealedAt = −1)
 *
 * A sub-step's forward is skipped when no MASK is left anywhere in the batch (nothing to reveal or fill; it would
 * draw no random numbers either), so results are identical with or without the skip.
 */
export async function teacherTargets(
  teacher: Denoiser,
  zt: Int32Array,
  t: Float32Array,
  deltaR: number,
  opts: TeacherTargetOptions,
): Promise<TeacherTargets> {
  const K = opts.K ?? 2;
  const { maskId } = opts;
  const epsS = opts.epsS ?? EPS_SAMPLE;
  const batch = t.length;
  const V = teacher.vocabSize;
  if (!Number.isInteger(K) || K < 1 || K > 127)
    throw new Error(`teacherTargets: K must be an integer in 1..127, got ${K}`);
  if (!(deltaR > 0)) throw new Error(`teacherTargets: deltaR must be > 0, got ${deltaR}`);
  if (batch < 1 || zt.length % batch !== 0)
    throw new Error(`teacherTargets: ${zt.length} tokens do not split into ${batch} sequences`);
  const L = zt.length / batch;
  if (L !== teacher.seqLen) throw new Error(`teacherTargets: sequence length ${L} != teacher.seqLen ${teacher.seqLen}`);
  if (maskId !== teacher.maskId)
    throw new Error(`teacherTargets: maskId ${maskId} != teacher.maskId ${teacher.maskId}`);
  const rngs = Array.isArray(opts.rng) ? (opts.rng as readonly Rng[]) : null;
  if (rngs && rngs.length !== batch) throw new Error(`teacherTargets: ${rngs.length} rngs for batch ${batch}`);
  const rngOf = (b: number): Rng => (rngs ? rngs[b] : (opts.rng as Rng));

  const n = batch * L;
  const full = (opts.layout ?? 'full') === 'full';
  const masked = new Uint8Array(n);
  const revealedAt = new Int8Array(n).fill(-1);
  const rowAt = new Int32Array(n); // position -> row of `targets`
  let remaining = 0;
  for (let p = 0; p < n; p++) {
    if (zt[p] === maskId) {
      masked[p] = 1;
      rowAt[p] = full ? p : remaining;
      remaining++;
    } else {
      if (zt[p] < 0 || zt[p] >= V) throw new Error(`teacherTargets: token ${zt[p]} at ${p} outside vocab ${V}`);
      rowAt[p] = full ? p : -1;
    }
  }
  const targets = new Float32Array((full ? n : remaining) * V);
  if (full) {
    for (let p = 0; p < n; p++) {
      if (masked[p]) continue;
      // carry-over row (what SUBS gives at an unmasked position for every sub-step)
      targets.fill(SUBS_NEG_INF, p * V, (p + 1) * V);
      targets[p * V + zt[p]] = 0;
    }
  }

  const taus = Array.from(t, (tb) => subStepTimes(tb, deltaR, K, opts.legacyTimeGrid ?? false, epsS));
  const store = (p: number, row: Float64Array) => storeRow(targets, rowAt[p] * V, row);
  const row = new Float64Array(V);
  let z = zt.slice();
  let nfe = 0;

  for (let i = 0; i < K && remaining > 0; i++) {
    // One forward; its rows are read as the sampler reveals positions, never as a [B, L, V] array.
    const rows = await logitRows(teacher, z, batch);
    nfe++;
    try {
      const next = z.slice();
      for (let b = 0; b < batch; b++) {
        const base = b * L;
        const seq = z.subarray(base, base + L);
        const tau = taus[b][i];
        const res = await ancestralStepRows(seq, rows, base, tau, tau - deltaR, rngOf(b), maskId, {
          // the sampler reads rows of MASK positions only: every one has a target row
          onRow: (l, r) => store(base + l, r),
        });
        const still: number[] = [];
        for (let l = 0; l < L; l++) {
          if (res.tokens[l] !== seq[l]) {
            revealedAt[base + l] = i;
            remaining--;
          } else if (res.tokens[l] === maskId) still.push(base + l);
        }
        // Still masked after the last sub-step: this (the last) forward's prediction, made where they are MASK too.
        if (i === K - 1 && still.length > 0)
          await rows.forEachRow(still, (k, logits, offset) =>
            store(still[k], subsRowLogProbs(logits, offset, maskId, V, maskId, row)),
          );
        next.set(res.tokens, base);
      }
      z = next;
    } finally {
      rows.dispose();
    }
  }
  return { targets, masked, revealedAt, nfe };
}

function storeRow(dst: Float32Array, offset: number, row: Float64Array): void {
  for (let v = 0; v < row.length; v++) dst[offset + v] = row[v];
}
