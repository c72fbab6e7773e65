// The pretraining loop (MDLM or AR), readable top to bottom: data -> noise -> gradients -> clip -> AdamW -> EMA,
// with periodic validation and checkpoints. Everything random comes from one Rng whose state is checkpointed
// together with the data cursor, optimiser and EMA, so a resumed run reproduces an uninterrupted one exactly.
import type { PretrainConfig } from '../../shared/config.ts';
import type { EvalMetric, StepMetric } from '../../shared/runState.ts';
import { Rng, type RngState } from '../rng.ts';
import type { GradBatch } from '../model/gradShards.ts';
import { createGradientEngine } from './gradientEngine.ts';
import { initParams, paramLayout } from '../model/paramLayout.ts';
import { AdamW, Ema, allFinite, clipGradients, cooldownFactor, lrAt, nonFiniteStepReason } from './optim.ts';
import { checkpointDir, latestCheckpoint, pruneCheckpoints, saveCheckpoint } from '../../runs/checkpoint.ts';
import { loadCheckpoint } from '../../runs/checkpointLoad.ts';
import { antitheticTimes, forwardMask } from '../model/mdlm.ts';
import { BatchIterator, validationBatches } from '../data/batches.ts';
import { openTokenSource } from '../data/shards.ts';
import { resolveTokenizer } from '../data/tokenizers.ts';

export interface TrainHooks {
  onStart?(info: {
    backend: string;
    device: string;
    params: number;
    startStep: number;
    resumedFrom?: string;
    trainTokens: number;
    valTokens: number;
  }): void;
  onStep?(m: StepMetric): void;
  onEval?(m: EvalMetric): void;
  onCheckpoint?(step: number, dir: string): void;
  /** Polled between steps; returning true ends the run cleanly after a checkpoint. */
  shouldStop?(): boolean;
  /** Awaited before each step: lets the host's control messages in, and can hold a pause in place. */
  beforeStep?(step: number): Promise<void> | void;
}

export interface TrainResult {
  status: 'done' | 'stopped' | 'nan';
  step: number;
  reason?: string;
  lastCheckpoint?: string;
}

