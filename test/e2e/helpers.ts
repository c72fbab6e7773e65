// Helpers for the browser-mode end-to-end test: tiny models trained in-process with runPretrain and registered as
// finished runs of a workspace (so ApiHost.listModels offers them, exactly like runs trained from the app), and the
// Chromium launch used by the e2e suite (playwright-core + the system Chromium).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { PretrainConfig } from '../../src/shared/config.ts';
import { MODEL_PRESETS } from '../../src/shared/presets.ts';
import { RunStore } from '../../src/main/runStore.ts';
import { runPretrain } from '../../src/worker/engine/train.ts';
import { latestCheckpoint } from '../../src/worker/engine/checkpoint.ts';
import { ByteTokenizer } from '../../src/worker/engine/data/tokenizer.ts';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const ALICE = resolve(ROOT, 'test', 'fixtures', 'alice.txt');
export const CHROMIUM = process.env.SDTT_CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/**
 * Trains a tiny MDLM ('pretrain') or AR ('pretrain-ar') model for `steps` steps into <workspace>/runs/<id>, with a
 * run.json marked done (config.data absolute, so a distillation run started from it finds its training text).
 * Returns the latest checkpoint folder.
 */
export async function trainTinyRun(workspace: string, id: string, kind: 'pretrain' | 'pretrain-ar', steps: number): Promise<string> {
  const tok = new ByteTokenizer();
  const cfg = PretrainConfig.parse({
    kind,
    model: { ...MODEL_PRESETS.tiny, arch: kind === 'pretrain' ? 'mdlm' : 'ar', vocabSize: tok.vocabSize, eosId: tok.eosId, maskId: kind === 'pretrain' ? tok.maskId : -1 },
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
  store.create({ id, kind, config: cfg as unknown as Record<string, unknown>, status: 'done', step: steps, totalSteps: steps, backend, device, createdAt: now, updatedAt: now });
  for (const m of metrics) store.appendMetric(id, m);
  const latest = latestCheckpoint(store.checkpointsDir(id));
  assert.ok(latest && existsSync(resolve(latest.dir, 'model.safetensors')), `no checkpoint for ${id}`);
  return latest.dir;
}

/** Polls `fn` until it returns a truthy value (or throws after `ms`). */
export async function until<T>(what: string, fn: () => T | Promise<T>, ms: number, every = 250): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}
