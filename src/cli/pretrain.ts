// `sdtt pretrain` / `sdtt pretrain-ar`: train an MDLM (or the AR baseline) into a run folder. Re-running the same
// command resumes the run from its last checkpoint (after a crash, SIGKILL or Ctrl-C).
import { readFileSync } from 'node:fs';
import { PretrainConfig, describeConfigError } from '../shared/config.ts';
import { MODEL_PRESETS, presetNames } from '../shared/presets.ts';
import { RunStore } from '../main/runStore.ts';
import { defaultRunId, openOrResume } from '../main/runLifecycle.ts';
import { runPretrain } from '../worker/engine/train.ts';
import { resolveTokenizer } from '../worker/engine/tokenizers.ts';
import { intFlag, numFlag, parseFlags, type Flags } from './args.ts';
import { UsageError } from './index.ts';
import { ProgressBar } from './progress.ts';

const FLAGS: Flags = {
  data: { type: 'string', help: 'UTF-8 text file, or a token shard folder (see `sdtt data build`)', default: 'test/fixtures/alice.txt' },
  model: { type: 'string', help: `model size preset: ${presetNames().join(', ')}`, default: 'small' },
  tokenizer: { type: 'string', help: 'auto (a shard folder\'s own, else byte) | byte | compact-4096 | tokenizer JSON file', default: 'auto' },
  steps: { type: 'string', help: 'total optimiser steps', default: '2000' },
  batch: { type: 'string', help: 'sequences per step', default: '16' },
  lr: { type: 'string', help: 'peak learning rate (AdamW)', default: '3e-4' },
  warmup: { type: 'string', help: 'linear warm-up steps', default: '200' },
  'ema-decay': { type: 'string', help: 'EMA decay of the evaluated weights', default: '0.999' },
  dropout: { type: 'string', help: 'dropout on residual branches' },
  seed: { type: 'string', help: 'random seed (data order, noise, init)', default: '0' },
  backend: { type: 'string', help: 'auto | tensorflow-gpu | tensorflow | webgpu | wasm | cpu', default: 'auto' },
  threads: { type: 'string', help: 'data-parallel worker threads for the training step', default: '2' },
  'log-every': { type: 'string', help: 'steps between metric lines', default: '10' },
  'eval-every': { type: 'string', help: 'steps between validation NELBO evaluations', default: '200' },
  'checkpoint-every': { type: 'string', help: 'steps between checkpoints', default: '100' },
  'keep-checkpoints': { type: 'string', help: 'checkpoints kept on disk', default: '3' },
  config: { type: 'string', help: 'JSON file with a full or partial run config (flags override it)' },
  run: { type: 'string', help: 'run id (folder name under <workspace>/runs); default derived from kind, data and seed' },
  workspace: { type: 'string', help: 'folder that holds runs/', default: '.' },
};

