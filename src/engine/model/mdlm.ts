// The MDLM noise process on the host, in float64 (docs/design/sdtt.md §1): log-linear schedule, antithetic time sampling,
// the forward masking process and the SUBS parameterisation of the denoiser output.
//
// Everything probabilistic here is float64 on purpose: the denoiser hands us float32 logits, but turning them
// into probabilities and drawing from them in low precision biases the samples (docs/design/sdtt.md §6).
import type { Rng } from '../rng.ts';

/** ε_n of the log-linear schedule: the mask probability at t = 1 is 1 − ε_n, never exactly 1. */
export const EPS_NOISE = 1e-3;
/** ε_s: the sampler's last time and the lower end of t in SDTT distillation. */
export const EPS_SAMPLE = 1e-5;
/** Added to the MASK logit before the softmax ("zero masking": the denoiser never predicts MASK). */
export const SUBS_NEG_INF = -1e6;

/** Probability that a position is MASK at time t: m(t) = 1 − e^{−σ(t)} = (1 − ε_n) t. */
export function maskProb(t: number): number {
  return (1 - EPS_NOISE) * t;
}

/** Total noise σ(t) = −log(1 − (1 − ε_n) t) of the log-linear schedule. */
export function sigma(t: number): number {
  return -Math.log1p(-(1 - EPS_NOISE) * t);
}

/** α_t = 1 − m(t): probability that a position still shows its clean token at time t. */
export function alpha(t: number): number {
  return 1 - maskProb(t);
}

/**
 * Continuous-time NELBO weight −α'_t / (1 − α_t). The reference code computes dσ/expm1(σ); for the log-linear
 * schedule both are exactly 1/t (ε_n cancels), so we use the closed form.
 */
export function nelboWeight(t: number): number {
  return 1 / t;
}

/**
 * Stratified ("antithetic") times for a batch: one u₀ ~ U(0,1), u_i = (u₀ + i/B) mod 1, t_i = ε_t + (1−ε_t) u_i.
 * Every stratum [i/B, (i+1)/B) of u receives exactly one sample, which lowers the variance of the MC loss.
 */
export function antitheticTimes(batch: number, epsT: number, rng: Rng): Float32Array {
  const u0 = rng.uniform();
  const t = new Float32Array(batch);
  for (let i = 0; i < batch; i++) {
    const u = (u0 + i / batch) % 1;
    t[i] = epsT + (1 - epsT) * u;
  }
  return t;
}

/**
 * Forward process q(z_t | x_0): every position of sequence b independently becomes MASK with probability
 * maskProb(t[b]). Draws exactly one uniform per position, row-major, so the result depends only on the rng state.
 */
export function forwardMask(x0: Int32Array, t: Float32Array, seqLen: number, maskId: number, rng: Rng): Int32Array {
  const batch = t.length;
  if (x0.length !== batch * seqLen)
    throw new Error(`forwardMask: x0 has ${x0.length} tokens, expected ${batch}×${seqLen}`);
  const z = new Int32Array(x0.length);
  for (let b = 0; b < batch; b++) {
    const m = maskProb(t[b]);
    for (let l = 0; l < seqLen; l++) {
      const i = b * seqLen + l;
      z[i] = rng.uniform() < m ? maskId : x0[i];
    }
  }
  return z;
}

/**
 * SUBS log-probabilities of ONE position, written into `out` (length vocab), float64.
 * Masked position: log-softmax of the logits with −1e6 added to the MASK logit.
 * Unmasked position (carry-over): 0 at the observed token, −1e6 everywhere else.
 */
export function subsRowLogProbs(
  logits: Float32Array,
  rowOffset: number,
  token: number,
  vocab: number,
  maskId: number,
  out: Float64Array,
): Float64Array {
  if (token !== maskId) {
    out.fill(SUBS_NEG_INF);
    out[token] = 0;
    return out;
  }
  let max = -Infinity;
  for (let v = 0; v < vocab; v++) {
    const x = v === maskId ? logits[rowOffset + v] + SUBS_NEG_INF : logits[rowOffset + v];
    out[v] = x;
    if (x > max) max = x;
  }
  let sum = 0;
  for (let v = 0; v < vocab; v++) sum += Math.exp(out[v] - max);
  const logZ = max + Math.log(sum);
  for (let v = 0; v < vocab; v++) out[v] -= logZ;
  return out;
}

/**
 * SUBS parameterisation for a whole batch: raw logits [N, V] (N = batch × seqLen positions) and the noisy tokens
 * z_t [N] in, float64 log-probs [N, V] out (see subsRowLogProbs). Memory is 8·N·V bytes; samplers that only need
 * a few rows should call subsRowLogProbs on demand instead.
 */
export function subsLogProbs(logits: Float32Array, tokens: Int32Array, vocab: number, maskId: number): Float64Array {
  const n = tokens.length;
  if (logits.length !== n * vocab)
    throw new Error(`subsLogProbs: logits has ${logits.length} values, expected ${n}×${vocab}`);
  const out = new Float64Array(n * vocab);
  for (let i = 0; i < n; i++)
    subsRowLogProbs(logits, i * vocab, tokens[i], vocab, maskId, out.subarray(i * vocab, (i + 1) * vocab));
  return out;
}
