// `sdtt eval`: held-out perplexity of a checkpoint (--data), and/or the generative-perplexity table over step
// counts scored by an AR judge (--steps 128,64,... --judge DIR). Ends with ONE JSON line.
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { writeCardEvaluation } from '../main/exporter.ts';
import { BackendName } from '../shared/config.ts';
import { openModel } from '../engine/io/openModel.ts';
import { SHIPPED_JUDGE, installedShippedJudge } from '../engine/sdtt/distillJudge.ts';
import { sameTokenizer } from '../engine/data/tokenizers.ts';
import {
  genPplTable,
  genPplWork,
  heldoutArNll,
  heldoutNelbo,
  scoreSamples,
  type GenPplRow,
} from '../engine/eval/evaluate.ts';
import { wordVocabulary } from '../engine/eval/metrics.ts';
import { sampleAr } from '../engine/sampling/arSampler.ts';
import { openTokenSource } from '../engine/data/shards.ts';
import { validationBatches } from '../engine/data/batches.ts';
import { intFlag, intListFlag, parseFlags, runtimeFlag, UsageError, type Flags } from './args.ts';
import { ProgressBar } from './progress.ts';
import { writeFigures } from './report.ts';
import { REPO } from './distill.ts';
import { plotFigure, type PlotRef } from './reportPlot.ts';
import { fmtKnownWords } from '../shared/evalFormat.ts';

const FLAGS: Flags = {
  model: { type: 'string', help: 'checkpoint folder or run folder' },
  data: {
    type: 'string',
    help: 'held-out data: a text file (its last 5% is used) or a shard folder (validation split); with --steps its training part also gives each row its known-word rate',
  },
  batches: { type: 'string', help: 'held-out batches for perplexity', default: '16' },
  batch: { type: 'string', help: 'sequences per forward pass', default: '16' },
  steps: { type: 'string', help: 'MDLM step counts for the generative-perplexity table, e.g. 128,64,32,16,8,4' },
  samples: { type: 'string', help: 'samples per step count', default: '64' },
  judge: {
    type: 'string',
    help: 'AR judge checkpoint that scores the samples of --steps (default: the shipped assets/models/judge-ar-base-5m)',
  },
  'no-baselines': {
    type: 'boolean',
    help: "with --steps: skip the judge's own samples and the real-text floor (needs --data)",
  },
  seed: { type: 'string', help: 'random seed', default: '0' },
  weights: { type: 'string', help: 'ema | raw' },
  backend: {
    type: 'string',
    help: 'compute backend: webgpu | cuda | onnx-cpu (onnxruntime), or a tfjs backend (implies --runtime tfjs)',
    default: 'auto',
  },
  runtime: { type: 'string', help: 'inference runtime: auto (onnx when installed) | onnx | tfjs', default: 'auto' },
  card: {
    type: 'boolean',
    help: "with --steps: write the table into the model folder's README.md (its Evaluation section), next to the original teacher's (config.json sdtt.originalTeacher) measured the same way",
  },
  plot: {
    type: 'string',
    help: 'with --steps: also draw the table (gen PPL ± s.e. and entropy against N, baselines as dotted lines) to FILE.png or FILE.svg',
  },
};

const BASELINE_LABELS: Record<string, string> = {
  'ar-nucleus-0.95': 'AR judge samples, p=0.95',
  'ar-nucleus-1': 'AR judge samples, p=1.0',
  'validation-text': 'real text (floor)',
};

