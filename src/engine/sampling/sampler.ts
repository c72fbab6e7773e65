// MDLM ancestral sampler (docs/design/sdtt.md §3), host side, float64.
//
// One step z_t → z_s uses the two-stage form of the D3PM/MDLM update: every masked position is revealed with
// probability (t − s)/t, and a revealed position draws its token from the SUBS distribution x_θ. This is the
// same distribution as the reference Gumbel race over q(v) = x_θ[v]·(m(t) − m(s)), q(M) = m(s), but needs one
// uniform per decision instead of V, and keeps every probability in float64 (docs/design/sdtt.md §6).
import { EPS_SAMPLE, subsRowLogProbs } from '../model/mdlm.ts';
import { Rng } from '../rng.ts';
import type { Denoiser } from '../types.ts';

/** 'float64' = exact sampling (default). 'float32' = ablation emulating the reference fp32 Gumbel sampler. */
export type SamplingPrecision = 'float64' | 'float32';

/**
 * Log-probabilities per position over V, float64: either one flat [positions, V] array, or a function that
 * returns the row of one position on demand (the returned row may be reused by the next call).
 */
export type LogProbSource = Float64Array | ((position: number) => Float64Array);

/** Sampling grid t_i = 1 − i(1 − ε_s)/N for i = 0..N (t_0 = 1, t_N = ε_s); step i goes t_i → t_{i+1}. */
export function timeGrid(steps: number): Float64Array {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`timeGrid: steps must be an integer >= 1, got ${steps}`);
  const grid = new Float64Array(steps + 1);
  for (let i = 0; i <= steps; i++) grid[i] = 1 - (i * (1 - EPS_SAMPLE)) / steps;
  return grid;
}

/** P(a masked position is revealed on t → s) = (m(t) − m(s))/m(t) = (t − s)/t; s < 0 reveals everything. */
export function revealProb(t: number, s: number): number {
  if (s < 0) return 1;
  return Math.min(1, (t - s) / t);
}

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

export interface AncestralStepOptions {
  precision?: SamplingPrecision;
  /** Nucleus p for the token draw of a revealed position (default 1 = the exact SUBS distribution). */
  topP?: number;
}

/** Checks a nucleus p for the MDLM sampler: (0, 1], and only with float64 draws (the float32 ablation is exact-only). */
function checkTopP(topP: number, precision: SamplingPrecision): void {
  if (!(topP > 0 && topP <= 1)) throw new Error(`top-p must be in (0, 1], got ${topP}`);
  if (topP < 1 && precision === 'float32')
    throw new Error('top-p < 1 needs float64 sampling (the float32 ablation draws from the full distribution)');
}

/**
 * One ancestral step z_t → z_s on a flat array of positions (normally one sequence).
 *
 * Random-number order (fixed, so that anything that leaves tokens and log-probs unchanged — e.g. caching —
 * consumes identical draws): first ONE uniform for every masked position, in position order (reveal iff
 * u < (t − s)/t); then, in position order, the token draw of every revealed position only (float64: one uniform,
 * inverse CDF; float32 ablation: one uniform per non-MASK id). Unmasked positions are copied and draw nothing.
 * With topP < 1 the token draw keeps one uniform but samples the nucleus (the smallest most-probable set holding p
 * of the mass, renormalised): a biased sampler, for reading samples, never for the paper's numbers.
 */
export function ancestralStep(
  tokens: Int32Array,
  logProbs: LogProbSource,
  t: number,
  s: number,
  rng: Rng,
  maskId: number,
  options: AncestralStepOptions = {},
): { tokens: Int32Array; changed: number } {
  const precision = options.precision ?? 'float64';
  const topP = options.topP ?? 1;
  checkTopP(topP, precision);
  const rowOf = typeof logProbs === 'function' ? logProbs : flatRows(logProbs, tokens.length);
  const p = revealProb(t, s);
  const out = tokens.slice();

  const revealed: number[] = [];
  for (let l = 0; l < tokens.length; l++) {
    if (tokens[l] === maskId && rng.uniform() < p) revealed.push(l);
  }
  for (const l of revealed) {
    const row = rowOf(l);
    if (precision === 'float32') {
      out[l] = sampleFloat32Race(row, rng, maskId);
    } else if (topP < 1) {
      // MASK's SUBS log-prob is ~−1e6, so its probability is exactly 0 here and it is never in the nucleus.
      out[l] = nucleusSample(row, 1, topP, rng.uniform());
    } else {
      out[l] = sampleFromLogProbs(row, rng.uniform(), maskId);
    }
  }
  return { tokens: out, changed: revealed.length };
}

