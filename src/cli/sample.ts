// `sdtt sample`: draw samples from a checkpoint. MDLM: the ancestral sampler with N steps (float64 draws,
// caching, final argmax pass). AR: nucleus sampling with the KV cache.
import { writeFileSync } from 'node:fs';
import { BackendName } from '../shared/config.ts';
import { TopP } from '../shared/messages.ts';
import { fmtKnownWords } from '../shared/evalFormat.ts';
import { checkWords, sampleText, type SampleTextResult } from '../engine/sampling/sampleText.ts';
import { intFlag, numFlag, parseFlags, runtimeFlag, UsageError, type Flags } from './args.ts';
import { ProgressBar } from './progress.ts';

const FLAGS: Flags = {
  model: { type: 'string', help: 'checkpoint folder, or a run folder (uses its latest checkpoint)' },
  steps: { type: 'string', help: 'MDLM sampling steps N', default: '128' },
  samples: { type: 'string', help: 'number of samples', default: '4' },
  seed: { type: 'string', help: 'random seed', default: '0' },
  prefix: { type: 'string', help: 'text the samples start with' },
  weights: { type: 'string', help: 'ema | raw (default: ema when the checkpoint has it)' },
  'no-cache': { type: 'boolean', help: 'disable the MDLM cache (forward pass even when nothing changed)' },
  'top-p': { type: 'string', help: 'nucleus p (default: AR 0.95; MDLM 1 = exact, < 1 reads better but is biased)' },
  temperature: { type: 'string', help: 'AR temperature', default: '1' },
  backend: {
    type: 'string',
    help: 'compute backend: webgpu | cuda | onnx-cpu (onnxruntime), or a tfjs backend (implies --runtime tfjs)',
    default: 'auto',
  },
  runtime: { type: 'string', help: 'inference runtime: auto (onnx when installed) | onnx | tfjs', default: 'auto' },
  data: {
    type: 'string',
    help: "training text (file or token shards): list each sample's invented words (not in its train split) and the known-word rate",
  },
  json: { type: 'string', help: 'also write the samples and timing to this JSON file' },
};

export async function run(argv: string[]): Promise<number> {
  const f = parseFlags(argv, FLAGS, 'usage: sdtt sample --model DIR [--steps N] [options]');
  if (!f) return 0;
  if (!f.model) throw new UsageError('--model DIR is required');
  const backend = BackendName.safeParse(f.backend);
  if (!backend.success) throw new UsageError(`unknown --backend "${f.backend}"`);
  if (f.weights !== undefined && f.weights !== 'ema' && f.weights !== 'raw')
    throw new UsageError('--weights must be ema or raw');
  const steps = intFlag(f, 'steps', 1)!;
  const batch = intFlag(f, 'samples', 1)!;
  const seed = intFlag(f, 'seed')!;
  const topP = numFlag(f, 'top-p');
  if (topP !== undefined && !TopP.safeParse(topP).success)
    throw new UsageError(`--top-p must be in (0, 1], got ${f['top-p']}`);

  let bar: ProgressBar | null = null;
  let r: SampleTextResult;
  try {
    r = await sampleText(String(f.model), {
      steps,
      samples: batch,
      seed,
      prefix: f.prefix ? String(f.prefix) : undefined,
      weights: f.weights as 'ema' | 'raw' | undefined,
      caching: !f['no-cache'],
      topP,
      temperature: numFlag(f, 'temperature')!,
      backend: backend.data,
      runtime: runtimeFlag(f),
      onOpen: (m) => {
        console.error(
          `model ${m.checkpointDir} (${m.arch}, ${m.weights} weights) | backend ${m.backend} | device ${m.device}`,
        );
        if (m.arch === 'mdlm') bar = new ProgressBar(`sampling ${steps} steps`, steps);
      },
      onStep: (i) => bar?.update(i),
    });
  } catch (e) {
    if (/^the prefix is/.test((e as Error).message)) throw new UsageError(`--prefix: ${(e as Error).message}`);
    throw e;
  }
  (bar as ProgressBar | null)?.done();
  // With --data: the words of each sample that occur nowhere in the training text (window-edge words not judged).
  let words: ReturnType<typeof checkWords> | null = null;
  if (f.data) {
    try {
      words = checkWords(r.texts, String(f.data), r.tokenizer);
    } catch (e) {
      console.error(`warning: --data ${f.data}: ${(e as Error).message}; the samples follow without the word check`);
    }
  }
  const invented = words ? r.texts.map((t, b) => words.invented[b].map(([a, e]) => t.slice(a, e))) : null;
  r.texts.forEach((t, b) =>
    console.log(`--- sample ${b} ---\n${t}\n${invented ? `(invented: ${invented[b].join(', ') || 'none'})\n` : ''}`),
  );
  if (words)
    console.error(
      `known words ${fmtKnownWords({ known_words: words.knownWords }) || '– (no words)'}: share of the samples' words found in the training text`,
    );
  const tokPerS = (batch * r.seqLen) / r.seconds;
  console.error(
    `${batch} samples x ${r.seqLen} tokens in ${r.seconds.toFixed(2)} s (${tokPerS.toFixed(0)} tok/s${r.nfe !== undefined ? `, ${r.nfe} forward passes` : ''})`,
  );
  if (f.json)
    writeFileSync(
      String(f.json),
      JSON.stringify(
        {
          checkpoint: r.checkpointDir,
          arch: r.arch,
          steps,
          top_p: r.topP,
          seed,
          nfe: r.nfe,
          seconds: r.seconds,
          texts: r.texts,
          ...(words ? { known_words: words.knownWords, invented } : {}),
        },
        null,
        2,
      ) + '\n',
    );
  return 0;
}
