// Evaluation on the host in float64: held-out NELBO perplexity (MDLM) or next-token perplexity (AR), and the
// generative-perplexity table (samples scored by an AR judge, with unigram entropy and the known-word rate beside it).
import type { ArModel, Denoiser } from '../types.ts';
import type { Tokenizer } from '../data/tokenizer.ts';
import { Rng } from '../rng.ts';
import { antitheticTimes, forwardMask, subsRowLogProbs } from '../model/mdlm.ts';
import { logitRows } from '../model/logitRows.ts';
import { sampleMdlm } from '../sampling/sampler.ts';
import { judgePerplexity, knownWordRate, meanAndStderr, unigramEntropy } from './metrics.ts';

/**
 * MDLM NELBO per token on fixed windows: for each window an antithetic t per sequence, masked positions weigh
 * -log p(x0)/t, summed and divided by B*L (docs/design/sdtt.md §1.5). Monte Carlo over t; the same seed gives the same t and masks.
 */
export async function heldoutNelbo(
  model: Denoiser,
  windows: Int32Array[],
  batch: number,
  seed: number,
  epsT = 1e-3,
): Promise<number> {
  const rng = new Rng(seed);
  const L = model.seqLen;
  const V = model.vocabSize;
  let total = 0;
  for (const x0 of windows) {
    const t = antitheticTimes(batch, epsT, rng);
    const zt = forwardMask(x0, t, L, model.maskId, rng);
    const masked: number[] = [];
    for (let i = 0; i < batch * L; i++) if (zt[i] === model.maskId) masked.push(i);
    const rows = await logitRows(model, zt, batch);
    const row = new Float64Array(V);
    let sum = 0;
    try {
      await rows.forEachRow(masked, (k, logits, offset) => {
        const i = masked[k];
        sum -= subsRowLogProbs(logits, offset, model.maskId, V, model.maskId, row)[x0[i]] / t[Math.floor(i / L)];
      });
    } finally {
      rows.dispose();
    }
    total += sum / (batch * L);
  }
  return total / windows.length;
}

/** AR next-token NLL per predicted token on fixed windows (tokens[l+1] given tokens[..l]). */
export async function heldoutArNll(model: ArModel, windows: Int32Array[], batch: number): Promise<number> {
  const L = model.seqLen;
  let sumNll = 0;
  let count = 0;
  for (const w of windows) {
    const { perSample } = await judgePerplexity(model, w, batch, L);
    for (const nll of perSample) sumNll += nll;
    count += perSample.length;
  }
  return sumNll / count;
}

export interface GenPplRow {
  steps: number;
  gen_ppl: number;
  gen_ppl_se: number;
  entropy: number;
  /** Share of the samples' words found in the training text (only when genPplTable is given `words`). */
  known_words?: number;
  samples: number;
  nfe: number;
  seconds: number;
}

/** Progress units of genPplTable: denoiser forward passes (N + 1 per sample at N steps), so an ETA weighs a
 * 128-step sample 16x an 8-step one instead of counting samples. */
export function genPplWork(steps: number[], samples: number): number {
  return steps.reduce((a, n) => a + samples * (n + 1), 0);
}

/**
 * Samples `samples` sequences at each step count (same seeds for every model, so cells compare one to one) and
 * scores them with the judge: gen PPL = exp(mean over samples of per-sample mean NLL), its standard error by the
 * delta method, and mean unigram entropy (nats).
 */
export async function genPplTable(
  model: Denoiser,
  judge: ArModel,
  opts: {
    steps: number[];
    samples: number;
    batch: number;
    seed: number;
    words?: WordCheck;
    onProgress?: (done: number, total: number) => void /* genPplWork units */;
    onSamples?: (steps: number, tokens: Int32Array) => void;
  },
): Promise<GenPplRow[]> {
  const L = model.seqLen;
  const rows: GenPplRow[] = [];
  const total = genPplWork(opts.steps, opts.samples);
  let done = 0;
  for (const steps of opts.steps) {
    const all = new Int32Array(opts.samples * L);
    let nfe = 0;
    const started = performance.now();
    for (let start = 0; start < opts.samples; start += opts.batch) {
      const b = Math.min(opts.batch, opts.samples - start);
      // sequenceOffset: sample k always draws from stream (seed, k), whatever the batch size.
      const out = await sampleMdlm(model, { steps, batch: b, seed: opts.seed, sequenceOffset: start });
      all.set(out.tokens, start * L);
      nfe += out.nfe;
      done += b * (steps + 1);
      opts.onProgress?.(done, total);
    }
    const seconds = (performance.now() - started) / 1000;
    opts.onSamples?.(steps, all);
    rows.push({
      steps,
      ...(await scoreSamples(judge, all, opts.samples, L, opts.batch, opts.words)),
      samples: opts.samples,
      nfe,
      seconds,
    });
  }
  return rows;
}

/** The training text's words and the tokenizer that decodes samples for knownWordRate. */
export interface WordCheck {
  tokenizer: Tokenizer;
  vocabulary: ReadonlySet<string>;
}

/** Judge perplexity (mean, s.e.) and unigram entropy of [n, L] token sequences, scored in chunks of `batch`; with
 * `words`, also their known-word rate. */
export async function scoreSamples(
  judge: ArModel,
  tokens: Int32Array,
  n: number,
  L: number,
  batch: number,
  words?: WordCheck,
): Promise<{ gen_ppl: number; gen_ppl_se: number; entropy: number; known_words?: number }> {
  const nlls: number[] = [];
  for (let start = 0; start < n; start += batch) {
    const b = Math.min(batch, n - start);
    const { perSample } = await judgePerplexity(judge, tokens.subarray(start * L, (start + b) * L), b, L);
    nlls.push(...perSample);
  }
  const { mean, stderr } = meanAndStderr(nlls);
  const gen_ppl = Math.exp(mean);
  const scores = { gen_ppl, gen_ppl_se: gen_ppl * stderr, entropy: unigramEntropy(tokens, n, L).mean };
  if (!words) return scores;
  const texts = Array.from({ length: n }, (_, b) => words.tokenizer.decode(tokens.subarray(b * L, (b + 1) * L)));
  return { ...scores, known_words: knownWordRate(texts, words.vocabulary) };
}