export async function run(argv: string[]): Promise<number> {
  const f = parseFlags(
    argv,
    FLAGS,
    'usage: sdtt eval --model DIR (--data PATH | --steps LIST [--judge DIR]) [options]',
  );
  if (!f) return 0;
  if (!f.model) throw new UsageError('--model DIR is required');
  const steps = intListFlag(f, 'steps');
  if (!f.data && !steps)
    throw new UsageError(
      'give --data PATH (held-out perplexity) and/or --steps LIST (generative perplexity, scored by --judge DIR or the shipped judge)',
    );
  const judgePath = f.judge !== undefined ? String(f.judge) : installedShippedJudge();
  if (steps && !judgePath)
    throw new UsageError(
      `--steps needs --judge DIR (an AR checkpoint that scores the samples); the shipped judge ${SHIPPED_JUDGE} is missing`,
    );
  const backend = BackendName.safeParse(f.backend);
  if (!backend.success) throw new UsageError(`unknown --backend "${f.backend}"`);
  if (f.weights !== undefined && f.weights !== 'ema' && f.weights !== 'raw')
    throw new UsageError('--weights must be ema or raw');
  const plotFile = f.plot !== undefined ? resolve(String(f.plot)) : undefined;
  if (plotFile && !steps) throw new UsageError('--plot draws the generative-perplexity table: give --steps LIST');
  if (plotFile && !/\.(png|svg)$/.test(plotFile))
    throw new UsageError(`--plot ${f.plot}: the file must end in .png or .svg`);
  if (f.card && !steps) throw new UsageError('--card writes the generative-perplexity table: give --steps LIST');
  const batch = intFlag(f, 'batch', 1)!;
  const seed = intFlag(f, 'seed')!;

  const m = await openModel(String(f.model), {
    backend: backend.data,
    weights: f.weights as 'ema' | 'raw' | undefined,
    runtime: runtimeFlag(f),
  });
  console.error(
    `model ${m.checkpointDir} (${m.config.arch}, ${m.weights}) | backend ${m.backend} | device ${m.device}`,
  );
  const result: Record<string, unknown> = {
    eval: steps ? 'genppl' : 'heldout',
    model: m.checkpointDir,
    backend: m.backend,
  };

  const source = f.data ? openTokenSource(String(f.data), { tokenizer: m.tokenizer }) : null;
  if (source) {
    const windows = validationBatches(source.split('validation'), m.config.seqLen, batch, intFlag(f, 'batches', 1)!);
    const nll =
      m.config.arch === 'mdlm'
        ? await heldoutNelbo(m.model, windows, batch, seed)
        : await heldoutArNll(m.model, windows, batch);
    const kind = m.config.arch === 'mdlm' ? 'nelbo' : 'nll';
    console.error(
      `held-out ${kind} ${nll.toFixed(4)} nats/token, perplexity ${Math.exp(nll).toFixed(3)} (${windows.length} x ${batch} x ${m.config.seqLen} tokens)`,
    );
    Object.assign(result, {
      heldout: { [kind]: nll, ppl: Math.exp(nll), tokens: windows.length * batch * m.config.seqLen },
    });
  }

  if (steps) {
    if (m.config.arch !== 'mdlm') throw new UsageError('--steps applies to MDLM checkpoints');
    const judge = await openModel(judgePath!, { backend: backend.data, runtime: runtimeFlag(f) });
    if (judge.config.arch !== 'ar') throw new UsageError(`--judge ${judgePath} is not an AR checkpoint`);
    if (!sameTokenizer(judge.tokenizer, m.tokenizer))
      throw new UsageError(
        `the judge's tokenizer (${judge.tokenizer.kind}, ${judge.tokenizer.vocabSize} ids) differs from the model's (${m.tokenizer.kind}, ${m.tokenizer.vocabSize} ids)`,
      );
    const samples = intFlag(f, 'samples', 1)!;
    const bar = new ProgressBar('eval (denoiser forward passes)', genPplWork(steps, samples));
    // With --data, each row also gets the share of its words that occur in the training text (invented words).
    const L = m.config.seqLen;
    const words = source
      ? { tokenizer: m.tokenizer, vocabulary: wordVocabulary(source.split('train'), m.tokenizer) }
      : undefined;
    const rows = await genPplTable(m.model, judge.model, {
      steps,
      samples,
      batch,
      seed,
      words,
      onProgress: (d) => bar.update(d),
    });
    bar.done();
    console.error(`steps  gen_ppl (± s.e.)   entropy  nfe   seconds${words ? '  known words' : ''}`);
    for (const r of rows)
      console.error(
        `${String(r.steps).padStart(5)}  ${r.gen_ppl.toFixed(2).padStart(8)} ± ${r.gen_ppl_se.toFixed(2).padEnd(7)} ${r.entropy.toFixed(3).padStart(7)}  ${String(r.nfe).padStart(5)}  ${r.seconds.toFixed(1).padStart(7)}  ${fmtKnownWords(r)}`,
      );
    Object.assign(result, { judge: judge.checkpointDir, results: rows });
    if (f.card) {
      // The original teacher's cells come from the same command on its own file, so both columns are measured alike.
      const teacherDir = originalTeacherDir(m.extra);
      let teacherRows: GenPplRow[] | undefined;
      if (teacherDir) {
        const t = await openModel(teacherDir, { backend: backend.data, runtime: runtimeFlag(f) });
        const tbar = new ProgressBar(
          `eval of the original teacher ${basename(teacherDir)}`,
          genPplWork(steps, samples),
        );
        teacherRows = await genPplTable(t.model, judge.model, {
          steps,
          samples,
          batch,
          seed,
          words,
          onProgress: (d) => tbar.update(d),
        });
        tbar.done();
        await t.model.dispose();
      }
      const command = `sdtt eval ${argv.map((a) => (/^[\w./,=:-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')}`;
      const evaluation = {
        rows,
        ...(teacherRows ? { teacher: teacherRows } : {}),
        samples,
        seed,
        judge: basename(judge.checkpointDir),
        command,
      };
      result.card = writeCardEvaluation(
        m.checkpointDir,
        evaluation,
        `Measured on this file's ${m.weights === 'ema' ? 'EMA ' : ''}weights by \`sdtt eval --card\``,
      );
      console.error(
        `wrote the evaluation into ${result.card}${teacherDir ? ` (original teacher: ${teacherDir})` : ' (no original teacher recorded in config.json)'}`,
      );
    }
    if (!f['no-baselines']) {
      // The reference points of the table: the judge's own samples (a same-size AR, as GPT-2 is in the paper) and
      // real held-out text (the floor), all scored by the same judge on the same number of sequences.
      const baselines: (Baseline & Awaited<ReturnType<typeof scoreSamples>>)[] = [];
      for (const topP of [0.95, 1.0]) {
        const tokens = await sampleAr(judge.model, { batch: samples, length: L, seed, topP });
        baselines.push({
          source: `ar-nucleus-${topP}`,
          samples,
          ...(await scoreSamples(judge.model, tokens, samples, L, batch, words)),
        });
      }
      if (source) {
        const windows = validationBatches(source.split('validation'), L, samples, 1);
        baselines.push({
          source: 'validation-text',
          samples: windows.length ? samples : 0,
          ...(await scoreSamples(judge.model, windows[0], samples, L, batch, words)),
        });
      }
      for (const r of baselines)
        console.error(
          `${r.source.padEnd(18)} gen_ppl ${r.gen_ppl.toFixed(2)} ± ${r.gen_ppl_se.toFixed(2)}  entropy ${r.entropy.toFixed(3)}${words ? `  known words ${fmtKnownWords(r)}` : ''}`,
        );
      result.baselines = baselines;
    }
    await judge.model.dispose();
    if (plotFile)
      result.plot = await writeTablePlot(
        plotFile,
        `${basename(m.checkpointDir)}: ${samples} samples per point, judge ${basename(judge.checkpointDir)}`,
        rows,
        (result.baselines ?? []) as Baseline[],
      );
  }
  await m.model.dispose();
  console.log(JSON.stringify(result));
  return 0;
}

