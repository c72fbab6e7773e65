// MDLM ancestral sampler (docs/design/sdtt.md §3), host side, float64.
//
// One step z_t → z_s uses the two-stage form of the D3PM/MDLM update: every masked position is revealed with
// probability (t − s)/t, and a revealed position draws its token from the SUBS distribution x_θ. This is the
// same distribution as the reference Gumbel race over q(v) = x_θ[v]·(m(t) − m(s)), q(M) = m(s), but needs one
// uniform per decision instead of V, and keeps every probability in float64 (docs/design/sdtt.md §6).
import { EPS_SAMPLE, subsRowLogProbs } from '../model/mdlm.ts';
import { logitRows } from '../model/logitRows.ts';
import { Rng } from '../rng.ts';
import type { Denoiser, LogitRows } from '../types.ts';
import { argmaxNonMask, nucleusSample, sampleFloat32Race, sampleFromLogProbs } from './draws.ts';

export { argmaxNonMask, nucleusSample, sampleFloat32Race, sampleFromLogProbs };

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
  const draw = tokenDraw(options);
  const rowOf = typeof logProbs === 'function' ? logProbs : flatRows(logProbs, tokens.length);
  const out = tokens.slice();
  const revealed = revealPositions(tokens, t, s, rng, maskId);
  for (const l of revealed) out[l] = draw(rowOf(l), rng, maskId);
  return { tokens: out, changed: revealed.length };
}

/**
 * ancestralStep on sequence positions base .. base + tokens.length − 1 of a forward pass: the same draws in the same
 * order, each revealed position's SUBS row computed from its logits just before its draw (one float64 row at a time,
 * docs/design/sdtt.md §6). `onRow(l, row)` sees the row first (teacher targets keep it).
 */
export async function ancestralStepRows(
  tokens: Int32Array,
  rows: LogitRows,
  base: number,
  t: number,
  s: number,
  rng: Rng,
  maskId: number,
  options: AncestralStepOptions & { onRow?: (l: number, row: Float64Array) => void } = {},
): Promise<{ tokens: Int32Array; changed: number }> {
  const draw = tokenDraw(options);
  const out = tokens.slice();
  const revealed = revealPositions(tokens, t, s, rng, maskId);
  const row = new Float64Array(rows.vocab);
  await rows.forEachRow(
    revealed.map((l) => base + l),
    (k, logits, offset) => {
      const l = revealed[k];
      subsRowLogProbs(logits, offset, maskId, rows.vocab, maskId, row);
      options.onRow?.(l, row);
      out[l] = draw(row, rng, maskId);
    },
  );
  return { tokens: out, changed: revealed.length };
}

/** The first half of a step: the masked positions revealed on t → s, one uniform per masked position in order. */
function revealPositions(tokens: Int32Array, t: number, s: number, rng: Rng, maskId: number): number[] {
  const p = revealProb(t, s);
  const revealed: number[] = [];
  for (let l = 0; l < tokens.length; l++) if (tokens[l] === maskId && rng.uniform() < p) revealed.push(l);
  return revealed;
}

/** The second half: the token draw of one revealed position from its SUBS row. */
function tokenDraw(options: AncestralStepOptions): (row: Float64Array, rng: Rng, maskId: number) => number {
  const precision = options.precision ?? 'float64';
  const topP = options.topP ?? 1;
  checkTopP(topP, precision);
  if (precision === 'float32') return sampleFloat32Race;
  // MASK's SUBS log-prob is ~−1e6, so its probability is exactly 0 here and it is never in the nucleus.
  if (topP < 1) return (row, rng) => nucleusSample(row, 1, topP, rng.uniform());
  return (row, rng, maskId) => sampleFromLogProbs(row, rng.uniform(), maskId);
}

function flatRows(logProbs: Float64Array, positions: number): (position: number) => Float64Array {
  const vocab = logProbs.length / positions;
  if (!Number.isInteger(vocab) || vocab < 1)
    throw new Error(`ancestralStep: ${logProbs.length} log-probs do not split into ${positions} rows`);
  return (l) => logProbs.subarray(l * vocab, (l + 1) * vocab);
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
 * One forward of the whole batch per step, its logits read by row as positions are drawn (model/logitRows.ts), so
 * memory holds one chunk of rows, never [batch, seqLen, V]. Sequence b draws only from
 * sequenceRng(seed, sequenceOffset + b).
 *
 * Caching: the denoiser sees only z_t (no time input), so when a step changed no token anywhere in the batch
 * the previous forward's logits are exactly what a new one would return; it is reused. Because the RNG order of
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

  // The forward pass is kept, not its logits: rows are read from it as they are drawn (model/logitRows.ts).
  let rows: LogitRows | null = null;
  let rowsMatchTokens = false; // true while `tokens` are exactly the input that produced `rows`
  let nfe = 0;
  const forward = async (): Promise<LogitRows> => {
    if (!rows || !caching || !rowsMatchTokens) {
      rows?.dispose();
      rows = null;
      rows = await logitRows(model, tokens, batch);
      nfe++;
      rowsMatchTokens = true;
    }
    return rows;
  };

  try {
    for (let i = 0; i < steps; i++) {
      const stepRows = await forward();
      let changed = 0;
      for (let b = 0; b < batch; b++) {
        const base = b * seqLen;
        const seq = tokens.subarray(base, base + seqLen);
        const next = await ancestralStepRows(seq, stepRows, base, grid[i], grid[i + 1], rngs[b], maskId, {
          precision,
          topP,
        });
        writePrefix(next.tokens, prefixes[b]);
        for (let l = 0; l < seqLen; l++) if (next.tokens[l] !== seq[l]) changed++;
        seq.set(next.tokens);
      }
      if (changed > 0) rowsMatchTokens = false;
      trajectory?.push(tokens.slice());
      opts.onStep?.({ step: i + 1, steps, tokens, nfe });
    }

    const left: number[] = [];
    for (let p = 0; p < tokens.length; p++) if (tokens[p] === maskId) left.push(p);
    if (left.length > 0) {
      const finalRows = await forward();
      await finalRows.forEachRow(left, (k, logits, rowOffset) => {
        tokens[left[k]] = argmaxNonMask(logits, rowOffset, vocab, maskId);
      });
    }
  } finally {
    (rows as LogitRows | null)?.dispose();
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
