// Which onnxruntime execution provider (EP) computes, and on which GPU adapter. onnxruntime-node 1.30 bundles the
// CPU EP and a WebGPU EP (Dawn inside libonnxruntime.so.1: Vulkan on Linux, D3D12 on Windows, Metal on macOS); the
// CUDA EP needs provider libraries that its install script downloads (skipped by .npmrc here).
//
// The node binding does not expose Dawn's adapter info, so the adapter is read off what Dawn chooses from: on Linux
// the Vulkan drivers installed (the loader's ICD manifests), with nvidia-smi for an NVIDIA card's name and memory.
// Dawn asks for a high-performance adapter and takes a hardware one over a CPU (software) one, so the hardware driver
// named here is the one it runs on. A software adapter (SwiftShader, llvmpipe) is reported as such, and backend
// 'auto' never picks it: it is slower than the CPU EP.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { formatBytes } from '../../shared/units.ts';

export type OnnxEp = 'webgpu' | 'cuda' | 'cpu';

export interface GpuAdapter {
  /** e.g. "NVIDIA H200", "SwiftShader", "llvmpipe", "AMD GPU (RADV)". */
  name: string;
  vendor: string;
  /** Graphics API under WebGPU, or 'CUDA'. */
  api: 'Vulkan' | 'D3D12' | 'Metal' | 'CUDA';
  /** A CPU emulation of a GPU: correct, slow, never chosen by 'auto'. */
  software: boolean;
  /** Device memory in bytes, where the driver tells it (nvidia-smi). */
  memoryBytes?: number;
  /** Where the description comes from (the Vulkan driver manifest, nvidia-smi). */
  source: string;
}

/** Human-readable adapter, e.g. "SwiftShader (Google, Vulkan, software)". */
export function describeAdapter(a: GpuAdapter): string {
  const mem = a.memoryBytes ? `, ${formatBytes(a.memoryBytes)}` : '';
  return `${a.name} (${a.vendor}, ${a.api}${a.software ? ', software' : ''}${mem})`;
}

/** The EP's name in onnxruntime's words, for device strings. */
export const EP_LABEL: Record<OnnxEp, string> = { webgpu: 'WebGPU EP', cuda: 'CUDA EP', cpu: 'CPU EP' };

interface NvidiaGpu {
  name: string;
  memoryBytes: number;
}

