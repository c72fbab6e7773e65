// Text samples from a checkpoint: open it, draw (MDLM: the ancestral sampler with N steps, float64 draws, caching,
// final argmax pass; AR: nucleus sampling with the KV cache) and decode. What `sdtt sample` prints and what the app's
// "try it" panel shows, from one function.
import type { BackendName } from '../../shared/config.ts';
import { openModel, type ComputeRuntime } from '../io/openModel.ts';
import { sampleMdlm } from './sampler.ts';
import { sampleAr } from './arSampler.ts';
import type { Tokenizer } from '../data/tokenizers.ts';
import { openTokenSource } from '../data/shards.ts';
import { inventedWordSpans, knownWordRate, wordVocabulary } from '../eval/metrics.ts';

export interface SampleTextOptions {
  /** MDLM sampling steps N (ignored for AR). */
  steps: number;
  samples: number;
  seed: number;
  /** Text every sample starts with. */
  prefix?: string;
  weights?: 'ema' | 'raw';
  /** MDLM: skip the forward pass when nothing changed (default true; never changes the samples). */
  caching?: boolean;
  /** Nucleus p: AR default 0.95; MDLM default 1 (the exact sampler; < 1 is biased, for reading only). */
  topP?: number;
  /** AR temperature (default 1). */
  temperature?: number;
  backend?: BackendName;
  runtime?: ComputeRuntime;
  /** Called once the model is open, before sampling (what runs where). */
  onOpen?(info: { checkpointDir: string; arch: string; weights: string; backend: string; device: string }): void;
  /** MDLM: after each of the N steps. */
  onStep?(step: number, steps: number): void;
}

export interface SampleTextResult {
  checkpointDir: string;
  arch: 'mdlm' | 'ar';
  weights: 'ema' | 'raw';
  backend: string;
  device: string;
  /** MDLM steps N; null for AR. */
  steps: number | null;
  /** Nucleus p the draws used (1 = exact). */
  topP: number;
  seed: number;
  texts: string[];
  /** Sequence length in tokens (each sample is one sequence). */
  seqLen: number;
  /** The model's tokenizer (decodes the samples; opens training data with the same ids). */
  tokenizer: Tokenizer;
  /** MDLM: denoiser forward passes run (≤ N with caching). */
  nfe?: number;
  seconds: number;
}

export async function sampleText(modelPath: string, opts: SampleTextOptions): Promise<SampleTextResult> {
  const { steps, samples: batch, seed } = opts;
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`samples must be an integer >= 1, got ${batch}`);
  const m = await openModel(modelPath, { backend: opts.backend, weights: opts.weights, runtime: opts.runtime });
  try {
    const { arch, seqLen: L } = m.config;
    opts.onOpen?.({ checkpointDir: m.checkpointDir, arch, weights: m.weights, backend: m.backend, device: m.device });
    const prefix = opts.prefix ? m.tokenizer.encode(opts.prefix) : undefined;
    if (prefix && prefix.length >= L)
      throw new Error(`the prefix is ${prefix.length} tokens; it must be shorter than the sequence length ${L}`);
    const started = performance.now();
    let tokens: Int32Array;
    let nfe: number | undefined;
    const topP = opts.topP ?? (arch === 'mdlm' ? 1 : 0.95);
    if (arch === 'mdlm') {
      const out = await sampleMdlm(m.model, {
        steps,
        batch,
        seed,
        prefix,
        topP,
        caching: opts.caching ?? true,
        onStep: (i) => opts.onStep?.(i.step, steps),
      });
      tokens = out.tokens;
      nfe = out.nfe;
    } else {
      tokens = await sampleAr(m.model, { batch, length: L, seed, prefix, topP, temperature: opts.temperature ?? 1 });
    }
    const seconds = (performance.now() - started) / 1000;
    const texts = Array.from({ length: batch }, (_, b) => m.tokenizer.decode(tokens.subarray(b * L, (b + 1) * L)));
    return {
      checkpointDir: m.checkpointDir,
      arch,
      weights: m.weights,
      backend: m.backend,
      device: m.device,
      steps: arch === 'mdlm' ? steps : null,
      topP,
      seed,
      texts,
      seqLen: L,
      tokenizer: m.tokenizer,
      nfe,
      seconds,
    };
  } finally {
    await m.model.dispose();
  }
}

/**
 * The samples against the words of `data`'s train split (opened with the model's tokenizer): per text the [start,
 * end) spans of its invented words, and the share of all their words that are known (null: no words to judge).
 */
export function checkWords(
  texts: string[],
  data: string,
  tokenizer: Tokenizer,
): { invented: [number, number][][]; knownWords: number | null } {
  const vocabulary = wordVocabulary(openTokenSource(data, { tokenizer }).split('train'), tokenizer);
  const rate = knownWordRate(texts, vocabulary);
  return { invented: texts.map((t) => inventedWordSpans(t, vocabulary)), knownWords: Number.isNaN(rate) ? null : rate };
}
