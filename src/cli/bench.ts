// `sdtt bench train|sample --model bench-5m`: throughput benchmarks. Each prints progress on stderr and ends
// with ONE JSON line on stdout, so results can be collected by scripts.
import { BackendName, ModelConfig } from '../shared/config.ts';
import { MODEL_PRESETS } from '../shared/presets.ts';
import { benchTrain } from '../engine/training/benchTrain.ts';
import { initParams } from '../engine/model/paramLayout.ts';
import { createModelRuntime } from '../engine/io/openModel.ts';
import { sampleMdlm } from '../engine/sampling/sampler.ts';
import { sampleAr } from '../engine/sampling/arSampler.ts';
import { intFlag, intListFlag, parseFlags, runtimeFlag, UsageError, type Flags } from './args.ts';

const FLAGS: Flags = {
  model: { type: 'string', help: 'benchmark model', default: 'bench-5m' },
  backend: {
    type: 'string',
    help: 'compute backend (tfjs); naming one implies --runtime tfjs for sampling',
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

/** bench-5m as the issue defines it: 4096 tokens + MASK, d 256, 4 layers, 4 heads, seq 128. */
function benchConfig(arch: 'mdlm' | 'ar'): ModelConfig {
  const shape = MODEL_PRESETS['bench-5m'];
  return ModelConfig.parse({ ...shape, arch, vocabSize: 4097, eosId: 4095, maskId: arch === 'mdlm' ? 4096 : -1 });
}

export async function run(argv: string[]): Promise<number> {
  const [what, ...rest] = argv;
  if (what !== 'train' && what !== 'sample')
    throw new UsageError('usage: sdtt bench train|sample [--model bench-5m] [--backend NAME]');
  const f = parseFlags(rest, FLAGS, `usage: sdtt bench ${what} [options]`);
  if (!f) return 0;
  if (f.model !== 'bench-5m') throw new UsageError(`unknown benchmark model "${f.model}" (available: bench-5m)`);
  const backend = BackendName.safeParse(f.backend);
  if (!backend.success) throw new UsageError(`unknown --backend "${f.backend}"`);

  if (what === 'train') {
    const r = await benchTrain({
      backend: backend.data,
      threads: intFlag(f, 'threads', 1)!,
      runtime: runtimeFlag(f),
      steps: intFlag(f, 'bench-steps', 1)!,
    });
    console.log(JSON.stringify(r));
    return 0;
  }

  const batch = intFlag(f, 'batch', 1)!;
  const mdlmCfg = benchConfig('mdlm');
  const rt = { backend: backend.data, runtime: runtimeFlag(f) };
  const { model: denoiser, backend: name, device } = await createModelRuntime(mdlmCfg, initParams(mdlmCfg, 0), rt);
  console.error(`backend ${name} | device ${device}`);
  const mdlm: Record<string, number> = {};
  await sampleMdlm(denoiser, { steps: 4, batch, seed: 0, caching: false }); // warm-up
  for (const steps of intListFlag(f, 'steps')!) {
    const t0 = performance.now();
    await sampleMdlm(denoiser, { steps, batch, seed: 1, caching: false });
    const s = (performance.now() - t0) / 1000;
    mdlm[String(steps)] = Math.round((batch * mdlmCfg.seqLen) / s);
    console.error(
      `mdlm ${steps} steps: ${mdlm[String(steps)]} tok/s (${s.toFixed(2)} s for ${batch} x ${mdlmCfg.seqLen})`,
    );
  }
  await denoiser.dispose();

  const arCfg = benchConfig('ar');
  const { model: ar } = await createModelRuntime(arCfg, initParams(arCfg, 0), rt);
  await sampleAr(ar, { batch, length: 8, seed: 0 }); // warm-up
  const t0 = performance.now();
  await sampleAr(ar, { batch, length: arCfg.seqLen, seed: 1 });
  const s = (performance.now() - t0) / 1000;
  const arKv = Math.round((batch * arCfg.seqLen) / s);
  console.error(`ar + kv cache: ${arKv} tok/s (${s.toFixed(2)} s for ${batch} x ${arCfg.seqLen})`);
  await ar.dispose();
  console.log(
    JSON.stringify({
      bench: 'sample',
      model: 'bench-5m',
      backend: name,
      device,
      batch,
      caching: false,
      mdlm,
      ar_kv: arKv,
    }),
  );
  return 0;
}
