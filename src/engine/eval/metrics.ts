// Sample-quality metrics (docs/design/sdtt.md §5): unigram entropy, self-BLEU, judge (generative) perplexity, mean ± s.e.; and
// the known-word rate, which tells invented words from English ones.
// All arithmetic in float64.
import type { ArModel } from '../types.ts';
import { logitRows } from '../model/logitRows.ts';
import type { Tokenizer } from '../data/tokenizer.ts';

/** Mean and standard error (sample s.d. / √n). stderr is NaN for n < 2, mean is NaN for n = 0. */
export function meanAndStderr(xs: ArrayLike<number>): { mean: number; stderr: number; n: number } {
  const n = xs.length;
  if (n === 0) return { mean: NaN, stderr: NaN, n };
  let sum = 0;
  for (let i = 0; i < n; i++) sum += xs[i];
  const mean = sum / n;
  if (n < 2) return { mean, stderr: NaN, n };
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (xs[i] - mean) ** 2;
  return { mean, stderr: Math.sqrt(ss / (n - 1) / n), n };
}

/**
 * Unigram entropy (docs/design/sdtt.md §5.2, [PGM] eq. 15): per sample −Σ_v (c_v/L) log(c_v/L) in nats over the sample's own
 * token counts; `mean` is the average over samples. Repetitive text has low entropy, which is why it must be
 * reported next to gen PPL.
 */
export function unigramEntropy(
  tokens: Int32Array,
  batch: number,
  len: number,
): { mean: number; perSample: Float64Array } {
  if (tokens.length !== batch * len)
    throw new Error(`unigramEntropy: ${tokens.length} tokens, expected ${batch}×${len}`);
  const perSample = new Float64Array(batch);
  for (let b = 0; b < batch; b++) {
    const counts = new Map<number, number>();
    for (let l = 0; l < len; l++) {
      const tok = tokens[b * len + l];
      counts.set(tok, (counts.get(tok) ?? 0) + 1);
    }
    let h = 0;
    for (const c of counts.values()) {
      const p = c / len;
      h -= p * Math.log(p);
    }
    perSample[b] = h;
  }
  return { mean: meanAndStderr(perSample).mean, perSample };
}

function ngramCounts(seq: ArrayLike<number>, n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= seq.length; i++) {
    let key = '';
    for (let k = 0; k < n; k++) key += seq[i + k] + ',';
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/**
 * Sentence BLEU of `hypothesis` against `references`, uniform weights over 1..maxN-grams, as NLTK's
 * sentence_bleu with SmoothingFunction().method1 (the Texygen self-BLEU setup): modified precision with counts
 * clipped by the max count in any reference; a zero match count becomes 0.1 (ε smoothing); brevity penalty
 * against the closest reference length (shorter wins ties).
 */
export function sentenceBleu(hypothesis: ArrayLike<number>, references: ArrayLike<number>[], maxN = 4): number {
  if (references.length === 0) throw new Error('sentenceBleu: needs at least one reference');
  const hypLen = hypothesis.length;
  if (hypLen === 0) return 0;
  let logSum = 0;
  for (let n = 1; n <= maxN; n++) {
    const hyp = ngramCounts(hypothesis, n);
    const maxRef = new Map<string, number>();
    for (const ref of references) {
      for (const [g, c] of ngramCounts(ref, n)) maxRef.set(g, Math.max(maxRef.get(g) ?? 0, c));
    }
    let matched = 0;
    let total = 0;
    for (const [g, c] of hyp) {
      matched += Math.min(c, maxRef.get(g) ?? 0);
      total += c;
    }
    const precision = (matched > 0 ? matched : 0.1) / Math.max(1, total);
    logSum += Math.log(precision) / maxN;
  }
  let closest = references[0].length;
  for (const ref of references) {
    const d = Math.abs(ref.length - hypLen);
    const best = Math.abs(closest - hypLen);
    if (d < best || (d === best && ref.length < closest)) closest = ref.length;
  }
  const brevity = hypLen > closest ? 1 : Math.exp(1 - closest / hypLen);
  return brevity * Math.exp(logSum);
}

/**
 * Self-BLEU ([P] App. A eq. 8): for each prompt, the mean over its continuations x_i of BLEU(x_i, the other
 * continuations); `mean` averages over prompts. 1 for a deterministic sampler, lower = more diverse.
 */
export function selfBleu(continuations: ArrayLike<number>[][], maxN = 4): { mean: number; perPrompt: Float64Array } {
  const perPrompt = new Float64Array(continuations.length);
  continuations.forEach((group, p) => {
    if (group.length < 2) throw new Error(`selfBleu: prompt ${p} has ${group.length} continuation(s), needs >= 2`);
    let sum = 0;
    for (let i = 0; i < group.length; i++) {
      sum += sentenceBleu(
        group[i],
        group.filter((_, j) => j !== i),
        maxN,
      );
    }
    perPrompt[p] = sum / group.length;
  });
  return { mean: meanAndStderr(perPrompt).mean, perPrompt };
}

export interface JudgePerplexityResult {
  /** exp(mean over samples of the per-sample mean NLL). */
  ppl: number;
  /** Mean over samples of the per-sample mean NLL (nats/token). */
  meanNll: number;
  /** Per-sample mean NLL over the len − 1 predictions: use meanAndStderr on it for error bars. */
  perSample: Float64Array;
}

/**
 * Generative perplexity under an AR judge (docs/design/sdtt.md §5.1, one fixed definition — the SDTT one): tokens are fed as-is
 * (no retokenisation, no extra BOS); sample b's NLL is the mean of −log p(x_{l+1} | x_{≤l}) over l = 0..len−2;
 * gen PPL = exp(mean over samples). Full-recompute judge forwards of `maxBatch` sequences, their logits read by
 * row (model/logitRows.ts), log-softmax in float64.
 */
export async function judgePerplexity(
  judge: ArModel,
  tokens: Int32Array,
  batch: number,
  len: number,
  maxBatch = 8,
): Promise<JudgePerplexityResult> {
  if (tokens.length !== batch * len)
    throw new Error(`judgePerplexity: ${tokens.length} tokens, expected ${batch}×${len}`);
  if (len < 2) throw new Error('judgePerplexity: needs len >= 2');
  if (len > judge.seqLen) throw new Error(`judgePerplexity: len ${len} exceeds the judge's seqLen ${judge.seqLen}`);
  const vocab = judge.vocabSize;
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] < 0 || tokens[i] >= vocab)
      throw new Error(`judgePerplexity: token ${tokens[i]} at ${i} is outside the judge's vocab ${vocab}`);
  }

  const perSample = new Float64Array(batch);
  for (let start = 0; start < batch; start += maxBatch) {
    const chunk = Math.min(maxBatch, batch - start);
    const rows = await logitRows(judge, tokens.subarray(start * len, (start + chunk) * len), chunk, len);
    // Every position but each sequence's last, in (b, l) order: the NLL sums run in the same order as one row loop.
    const predicting = new Int32Array(chunk * (len - 1));
    for (let b = 0, k = 0; b < chunk; b++) for (let l = 0; l < len - 1; l++) predicting[k++] = b * len + l;
    try {
      await rows.forEachRow(predicting, (k, logits, offset) => {
        const p = predicting[k];
        const n = start + Math.floor(p / len);
        const next = tokens[start * len + p + 1];
        perSample[n] += logSumExp(logits, offset, vocab) - logits[offset + next];
      });
    } finally {
      rows.dispose();
    }
    for (let b = 0; b < chunk; b++) perSample[start + b] /= len - 1;
  }
  const meanNll = meanAndStderr(perSample).mean;
  return { ppl: Math.exp(meanNll), meanNll, perSample };
}

