// Per-round evaluation of an SDTT run (docs/design/sdtt.md §5): the model (the original teacher for round −1, the EMA student
// after each round) is sampled at every evalSteps count with evalSamples samples drawn from fixed streams
// (sequenceRng(seed, k) for sample k: the same seeds for the teacher and every round), float64 sampling; the judge
// scores them (gen PPL ± s.e., delta method) next to the unigram entropy; held-out NELBO on fixed validation windows;
// self-BLEU over continuations of shared validation prompts; with the training text's words, the known-word rate
// (and, per sample shown, the spans of its invented words). The first samplesPerCell samples of each (round, steps)
// cell go to samples/<round>-<steps>.json in the SampleCell format of shared/api.ts (the first with its unmasking
// trajectory), which the UI reads.
import { mkdirSync } from 'node:fs';
import { writeFileAtomic } from '../../node/atomicFile.ts';
import { runPaths } from '../../runs/runFolder.ts';
import { join } from 'node:path';
import type { SampleCell } from '../../shared/api.ts';
import { heldoutNelbo } from '../eval/evaluate.ts';
import {
  inventedWordSpans,
  judgePerplexity,
  knownWordRate,
  meanAndStderr,
  selfBleu,
  unigramEntropy,
} from '../eval/metrics.ts';
import { sampleMdlm } from '../sampling/sampler.ts';
import type { Tokenizer } from '../data/tokenizers.ts';
import type { ArModel, Denoiser } from '../types.ts';
import type { TokenArray } from '../data/batches.ts';
import { validationBatches } from '../data/batches.ts';

/** One eval row (a rounds line's `eval`, the shape apiHost reads). gen_ppl fields are null without a judge,
 * known_words without the training text's words (and absent in runs evaluated before it existed). */
export interface DistillEvalRow {
  steps: number;
  gen_ppl: number | null;
  gen_ppl_se: number | null;
  entropy: number;
  known_words?: number | null;
  samples: number;
  nfe: number;
  seconds: number;
}

export type SelfBleuResult =
  | { computed: true; steps: number; value: number; prompts: number; continuations: number; prefixTokens: number }
  | { computed: false; reason: string };

export interface DistillEvalResult {
  round: number;
  rows: DistillEvalRow[];
  heldoutNelbo: number;
  selfBleu: SelfBleuResult;
  /** Judge checkpoint, or null with `note` saying why gen PPL is missing. */
  judge: string | null;
  note?: string;
  samplesFiles: string[];
  /** Seconds the evaluation took when it was computed (by this run, or by the run whose cache entry this is). */
  seconds: number;
  /** The teacher-evaluation cache key when this result was reused from the workspace cache (nothing computed here). */
  reusedFrom?: string;
}

export interface DistillEvalContext {
  runDir: string;
  seqLen: number;
  tokenizer: Tokenizer;
  judge: ArModel | null;
  judgePath: string | null;
  judgeNote?: string;
  evalSteps: number[];
  evalSamples: number;
  evalBatch: number;
  samplesPerCell: number;
  /** Sampling seed of every cell (cfg.seed): SampleCell.seed. */
  seed: number;
  selfBleuPrompts: number;
  valTokens: TokenArray;
  /** The training split's words (wordVocabulary), built on first use (a run whose teacher evaluation comes from the
   * cache may never need them): the known-word rate and the invented-word spans; null = skip. */
  trainingWords: (() => ReadonlySet<string>) | null;
  heldoutWindows: Int32Array[];
  onProgress?: (what: string) => void;
}

/** Fixed held-out windows for the NELBO: evalHeldoutBatches batches of evalBatch windows spread over validation. */
export function heldoutWindowsFor(valTokens: TokenArray, seqLen: number, batch: number, count: number): Int32Array[] {
  return validationBatches(valTokens, seqLen, batch, count);
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value) + '\n');
}

