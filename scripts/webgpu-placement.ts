// WebGPU placement report (issue 17): opens each graph the engine builds (the inference graph of graph.ts and the
// training modes of trainGraph.ts) in an onnxruntime-node session on the WebGPU execution provider, runs it on a
// realistic batch with profiling on, and prints a markdown report: nodes per provider, every node not on WebGPU
// and every Memcpy node with its time, the run time split, and the host <-> device copy cost (copy-only graphs).
// Method and numbers: docs/design/webgpu-placement.md.
//   node --import tsx scripts/webgpu-placement.ts [--model bench-5m|tiny] [--arch mdlm|ar] [--batch N] [--runs N]
//        [--graphs inference,grads,logits,backprop,loss] [--no-probe] [--out FILE]
// Without a GPU, SwiftShader (a CPU emulation of Vulkan) stands in:
//   VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json LD_LIBRARY_PATH=/usr/lib/chromium node --import tsx ...
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ModelConfig } from '../src/shared/config.ts';
import { bench5mConfig } from '../src/engine/training/benchTrain.ts';
import { initParams, paramLayout } from '../src/engine/model/paramLayout.ts';
import { makeShards, type GradBatch } from '../src/engine/model/gradShards.ts';
import { antitheticTimes, EPS_NOISE, forwardMask } from '../src/engine/model/mdlm.ts';
import { Rng } from '../src/engine/rng.ts';
import { Builder, onnxModelBytes, pastKeyName, pastValueName } from '../src/engine/onnx/graph.ts';
import { headIds, trainGraphBytes, dropoutInput, type TrainGraphMode } from '../src/engine/onnx/trainGraph.ts';
import { DataType, encodeModel, type ValueInfoDef } from '../src/engine/onnx/protobuf.ts';

// The slice of onnxruntime-node used here, declared locally (the package is an optional dependency).
interface Tensor {
  readonly dims: readonly number[];
  readonly type: string;
  readonly location: string;
  readonly data: unknown;
  readonly gpuBuffer: unknown;
  getData(): Promise<unknown>;
  dispose(): void;
}
interface Session {
  run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>>;
  endProfiling(): void;
  release(): Promise<void>;
}
interface Ort {
  InferenceSession: { create(bytes: Uint8Array, opts: Record<string, unknown>): Promise<Session> };
  Tensor: {
    new (type: string, data: Float32Array | Int32Array | BigInt64Array, dims: readonly number[]): Tensor;
    fromGpuBuffer(buf: unknown, o: { dataType: string; dims: readonly number[] }): Tensor;
  };
  env: { versions?: Record<string, string> };
}
const ORT_PACKAGE = 'onnxruntime-node';
const mod = (await import(ORT_PACKAGE)) as Ort & { default?: Ort };
const ort: Ort = mod.InferenceSession ? mod : mod.default!;

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'bench-5m' },
    arch: { type: 'string', default: 'mdlm' },
    batch: { type: 'string' },
    runs: { type: 'string', default: '2' },
    graphs: { type: 'string', default: 'inference,grads,logits,backprop,loss' },
    'no-probe': { type: 'boolean', default: false },
    'probe-getdata': { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const arch = args.arch === 'ar' ? 'ar' : 'mdlm';
const tiny = (): ModelConfig =>
  ModelConfig.parse({ arch, vocabSize: 11, dModel: 16, nLayers: 2, nHeads: 2, seqLen: 8, maskId: 10, eosId: 9 });
const cfg = args.model === 'tiny' ? tiny() : bench5mConfig(arch);
const B = Number(args.batch ?? (args.model === 'tiny' ? 2 : 8));
const RUNS = Math.max(1, Number(args.runs));
const S = cfg.seqLen;
const WEBGPU = 'WebGpuExecutionProvider';
const f32 = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);
const i64 = (data: ArrayLike<number>, dims: number[]) =>
  new ort.Tensor(
    'int64',
    BigInt64Array.from(Array.from(data), (v) => BigInt(v)),
    dims,
  );