/** The original teacher a distilled model's config.json names (sdtt.originalTeacher), when that folder is here: as
 * written (exports write it relative to the workspace they came from), else inside this repository. */
function originalTeacherDir(extra: Record<string, unknown>): string | undefined {
  const p = (extra.sdtt as { originalTeacher?: unknown } | undefined)?.originalTeacher;
  if (typeof p !== 'string' || !p) return undefined;
  return [resolve(p), resolve(REPO, p)].find((d) => existsSync(join(d, 'config.json')));
}

type Baseline = { source: string; samples: number; gen_ppl: number; entropy: number; known_words?: number };

/** The table as the report's figure (one series; the baselines as reference lines). Returns the file written: the
 * PNG, or an SVG beside it when Chromium cannot render (said on stderr). */
async function writeTablePlot(file: string, title: string, rows: GenPplRow[], baselines: Baseline[]): Promise<string> {
  const series = [
    {
      label: 'MDLM, ancestral sampler',
      points: rows.map((r) => ({
        n: r.steps,
        ppl: r.gen_ppl,
        se: r.gen_ppl_se,
        entropy: r.entropy,
        known: r.known_words,
      })),
    },
  ];
  const refs: PlotRef[] = baselines.map((b) => ({
    label: BASELINE_LABELS[b.source] ?? b.source,
    ppl: b.gen_ppl,
    entropy: b.entropy,
    known: b.known_words,
  }));
  // writeFigures names a PNG job's file; an SVG request is the same job written as SVG.
  const job = { ...plotFigure(title, series, refs), file: file.replace(/\.svg$/, '.png') };
  const { files } = await writeFigures([job], file.endsWith('.png') ? 'png' : 'svg', (l) => console.error(l));
  return files[0];
}