let nvidiaCache: NvidiaGpu[] | undefined;
/** NVIDIA GPUs as nvidia-smi lists them ([] where it is missing or fails). */
export function nvidiaGpus(): NvidiaGpu[] {
  if (nvidiaCache) return nvidiaCache;
  const r = spawnSync('nvidia-smi', ['--query-gpu=name,memory.total', '--format=csv,noheader,nounits'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  nvidiaCache = [];
  if (r.status === 0)
    for (const line of r.stdout.split('\n')) {
      const [name, mib] = line.split(',').map((s) => s.trim());
      if (name) nvidiaCache.push({ name, memoryBytes: Number(mib) * 2 ** 20 });
    }
  return nvidiaCache;
}

/** Vulkan ICD manifests the loader reads: VK_DRIVER_FILES / VK_ICD_FILENAMES replace the search folders. */
function vulkanIcdFiles(env: NodeJS.ProcessEnv): string[] {
  const forced = env.VK_DRIVER_FILES || env.VK_ICD_FILENAMES;
  if (forced) return forced.split(path.delimiter).filter(Boolean);
  const dataDirs = (env.XDG_DATA_DIRS || '/usr/local/share:/usr/share').split(':');
  const dirs = ['/etc/vulkan/icd.d', ...dataDirs.map((d) => path.join(d, 'vulkan/icd.d'))];
  const files: string[] = [];
  for (const dir of dirs) {
    try {
      for (const f of fs.readdirSync(dir)) if (f.endsWith('.json')) files.push(path.join(dir, f));
    } catch {
      // a missing folder holds no drivers
    }
  }
  return files;
}

/** PCI vendor ids of the display controllers in this machine (class 0x03xxxx), from sysfs. */
function displayVendors(): Set<string> {
  const vendors = new Set<string>();
  const root = '/sys/bus/pci/devices';
  try {
    for (const dev of fs.readdirSync(root)) {
      const read = (f: string) =>
        fs
          .readFileSync(path.join(root, dev, f), 'utf8')
          .trim()
          .toLowerCase();
      if (read('class').startsWith('0x03')) vendors.add(read('vendor'));
    }
  } catch {
    // no sysfs (a sandbox): only nvidia-smi can still tell
  }
  return vendors;
}

const PCI_VENDOR = { nvidia: '0x10de', amd: '0x1002', intel: '0x8086' };

/**
 * What a Vulkan driver library drives, by its file name, or null for a hardware driver whose hardware is absent:
 * Mesa installs its AMD and Intel drivers together, whatever the machine has.
 */
function vulkanDriverAdapter(library: string, vendors: Set<string>): Omit<GpuAdapter, 'api' | 'source'> | null {
  const lib = path.basename(library).toLowerCase();
  if (lib.includes('swiftshader')) return { name: 'SwiftShader', vendor: 'Google', software: true };
  if (lib.includes('lvp')) return { name: 'llvmpipe', vendor: 'Mesa', software: true };
  if (lib.includes('nvidia')) {
    const gpu = nvidiaGpus()[0];
    if (gpu) return { name: gpu.name, vendor: 'NVIDIA', software: false, memoryBytes: gpu.memoryBytes };
    return vendors.has(PCI_VENDOR.nvidia) ? { name: 'NVIDIA GPU', vendor: 'NVIDIA', software: false } : null;
  }
  if (lib.includes('radeon'))
    return vendors.has(PCI_VENDOR.amd) ? { name: 'AMD GPU (RADV)', vendor: 'AMD', software: false } : null;
  if (lib.includes('intel'))
    return vendors.has(PCI_VENDOR.intel) ? { name: 'Intel GPU (ANV)', vendor: 'Intel', software: false } : null;
  return vendors.size > 0 ? { name: `GPU (${path.basename(library)})`, vendor: 'unknown', software: false } : null;
}

/**
 * The adapter Dawn will run the WebGPU EP on, or null with the reason (no Vulkan driver installed). Hardware adapters
 * come first, as Dawn orders them for a high-performance request.
 */
export function webgpuAdapter(env: NodeJS.ProcessEnv = process.env): { adapter: GpuAdapter | null; reason: string } {
  if (process.platform === 'darwin')
    return {
      adapter: { name: 'Apple GPU', vendor: 'Apple', api: 'Metal', software: false, source: 'macOS' },
      reason: '',
    };
  if (process.platform === 'win32')
    return {
      adapter: { name: 'DirectX 12 GPU', vendor: 'unknown', api: 'D3D12', software: false, source: 'Windows' },
      reason: '',
    };
  const found: GpuAdapter[] = [];
  const vendors = displayVendors();
  for (const file of vulkanIcdFiles(env)) {
    try {
      const icd = JSON.parse(fs.readFileSync(file, 'utf8')) as { ICD?: { library_path?: unknown } };
      const lib = icd.ICD?.library_path;
      const adapter = typeof lib === 'string' ? vulkanDriverAdapter(lib, vendors) : null;
      if (adapter) found.push({ ...adapter, api: 'Vulkan', source: file });
    } catch {
      // an unreadable manifest is a driver the loader cannot load either
    }
  }
  found.sort((a, b) => Number(a.software) - Number(b.software));
  if (found[0]) return { adapter: found[0], reason: '' };
  return {
    adapter: null,
    reason:
      'no Vulkan driver for a GPU of this machine is installed (no matching ICD manifest in /usr/share/vulkan/icd.d)',
  };
}

/** Folder of onnxruntime-node's native libraries for this platform. */
function ortBinaryDir(): string | null {
  try {
    const req = createRequire(import.meta.url);
    const pkg = path.dirname(req.resolve('onnxruntime-node/package.json'));
    return path.join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return null;
  }
}

/** The CUDA EP's adapter, or null with the reason its provider library or GPU is missing. */
export function cudaAdapter(): { adapter: GpuAdapter | null; reason: string } {
  const dir = ortBinaryDir();
  const lib = os.platform() === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  if (!dir || !fs.existsSync(path.join(dir, lib)))
    return {
      adapter: null,
      reason:
        `onnxruntime-node's CUDA provider library (${lib}) is not installed${dir ? ` in ${dir}` : ''}: ` +
        'reinstall onnxruntime-node with network access and without `onnxruntime-node-install=skip` in .npmrc ' +
        '(its install script downloads the CUDA 12 provider), with the CUDA 12 runtime and cuDNN 9 on the library path',
    };
  const gpu = nvidiaGpus()[0];
  if (!gpu) return { adapter: null, reason: 'no NVIDIA GPU found (nvidia-smi lists none)' };
  return {
    adapter: {
      name: gpu.name,
      vendor: 'NVIDIA',
      api: 'CUDA',
      software: false,
      memoryBytes: gpu.memoryBytes,
      source: 'nvidia-smi',
    },
    reason: '',
  };
}

export interface EpChoice {
  ep: OnnxEp;
  adapter: GpuAdapter | null;
}

/**
 * The EP for a request: 'webgpu' and 'cuda' insist (an Error says why they cannot run here), 'auto' takes CUDA, then
 * WebGPU on a hardware adapter, then the CPU EP; 'cpu' is the CPU EP.
 */
export function chooseEp(want: OnnxEp | 'auto', env: NodeJS.ProcessEnv = process.env): EpChoice {
  if (want === 'cpu') return { ep: 'cpu', adapter: null };
  if (want === 'cuda' || want === 'auto') {
    const c = cudaAdapter();
    if (c.adapter) return { ep: 'cuda', adapter: c.adapter };
    if (want === 'cuda') throw new Error(`backend 'cuda' is unavailable: ${c.reason}`);
  }
  const w = webgpuAdapter(env);
  if (want === 'webgpu') {
    if (!w.adapter) throw new Error(`backend 'webgpu' is unavailable: ${w.reason}`);
    return { ep: 'webgpu', adapter: w.adapter };
  }
  if (w.adapter && !w.adapter.software) return { ep: 'webgpu', adapter: w.adapter };
  return { ep: 'cpu', adapter: null };
}

/** Session options' executionProviders for an EP (the CPU EP is always there for what a GPU EP leaves). */
export function executionProviders(ep: OnnxEp): string[] {
  return ep === 'cpu' ? ['cpu'] : [ep, 'cpu'];
}

/** The described adapter of an EP choice (describeAdapter), or null on the CPU EP. */
export function adapterLabel(choice: EpChoice): string | null {
  return choice.adapter ? describeAdapter(choice.adapter) : null;
}

/** "onnxruntime-node 1.30.0 (WebGPU EP on SwiftShader (Google, Vulkan, software))" and the like. */
export function epDevice(version: string, choice: EpChoice, detail: string): string {
  const adapter = adapterLabel(choice);
  const on = adapter ? ` on ${adapter}` : '';
  return `onnxruntime-node ${version} (${EP_LABEL[choice.ep]}${on}${detail ? `, ${detail}` : ''})`;
}

/** The backend a job reports: 'onnx' on the CPU EP (as before GPUs), 'onnx-webgpu' / 'onnx-cuda' on a GPU EP. */
export function onnxBackendLabel(choice: EpChoice): string {
  return choice.ep === 'cpu' ? 'onnx' : `onnx-${choice.ep}`;
}
