// Forward throughput of the ONNX runtime path vs the tfjs inference model on bench-5m
// (vocab 4097, d 256, 4 layers, 4 heads, seq 128, batch 16).
//   node --import tsx scripts/bench-onnx.ts [--threads 2] [--iters 20] [--backend wasm] [--no-tfjs] [--opset 20] [--ar] [--no-spin]
// Prints tokens/s = batch * seqLen / seconds per forward (median of the timed iterations).
import { parseArgs } from 'node:util';
import { ModelConfig, BackendName } from '../src/shared/config.ts';
import { initParams } from '../src/engine/model/paramLayout.ts';
import { Rng } from '../src/engine/rng.ts';
import { createOnnxModel, loadOnnxRuntime } from '../src/engine/onnx/runtime.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    iters: { type: 'string', default: '20' },
    backend: { type: 'string', default: 'wasm' },
    opset: { type: 'string', default: '20' },
    'no-tfjs': { type: 'boolean', default: false },
    ar: { type: 'boolean', default: false },
    'no-spin': { type: 'boolean', default: false },
  },
});
const threads = Number(values.threads);
const iters = Number(values.iters);
const B = 16;
const cfg = ModelConfig.parse({
  arch: 'mdlm',
  vocabSize: 4097,
  dModel: 256,
  nLayers: 4,
  nHeads: 4,
  seqLen: 128,
  maskId: 4096,
  eosId: 4095,
});
const params = initParams(cfg, 1);
{
  // non-zero everywhere (a zero head would make the output trivial)
  const r = new Rng(2);
  for (let i = 0; i < params.length; i++) params[i] += 0.02 * r.normal();
}
const r = new Rng(3);
const tokens = Int32Array.from({ length: B * cfg.seqLen }, () => r.int(cfg.vocabSize));
const N = B * cfg.seqLen;

async function time(label: string, f: () => Promise<unknown>, n: number): Promise<number> {
  for (let i = 0; i < 3; i++) await f(); // warm-up
  const ts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await f();
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  const med = ts[Math.floor(ts.length / 2)];
  const tps = N / (med / 1000);
  console.log(
    `${label.padEnd(44)} ${med.toFixed(1).padStart(8)} ms/forward  ${tps.toFixed(0).padStart(8)} tokens/s  (median of ${n}, min ${ts[0].toFixed(1)} ms)`,
  );
  return tps;
}

console.log(
  `bench-5m: V=${cfg.vocabSize} d=${cfg.dModel} layers=${cfg.nLayers} heads=${cfg.nHeads} seq=${cfg.seqLen} batch=${B} params=${params.length}`,
);
const rt = await loadOnnxRuntime();
let onnxTps = 0;
if (!rt.ort) console.log(`onnx: skipped (${rt.reason})`);
else {
  const t0 = performance.now();
  const spinning = !values['no-spin'];
  const m = await createOnnxModel(cfg, params, { threads, opset: Number(values.opset), spinning });
  console.log(`onnx: graph build + session create ${(performance.now() - t0).toFixed(0)} ms; ${m.device}`);
  onnxTps = await time(`onnx mdlm forward (${threads} threads)`, () => m.logits(tokens, B), iters);
  await m.dispose();
  if (values.ar) {
    const arCfg = ModelConfig.parse({ ...cfg, arch: 'ar', maskId: -1 });
    const am = await createOnnxModel(arCfg, params, { threads, opset: Number(values.opset), spinning });
    await time(`onnx ar full-recompute forward (${threads} thr)`, () => am.logits(tokens, B, cfg.seqLen), iters);
    // KV decode: prefill 1 token, then 127 single-token steps; report tokens/s over the whole sequence
    const one = tokens.subarray(0, B);
    const t1 = performance.now();
    const s = am.session(B);
    for (let i = 0; i < cfg.seqLen; i++) await s.append(one, 1);
    const sec = (performance.now() - t1) / 1000;
    s.dispose();
    console.log(
      `${'onnx ar KV-cache decode, 128 steps x batch 16'.padEnd(44)} ${(sec * 1000).toFixed(1).padStart(8)} ms total    ${(N / sec).toFixed(0).padStart(8)} tokens/s`,
    );
    await am.dispose();
  }
}

if (!values['no-tfjs']) {
  try {
    const { initBackend } = await import('../src/engine/model/backend.ts');
    const { createInferenceModel } = await import('../src/engine/model/inference.ts');
    const info = await initBackend(BackendName.parse(values.backend));
    const m = createInferenceModel(cfg, params);
    const tps = await time(
      `tfjs mdlm forward (${info.device})`,
      () => m.logits(tokens, B),
      Math.max(3, Math.ceil(iters / 4)),
    );
    m.dispose();
    if (onnxTps) console.log(`speed-up onnx / tfjs: ${(onnxTps / tps).toFixed(1)}x`);
  } catch (e) {
    console.log(`tfjs: failed (${e instanceof Error ? e.message : String(e)})`);
  }
}
