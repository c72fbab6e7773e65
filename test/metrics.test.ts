import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  inventedWordSpans,
  judgePerplexity,
  knownWordRate,
  meanAndStderr,
  selfBleu,
  sentenceBleu,
  unigramEntropy,
  wordVocabulary,
} from '../src/engine/eval/metrics.ts';
import { loadTokenizer, shippedTokenizerPath } from '../src/engine/data/tokenizerFiles.ts';
import type { ArModel, ArSession } from '../src/engine/types.ts';
import { rowsOnly } from './helpers/rowModels.ts';
import { CountingDenoiser } from './helpers/fixtures.ts';
import { heldoutNelbo } from '../src/engine/eval/evaluate.ts';
import { antitheticTimes, forwardMask, subsLogProbs } from '../src/engine/model/mdlm.ts';
import { Rng } from '../src/engine/rng.ts';

const close = (a: number, b: number, tol = 1e-12) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

test('meanAndStderr', () => {
  const r = meanAndStderr([1, 2, 3, 4]);
  close(r.mean, 2.5);
  close(r.stderr, Math.sqrt(5 / 3) / 2);
  assert.equal(r.n, 4);
  assert.ok(Number.isNaN(meanAndStderr([3]).stderr));
  assert.ok(Number.isNaN(meanAndStderr([]).mean));
});

test('unigram entropy: constant sequence = 0, L distinct tokens = log L, per-sample and mean', () => {
  const L = 16;
  const tokens = new Int32Array(3 * L);
  tokens.fill(7, 0, L); // sample 0: constant
  for (let l = 0; l < L; l++) tokens[L + l] = 100 + l; // sample 1: all distinct
  for (let l = 0; l < L; l++) tokens[2 * L + l] = l % 2; // sample 2: two tokens, half each
  const { mean, perSample } = unigramEntropy(tokens, 3, L);
  close(perSample[0], 0);
  close(perSample[1], Math.log(L));
  close(perSample[2], Math.log(2));
  close(mean, (Math.log(L) + Math.log(2)) / 3);
});

test('BLEU: identical = 1, hand-computed partial match, method-1 smoothing, brevity penalty', () => {
  const a = [1, 2, 3, 4, 5, 6];
  close(sentenceBleu(a, [a]), 1);
  // p1 = 3/4, p2 = 2/3, p3 = 1/2, p4 = 0 -> 0.1/1 (epsilon smoothing); same lengths -> BP = 1.
  close(sentenceBleu([1, 2, 3, 4], [[1, 2, 3, 5]]), (0.75 * (2 / 3) * 0.5 * 0.1) ** 0.25);
  // Clipping: "1 1 1 1" against "1 x x x" matches one unigram only.
  close(sentenceBleu([1, 1, 1, 1], [[1, 9, 8, 7]], 1), 0.25);
  // Brevity penalty exp(1 - r/c) for a hypothesis shorter than the closest reference.
  close(sentenceBleu([1, 2], [[1, 2, 3, 4]], 2), Math.exp(1 - 4 / 2));
});

test('self-BLEU: identical continuations = 1, disjoint ones ≈ 0, mean over prompts', () => {
  const same = [Int32Array.of(5, 6, 7, 8, 9), Int32Array.of(5, 6, 7, 8, 9), Int32Array.of(5, 6, 7, 8, 9)];
  const disjoint = [Int32Array.of(1, 2, 3, 4), Int32Array.of(10, 11, 12, 13), Int32Array.of(20, 21, 22, 23)];
  const r = selfBleu([same, disjoint]);
  close(r.perPrompt[0], 1);
  // Every precision smoothed to 0.1/count: 0.1/4, 0.1/3, 0.1/2, 0.1/1 -> geometric mean 0.1·24^(-1/4).
  const smoothedZero = 0.1 * 24 ** -0.25;
  close(r.perPrompt[1], smoothedZero, 1e-9);
  close(r.mean, (1 + smoothedZero) / 2, 1e-9);
  assert.throws(() => selfBleu([[Int32Array.of(1)]]));
});

