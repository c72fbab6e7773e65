// Shared test fixtures: tiny model configs, noisy parameters, a wasm GradientEngine per file, a pretrain job config
// on the tiny preset, and a counting fake denoiser. Not a *.test.ts file, so the runner does not run it on its own.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { ModelConfig } from '../../src/shared/config.ts';
import { MODEL_PRESETS } from '../../src/shared/presets.ts';
import type { GradientEngine } from '../../src/worker/engine/gradients.ts';
import { initParams } from '../../src/worker/engine/model.ts';
import { Rng } from '../../src/worker/engine/rng.ts';
import type { Denoiser } from '../../src/worker/engine/types.ts';

/** A tiny model (V 11, d 16, 2 layers, 2 heads, L 8, MASK 10, EOS 9, MDLM) with `over` applied. */
export function tinyModel(over: Record<string, unknown> = {}): ModelConfig {
  return ModelConfig.parse({ arch: 'mdlm', vocabSize: 11, dModel: 16, nLayers: 2, nHeads: 2, seqLen: 8, maskId: 10, eosId: 9, ...over });
}

/** Init params plus N(0, s²) noise everywhere, so that no path (head, gates, modulation) is trivially zero. */
export function noisyParams(cfg: ModelConfig, seed: number, s = 0.1): Float32Array {
  const p = initParams(cfg, seed);
  const r = new Rng(seed + 100);
  for (let i = 0; i < p.length; i++) p[i] += s * r.normal();
  return p;
}

/** n uniform token ids in [0, V). */
export function randomTokens(n: number, V: number, seed: number): Int32Array {
  const r = new Rng(seed);
  return Int32Array.from({ length: n }, () => r.int(V));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Asserts max |a_i − b_i| < 1e-4 · max |a_i| over the first n entries (one gradient computed two ways). */
export function assertGradsClose(a: ArrayLike<number>, b: ArrayLike<number>, n: number): void {
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < n; i++) {
    scale = Math.max(scale, Math.abs(a[i]));
    worst = Math.max(worst, Math.abs(a[i] - b[i]));
  }
  assert.ok(worst < 1e-4 * scale, `max grad difference ${worst} (scale ${scale})`);
}

/** Initialises the wasm backend before the file's tests. */
export function useWasmBackend(): void {
  before(async () => {
    const { initBackend } = await import('../../src/worker/engine/backend.ts');
    await initBackend('wasm');
  });
}

/** The wasm backend plus one single-threaded GradientEngine for `cfg`, created before and disposed after the file's tests. */
export function useGradientEngine(cfg: ModelConfig): { readonly engine: GradientEngine } {
  const fx = {} as { engine: GradientEngine };
  before(async () => {
    const { initBackend } = await import('../../src/worker/engine/backend.ts');
    const { GradientEngine } = await import('../../src/worker/engine/gradients.ts');
    await initBackend('wasm');
    fx.engine = await GradientEngine.create(cfg, { backend: 'wasm', threads: 1 });
  });
  after(async () => {
    await fx.engine.dispose();
  });
  return fx;
}

/** A pretrain job config on the tiny preset (byte tokenizer, alice.txt, cpu, 20 steps) with `over` applied. */
export function tinyPretrainJob(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: 'pretrain',
    model: { arch: 'mdlm', vocabSize: 258, eosId: 256, maskId: 257, ...MODEL_PRESETS.tiny },
    optim: { warmupSteps: 2 },
    data: 'test/fixtures/alice.txt',
    tokenizer: 'byte',
    batchSize: 2,
    steps: 20,
    backend: 'cpu',
    threads: 1,
    logEvery: 1,
    evalEvery: 10,
    checkpointEvery: 10,
    ...over,
  };
}

/** A fake Denoiser that counts forwards; subclasses fill the [batch, seqLen, vocabSize] logits. */
export abstract class CountingDenoiser implements Denoiser {
  calls = 0;
  constructor(
    readonly vocabSize: number,
    readonly seqLen: number,
    readonly maskId: number,
  ) {}
  async logits(tokens: Int32Array, batch: number): Promise<Float32Array> {
    this.calls++;
    const out = new Float32Array(batch * this.seqLen * this.vocabSize);
    this.fill(tokens, batch, out);
    return out;
  }
  protected abstract fill(tokens: Int32Array, batch: number, out: Float32Array): void;
}