export async function run(argv: string[], kind: 'pretrain' | 'pretrain-ar' = 'pretrain'): Promise<number> {
  const f = parseFlags(argv, FLAGS, `usage: sdtt ${kind} [options]`);
  if (!f) return 0;
  const preset = MODEL_PRESETS[String(f.model)];
  if (!preset) throw new UsageError(`unknown --model "${f.model}"; choose one of ${presetNames().join(', ')}`);
  const fileConfig = f.config ? readJsonFile(String(f.config)) : {};
  const tokenizer = resolveTokenizer(String(f.tokenizer), String(f.data));

  const candidate = {
    ...fileConfig,
    kind,
    model: {
      ...preset,
      ...(fileConfig.model as object | undefined),
      arch: kind === 'pretrain' ? 'mdlm' : 'ar',
      vocabSize: tokenizer.vocabSize,
      eosId: tokenizer.eosId,
      maskId: kind === 'pretrain' ? tokenizer.maskId : -1,
      ...(f.dropout !== undefined ? { dropout: numFlag(f, 'dropout') } : {}),
    },
    optim: { ...(fileConfig.optim as object | undefined), lr: numFlag(f, 'lr'), warmupSteps: intFlag(f, 'warmup'), emaDecay: numFlag(f, 'ema-decay') },
    data: String(f.data),
    tokenizer: String(f.tokenizer),
    batchSize: intFlag(f, 'batch', 1),
    steps: intFlag(f, 'steps', 1),
    seed: intFlag(f, 'seed'),
    backend: f.backend,
    threads: intFlag(f, 'threads', 1),
    logEvery: intFlag(f, 'log-every', 1),
    evalEvery: intFlag(f, 'eval-every', 1),
    checkpointEvery: intFlag(f, 'checkpoint-every', 1),
    keepCheckpoints: intFlag(f, 'keep-checkpoints', 1),
  };
  const parsed = PretrainConfig.safeParse(candidate);
  if (!parsed.success) throw new UsageError(describeConfigError(parsed.error));
  const cfg = parsed.data;

  const store = new RunStore(String(f.workspace));
  const id = f.run ? String(f.run) : defaultRunId(kind, cfg);
  const record = openOrResume(store, id, kind, cfg, { status: 'running', pid: process.pid, ownPid: process.pid });
  const runDir = store.dir(id);
  console.error(`run ${id}: ${runDir}${record.step > 0 ? ` (resuming at step ${record.step})` : ''}`);

  let stopRequested = false;
  const onSignal = () => {
    if (stopRequested) process.exit(130);
    stopRequested = true;
    console.error('\nstopping after this step (checkpoint first); press Ctrl-C again to abort');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const bar = new ProgressBar(kind, cfg.steps, record.step);
  let lastLoss = NaN;
  let lastVal = '';
  try {
    const result = await runPretrain(cfg, store.checkpointsDir(id), {
      onStart: (info) => {
        store.truncateMetricsAfter(id, info.startStep);
        store.update(id, { backend: info.backend, device: info.device, status: 'running', pid: process.pid, step: info.startStep });
        bar.log(`backend ${info.backend} | device ${info.device} | ${(info.params / 1e6).toFixed(2)}M params | train ${info.trainTokens} tokens, validation ${info.valTokens} | tokenizer ${tokenizer.kind} (${tokenizer.vocabSize} ids)`);
        if (info.resumedFrom) bar.log(`resumed from ${info.resumedFrom}`);
      },
      onStep: (m) => {
        store.appendMetric(id, { type: 'train', ...m });
        lastLoss = m.loss;
        bar.update(m.step, `loss ${m.loss.toFixed(4)} ${lastVal}${Math.round(m.tokPerSec)} tok/s`);
      },
      onEval: (m) => {
        store.appendMetric(id, { type: 'eval', ...m });
        lastVal = `val ppl ${m.valPpl.toFixed(2)} `;
        bar.log(`step ${m.step}: validation NELBO ${m.valLoss.toFixed(4)} (perplexity ${m.valPpl.toFixed(2)})`);
      },
      onCheckpoint: (step) => store.update(id, { step }),
      shouldStop: () => stopRequested,
    });
    bar.done();
    store.update(id, { status: result.status, reason: result.reason, step: result.step, pid: undefined });
    console.error(`run ${id}: ${result.status} at step ${result.step}${result.reason ? ` (${result.reason})` : ''}; last loss ${lastLoss.toFixed(4)}`);
    if (result.lastCheckpoint) console.error(`checkpoint: ${result.lastCheckpoint}`);
    return result.status === 'done' || result.status === 'stopped' ? 0 : 1;
  } catch (e) {
    bar.done();
    store.update(id, { status: 'failed', reason: (e as Error).message, pid: undefined });
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function readJsonFile(file: string): Record<string, unknown> {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8'));
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v;
  } catch (e) {
    throw new UsageError(`--config ${file}: ${(e as Error).message}`);
  }
}