/** Judge whose next-token logits are a fixed function of the current token. */
class FunctionJudge implements ArModel {
  readonly seqLen = 64;
  readonly eosId = 0;
  calls = 0;
  constructor(
    readonly vocabSize: number,
    private readonly rowOf: (token: number) => number[],
  ) {}
  async logits(tokens: Int32Array, batch: number, len: number): Promise<Float32Array> {
    this.calls++;
    const out = new Float32Array(batch * len * this.vocabSize);
    for (let i = 0; i < batch * len; i++) out.set(this.rowOf(tokens[i]), i * this.vocabSize);
    return out;
  }
  session(): ArSession {
    throw new Error('not used');
  }
}

test('judgePerplexity: a uniform judge over V gives exactly V', async () => {
  const V = 37;
  const judge = new FunctionJudge(V, () => new Array(V).fill(0.25));
  const tokens = Int32Array.from({ length: 5 * 20 }, (_, i) => (i * 7) % V);
  const r = await judgePerplexity(judge, tokens, 5, 20);
  close(r.ppl, V, 1e-9);
  assert.equal(r.perSample.length, 5);
  for (const nll of r.perSample) close(nll, Math.log(V), 1e-9);
});

test('judgePerplexity: analytic per-sample NLL, chunking does not change results', async () => {
  // Next token = current + 1 (mod V) with probability q; the rest uniform.
  const V = 6;
  const q = 0.7;
  const rowOf = (tok: number) =>
    Array.from({ length: V }, (_, v) => Math.log(v === (tok + 1) % V ? q : (1 - q) / (V - 1)));
  const judge = new FunctionJudge(V, rowOf);
  const len = 9;
  const tokens = new Int32Array(3 * len);
  for (let l = 0; l < len; l++) {
    tokens[l] = l % V; // always follows the rule
    tokens[len + l] = 2; // never follows it
    tokens[2 * len + l] = l < 5 ? l : 0; // follows it for 4 of 8 predictions
  }
  const hit = -Math.log(q);
  const miss = -Math.log((1 - q) / (V - 1));
  const r = await judgePerplexity(judge, tokens, 3, len);
  close(r.perSample[0], hit, 1e-6);
  close(r.perSample[1], miss, 1e-6);
  close(r.perSample[2], (4 * hit + 4 * miss) / 8, 1e-6);
  close(r.meanNll, (r.perSample[0] + r.perSample[1] + r.perSample[2]) / 3);
  close(r.ppl, Math.exp(r.meanNll));

  const chunked = await judgePerplexity(new FunctionJudge(V, rowOf), tokens, 3, len, 1);
  assert.deepEqual(chunked.perSample, r.perSample);
  // read by row (never whole logits): the same sums, no read beyond the maxBatch sequences of one forward
  const byRow = rowsOnly(new FunctionJudge(V, rowOf));
  assert.deepEqual((await judgePerplexity(byRow, tokens, 3, len, 2)).perSample, r.perSample);
  assert.equal(byRow.rowReads.forwards, 2);
  assert.ok(byRow.rowReads.maxRows <= 2 * (len - 1));
  await assert.rejects(judgePerplexity(judge, Int32Array.of(0, V), 1, 2), /outside/);
});

test('known-word rate: words of the training text count, invented ones do not; case-insensitive, apostrophes inside', () => {
  const tokenizer = loadTokenizer(shippedTokenizerPath());
  const training = tokenizer.encode("The Cat didn't sit; extraordinarily, le café was closed.\n");
  const vocabulary = wordVocabulary(training, tokenizer);
  // Multi-token words are whole in the vocabulary (the stream is decoded as one text), never their pieces.
  assert.deepEqual([...vocabulary].sort(), [
    'café',
    'cat',
    'closed',
    "didn't",
    'extraordinarily',
    'le',
    'sit',
    'the',
    'was',
  ]);
  close(knownWordRate([' the CAT sat.', "(Didn't)"], vocabulary), 3 / 4);
  close(knownWordRate([' catsit extraordin arily '], vocabulary), 0);
  // Words touching a window's edge may be cut pieces: not counted either way.
  close(knownWordRate(['raordinarily the catsit closed', 'sit'], vocabulary), 1 / 2);
  assert.ok(Number.isNaN(knownWordRate(['1776 -- ?', 'cat'], vocabulary)));
});

