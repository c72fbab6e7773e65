// Shared test fixtures: tiny model configs, noisy parameters, a wasm TfjsGradientEngine per file, a pretrain job config
// on the tiny preset, tiny runs trained in-process, and a counting fake denoiser. Not a *.test.ts file, so the
// runner does not run it on its own.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ModelConfig, PretrainConfig } from '../../src/shared/config.ts';
import { MODEL_PRESETS } from '../../src/shared/presets.ts';
import type { TfjsGradientEngine } from '../../src/engine/model/gradients.ts';
import { initParams } from '../../src/engine/model/paramLayout.ts';
import { Rng } from '../../src/engine/rng.ts';
import type { Denoiser } from '../../src/engine/types.ts';
import type { GradBatch } from '../../src/engine/model/gradShards.ts';
import { antitheticTimes, forwardMask } from '../../src/engine/model/mdlm.ts';

/** A tiny model (V 11, d 16, 2 layers, 2 heads, L 8, MASK 10, EOS 9, MDLM) with `over` applied. */
export function tinyModel(over: Record<string, unknown> = {}): ModelConfig {
  return ModelConfig.parse({
    arch: 'mdlm',
    vocabSize: 11,
    dModel: 16,
    nLayers: 2,
    nHeads: 2,
    seqLen: 8,
    maskId: 10,
    eosId: 9,
    ...over,
  });
}

/** Init params plus N(0, s²) noise everywhere, so that no path (head, gates, modulation) is trivially zero. */
export function noisyParams(cfg: ModelConfig, seed: number, s = 0.1): Float32Array {
  const p = initParams(cfg, seed);
  const r = new Rng(seed + 100);
  for (let i = 0; i < p.length; i++) p[i] += s * r.normal();
  return p;
}

/** An MDLM training batch of B random sequences (ids below MASK), masked at antithetic times. */
export function mdlmBatch(cfg: ModelConfig, B: number, seed: number): Extract<GradBatch, { kind: 'mdlm' }> {
  const r = new Rng(seed);
  const x0 = randomTokens(B * cfg.seqLen, cfg.vocabSize - 1, seed); // ids below MASK (the last id)
  const t = antitheticTimes(B, 1e-3, r);
  return { kind: 'mdlm', x0, zt: forwardMask(x0, t, cfg.seqLen, cfg.maskId, r), t, batch: B };
}

/** Teacher rows for a distillation batch on zt: a log-softmax over V per masked position, MASK column at -1e6. */
export function teacherRows(cfg: ModelConfig, zt: Int32Array, r: Rng): Float32Array {
  const masked = zt.filter((x) => x === cfg.maskId).length;
  const V = cfg.vocabSize;
  const targets = new Float32Array(masked * V);
  for (let i = 0; i < masked; i++) {
    const row = Array.from({ length: V }, () => 2 * r.normal());
    const lse = Math.log(row.reduce((a, x, v) => a + (v === cfg.maskId ? 0 : Math.exp(x)), 0));
    row.forEach((x, v) => (targets[i * V + v] = v === cfg.maskId ? -1e6 : x - lse));
  }
  return targets;
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
    const { initBackend } = await import('../../src/engine/model/backend.ts');
    await initBackend('wasm');
  });
}