export async function runPretrain(
  cfg: PretrainConfig,
  checkpointsDir: string,
  hooks: TrainHooks = {},
): Promise<TrainResult> {
  const { model: mcfg } = cfg;
  const objective = cfg.kind === 'pretrain' ? 'mdlm' : 'ar';
  if ((objective === 'mdlm') !== (mcfg.arch === 'mdlm'))
    throw new Error(`${cfg.kind} needs model.arch '${objective}', got '${mcfg.arch}'`);

  const tokenizer = resolveTokenizer(cfg.tokenizer, cfg.data);
  if (tokenizer.vocabSize !== mcfg.vocabSize)
    throw new Error(`tokenizer has ${tokenizer.vocabSize} ids but model.vocabSize is ${mcfg.vocabSize}`);
  const source = openTokenSource(cfg.data, { tokenizer });
  const trainTokens = source.split('train');
  const valTokens = source.split('validation');
  const layout = paramLayout(mcfg);
  const engine = await createGradientEngine(mcfg, { backend: cfg.backend, threads: cfg.threads });
  try {
    // Fresh state, then overwritten by the latest checkpoint if one exists.
    let params = initParams(mcfg, cfg.seed);
    const adam = new AdamW(params.length, cfg.optim);
    let ema = new Ema(params, cfg.optim.emaDecay);
    let rng = new Rng(cfg.seed + 1);
    let batches = new BatchIterator(trainTokens, mcfg.seqLen, cfg.batchSize, cfg.seed + 2);
    let step = 0;
    let resumedFrom: string | undefined;

    const latest = latestCheckpoint(checkpointsDir);
    if (latest) {
      const ck = loadCheckpoint(latest.dir, { layoutFor: paramLayout, expectConfig: mcfg });
      if (!ck.optimizer || !ck.ema || !ck.state)
        throw new Error(`checkpoint ${latest.dir} has no optimizer/EMA/state: cannot resume training from it`);
      params = ck.params;
      adam.load({ m: ck.optimizer.m, v: ck.optimizer.v, t: ck.optimizer.step });
      ema = Ema.fromState({ values: ck.ema, decay: cfg.optim.emaDecay, warmup: true, updates: ck.emaUpdates ?? 0 });
      rng = new Rng(ck.state.rng as RngState);
      batches = BatchIterator.resume(trainTokens, mcfg.seqLen, cfg.batchSize, ck.state.dataCursor as never);
      step = Number(ck.state.step);
      resumedFrom = latest.dir;
    }

    hooks.onStart?.({
      backend: engine.backend,
      device: engine.device,
      params: params.length,
      startStep: step,
      resumedFrom,
      trainTokens: trainTokens.length,
      valTokens: valTokens.length,
    });

    const makeBatch = (tokens: Int32Array, r: Rng): GradBatch => {
      if (objective === 'ar') return { kind: 'ar', tokens, batch: cfg.batchSize };
      const t = antitheticTimes(cfg.batchSize, cfg.epsT, r);
      const zt = forwardMask(tokens, t, mcfg.seqLen, mcfg.maskId, r);
      return { kind: 'mdlm', x0: tokens, zt, t, batch: cfg.batchSize };
    };

    const validate = async (): Promise<number> => {
      // Fixed windows and a fixed noise seed: validation numbers compare across steps and across runs.
      const evalRng = new Rng(cfg.seed + 3);
      const windows = validationBatches(valTokens, mcfg.seqLen, cfg.batchSize, cfg.evalBatches);
      let total = 0;
      for (const w of windows) total += await engine.evalLoss(ema.values, makeBatch(w, evalRng));
      return total / windows.length;
    };

    let lastCheckpoint = latest?.dir;
    const checkpoint = (): string => {
      const dir = checkpointDir(checkpointsDir, step);
      saveCheckpoint(dir, {
        config: mcfg,
        layout,
        params,
        ema: ema.values,
        emaUpdates: ema.updates,
        optimizer: { m: adam.m, v: adam.v, step: adam.t },
        state: { step, rng: rng.state(), dataCursor: batches.cursor(), kind: cfg.kind, seed: cfg.seed },
        extraConfig: {
          tokenizer: tokenizer.toJSON(),
          sdtt: { objective, trainedSteps: step, tokensSeen: step * cfg.batchSize * mcfg.seqLen },
        },
      });
      pruneCheckpoints(checkpointsDir, cfg.keepCheckpoints);
      hooks.onCheckpoint?.(step, dir);
      lastCheckpoint = dir;
      return dir;
    };

    const startedAt = Date.now();
    let windowStart = Date.now();
    let windowSteps = 0;
    while (step < cfg.steps) {
      await hooks.beforeStep?.(step);
      const batch = makeBatch(batches.next(), rng);
      const dropoutSeed = rng.nextU32();
      const { loss, grads } = await engine.computeGradients(params, batch, dropoutSeed);
      if (!Number.isFinite(loss) || !allFinite(grads)) {
        return {
          status: 'nan',
          step,
          reason: nonFiniteStepReason(loss, `step ${step + 1}`, lastCheckpoint),
          lastCheckpoint,
        };
      }
      const gradNorm = clipGradients(grads, cfg.optim.gradClip);
      const lr = lrAt(step, cfg.optim) * cooldownFactor(step, cfg.steps, cfg.decaySteps);
      adam.step(params, grads, lr);
      ema.update(params);
      step++;
      windowSteps++;

      if (step % cfg.logEvery === 0 || step === cfg.steps) {
        const secs = (Date.now() - windowStart) / 1000;
        const tokPerSec = (windowSteps * cfg.batchSize * mcfg.seqLen) / Math.max(secs, 1e-9);
        hooks.onStep?.({ step, loss, lr, gradNorm, tokPerSec, elapsedS: (Date.now() - startedAt) / 1000 });
        windowStart = Date.now();
        windowSteps = 0;
      }
      if (step % cfg.evalEvery === 0 || step === cfg.steps) {
        const valLoss = await validate();
        hooks.onEval?.({ step, valLoss, valPpl: Math.exp(valLoss), elapsedS: (Date.now() - startedAt) / 1000 });
      }
      const stop = hooks.shouldStop?.() ?? false;
      if (stop || step % cfg.checkpointEvery === 0 || step === cfg.steps) checkpoint();
      if (stop) return { status: 'stopped', step, reason: 'stopped by user', lastCheckpoint };
    }
    return { status: 'done', step, lastCheckpoint };
  } finally {
    await engine.dispose();
  }
}