test('word vocabulary: chunked decoding gives the words of the whole text; matching before lower-casing, like the check', () => {
  const tokenizer = loadTokenizer(shippedTokenizerPath());
  const text =
    "Über die Straße ging İstanbul's café-owner; extraordinarily long words, ünïcödé, naïve.\nThe end of it all. ".repeat(
      3,
    );
  const tokens = Int32Array.from(tokenizer.encode(text));
  const whole = wordVocabulary(tokens, tokenizer);
  for (const chunk of [1, 2, 3, 7, 50])
    assert.deepEqual(
      [...wordVocabulary(tokens, tokenizer, chunk)].sort(),
      [...whole].sort(),
      `chunks of ${chunk} tokens`,
    );
  // 'İstanbul' lower-cases to 'i̇stanbul' (two code units for İ): kept as one word, so a sample's İstanbul is known
  assert.ok(whole.has("i̇stanbul's") && whole.has('straße') && whole.has('ünïcödé'), JSON.stringify([...whole]));
  assert.deepEqual(
    inventedWordSpans("xx İstanbul's naïve qzx yy", whole).map(([a, b]) => "xx İstanbul's naïve qzx yy".slice(a, b)),
    ['qzx'],
  );
});

test('invented-word spans: exactly the counted words that are not in the training text, as offsets into the text', () => {
  const vocabulary = new Set(['the', 'cat', 'sat', "didn't"]);
  const text = "xx The Catsit sat, İnquentified didn't zz";
  const spans = inventedWordSpans(text, vocabulary);
  // 'xx' and 'zz' touch the window's edges: not judged. 'İ' lower-cases to two UTF-16 units; spans stay on `text`.
  assert.deepEqual(
    spans.map(([a, b]) => text.slice(a, b)),
    ['Catsit', 'İnquentified'],
  );
  assert.deepEqual(inventedWordSpans('xx the cat sat zz', vocabulary), []);
  // The spans and the rate agree: 2 of the 5 counted words are invented.
  close(knownWordRate([text], vocabulary), 3 / 5);
});

/** Logits that depend on the position, the left neighbour and the sequence's MASK count. */
class MixDenoiser extends CountingDenoiser {
  protected fill(tokens: Int32Array, batch: number, out: Float32Array): void {
    const { vocabSize: V, seqLen: L, maskId } = this;
    for (let b = 0; b < batch; b++) {
      let masks = 0;
      for (let l = 0; l < L; l++) if (tokens[b * L + l] === maskId) masks++;
      for (let l = 0; l < L; l++)
        for (let v = 0; v < V; v++)
          out[(b * L + l) * V + v] = Math.sin(0.7 * v + 1.3 * l + 0.4 * (tokens[b * L + l - 1] ?? 0) + 0.1 * masks);
    }
  }
}

test('heldoutNelbo reads the masked rows only, never whole logits: the float64 SUBS sum of the definition', async () => {
  const [V, L, MASK, B] = [9, 12, 8, 3];
  const windows = [0, 1].map((w) => Int32Array.from({ length: B * L }, (_, i) => (i * 5 + w) % MASK));
  const byRow = rowsOnly(new MixDenoiser(V, L, MASK));
  const got = await heldoutNelbo(byRow, windows, B, 4);
  // the definition (docs/design/sdtt.md §1.5) with whole float64 SUBS arrays, same times and masks
  const model = new MixDenoiser(V, L, MASK);
  const rng = new Rng(4);
  let total = 0;
  for (const x0 of windows) {
    const t = antitheticTimes(B, 1e-3, rng);
    const zt = forwardMask(x0, t, L, MASK, rng);
    const logp = subsLogProbs(await model.logits(zt, B), zt, V, MASK);
    let sum = 0;
    for (let i = 0; i < B * L; i++) if (zt[i] === MASK) sum -= logp[i * V + x0[i]] / t[Math.floor(i / L)];
    total += sum / (B * L);
  }
  assert.equal(got, total / windows.length);
  assert.equal(byRow.rowReads.forwards, windows.length);
  assert.ok(byRow.rowReads.maxRows < B * L);
});
