// Where a distillation run starts (docs/design/sdtt.md §4.6): fresh from the original teacher's weights, or, when
// runs/<id>/checkpoints has one, from the latest checkpoint with everything an uninterrupted run would hold at that
// step: parameters, AdamW moments, EMA, the Rng state, the data cursor and the CURRENT teacher (the raw student of
// the last finished round, reloaded from rounds/<r>/). Split from distill.ts so the loop reads top to bottom.
import { resolve } from 'node:path';
import type { ModelConfig } from '../../shared/config.ts';
import type { DistillConfig } from '../../shared/distillConfig.ts';
import { Rng, type RngState } from '../rng.ts';
import { paramLayout } from '../model/paramLayout.ts';
import { AdamW, Ema } from '../training/optim.ts';
import { latestCheckpoint } from '../../runs/checkpoint.ts';
import { loadCheckpoint } from '../../runs/checkpointLoad.ts';
import { BatchIterator, type TokenArray } from '../data/batches.ts';
import type { TeacherRef } from './distillTypes.ts';

/** The loop's mutable state at its first step. */
export interface DistillStartState {
  params: Float32Array;
  adam: AdamW;
  ema: Ema;
  rng: Rng;
  batches: BatchIterator;
  step: number;
  teacherRef: TeacherRef;
  /** The current teacher's weights. */
  teacherParams: Float32Array;
  /** The checkpoint folder resumed from, if any. */
  resumedFrom?: string;
}

export function distillStartState(opts: {
  cfg: DistillConfig;
  runDir: string;
  checkpointsDir: string;
  /** The student's config (a checkpoint for another model is refused). */
  mcfg: ModelConfig;
  original: TeacherRef;
  /** The original teacher's weights (its EMA when it has one): the student's and the EMA's start. */
  teacherParams0: Float32Array;
  trainTokens: TokenArray;
}): DistillStartState {
  const { cfg, runDir, checkpointsDir, mcfg, original, teacherParams0, trainTokens } = opts;
  const L = mcfg.seqLen;
  const B = cfg.batchSize;

  let params: Float32Array = Float32Array.from(teacherParams0);
  const adam = new AdamW(params.length, cfg.optim);
  let ema = new Ema(teacherParams0, cfg.optim.emaDecay);
  let rng = new Rng(cfg.seed + 1);
  let batches = new BatchIterator(trainTokens, L, B, cfg.seed + 2);
  let step = 0;
  let teacherRef: TeacherRef = original;
  let teacherParams: Float32Array = teacherParams0;
  let resumedFrom: string | undefined;
  const latest = latestCheckpoint(checkpointsDir);
  if (latest) {
    const ck = loadCheckpoint(latest.dir, { layoutFor: paramLayout, expectConfig: mcfg });
    const st = ck.state as
      { step?: unknown; rng?: unknown; dataCursor?: unknown; teacher?: TeacherRef; kind?: unknown } | undefined;
    if (!ck.optimizer || !ck.ema || !st || st.kind !== 'distill' || !st.teacher)
      throw new Error(
        `checkpoint ${latest.dir} is not a resumable distillation checkpoint (no optimizer/EMA/teacher state)`,
      );
    params = ck.params;
    adam.load({ m: ck.optimizer.m, v: ck.optimizer.v, t: ck.optimizer.step });
    ema = Ema.fromState({ values: ck.ema, decay: cfg.optim.emaDecay, warmup: true, updates: ck.emaUpdates ?? 0 });
    rng = new Rng(st.rng as RngState);
    batches = BatchIterator.resume(trainTokens, L, B, st.dataCursor as never);
    step = Number(st.step);
    teacherRef = { ...st.teacher, dir: resolve(runDir, st.teacher.dir) };
    if (teacherRef.round >= 0) {
      const t = loadCheckpoint(teacherRef.dir, { layoutFor: paramLayout });
      // A round's student checkpoint has both sets; a missing EMA is refused below, never swapped for the raw ones.
      const weights = teacherRef.weights === 'ema' ? t.ema : t.params;
      if (!weights) throw new Error(`distill: the teacher ${teacherRef.dir} has no ${teacherRef.weights} weights`);
      teacherParams = weights;
    }
    resumedFrom = latest.dir;
  }
  return { params, adam, ema, rng, batches, step, teacherRef, teacherParams, resumedFrom };
}