/** The wasm backend plus one single-threaded TfjsGradientEngine for `cfg`, created before and disposed after the file's tests. */
export function useGradientEngine(cfg: ModelConfig): { readonly engine: TfjsGradientEngine } {
  const fx = {} as { engine: TfjsGradientEngine };
  before(async () => {
    const { initBackend } = await import('../../src/engine/model/backend.ts');
    const { TfjsGradientEngine } = await import('../../src/engine/model/gradients.ts');
    await initBackend('wasm');
    fx.engine = await TfjsGradientEngine.create(cfg, { backend: 'wasm', threads: 1 });
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

export const ALICE = resolve(import.meta.dirname, '..', 'fixtures', 'alice.txt');

/**
 * Trains a tiny MDLM ('pretrain') or AR ('pretrain-ar') model for `steps` steps (wasm, one thread) into
 * <workspace>/runs/<id>, with a run.json marked done (config.data absolute, so a distillation run started from it
 * finds its training text). Returns the latest checkpoint folder.
 */
export async function trainTinyRun(
  workspace: string,
  id: string,
  kind: 'pretrain' | 'pretrain-ar',
  steps: number,
): Promise<string> {
  // Imported here so that files using only the light fixtures load neither the engine nor the GPT-2 tables.
  const { RunStore } = await import('../../src/runs/runStore.ts');
  const { runPretrain } = await import('../../src/engine/training/train.ts');
  const { latestCheckpoint } = await import('../../src/runs/checkpoint.ts');
  const { ByteTokenizer } = await import('../../src/engine/data/tokenizer.ts');
  const tok = new ByteTokenizer();
  const cfg = PretrainConfig.parse({
    kind,
    model: {
      ...MODEL_PRESETS.tiny,
      arch: kind === 'pretrain' ? 'mdlm' : 'ar',
      vocabSize: tok.vocabSize,
      eosId: tok.eosId,
      maskId: kind === 'pretrain' ? tok.maskId : -1,
    },
    optim: { lr: 3e-3, warmupSteps: 2, emaDecay: 0.9 },
    data: ALICE,
    tokenizer: 'byte',
    batchSize: 4,
    steps,
    seed: 3,
    logEvery: 5,
    evalEvery: 100_000,
    checkpointEvery: steps,
    backend: 'wasm',
    threads: 1,
  });
  const store = new RunStore(workspace);
  const metrics: Record<string, unknown>[] = [];
  let backend: string | undefined;
  let device: string | undefined;
  const r = await runPretrain(cfg, store.checkpointsDir(id), {
    onStart: (s) => {
      backend = s.backend;
      device = s.device;
    },
    onStep: (m) => void metrics.push({ type: 'train', ...m }),
  });
  assert.equal(r.status, 'done', `tiny ${kind} run ${id}: ${r.status} ${r.reason ?? ''}`);
  const now = new Date().toISOString();
  store.create({
    id,
    kind,
    config: cfg as unknown as Record<string, unknown>,
    status: 'done',
    step: steps,
    totalSteps: steps,
    backend,
    device,
    createdAt: now,
    updatedAt: now,
  });
  for (const m of metrics) store.appendMetric(id, m);
  const latest = latestCheckpoint(store.checkpointsDir(id));
  assert.ok(latest && existsSync(resolve(latest.dir, 'model.safetensors')), `no checkpoint for ${id}`);
  return latest.dir;
}

const teacherAndJudge = new Map<string, Promise<{ ws: string; teacher: string; judge: string }>>();
/**
 * A tiny MDLM teacher and AR judge (trainTinyRun, `steps` steps each) in one temporary workspace, trained once per
 * test file and step count: distillation tests share them.
 */
export function tinyTeacherAndJudge(
  steps: number,
  tmpPrefix = 'sdtt-distill-',
): Promise<{ ws: string; teacher: string; judge: string }> {
  const key = `${tmpPrefix}${steps}`;
  let p = teacherAndJudge.get(key);
  if (!p) {
    p = (async () => {
      const ws = mkdtempSync(join(tmpdir(), tmpPrefix));
      return {
        ws,
        teacher: await trainTinyRun(ws, 'teacher', 'pretrain', steps),
        judge: await trainTinyRun(ws, 'judge', 'pretrain-ar', steps),
      };
    })();
    teacherAndJudge.set(key, p);
  }
  return p;
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

/** The rows of `targets` [B·L, V] at masked positions, in (b, l) row-major order: [nMasked, V]. */
export function compactMaskedRows(targets: Float32Array, masked: Uint8Array, V: number): Float32Array {
  let n = 0;
  for (let p = 0; p < masked.length; p++) n += masked[p];
  const out = new Float32Array(n * V);
  let k = 0;
  for (let p = 0; p < masked.length; p++) {
    if (!masked[p]) continue;
    out.set(targets.subarray(p * V, (p + 1) * V), k * V);
    k++;
  }
  return out;
}