const ms = (us: number) => (us / 1000).toFixed(us < 10_000 ? 2 : 0);
const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(2);
const modelBytes = (inputs: ValueInfoDef[], outputs: ValueInfoDef[], g: Builder) =>
  encodeModel({
    irVersion: 8,
    opset: 17,
    producerName: 'webgpu-placement',
    producerVersion: '0',
    docString: '',
    metadata: {},
    graph: { name: 'probe', nodes: g.nodes, initializers: g.inits, inputs, outputs },
  });
/** y = x + c on float [n]: the probe graph of the gpu-buffer checks. */
const addGraph = (c: number) => {
  const g = new Builder();
  g.nodes.push({ opType: 'Add', inputs: ['x', g.f32('c', [], [c])], outputs: ['y'], name: 'add' });
  const vi = (name: string): ValueInfoDef => ({ name, elemType: DataType.FLOAT, shape: ['n'] });
  return modelBytes([vi('x')], [vi('y')], g);
};
const webgpu = (extra: Record<string, unknown> = {}) => ({
  executionProviders: ['webgpu'],
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
  logSeverityLevel: 3,
  ...extra,
});

if (args['probe-getdata']) {
  // Child process of the gpu-buffer probe: Tensor.getData() on a gpu-buffer output (it may abort the process).
  const s = await ort.InferenceSession.create(addGraph(1), webgpu({ preferredOutputLocation: 'gpu-buffer' }));
  const y = (await s.run({ x: f32(Float32Array.from([1, 2, 3]), [3]) })).y;
  console.log(`getData -> ${Array.from((await y.getData()) as Float32Array)}`);
  process.exit(0);
}

// ---- the batch and the graphs
interface Probe {
  name: string;
  bytes: Uint8Array;
  feeds: Record<string, Tensor>;
}
const rng = new Rng(1234);
const params = initParams(cfg, 0);
for (let i = 0; i < params.length; i++) if (params[i] === 0) params[i] = 1e-3 * rng.normal(); // as benchTrain
const layout = paramLayout(cfg);
const x0 = Int32Array.from({ length: B * S }, () => rng.int(cfg.vocabSize - 1));
const t = antitheticTimes(B, EPS_NOISE, rng);
const batch: GradBatch =
  arch === 'ar'
    ? { kind: 'ar', tokens: x0, batch: B }
    : { kind: 'mdlm', x0, zt: forwardMask(x0, t, S, cfg.maskId, rng), t, batch: B };
const shard = makeShards(cfg, batch, 1)[0];
const M = shard.rows.length;
const keep = headIds(cfg);
const headRow = new Int32Array(cfg.vocabSize).fill(-1);
keep.forEach((v, k) => (headRow[v] = k));
const randn = (n: number, s: number) => Float32Array.from({ length: n }, () => s * rng.normal());

function inferenceProbe(): Probe {
  const feeds: Record<string, Tensor> = {};
  if (arch === 'ar') {
    // a continuation: half the sequence already in the KV cache
    const past = S / 2;
    const hd = cfg.dModel / cfg.nHeads;
    feeds.tokens = new ort.Tensor('int32', x0.subarray(0, B * (S - past)), [B, S - past]);
    for (let i = 0; i < cfg.nLayers; i++)
      for (const name of [pastKeyName(i), pastValueName(i)])
        feeds[name] = f32(randn(B * cfg.nHeads * past * hd, 0.5), [B, cfg.nHeads, past, hd]);
  } else feeds.tokens = new ort.Tensor('int32', shard.tokens, [B, S]);
  return { name: 'inference', bytes: onnxModelBytes(cfg, params, { opset: 20 }), feeds };
}

function trainProbe(mode: TrainGraphMode): Probe {
  const feeds: Record<string, Tensor> = {
    tokens: new ort.Tensor('int32', shard.tokens, [B, S]),
    rows: i64(shard.rows, [M]),
  };
  if (mode === 'loss' || mode === 'grads') {
    feeds.targets = i64(
      Array.from(shard.targets, (v) => headRow[v]),
      [M],
    );
    feeds.weights = f32(shard.weights, [M]);
  }
  if (mode === 'backprop') feeds.dlogits = f32(randn(M * keep.length, 1e-3), [M, keep.length]);
  if (cfg.dropout > 0)
    for (let i = 0; i < cfg.nLayers; i++)
      for (const br of ['attn', 'mlp'] as const)
        feeds[dropoutInput(i, br)] = f32(new Float32Array(B * S * cfg.dModel).fill(1), [B * S, cfg.dModel]);
  for (const e of layout) feeds[e.name] = f32(params.subarray(e.offset, e.offset + e.size), e.shape);
  return { name: mode, bytes: trainGraphBytes(cfg, mode), feeds };
}