/** Evaluates `model` as round `round` (−1 = teacher); selfBleuSteps = the step count self-BLEU samples with. */
export async function evaluateRound(
  model: Denoiser,
  ctx: DistillEvalContext,
  round: number,
  selfBleuSteps: number,
): Promise<DistillEvalResult> {
  const started = performance.now();
  const L = ctx.seqLen;
  const samplesDir = runPaths.samples(ctx.runDir);
  mkdirSync(samplesDir, { recursive: true });
  const rows: DistillEvalRow[] = [];
  const samplesFiles: string[] = [];
  for (const steps of ctx.evalSteps) {
    ctx.onProgress?.(`round ${round}: sampling ${ctx.evalSamples} x ${steps} steps`);
    const n = ctx.evalSamples;
    const all = new Int32Array(n * L);
    const perSampleMs = new Float64Array(n);
    let trajectory: Int32Array[] | undefined;
    let nfe = 0;
    const t0 = performance.now();
    for (let start = 0; start < n; start += ctx.evalBatch) {
      const b = Math.min(ctx.evalBatch, n - start);
      const c0 = performance.now();
      const out = await sampleMdlm(model, {
        steps,
        batch: b,
        seed: ctx.seed,
        sequenceOffset: start,
        recordTrajectory: start === 0,
        precision: 'float64',
      });
      const ms = performance.now() - c0;
      perSampleMs.fill(ms / b, start, start + b);
      all.set(out.tokens, start * L);
      nfe += out.nfe;
      if (start === 0) trajectory = out.trajectory;
    }
    const seconds = (performance.now() - t0) / 1000;
    const entropy = unigramEntropy(all, n, L);
    let nll: Float64Array | null = null;
    if (ctx.judge) {
      nll = new Float64Array(n);
      for (let start = 0; start < n; start += ctx.evalBatch) {
        const b = Math.min(ctx.evalBatch, n - start);
        nll.set((await judgePerplexity(ctx.judge, all.subarray(start * L, (start + b) * L), b, L)).perSample, start);
      }
    }
    let gen_ppl: number | null = null;
    let gen_ppl_se: number | null = null;
    if (nll) {
      const { mean, stderr } = meanAndStderr(nll);
      gen_ppl = Math.exp(mean);
      gen_ppl_se = gen_ppl * stderr;
    }
    const texts = Array.from({ length: n }, (_, k) => ctx.tokenizer.decode(all.subarray(k * L, (k + 1) * L)));
    const words = ctx.trainingWords?.() ?? null;
    const known_words = words ? knownWordRate(texts, words) : null;
    rows.push({ steps, gen_ppl, gen_ppl_se, entropy: entropy.mean, known_words, samples: n, nfe, seconds });

    const cells: (SampleCell & { sample: number })[] = [];
    for (let k = 0; k < Math.min(ctx.samplesPerCell, n); k++) {
      const tokens = all.subarray(k * L, (k + 1) * L);
      const cell: SampleCell & { sample: number } = {
        round,
        steps,
        seed: ctx.seed,
        sample: k,
        text: texts[k],
        ...(words ? { inventedWords: inventedWordSpans(texts[k], words) } : {}),
        // null = not computed (the run has no judge).
        genPpl: nll ? Math.exp(nll[k]) : null,
        entropy: entropy.perSample[k],
        latencyMs: perSampleMs[k],
      };
      if (k === 0 && trajectory) {
        cell.trajectory = trajectory.map((t) => Array.from(t.subarray(0, L)));
        cell.tokenTexts = Array.from(tokens, (id) => ctx.tokenizer.tokenText(id));
      }
      cells.push(cell);
    }
    const file = join(samplesDir, `${round}-${steps}.json`);
    writeJsonAtomic(file, cells);
    samplesFiles.push(file);
  }

  ctx.onProgress?.(`round ${round}: held-out NELBO`);
  const nelbo = await heldoutNelbo(model, ctx.heldoutWindows, ctx.heldoutWindows[0].length / L, ctx.seed + 3);
  ctx.onProgress?.(`round ${round}: self-BLEU`);
  const bleu = await selfBleuOf(model, ctx, selfBleuSteps);
  return {
    round,
    rows,
    heldoutNelbo: nelbo,
    selfBleu: bleu,
    ...evalJudgeFields(ctx),
    samplesFiles,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The result's judge folder, and the note saying why gen PPL is missing when there is no judge. */
export function evalJudgeFields(
  ctx: Pick<DistillEvalContext, 'judge' | 'judgePath' | 'judgeNote'>,
): Pick<DistillEvalResult, 'judge' | 'note'> {
  return { judge: ctx.judgePath, ...(ctx.judge ? {} : { note: ctx.judgeNote ?? 'no judge: gen PPL not computed' }) };
}

const CONTINUATIONS = 4;

/** Self-BLEU: P validation prompts (first min(32, L/4) tokens), 4 continuations each, at `steps` sampling steps. */
async function selfBleuOf(model: Denoiser, ctx: DistillEvalContext, steps: number): Promise<SelfBleuResult> {
  const P = ctx.selfBleuPrompts;
  if (P === 0) return { computed: false, reason: 'selfBleuPrompts = 0' };
  const L = ctx.seqLen;
  const prefixLen = Math.min(32, Math.floor(L / 4));
  if (prefixLen < 1 || L - prefixLen < 4)
    return { computed: false, reason: `sequence length ${L} too short for prompts` };
  let windows: Int32Array;
  try {
    windows = validationBatches(ctx.valTokens, L, P, 1)[0];
  } catch (e) {
    return { computed: false, reason: (e as Error).message };
  }
  const prefixes: Int32Array[] = [];
  for (let p = 0; p < P; p++)
    for (let c = 0; c < CONTINUATIONS; c++) prefixes.push(windows.slice(p * L, p * L + prefixLen));
  const groups: number[][][] = Array.from({ length: P }, () => []);
  for (let start = 0; start < prefixes.length; start += ctx.evalBatch) {
    const b = Math.min(ctx.evalBatch, prefixes.length - start);
    const out = await sampleMdlm(model, {
      steps,
      batch: b,
      seed: ctx.seed + 7919,
      sequenceOffset: start,
      prefix: prefixes.slice(start, start + b),
    });
    for (let j = 0; j < b; j++)
      groups[Math.floor((start + j) / CONTINUATIONS)].push(
        Array.from(out.tokens.subarray(j * L + prefixLen, (j + 1) * L)),
      );
  }
  return {
    computed: true,
    steps,
    value: selfBleu(groups).mean,
    prompts: P,
    continuations: CONTINUATIONS,
    prefixTokens: prefixLen,
  };
}
