// onnxruntime's WebGPU execution provider against its CPU EP, on a real Vulkan device: Debian chromium's SwiftShader
// (a CPU emulation of a GPU, which .ci/run installs). A tiny model's forward, pretraining step and distillation step
// agree; `sdtt pretrain|distill --backend webgpu` run to the end, resume after SIGKILL and name the adapter in
// run.json; `sdtt sample --backend webgpu` gives the CPU's text. Every process that touches WebGPU is a child started
// with the driver in its environment: the Vulkan loader reads it at start-up. Also, without any GPU: which EP 'auto'
// and the forced names choose, from the Vulkan drivers a machine has.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelConfig } from '../src/shared/config.ts';
import { assertStepFits, trainingStepMemory } from '../src/engine/onnx/deviceMemory.ts';
import { chooseEp, cudaAdapter, webgpuAdapter } from '../src/engine/onnx/executionProvider.ts';
import { requirement } from './helpers/requirements.ts';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const VULKAN = requirement(
  existsSync(SWIFTSHADER_ICD) ? false : `no Vulkan driver: ${SWIFTSHADER_ICD} is missing (apt-get install chromium)`,
);
const GPU_ENV = { ...process.env, CI: '1', VK_ICD_FILENAMES: SWIFTSHADER_ICD, LD_LIBRARY_PATH: '/usr/lib/chromium' };
const CLI = join(import.meta.dirname, '..', 'bin', 'sdtt.js');
const DATA = 'test/fixtures/alice.txt';

function sdtt(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: GPU_ENV });
}

function trainLosses(runDir: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const line of readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').split('\n')) {
    const m = line ? JSON.parse(line) : null;
    if (m?.type === 'train') out.set(m.step, m.loss);
  }
  return out;
}