// ---- profiling
interface Ev {
  cat: string;
  name: string;
  ts: number;
  dur: number;
  args?: { op_name?: string; provider?: string; output_type_shape?: Record<string, number[]>[] };
}
interface Measured {
  wall: number; // µs, JS side, of the last run
  run: number; // model_run (onnxruntime's whole Run)
  exec: number; // SequentialExecutor::Execute (kernel dispatch; CPU kernels run inside it)
  gpu: number; // sum of the WebGPU kernels' GPU timestamps (profile 'Api' events)
  gpuByOp: Map<string, number>; // the same by op type
  nodes: Ev[]; // the last run's node events
  outputs: Record<string, Tensor>;
  offGpu: number[]; // model_run - GPU kernels of every run
}

/** Opens `bytes` on WebGPU with profiling, runs it `runs` times, returns the last run's numbers. */
async function measure(bytes: Uint8Array, feeds: Record<string, Tensor>, runs = RUNS, extra = {}): Promise<Measured> {
  const dir = mkdtempSync(join(tmpdir(), 'webgpu-placement-'));
  try {
    const s = await ort.InferenceSession.create(
      bytes,
      webgpu({ enableProfiling: true, profileFilePrefix: join(dir, 'p'), ...extra }),
    );
    let wall = 0;
    let outputs: Record<string, Tensor> = {};
    for (let r = 0; r < runs; r++) {
      for (const o of Object.values(outputs)) o.dispose();
      const t0 = performance.now();
      outputs = await s.run(feeds);
      wall = (performance.now() - t0) * 1000;
    }
    s.endProfiling();
    await s.release();
    const file = join(
      dir,
      readdirSync(dir).find((f) => f.endsWith('.json'))!,
    );
    const evs = JSON.parse(readFileSync(file, 'utf8')) as Ev[];
    const all = evs.filter((e) => e.name === 'model_run').sort((a, b) => a.ts - b.ts);
    const within = (run: Ev) => (e: Ev) => e.ts >= run.ts && e.ts <= run.ts + run.dur;
    const gpuOf = (run: Ev) => evs.filter((e) => e.cat === 'Api' && within(run)(e)).reduce((a, e) => a + e.dur, 0);
    const offGpu = all.map((r) => r.dur - gpuOf(r));
    const run = all[runs - 1];
    const inRun = within(run);
    const exec = evs.find((e) => e.name === 'SequentialExecutor::Execute' && inRun(e))?.dur ?? 0;
    const nodes = evs.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') && inRun(e));
    const gpuByOp = new Map<string, number>();
    for (const e of evs.filter((e) => e.cat === 'Api' && inRun(e))) {
      const op = e.name.split('&')[1]; // kernels are named "<node>&<op type>&<program>"
      gpuByOp.set(op, (gpuByOp.get(op) ?? 0) + e.dur);
    }
    return { wall, run: run.dur, exec, gpu: gpuOf(run), gpuByOp, nodes, outputs, offGpu };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// Copy-only graphs with the same host-side tensors: 'upload' consumes every float input (ReduceSum each),
// 'download' produces every float output (Expand of one scalar), 'null' is one tiny kernel. Copy time = median
// over COPY_RUNS runs of (model_run - GPU kernel time) of the variant, minus the same of 'null'.
const COPY_RUNS = 7;
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
function uploadGraph(feeds: Record<string, Tensor>): {
  bytes: Uint8Array;
  feeds: Record<string, Tensor>;
  size: number;
} {
  const g = new Builder();
  const inputs: ValueInfoDef[] = [];
  const sub: Record<string, Tensor> = {};
  let acc = '';
  let size = 0;
  for (const [name, tensor] of Object.entries(feeds)) {
    if (tensor.type !== 'float32') continue;
    inputs.push({ name, elemType: DataType.FLOAT, shape: [...tensor.dims] });
    sub[name] = tensor;
    size += (tensor.data as Float32Array).byteLength;
    const r = g.op1('ReduceSum', [name], { keepdims: { kind: 'int', value: 0 } });
    acc = acc ? g.op1('Add', [acc, r]) : r;
  }
  g.nodes.push({ opType: 'Identity', inputs: [acc], outputs: ['y'], name: 'y/Identity' });
  return { bytes: modelBytes(inputs, [{ name: 'y', elemType: DataType.FLOAT, shape: [] }], g), feeds: sub, size };
}
function downloadGraph(outputs: Record<string, Tensor>): { bytes: Uint8Array; size: number } {
  const g = new Builder();
  const outs: ValueInfoDef[] = [];
  let size = 0;
  for (const [name, tensor] of Object.entries(outputs)) {
    if (tensor.type !== 'float32') continue;
    outs.push({ name, elemType: DataType.FLOAT, shape: [...tensor.dims] });
    size += 4 * tensor.dims.reduce((a, b) => a * b, 1);
    g.nodes.push({
      opType: 'Expand',
      inputs: ['s', g.i64('shape', [...tensor.dims])],
      outputs: [name],
      name: `${name}/Expand`,
    });
  }
  return { bytes: modelBytes([{ name: 's', elemType: DataType.FLOAT, shape: [1] }], outs, g), size };
}
const seed = () => ({ s: f32(Float32Array.from([0.5]), [1]) });

// ---- report
const lines: string[] = [];
const say = (s = '') => {
  lines.push(s);
  console.log(s);
};
const versions = ort.env.versions ?? {};
say(`# WebGPU placement: ${args.model} (${arch}), batch ${B}`);
say();
say(
  `onnxruntime-node ${versions.node ?? versions.common ?? '?'}, executionProviders ['webgpu'], graphOptimizationLevel 'all'; ` +
    `${RUNS} run(s) per graph, the numbers are the last run's. Vulkan ICD: ${process.env.VK_ICD_FILENAMES ?? '(system)'}. ` +
    `${M} loss rows of ${B * S} positions.`,
);
const probes: Probe[] = args
  .graphs!.split(',')
  .map((n) => (n === 'inference' ? inferenceProbe() : trainProbe(n as TrainGraphMode)));
const results: { p: Probe; m: Measured }[] = [];
for (const p of probes) {
  console.error(`running ${p.name} ...`);
  results.push({ p, m: await measure(p.bytes, p.feeds) });
}

say();
say('## Placement and time of the last run');
say();
say('wall: JS `await session.run()`; model_run: onnxruntime Run; dispatch: SequentialExecutor::Execute (CPU side;');
say('CPU kernels run inside it); GPU / CPU kernels: sums of the kernel times (WebGPU: GPU timestamps); rest =');
say('model_run - GPU - CPU kernels: copies, dispatch and GPU idle gaps. Times in ms.');
say();
say('| graph | WebGPU nodes | other nodes | Memcpy | wall | model_run | dispatch | GPU kernels | CPU kernels | rest |');
say('|---|---|---|---|---|---|---|---|---|---|');
for (const { p, m } of results) {
  const memcpy = m.nodes.filter((e) => e.args?.op_name?.startsWith('Memcpy'));
  const other = m.nodes.filter((e) => e.args?.provider !== WEBGPU);
  const onGpu = m.nodes.length - memcpy.length - other.length;
  const cpu = other.reduce((a, e) => a + e.dur, 0);
  say(
    `| ${p.name} | ${onGpu} | ${other.length} | ${memcpy.length} | ${ms(m.wall)} | ${ms(m.run)} | ${ms(m.exec)} | ` +
      `${ms(m.gpu)} | ${ms(cpu)} | ${ms(m.run - m.gpu - cpu)} |`,
  );
}
say();
say('## Nodes not on WebGPU, and Memcpy nodes');
say();
for (const { p, m } of results) {
  const list = m.nodes.filter((e) => e.args?.provider !== WEBGPU || e.args?.op_name?.startsWith('Memcpy'));
  if (list.length === 0) {
    say(`- ${p.name}: none`);
    continue;
  }
  say(`- ${p.name}:`);
  for (const e of list) {
    const shape = JSON.stringify(e.args?.output_type_shape ?? []).replace(/"/g, '');
    const provider = (e.args?.provider ?? '?').replace('ExecutionProvider', '');
    say(
      `  - \`${e.args?.op_name}\` \`${e.name.replace(/_kernel_time$/, '')}\` on ${provider}, ${ms(e.dur)} ms, out ${shape}`,
    );
  }
}

say();
say('## GPU time by op type (top 6, % of the GPU kernel total)');
say();
for (const { p, m } of results) {
  const top = [...m.gpuByOp].sort((a, b) => b[1] - a[1]).slice(0, 6);
  say(`- ${p.name}: ${top.map(([op, us]) => `${op} ${((100 * us) / m.gpu).toFixed(0)}%`).join(', ')}`);
}

say();
say('## Host <-> device copies (copy-only graphs)');
say();
say('Each variant has the real graph\'s host tensors: "upload" takes its float inputs (one ReduceSum each),');
say('"download" produces its float outputs (one Expand each), "null" is one scalar kernel. Copy time =');
say(`(model_run - GPU kernels) of the variant - the same of "null", medians of ${COPY_RUNS} runs. Times in ms.`);
say();
const nul = await measure(addGraph(1), { x: f32(Float32Array.from([1]), [1]) }, COPY_RUNS);
const base = median(nul.offGpu);
say(`null: model_run - GPU kernels, median of ${COPY_RUNS} runs: ${ms(base)} ms`);
say();
say(
  '| graph | uploaded MiB | upload ms | upload GB/s | downloaded MiB | download ms | download GB/s | copies / model_run |',
);
say('|---|---|---|---|---|---|---|---|');
for (const { p, m } of results) {
  const up = uploadGraph(p.feeds);
  const down = downloadGraph(m.outputs);
  const copy = async (x: { bytes: Uint8Array; size: number }, feeds: Record<string, Tensor>) => {
    if (x.size === 0) return 0;
    return median((await measure(x.bytes, feeds, COPY_RUNS)).offGpu) - base;
  };
  const tu = await copy(up, up.feeds);
  const td = await copy(down, seed());
  const gbs = (bytes: number, us: number) => (us > 0 ? (bytes / 1e9 / (us / 1e6)).toFixed(2) : '-');
  say(
    `| ${p.name} | ${mb(up.size)} | ${ms(tu)} | ${gbs(up.size, tu)} | ${mb(down.size)} | ${ms(td)} | ${gbs(down.size, td)} | ` +
      `${((100 * (tu + td)) / m.run).toFixed(2)}% |`,
  );
}

if (!args['no-probe']) {
  say();
  say('## gpu-buffer residency probe (y = x + c graphs)');
  say();
  const step = async (what: string, f: () => Promise<string>) => {
    try {
      say(`- ${what}: ${await f()}`);
    } catch (e) {
      say(`- ${what}: fails: \`${String(e instanceof Error ? `${e.name}: ${e.message}` : e).split('\n')[0]}\``);
    }
  };
  const gpuOut = { preferredOutputLocation: 'gpu-buffer' };
  const A = await ort.InferenceSession.create(addGraph(1), webgpu(gpuOut));
  const Bc = await ort.InferenceSession.create(addGraph(10), webgpu());
  const Bg = await ort.InferenceSession.create(addGraph(100), webgpu(gpuOut));
  const x = f32(Float32Array.from([1, 2, 3, 4]), [4]);
  const read = async (y: Tensor) => Array.from((await Bc.run({ x: y })).y.data as Float32Array).join(', ');
  let y1 = x;
  await step('run with preferredOutputLocation gpu-buffer', async () => {
    y1 = (await A.run({ x })).y;
    return `output location '${y1.location}', gpuBuffer ${typeof y1.gpuBuffer}; \`.data\` throws (not on CPU)`;
  });
  await step(
    'feed it to the next run of the same session (x + 1 + 1), read through a cpu-output session (+10)',
    async () => {
      const y2 = (await A.run({ x: y1 })).y;
      return `location '${y2.location}', values ${await read(y2)} (expected 13, 14, 15, 16)`;
    },
  );
  await step('feed it to another session with gpu-buffer outputs (+100), read back (+10)', async () =>
    read((await Bg.run({ x: y1 })).y).then((v) => `values ${v} (expected 112, 113, 114, 115)`),
  );
  await step('Tensor.fromGpuBuffer(y.gpuBuffer, {dataType, dims}) as an input', async () =>
    read(ort.Tensor.fromGpuBuffer(y1.gpuBuffer, { dataType: 'float32', dims: [4] })).then((v) => `values ${v}`),
  );
  await step('a gpu-buffer output after 3 more runs of its session', async () => {
    for (let i = 0; i < 3; i++) (await A.run({ x })).y.dispose();
    return `still ${await read(y1)} (not overwritten)`;
  });
  await step('feed a disposed gpu-buffer tensor', async () => {
    y1.dispose();
    return read(y1);
  });
  const child = spawnSync(process.execPath, [...process.execArgv, process.argv[1], '--probe-getdata'], {
    encoding: 'utf8',
  });
  const err = (child.stderr ?? '').split('\n').filter((l) => l && !/\[W:onnxruntime/.test(l));
  say(
    `- \`Tensor.getData()\` on a gpu-buffer output (child process): ${child.status === 0 ? child.stdout.trim() : `exit ${child.status ?? child.signal}, stderr \`${err.slice(-1)[0] ?? ''}\``}`,
  );
  for (const s of [A, Bc, Bg]) await s.release();

  // The real step with resident tensors: parameters uploaded once by another session (gpu-buffer outputs), the
  // gradients left on the device and read back through a third session; compared with the host-fed run above.
  const ref = results.find((r) => r.p.name === 'grads');
  if (ref) {
    const identity = (names: string[], dims: (n: string) => readonly number[], out: (n: string) => string) => {
      const g = new Builder();
      const vi = (name: string, n: string): ValueInfoDef => ({ name, elemType: DataType.FLOAT, shape: [...dims(n)] });
      for (const n of names)
        g.nodes.push({ opType: 'Identity', inputs: [n], outputs: [out(n)], name: `${n}/Identity` });
      return modelBytes(
        names.map((n) => vi(n, n)),
        names.map((n) => vi(out(n), n)),
        g,
      );
    };
    const pnames = layout.map((e) => e.name);
    const up = await ort.InferenceSession.create(
      identity(
        pnames,
        (n) => ref.p.feeds[n].dims,
        (n) => `dev.${n}`,
      ),
      webgpu(gpuOut),
    );
    const dev = await up.run(Object.fromEntries(pnames.map((n) => [n, ref.p.feeds[n]])));
    const gnames = Object.keys(ref.m.outputs).filter((n) => n !== 'loss');
    const G = await ort.InferenceSession.create(
      ref.p.bytes,
      webgpu({ preferredOutputLocation: Object.fromEntries(gnames.map((n) => [n, 'gpu-buffer'])) }),
    );
    const feeds = { ...ref.p.feeds, ...Object.fromEntries(pnames.map((n) => [n, dev[`dev.${n}`]])) };
    let out: Record<string, Tensor> = {};
    let wall = 0;
    for (let r = 0; r < RUNS; r++) {
      for (const o of Object.values(out)) o.dispose();
      const t0 = performance.now();
      out = await G.run(feeds);
      wall = performance.now() - t0;
    }
    const R = await ort.InferenceSession.create(
      identity(
        gnames,
        (n) => ref.m.outputs[n].dims,
        (n) => `host.${n}`,
      ),
      webgpu(),
    );
    const host = await R.run(Object.fromEntries(gnames.map((n) => [n, out[n]])));
    let worst = 0;
    for (const n of gnames) {
      const a = ref.m.outputs[n].data as Float32Array;
      const b = host[`host.${n}`].data as Float32Array;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    }
    const loss = (t: Tensor) => (t.data as Float32Array)[0];
    say(
      `- grads graph, parameters resident (uploaded by another session) and gradients left on the device ` +
        `(read back by a third): loss ${loss(out.loss)} vs ${loss(ref.m.outputs.loss)} host-fed, max |gradient ` +
        `difference| ${worst}, wall ${ms(wall * 1000)} ms vs ${ms(ref.m.wall)} ms host-fed (run ${RUNS} of each session)`,
    );
    for (const s of [up, G, R]) await s.release();
  }
}

if (args.out) writeFileSync(args.out, lines.join('\n') + '\n');