function logSumExp(xs: Float32Array, offset: number, count: number): number {
  let max = -Infinity;
  for (let v = 0; v < count; v++) max = Math.max(max, xs[offset + v]);
  let sum = 0;
  for (let v = 0; v < count; v++) sum += Math.exp(xs[offset + v] - max);
  return max + Math.log(sum);
}

// A word: a run of letters, with inner apostrophes ("don't", "o'clock"), compared lower-cased.
const WORD = /\p{L}+(?:['\u2019]\p{L}+)*/gu;

/**
 * The words of a token stream (e.g. the training split), lower-cased like countableWords does (match, then
 * lower-case each word). Decoded in chunks of about `chunkTokens` tokens, cut only before a token that starts with
 * whitespace, so no word and no UTF-8 sequence spans a cut and no single string outgrows V8's limit on big corpora.
 */
export function wordVocabulary(
  tokens: { length: number; subarray(start: number, end: number): ArrayLike<number> },
  tokenizer: Tokenizer,
  chunkTokens = 1 << 20,
): Set<string> {
  const vocabulary = new Set<string>();
  for (let start = 0; start < tokens.length;) {
    let end = Math.min(tokens.length, start + chunkTokens);
    while (end < tokens.length && !/^\s/.test(tokenizer.decode(tokens.subarray(end, end + 1)))) end++;
    for (const m of tokenizer.decode(tokens.subarray(start, end)).matchAll(WORD)) vocabulary.add(m[0].toLowerCase());
    start = end;
  }
  return vocabulary;
}

/**
 * The words of one sample text that count for the known-word check, lower-cased, with their [start, end) UTF-16
 * span in `text`. A word touching either end is skipped: the texts are fixed-length windows, which may cut a word
 * in two. Matching runs on the original text so the spans stay valid (lower-casing can change a string's length).
 */
function countableWords(text: string): { word: string; start: number; end: number }[] {
  const out: { word: string; start: number; end: number }[] = [];
  for (const m of text.matchAll(WORD)) {
    const start = m.index;
    const end = start + m[0].length;
    if (start === 0 || end === text.length) continue;
    out.push({ word: m[0].toLowerCase(), start, end });
  }
  return out;
}

/**
 * Share of the words of `texts` (all pooled) that occur in `vocabulary`. Real held-out text scores close to 1; an
 * MDLM's invented words (sub-word pieces joined across a word boundary, which per-position independent draws make
 * easy) lower it, so it measures "reads as English" more directly than judge perplexity. NaN without words.
 */
export function knownWordRate(texts: string[], vocabulary: ReadonlySet<string>): number {
  let known = 0;
  let total = 0;
  for (const text of texts) {
    for (const w of countableWords(text)) {
      total++;
      if (vocabulary.has(w.word)) known++;
    }
  }
  return total ? known / total : NaN;
}

/** [start, end) spans of the words of `text` that are not in `vocabulary` (the invented ones the UI marks). */
export function inventedWordSpans(text: string, vocabulary: ReadonlySet<string>): [number, number][] {
  return countableWords(text)
    .filter((w) => !vocabulary.has(w.word))
    .map((w) => [w.start, w.end]);
}
