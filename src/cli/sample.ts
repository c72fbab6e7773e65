// `sdtt sample`: draw samples from a checkpoint. MDLM: the ancestral sampler with N steps (float64 draws,
// caching, final argmax pass). AR: nucleus sampling with the KV cache.
import { writeFileSync } from 'node:fs';
import { BackendName } from '../shared/config.ts';
import { openModel } from '../worker/engine/openModel.ts';
import { sampleMdlm } from '../worker/engine/sampler.ts';
import { sampleAr } from '../worker/engine/arSampler.ts';
import { intFlag, numFlag, parseFlags, runtimeFlag, type Flags } from './args.ts';
import { UsageError } from './index.ts';
import { ProgressBar } from './progress.ts';

const FLAGS: Flags = {
  model: { type: 'string', help: 'checkpoint folder, or a run folder (uses its latest checkpoint)' },
  steps: { type: 'string', help: 'MDLM sampling steps N', default: '128' },
  samples: { type: 'string', help: 'number of samples', default: '4' },
  seed: { type: 'string', help: 'random seed', default: '0' },
  prefix: { type: 'string', help: 'text the samples start with' },
  weights: { type: 'string', help: 'ema | raw (default: ema when the checkpoint has it)' },
  'no-cache': { type: 'boolean', help: 'disable the MDLM cache (forward pass even when nothing changed)' },
  'top-p': { type: 'string', help: 'AR nucleus p', default: '0.95' },
  temperature: { type: 'string', help: 'AR temperature', default: '1' },
  backend: { type: 'string', help: 'compute backend (tfjs); naming one implies --runtime tfjs', default: 'auto' },
  runtime: { type: 'string', help: 'inference runtime: auto (onnx when installed) | onnx | tfjs', default: 'auto' },
  json: { type: 'string', help: 'also write the samples and timing to this JSON file' },
};

export async function run(argv: string[]): Promise<number> {
  const f = parseFlags(argv, FLAGS, 'usage: sdtt sample --model DIR [--steps N] [options]');
  if (!f) return 0;
  if (!f.model) throw new UsageError('--model DIR is required');
  const backend = BackendName.safeParse(f.backend);
  if (!backend.success) throw new UsageError(`unknown --backend "${f.backend}"`);
  if (f.weights !== undefined && f.weights !== 'ema' && f.weights !== 'raw') throw new UsageError('--weights must be ema or raw');
  const steps = intFlag(f, 'steps', 1)!;
  const batch = intFlag(f, 'samples', 1)!;
  const seed = intFlag(f, 'seed')!;

  const m = await openModel(String(f.model), { backend: backend.data, weights: f.weights as 'ema' | 'raw' | undefined, runtime: runtimeFlag(f) });
  console.error(`model ${m.checkpointDir} (${m.config.arch}, ${m.weights} weights) | backend ${m.backend} | device ${m.device}`);
  const prefix = f.prefix ? m.tokenizer.encode(String(f.prefix)) : undefined;
  if (prefix && prefix.length >= m.config.seqLen) throw new UsageError(`--prefix is ${prefix.length} tokens; it must be shorter than the sequence length ${m.config.seqLen}`);

  const started = performance.now();
  let tokens: Int32Array;
  let nfe: number | undefined;
  if (m.config.arch === 'mdlm') {
    const bar = new ProgressBar(`sampling ${steps} steps`, steps);
    const out = await sampleMdlm(m.model, { steps, batch, seed, prefix, caching: !f['no-cache'], onStep: (i) => bar.update(i.step) });
    bar.done();
    tokens = out.tokens;
    nfe = out.nfe;
  } else {
    tokens = await sampleAr(m.model, { batch, length: m.config.seqLen, seed, prefix, topP: numFlag(f, 'top-p')!, temperature: numFlag(f, 'temperature')! });
  }
  const seconds = (performance.now() - started) / 1000;
  await m.model.dispose();

  const L = m.config.seqLen;
  const texts: string[] = [];
  for (let b = 0; b < batch; b++) texts.push(m.tokenizer.decode(tokens.subarray(b * L, (b + 1) * L)));
  texts.forEach((t, b) => console.log(`--- sample ${b} ---\n${t}\n`));
  const tokPerS = (batch * L) / seconds;
  console.error(`${batch} samples x ${L} tokens in ${seconds.toFixed(2)} s (${tokPerS.toFixed(0)} tok/s${nfe !== undefined ? `, ${nfe} forward passes` : ''})`);
  if (f.json) writeFileSync(String(f.json), JSON.stringify({ checkpoint: m.checkpointDir, arch: m.config.arch, steps, seed, nfe, seconds, texts }, null, 2) + '\n');
  return 0;
}
