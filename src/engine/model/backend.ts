// Picks and initialises the tfjs compute backend. One call per process (or worker thread); later calls with the
// same name are no-ops. Order for 'auto' (docs/design/architecture.md "Compute backends"): tfjs-node-gpu -> tfjs-node -> wasm
// -> cpu. tfjs' WebGPU backend ('tfjs-webgpu') is only used when forced: in Node it needs the `webgpu` package and a real adapter, and a
// software adapter (SwiftShader) is slower than wasm, so 'auto' never guesses it.
import * as tf from '@tensorflow/tfjs-core';
// No autograd here: the training step has a hand-written backward (kernels.ts). tfjs-core's Node (CJS) build ships
// no gradient functions, and its ESM 'dist/register_all_gradients' does not load under Node's ESM resolver
// (directory imports), so importing it would only break start-up.
import { createRequire } from 'node:module';
import path from 'node:path';
import type { BackendName } from '../../shared/config.ts';

export interface BackendInfo {
  /** tfjs backend name actually in use: 'tensorflow' | 'webgpu' | 'wasm' | 'cpu'. */
  backend: string;
  /** Human-readable device, e.g. "CPU (wasm, SIMD, 1 thread)". */
  device: string;
}

let current: { requested: BackendName; info: BackendInfo } | null = null;

// Optional packages are imported through a variable so TypeScript does not need them installed.
async function importOptional(spec: string): Promise<unknown> {
  return import(spec);
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message.split('\n')[0] : String(e);
}

async function trySetBackend(name: string): Promise<boolean> {
  try {
    return await tf.setBackend(name);
  } catch {
    return false;
  }
}

async function initTensorflow(gpu: boolean): Promise<BackendInfo> {
  const pkg = gpu ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
  try {
    await importOptional(pkg);
  } catch (e) {
    throw new Error(
      `backend '${gpu ? 'tensorflow-gpu' : 'tensorflow'}' is unavailable: ${pkg} could not be loaded (${errText(e)})`,
    );
  }
  if (!(await trySetBackend('tensorflow')))
    throw new Error(
      `backend '${gpu ? 'tensorflow-gpu' : 'tensorflow'}': ${pkg} loaded but the 'tensorflow' backend failed to initialise`,
    );
  return { backend: 'tensorflow', device: gpu ? 'GPU (CUDA, libtensorflow)' : 'CPU (libtensorflow)' };
}

let wasmPathsSet = false;
async function initWasm(): Promise<BackendInfo> {
  let wasm: typeof import('@tensorflow/tfjs-backend-wasm');
  try {
    wasm = await import('@tensorflow/tfjs-backend-wasm');
  } catch (e) {
    throw new Error(`backend 'wasm' is unavailable: @tensorflow/tfjs-backend-wasm could not be loaded (${errText(e)})`);
  }
  if (!wasmPathsSet) {
    // The .wasm binaries sit in the package's dist folder; resolve it from here so it works from any cwd and
    // inside worker threads. Must happen before the backend initialises.
    const req = createRequire(import.meta.url);
    const dist = path.join(path.dirname(req.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
    wasm.setWasmPaths(dist);
    wasmPathsSet = true;
  }
  if (!(await trySetBackend('wasm')))
    throw new Error(`backend 'wasm' failed to initialise (see the tfjs warning above)`);
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  // tfjs disables wasm threads in Node (tfjs issue 3830): one backend instance = one core. Data parallelism
  // across worker threads is how the engine uses more cores.
  return { backend: 'wasm', device: `CPU (wasm, ${simd ? 'SIMD' : 'no SIMD'}, 1 thread)` };
}

async function initCpu(): Promise<BackendInfo> {
  await import('@tensorflow/tfjs-backend-cpu');
  if (!(await trySetBackend('cpu'))) throw new Error(`backend 'cpu' failed to initialise`);
  return { backend: 'cpu', device: 'CPU (plain JS)' };
}

async function initWebgpu(): Promise<BackendInfo> {
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (!g.navigator?.gpu) {
    try {
      const dawn = (await importOptional('webgpu')) as { create: (o: string[]) => unknown; globals: object };
      Object.assign(globalThis, dawn.globals);
      Object.defineProperty(globalThis, 'navigator', { value: { gpu: dawn.create([]) }, configurable: true });
    } catch (e) {
      throw new Error(
        `backend 'tfjs-webgpu' is unavailable: no navigator.gpu and the 'webgpu' package could not be loaded (${errText(e)})`,
      );
    }
  }
  try {
    await importOptional('@tensorflow/tfjs-backend-webgpu');
  } catch (e) {
    throw new Error(
      `backend 'tfjs-webgpu' is unavailable: @tensorflow/tfjs-backend-webgpu could not be loaded (${errText(e)})`,
    );
  }
  if (!(await trySetBackend('webgpu')))
    throw new Error(`backend 'tfjs-webgpu' is unavailable: no WebGPU adapter could be created`);
  return { backend: 'webgpu', device: 'GPU (WebGPU)' };
}

type TfjsBackendName = Exclude<BackendName, 'auto' | 'webgpu' | 'cuda' | 'onnx-cpu'>;

async function initOne(name: TfjsBackendName): Promise<BackendInfo> {
  switch (name) {
    case 'tensorflow-gpu':
      return initTensorflow(true);
    case 'tensorflow':
      return initTensorflow(false);
    case 'tfjs-webgpu':
      return initWebgpu();
    case 'wasm':
      return initWasm();
    case 'cpu':
      return initCpu();
  }
}

/** Whether tfjs-node-gpu loads here: then backend 'auto' runs on tfjs (CUDA) rather than onnxruntime's CPU kernels. */
export async function cudaTfjsLoads(): Promise<boolean> {
  try {
    await importOptional('@tensorflow/tfjs-node-gpu');
    return true;
  } catch {
    return false;
  }
}

/**
 * Initialises the requested backend and makes it current. 'auto' takes the first that works; a forced name that
 * cannot be used throws an Error saying which backend and why.
 */
export async function initBackend(name: BackendName): Promise<BackendInfo> {
  if (name === 'webgpu' || name === 'cuda' || name === 'onnx-cpu')
    throw new Error(`backend '${name}' is an onnxruntime execution provider, not a tfjs backend`);
  if (current && current.requested === name && tf.getBackend() === current.info.backend) return current.info;
  let info: BackendInfo | undefined;
  if (name === 'auto') {
    const reasons: string[] = [];
    for (const candidate of ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const) {
      try {
        info = await initOne(candidate);
        break;
      } catch (e) {
        reasons.push(errText(e));
      }
    }
    if (!info) throw new Error(`no compute backend could be initialised:\n${reasons.join('\n')}`);
  } else {
    info = await initOne(name);
  }
  await tf.ready();
  current = { requested: name, info };
  return info;
}