/** Starts `args`, SIGKILLs it once `file` exists, waits for the exit. */
async function killWhen(args: string[], file: string): Promise<void> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: 'ignore', env: GPU_ENV });
  const exited = new Promise((r) => child.once('exit', r));
  const deadline = Date.now() + 120_000;
  while (!existsSync(file)) {
    assert.ok(Date.now() < deadline, `no ${file} within 120 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGKILL');
  await exited;
}

const PRETRAIN = (ws: string, run: string) => [
  'pretrain',
  ...['--model', 'tiny', '--data', DATA, '--batch', '4', '--steps', '16', '--log-every', '1'],
  ...['--eval-every', '8', '--checkpoint-every', '4', '--warmup', '2', '--lr', '1e-3', '--threads', '1'],
  ...['--backend', 'webgpu', '--seed', '7', '--workspace', ws, '--run', run],
];

test('WebGPU EP equals the CPU EP: forward, a pretraining step and a distillation step', { skip: VULKAN.skip }, () => {
  VULKAN.check();
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'helpers', 'webgpuParity.ts')], {
    encoding: 'utf8',
    env: GPU_ENV,
  });
  assert.equal(r.status, 0, r.stderr);
  const d = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.equal(d.adapter.name, 'SwiftShader');
  assert.equal(d.adapter.software, true);
  assert.ok(d.forward.worst <= 1e-5 * d.forward.scale, `logits differ by ${d.forward.worst}`);
  for (const kind of ['pretrain', 'distill']) {
    const s = d[kind];
    assert.match(s.device, /WebGPU EP on SwiftShader \(Google, Vulkan, software\)/);
    assert.ok(
      Math.abs(s.gpuLoss - s.cpuLoss) <= 1e-5 * Math.abs(s.cpuLoss),
      `${kind} loss ${s.gpuLoss} vs ${s.cpuLoss}`,
    );
    for (const t of s.tensors) {
      assert.ok(t.scale > 0, `${kind} ${t.name}: the CPU gradient is all zero, the check would be empty`);
      assert.ok(t.worst <= 1e-4 * t.scale, `${kind} ${t.name}: max difference ${t.worst} (scale ${t.scale})`);
    }
  }
});

test(
  'sdtt pretrain --backend webgpu: runs to the end, resumes after SIGKILL with the same losses, names the adapter',
  { skip: VULKAN.skip },
  async () => {
    VULKAN.check();
    const ws = mkdtempSync(join(tmpdir(), 'sdtt-webgpu-'));
    const full = sdtt(PRETRAIN(ws, 'full'));
    assert.equal(full.status, 0, full.stderr);
    const record = JSON.parse(readFileSync(join(ws, 'runs', 'full', 'run.json'), 'utf8'));
    assert.equal(record.status, 'done');
    assert.equal(record.backend, 'onnx-webgpu');
    assert.match(record.device, /WebGPU EP on SwiftShader \(Google, Vulkan, software\)/);

    await killWhen(PRETRAIN(ws, 'killed'), join(ws, 'runs', 'killed', 'checkpoints', '4', 'state.json'));
    const again = sdtt(PRETRAIN(ws, 'killed'));
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /resumed from .*checkpoints/);
    const resumed = trainLosses(join(ws, 'runs', 'killed'));
    assert.equal(resumed.size, 16, 'every step logged once, none twice');
    for (const [step, loss] of trainLosses(join(ws, 'runs', 'full')))
      assert.equal(resumed.get(step), loss, `loss at step ${step}`);

    // the trained model samples the CPU's text at the same seed
    const model = join(ws, 'runs', 'full');
    const texts = ['webgpu', 'onnx-cpu'].map((backend) => {
      const s = sdtt([
        'sample',
        '--model',
        model,
        '--steps',
        '8',
        '--samples',
        '2',
        '--seed',
        '3',
        '--backend',
        backend,
      ]);
      assert.equal(s.status, 0, s.stderr);
      return s.stdout;
    });
    assert.match(texts[0], /--- sample 1 ---/);
    assert.equal(texts[0], texts[1]);
  },
);

test(
  'sdtt distill --backend webgpu: runs to the end and resumes after SIGKILL; run.json names the adapter',
  { skip: VULKAN.skip },
  async () => {
    VULKAN.check();
    const ws = mkdtempSync(join(tmpdir(), 'sdtt-webgpu-distill-'));
    const teacher = sdtt([...PRETRAIN(ws, 'teacher'), '--backend', 'onnx-cpu']);
    assert.equal(teacher.status, 0, teacher.stderr);
    const judge = sdtt(['pretrain-ar', ...PRETRAIN(ws, 'judge').slice(1), '--backend', 'onnx-cpu']);
    assert.equal(judge.status, 0, judge.stderr);
    const distill = [
      'distill',
      ...['--teacher', join(ws, 'runs', 'teacher'), '--judge', join(ws, 'runs', 'judge'), '--data', DATA],
      ...['--rounds', '2', '--steps-per-round', '4', '--batch', '4', '--checkpoint-every', '2', '--log-every', '1'],
      ...['--eval-samples', '2', '--eval-steps', '8,4', '--eval-batch', '2', '--threads', '1', '--seed', '1'],
      ...['--backend', 'webgpu', '--workspace', ws, '--run', 'd'],
    ];
    await killWhen(distill, join(ws, 'runs', 'd', 'checkpoints', '2', 'state.json'));
    const r = sdtt(distill);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /resum/);
    const record = JSON.parse(readFileSync(join(ws, 'runs', 'd', 'run.json'), 'utf8'));
    assert.equal(record.status, 'done');
    assert.equal(record.step, 8);
    assert.equal(record.backend, 'onnx-webgpu');
    assert.match(record.device, /WebGPU EP on SwiftShader/);
    assert.equal(trainLosses(join(ws, 'runs', 'd')).size, 8, 'every step logged once, none twice');
  },
);

/** A folder of Vulkan driver manifests, as a machine's /usr/share/vulkan/icd.d holds them. */
function icdFolder(libraries: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'sdtt-icd-'));
  mkdirSync(join(dir, 'vulkan', 'icd.d'), { recursive: true });
  libraries.forEach((lib, i) =>
    writeFileSync(join(dir, 'vulkan', 'icd.d', `${i}.json`), JSON.stringify({ ICD: { library_path: lib } })),
  );
  return dir;
}

test(
  "auto never picks a software adapter; a forced 'webgpu' takes one; a missing EP says why",
  { skip: process.platform !== 'linux' ? 'adapter detection from Vulkan manifests is Linux-only' : false },
  () => {
    const software = { XDG_DATA_DIRS: icdFolder(['libvulkan_lvp.so', '/usr/lib/chromium/libvk_swiftshader.so']) };
    assert.deepEqual(webgpuAdapter(software).adapter, {
      name: 'llvmpipe',
      vendor: 'Mesa',
      software: true,
      api: 'Vulkan',
      source: join(software.XDG_DATA_DIRS, 'vulkan', 'icd.d', '0.json'),
    });
    assert.deepEqual(chooseEp('webgpu', software).adapter?.name, 'llvmpipe');
    if (!cudaAdapter().adapter) assert.deepEqual(chooseEp('auto', software), { ep: 'cpu', adapter: null });
    assert.deepEqual(chooseEp('webgpu', { VK_ICD_FILENAMES: SWIFTSHADER_ICD }).adapter?.name, 'SwiftShader');
    assert.throws(
      () => chooseEp('webgpu', { XDG_DATA_DIRS: icdFolder([]) }),
      /backend 'webgpu' is unavailable: no Vulkan driver for a GPU of this machine/,
    );
    const cuda = cudaAdapter();
    if (!cuda.adapter) assert.throws(() => chooseEp('cuda'), /backend 'cuda' is unavailable: .*provider/);
    if (!cuda.adapter && existsSync(SWIFTSHADER_ICD)) {
      // the whole path the app's header takes: `sdtt backend` with SwiftShader as the only driver stays on the CPU
      const r = sdtt(['backend']);
      assert.equal(r.status, 0, r.stderr);
      const auto = JSON.parse(r.stdout);
      assert.equal(auto.backend, 'onnx');
      assert.match(auto.device, /^onnxruntime-node [\d.]+ \(CPU EP\)$/);
      assert.equal(auto.adapter, null);
    }
  },
);

test('a model that cannot fit the GPU is refused before training, with the estimate', () => {
  const cfg = ModelConfig.parse({
    ...{ arch: 'mdlm', vocabSize: 50258, dModel: 768, nLayers: 12, nHeads: 12, seqLen: 1024 },
    ...{ maskId: 50257, eosId: 50256 },
  });
  const small = { name: 'Small GPU', vendor: 'NVIDIA', api: 'CUDA', software: false, source: 'test' } as const;
  const m = trainingStepMemory(cfg, 1024);
  assert.ok(m.params > 4 * 160e6 && m.params < 4 * 180e6, `169 M parameters in float32: ${m.params}`);
  assert.equal(assertStepFits(cfg, 1024, { ...small, memoryBytes: 80 * 2 ** 30 }).total, m.total);
  assert.equal(assertStepFits(cfg, 1024, null).total, m.total, 'an adapter of unknown size is not refused');
  assert.throws(
    () => assertStepFits(cfg, 1024, { ...small, memoryBytes: 2 * 2 ** 30 }),
    /^Error: the model does not fit on Small GPU \(NVIDIA, CUDA, 2\.15 GB\): a training step needs about [\d.]+ GB \(parameters 6\d\d\.\d MB, gradients .*1024-token chunk/,
  );
});