function flatRows(logProbs: Float64Array, positions: number): (position: number) => Float64Array {
  const vocab = logProbs.length / positions;
  if (!Number.isInteger(vocab) || vocab < 1)
    throw new Error(`ancestralStep: ${logProbs.length} log-probs do not split into ${positions} rows`);
  return (l) => logProbs.subarray(l * vocab, (l + 1) * vocab);
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

/**
 * Independent random stream for sequence `index` of a run seeded with `seed`. The full 128-bit state is a hash
 * of (seed, index), so sample b is the same whatever the batch size or position of other sequences, and
 * streams of different (seed, index) pairs do not collide the way 32-bit derived seeds could.
 */
export function sequenceRng(seed: number, index: number): Rng {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  const state: [number, number, number, number] = [0, 0, 0, 0];
  for (let k = 0; k < 4; k++) {
    let h = mix32(lo ^ Math.imul(k + 1, 0x9e3779b9));
    h = mix32(h ^ hi);
    h = mix32(h ^ (index >>> 0));
    state[k] = h;
  }
  if ((state[0] | state[1] | state[2] | state[3]) === 0) state[0] = 1;
  return new Rng(state);
}

function mix32(x: number): number {
  let z = (x + 0x9e3779b9) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

export interface SampleStepInfo {
  /** 1-based index of the step just taken. */
  step: number;
  steps: number;
  /** Current tokens [batch, seqLen] (live buffer: copy it to keep it). */
  tokens: Int32Array;
  /** Forward passes so far. */
  nfe: number;
}

export interface SampleMdlmOptions {
  steps: number;
  batch: number;
  seed: number;
  /** Conditioning tokens written into the first positions and re-written after every step: one for all, or one per sequence. */
  prefix?: Int32Array | Int32Array[];
  /** Sequence b of this call uses random stream sequenceRng(seed, sequenceOffset + b) (default 0): a sample set
   *  drawn in chunks with sequenceOffset = chunk start gives sample k the same stream whatever the chunk size. */
  sequenceOffset?: number;
  /** Skip the forward pass when the previous step changed no token in the batch (default true). Never changes samples. */
  caching?: boolean;
  /** 'float32' = ablation emulating the reference fp32 sampler (docs/design/sdtt.md §6). */
  precision?: SamplingPrecision;
  /** Nucleus p of every token draw (default 1 = exact). Not used by any evaluation (docs/design/sdtt.md §3.4). */
  topP?: number;
  onStep?: (info: SampleStepInfo) => void;
  /** Keep trajectory[i] = tokens at grid time t_i, i = 0..N (before the final argmax pass). */
  recordTrajectory?: boolean;
}

export interface SampleMdlmResult {
  /** Samples [batch, seqLen]; no MASK remains. */
  tokens: Int32Array;
  /** Number of model.logits calls (each one forward of the whole batch). */
  nfe: number;
  trajectory?: Int32Array[];
}

/**
 * Ancestral sampling with N steps on timeGrid(N) from all-MASK (except the prefix), then, if any MASK is left,
 * one forward at t = ε_s and argmax over non-MASK ids for the remaining positions (MDLM "noise removal").
 * The model is called on the whole batch at once. Sequence b draws only from
 * sequenceRng(seed, sequenceOffset + b).
 *
 * Caching: the denoiser sees only z_t (no time input), so when a step changed no token anywhere in the batch
 * the previous logits are exactly what a new forward would return; they are reused. Because the RNG order of
 * ancestralStep does not depend on where the log-probs came from, caching on/off gives byte-identical samples.
 */
export async function sampleMdlm(model: Denoiser, opts: SampleMdlmOptions): Promise<SampleMdlmResult> {
  const { steps, batch, seed } = opts;
  const caching = opts.caching ?? true;
  const precision = opts.precision ?? 'float64';
  const topP = opts.topP ?? 1;
  checkTopP(topP, precision);
  const { vocabSize: vocab, seqLen, maskId } = model;
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`sampleMdlm: batch must be an integer >= 1, got ${batch}`);
  const grid = timeGrid(steps);
  const prefixes = normalisePrefix(opts.prefix, batch, seqLen, maskId);

  const tokens = new Int32Array(batch * seqLen).fill(maskId);
  writePrefixes(tokens, prefixes, seqLen);
  const offset = opts.sequenceOffset ?? 0;
  const rngs = Array.from({ length: batch }, (_, b) => sequenceRng(seed, offset + b));
  const trajectory = opts.recordTrajectory ? [tokens.slice()] : undefined;
  const row = new Float64Array(vocab);

  let logits: Float32Array | null = null;
  let logitsMatchTokens = false; // true while `tokens` are exactly the input that produced `logits`
  let nfe = 0;
  const forward = async (): Promise<Float32Array> => {
    if (!logits || !caching || !logitsMatchTokens) {
      logits = await model.logits(tokens, batch);
      if (logits.length !== batch * seqLen * vocab)
        throw new Error(`sampleMdlm: model returned ${logits.length} logits, expected ${batch}×${seqLen}×${vocab}`);
      nfe++;
      logitsMatchTokens = true;
    }
    return logits;
  };

  for (let i = 0; i < steps; i++) {
    const stepLogits = await forward();
    let changed = 0;
    for (let b = 0; b < batch; b++) {
      const base = b * seqLen;
      const seq = tokens.subarray(base, base + seqLen);
      const rowOf = (l: number) => subsRowLogProbs(stepLogits, (base + l) * vocab, seq[l], vocab, maskId, row);
      const next = ancestralStep(seq, rowOf, grid[i], grid[i + 1], rngs[b], maskId, { precision, topP });
      writePrefix(next.tokens, prefixes[b]);
      for (let l = 0; l < seqLen; l++) if (next.tokens[l] !== seq[l]) changed++;
      seq.set(next.tokens);
    }
    if (changed > 0) logitsMatchTokens = false;
    trajectory?.push(tokens.slice());
    opts.onStep?.({ step: i + 1, steps, tokens, nfe });
  }

  if (tokens.includes(maskId)) {
    const finalLogits = await forward();
    for (let p = 0; p < tokens.length; p++) {
      if (tokens[p] === maskId) tokens[p] = argmaxNonMask(finalLogits, p * vocab, vocab, maskId);
    }
  }
  return trajectory ? { tokens, nfe, trajectory } : { tokens, nfe };
}

function normalisePrefix(
  prefix: Int32Array | Int32Array[] | undefined,
  batch: number,
  seqLen: number,
  maskId: number,
): (Int32Array | null)[] {
  const list =
    prefix === undefined
      ? new Array<Int32Array | null>(batch).fill(null)
      : Array.isArray(prefix)
        ? prefix
        : new Array<Int32Array>(batch).fill(prefix);
  if (list.length !== batch) throw new Error(`sampleMdlm: ${list.length} prefixes for batch ${batch}`);
  for (const p of list) {
    if (!p) continue;
    if (p.length > seqLen) throw new Error(`sampleMdlm: prefix of ${p.length} tokens exceeds seqLen ${seqLen}`);
    if (p.includes(maskId)) throw new Error('sampleMdlm: prefix must not contain MASK');
  }
  return list;
}

function writePrefix(seq: Int32Array, prefix: Int32Array | null): void {
  if (prefix) seq.set(prefix, 0);
}

function writePrefixes(tokens: Int32Array, prefixes: (Int32Array | null)[], seqLen: number): void {
  prefixes.forEach((p, b) => writePrefix(tokens.subarray(b * seqLen, (b + 1) * seqLen), p));
}
