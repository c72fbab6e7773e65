// `sdtt pretrain` / `sdtt pretrain-ar`: train an MDLM (or the AR baseline) into a run folder. Re-running the same
// command resumes the run from its last checkpoint (after a crash, SIGKILL or Ctrl-C).
import { BACKENDS, PretrainConfig, describeConfigError } from '../shared/config.ts';
import { MODEL_PRESETS, presetNames } from '../shared/presets.ts';
import { defaultRunId } from '../main/runLifecycle.ts';
import { runPretrain } from '../engine/training/train.ts';
import { resolveTokenizer } from '../engine/data/tokenizers.ts';
import { intFlag, numFlag, parseFlags, readJsonConfig, UsageError, type Flags } from './args.ts';
import { runCliJob } from './runJob.ts';

const FLAGS: Flags = {
  data: {
    type: 'string',
    help: 'UTF-8 text file, or a token shard folder (see `sdtt data build`)',
    default: 'test/fixtures/alice.txt',
  },
  model: { type: 'string', help: `model size preset: ${presetNames().join(', ')}`, default: 'small' },
  tokenizer: {
    type: 'string',
    help: "auto (a shard folder's own, else byte) | byte | gpt2 | compact-4096 | tokenizer JSON file",
    default: 'auto',
  },
  steps: { type: 'string', help: 'total optimiser steps', default: '2000' },
  batch: { type: 'string', help: 'sequences per step', default: '16' },
  lr: { type: 'string', help: 'peak learning rate (AdamW)', default: '3e-4' },
  warmup: { type: 'string', help: 'linear warm-up steps', default: '200' },
  'decay-steps': {
    type: 'string',
    help: 'cooldown: decay the learning rate linearly to 0 over the last N of --steps',
    default: '0',
  },
  'ema-decay': { type: 'string', help: 'EMA decay of the evaluated weights', default: '0.999' },
  dropout: { type: 'string', help: 'dropout on residual branches' },
  seed: { type: 'string', help: 'random seed (data order, noise, init)', default: '0' },
  backend: { type: 'string', help: BACKENDS.join(' | '), default: 'auto' },
  threads: { type: 'string', help: 'data-parallel worker threads for the training step', default: '2' },
  'log-every': { type: 'string', help: 'steps between metric lines', default: '10' },
  'eval-every': {
    type: 'string',
    help: 'steps between validation evaluations (NELBO for MDLM, next-token NLL for AR)',
    default: '200',
  },
  'checkpoint-every': { type: 'string', help: 'steps between checkpoints', default: '100' },
  'keep-checkpoints': { type: 'string', help: 'checkpoints kept on disk', default: '3' },
  config: { type: 'string', help: 'JSON file with a full or partial run config (flags override it)' },
  run: {
    type: 'string',
    help: 'run id (folder name under <workspace>/runs); default derived from kind, data and seed',
  },
  workspace: { type: 'string', help: 'folder that holds runs/', default: '.' },
};

export async function run(argv: string[], kind: 'pretrain' | 'pretrain-ar' = 'pretrain'): Promise<number> {
  const f = parseFlags(argv, FLAGS, `usage: sdtt ${kind} [options]`);
  if (!f) return 0;
  const preset = MODEL_PRESETS[String(f.model)];
  if (!preset) throw new UsageError(`unknown --model "${f.model}"; choose one of ${presetNames().join(', ')}`);
  const fileConfig = f.config ? readJsonConfig(String(f.config)) : {};
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
    optim: {
      ...(fileConfig.optim as object | undefined),
      lr: numFlag(f, 'lr'),
      warmupSteps: intFlag(f, 'warmup'),
      emaDecay: numFlag(f, 'ema-decay'),
    },
    data: String(f.data),
    tokenizer: String(f.tokenizer),
    batchSize: intFlag(f, 'batch', 1),
    steps: intFlag(f, 'steps', 1),
    decaySteps: intFlag(f, 'decay-steps'),
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

  let lastVal = '';
  return runCliJob(
    {
      workspace: String(f.workspace),
      id: f.run ? String(f.run) : defaultRunId(kind, cfg),
      kind,
      cfg,
      label: kind,
      total: cfg.steps,
      formatLoss: (x) => x.toFixed(4),
    },
    (run) =>
      runPretrain(cfg, run.store.checkpointsDir(run.id), {
        onStart: (info) => {
          run.started(info);
          run.bar.log(
            `backend ${info.backend} | device ${info.device} | ${(info.params / 1e6).toFixed(2)}M params | train ${info.trainTokens} tokens, validation ${info.valTokens} | tokenizer ${tokenizer.kind} (${tokenizer.vocabSize} ids)`,
          );
          if (info.resumedFrom) run.bar.log(`resumed from ${info.resumedFrom}`);
        },
        onStep: (m) => run.trainStep(m, `loss ${m.loss.toFixed(4)} ${lastVal}${Math.round(m.tokPerSec)} tok/s`),
        onEval: (m) => {
          run.evalMetric(m);
          lastVal = `val ppl ${m.valPpl.toFixed(2)} `;
          run.bar.log(
            `step ${m.step}: validation ${kind === 'pretrain' ? 'NELBO' : 'NLL'} ${m.valLoss.toFixed(4)} (perplexity ${m.valPpl.toFixed(2)})`,
          );
        },
        onCheckpoint: run.checkpointed,
        shouldStop: run.shouldStop,
        beforeStep: run.beforeStep,
      }),
    (result) => {
      if (result.lastCheckpoint) console.error(`checkpoint: ${result.lastCheckpoint}`);
    },
  );
}
