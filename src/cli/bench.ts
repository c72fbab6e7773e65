// `sdtt bench train|sample --model bench-5m` (or `--config FILE`: any model shape, e.g. a 40 M-parameter one):
// throughput benchmarks on random weights (no data, no shipped model). Each prints progress on stderr and ends with
// ONE JSON line on stdout, naming the model and its parameter count, so results can be collected by scripts.
import { basename } from 'node:path';
import { BackendName, describeConfigError } from '../shared/config.ts';
import {
  bench5m,
  benchArConfig,
  benchModelConfig,
  benchTrain,
  type BenchModel,
} from '../engine/training/benchTrain.ts';
import { initParams, paramCount } from '../engine/model/paramLayout.ts';
import { createModelRuntime } from '../engine/io/openModel.ts';
import { sampleMdlm } from '../engine/sampling/sampler.ts';
import { sampleAr } from '../engine/sampling/arSampler.ts';
import { intFlag, intListFlag, parseFlags, readJsonConfig, runtimeFlag, UsageError, type Flags } from './args.ts';

const FLAGS: Flags = {
  model: { type: 'string', help: 'benchmark model: bench-5m (the default when --config is not given)' },
  config: {
    type: 'string',
    help:
      'JSON model config to benchmark instead ({"dModel":512,"nLayers":12,"nHeads":8,"seqLen":256,"vocabSize":4097}; ' +
      'mlpRatio, dropout, ropeBase, eosId, maskId optional); the JSON line names it by its file name',
  },
  backend: {
    type: 'string',
    help: 'compute backend: webgpu | cuda | onnx-cpu (onnxruntime) or a tfjs one; auto picks',
    default: 'auto',
  },
  runtime: {
    type: 'string',
    help: 'training step and inference runtime: auto (onnx when installed) | onnx | tfjs',
    default: 'auto',
  },
  threads: {
    type: 'string',
    help: 'training threads (train): onnx intra-op threads, or tfjs data-parallel workers',
    default: '2',
  },
  'bench-steps': { type: 'string', help: 'timed training steps (train)', default: '8' },
  steps: { type: 'string', help: 'MDLM step counts to time (sample)', default: '128,64,32,16,8,4' },
  batch: { type: 'string', help: 'sequences per sampling batch (sample)', default: '16' },
};

/** The model of --model / --config: bench-5m unless a config file names another shape. */
function benchModel(f: Record<string, unknown>): BenchModel {
  if (f.config === undefined) {
    const name = f.model ?? 'bench-5m';
    if (name !== 'bench-5m')
      throw new UsageError(`unknown benchmark model "${name}" (available: bench-5m, or --config FILE)`);
    return bench5m();
  }
  const file = String(f.config);
  if (f.model !== undefined) throw new UsageError(`--model and --config ${file} exclude each other`);
  const parsed = benchModelConfig(readJsonConfig(file));
  if (!parsed.success) throw new UsageError(describeConfigError(parsed.error, `--config ${file}`));
  return { name: basename(file).replace(/\.json$/i, ''), config: parsed.data };
}

export async function run(argv: string[]): Promise<number> {
  const [what, ...rest] = argv;
  if (what !== 'train' && what !== 'sample')
    throw new UsageError('usage: sdtt bench train|sample [--model bench-5m | --config FILE] [--backend NAME]');
  const f = parseFlags(rest, FLAGS, `usage: sdtt bench ${what} [options]`);
  if (!f) return 0;
  const bench = benchModel(f);
  const backend = BackendName.safeParse(f.backend);
  if (!backend.success) throw new UsageError(`unknown --backend "${f.backend}"`);
  const log = (line: string) => console.error(line);

  if (what === 'train') {
    const r = await benchTrain({
      backend: backend.data,
      threads: intFlag(f, 'threads', 1)!,
      runtime: runtimeFlag(f),
      steps: intFlag(f, 'bench-steps', 1)!,
      model: bench,
      log,
    });
    console.log(JSON.stringify(r));
    return 0;
  }

  const batch = intFlag(f, 'batch', 1)!;
  const stepCounts = intListFlag(f, 'steps')!;
  const mdlmCfg = bench.config;
  log(
    `${bench.name}: ${paramCount(mdlmCfg)} parameters (d ${mdlmCfg.dModel}, ${mdlmCfg.nLayers} layers, ` +
      `${mdlmCfg.nHeads} heads, seq ${mdlmCfg.seqLen}, vocab ${mdlmCfg.vocabSize}), batch ${batch}`,
  );
  const rt = { backend: backend.data, runtime: runtimeFlag(f) };
  const {
    model: denoiser,
    backend: name,
    device,
    adapter,
  } = await createModelRuntime(mdlmCfg, initParams(mdlmCfg, 0), rt);
  log(`backend ${name} | device ${device}`);
  const mdlm: Record<string, number> = {};
  await sampleMdlm(denoiser, { steps: 4, batch, seed: 0, caching: false }); // warm-up
  for (const steps of stepCounts) {
    const t0 = performance.now();
    await sampleMdlm(denoiser, { steps, batch, seed: 1, caching: false });
    const s = (performance.now() - t0) / 1000;
    mdlm[String(steps)] = Math.round((batch * mdlmCfg.seqLen) / s);
    log(`mdlm ${steps} steps: ${mdlm[String(steps)]} tok/s (${s.toFixed(2)} s for ${batch} x ${mdlmCfg.seqLen})`);
  }
  await denoiser.dispose();

  const arCfg = benchArConfig(mdlmCfg);
  const { model: ar } = await createModelRuntime(arCfg, initParams(arCfg, 0), rt);
  await sampleAr(ar, { batch, length: 8, seed: 0 }); // warm-up
  const t0 = performance.now();
  await sampleAr(ar, { batch, length: arCfg.seqLen, seed: 1 });
  const s = (performance.now() - t0) / 1000;
  const arKv = Math.round((batch * arCfg.seqLen) / s);
  log(`ar + kv cache: ${arKv} tok/s (${s.toFixed(2)} s for ${batch} x ${arCfg.seqLen})`);
  await ar.dispose();
  console.log(
    JSON.stringify({
      bench: 'sample',
      model: bench.name,
      backend: name,
      device,
      adapter,
      params: paramCount(mdlmCfg),
      batch,
      seq_len: mdlmCfg.seqLen,
      caching: false,
      mdlm,
      ar_kv: arKv,
    }),
  );
  return 0;
}
