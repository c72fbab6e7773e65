// The SDTT distillation loop (docs/design/sdtt.md §4.6), readable top to bottom like train.ts: per optimiser step
//   x0 batch -> t, z_t -> teacher targets (K ancestral sub-steps of Δ_r, teacher in eval mode) -> the masked rows of
//   the targets -> student gradients of the divergence -> clip -> AdamW -> EMA;
// at the end of each round: save rounds/<r>/ (never pruned), evaluate the EMA student (distillEval.ts), write the
// line in the rounds file (runs/runFolder.ts), then teacher <- the RAW student. Everything random comes from one Rng whose state is
// checkpointed with the data cursor, optimiser, EMA and the CURRENT teacher's folder, so a resumed run (even one
// killed in round r > 0) reproduces an uninterrupted one exactly.
// Set-up lives next to it: the judge in distillJudge.ts, the fresh-or-resumed start state in distillResume.ts, the
// hook and result types in distillTypes.ts.
import { resolve } from 'node:path';
import type { ModelConfig } from '../../shared/config.ts';
import { distillStartSteps, type DistillConfig } from '../../shared/distillConfig.ts';
import type { GradBatch } from '../model/gradShards.ts';
import { createGradientEngine } from '../training/gradientEngine.ts';
import { paramLayout } from '../model/paramLayout.ts';
import { AdamW, Ema, allFinite, clipGradients, lrAt, nonFiniteStepReason } from '../training/optim.ts';
import { checkpointDir, pruneCheckpoints, saveCheckpoint } from '../../runs/checkpoint.ts';
import { antitheticTimes, forwardMask } from '../model/mdlm.ts';
import { createModelRuntime, type Inference } from '../io/openModel.ts';
import {
  checkDistillData,
  openDistillData,
  openDistillTeacher,
  resolveDistillData,
  withImportedTeacher,
} from './distillPreflight.ts';
import { roundAt, roundSchedule, scheduleSteps, type RoundInfo } from './rounds.ts';
import { teacherTargets } from './targets.ts';
import { wordVocabulary } from '../eval/metrics.ts';
import {
  evalJudgeFields,
  evaluateRound,
  heldoutWindowsFor,
  writeJsonAtomic,
  type DistillEvalContext,
  type DistillEvalResult,
} from './distillEval.ts';
import { readTeacherEval, runPaths, upsertRoundLine } from '../../runs/runFolder.ts';
import { cachedTeacherEval, teacherEvalKey } from './teacherEvalCache.ts';
import type { DistillHooks, DistillResult, RoundLine, TeacherRef } from './distillTypes.ts';
import { openDistillJudge } from './distillJudge.ts';
import { distillStartState } from './distillResume.ts';

/** FNV-1a over the float32 bit patterns: identifies a weight vector in logs and tests. */
export function paramsChecksum(p: Float32Array): string {
  const u = new Uint32Array(p.buffer, p.byteOffset, p.length);
  let h = 0x811c9dc5;
  for (let i = 0; i < u.length; i++) h = Math.imul(h ^ u[i], 0x01000193) >>> 0;
  return `${h.toString(16).padStart(8, '0')}-${p.length}`;
}

export { resolveDistillData };

export async function runDistill(
  cfgIn: DistillConfig,
  runDir: string,
  hooks: DistillHooks = {},
): Promise<DistillResult> {
  const cfg = withImportedTeacher(cfgIn, runDir);
  // ---- teacher, tokenizer, data -------------------------------------------------------------------------------
  // The same checks preflightDistill made before the run folder was created (distillPreflight.ts).
  const { dir: teacherDir, ck: tck, tokenizer } = openDistillTeacher(cfg.teacher);
  // An export holds its EMA weights as model.safetensors and says so in its metadata: they are EMA weights too.
  const original: TeacherRef = {
    dir: teacherDir,
    weights: tck.ema || tck.modelMetadata.weights === 'ema' ? 'ema' : 'raw',
    round: -1,
  };
  const teacherCfg: ModelConfig = { ...tck.config, dropout: 0 };
  const mcfg: ModelConfig = { ...tck.config, dropout: cfg.studentDropout };
  const L = mcfg.seqLen;
  const B = cfg.batchSize;
  const dataPath = resolveDistillData(cfg, teacherDir, tck.extraConfig);
  checkDistillData(dataPath, tokenizer);
  const source = openDistillData(dataPath, tokenizer);
  const trainTokens = source.split('train');
  const valTokens = source.split('validation');
  const schedule = roundSchedule({
    startSteps: distillStartSteps(cfg, L),
    rounds: cfg.rounds,
    minSteps: cfg.minSteps,
    stepsPerRound: cfg.stepsPerRound,
  });
  const totalSteps = scheduleSteps(schedule);
  const layout = paramLayout(mcfg);
  const checkpointsDir = runPaths.checkpoints(runDir);

  // ---- judge ----------------------------------------------------------------------------------------------------
  const engine = await createGradientEngine(mcfg, { backend: cfg.backend, threads: cfg.threads });
  let judge: Inference | null = null;
  let teacher: Inference | null = null;
  try {
    const opened = await openDistillJudge(cfg, tokenizer, L);
    judge = opened.judge;
    const { judgeId, judgePath, judgeNote } = opened;

    // ---- state: fresh, then the latest checkpoint (distillResume.ts) -------------------------------------------
    const teacherParams0 = tck.ema ?? tck.params;
    const start = distillStartState({ cfg, runDir, checkpointsDir, mcfg, original, teacherParams0, trainTokens });
    const { params, rng, batches, teacherParams, resumedFrom } = start;
    let { adam, ema, step, teacherRef } = start;

    const buildTeacher = async (p: Float32Array, ref: TeacherRef) => {
      await teacher?.dispose();
      teacher = null;
      const rt = await createModelRuntime(teacherCfg, p, { backend: cfg.backend, threads: cfg.threads });
      teacher = rt.model;
      hooks.onTeacher?.({ ...ref, checksum: paramsChecksum(p) });
      return { backend: rt.backend, device: rt.device };
    };
    const teacherRt = await buildTeacher(teacherParams, teacherRef);
    const teacherRuntime = teacherRt.backend;
    hooks.onStart?.({
      backend: engine.backend,
      device: engine.device,
      params: params.length,
      startStep: step,
      resumedFrom,
      trainTokens: trainTokens.length,
      valTokens: valTokens.length,
      totalSteps,
      schedule,
      teacher: teacherDir,
      teacherWeights: original.weights,
      teacherRuntime,
      judge: judgePath,
      judgeNote,
    });

    const evalCtx: DistillEvalContext = {
      runDir,
      seqLen: L,
      tokenizer,
      judge,
      judgePath,
      judgeNote,
      evalSteps: cfg.evalSteps,
      evalSamples: cfg.evalSamples,
      evalBatch: cfg.evalBatch,
      samplesPerCell: cfg.samplesPerCell,
      seed: cfg.seed,
      selfBleuPrompts: cfg.selfBleuPrompts,
      valTokens,
      trainingWords: once(() => wordVocabulary(trainTokens, tokenizer)),
      heldoutWindows: heldoutWindowsFor(valTokens, L, cfg.evalBatch, cfg.evalHeldoutBatches),
      onProgress: hooks.onEvalProgress,
    };
    const evaluateWeights = async (
      p: Float32Array,
      round: number,
      selfBleuSteps: number,
    ): Promise<DistillEvalResult> => {
      const rt = await createModelRuntime(teacherCfg, p, { backend: cfg.backend, threads: cfg.threads });
      try {
        return await evaluateRound(rt.model, evalCtx, round, selfBleuSteps);
      } finally {
        await rt.model.dispose();
      }
    };

    // Round −1: the original teacher, once per run; reused from the workspace's cache when everything it depends on matches.
    if (!readTeacherEval(runDir) && schedule.length > 0) {
      const selfBleuSteps = schedule[0].teacherSteps;
      const key = teacherEvalKey({
        teacherParams: teacherParams0,
        teacherConfig: teacherCfg,
        runtime: teacherRt,
        tokenizer,
        judge: judgeId,
        valTokens,
        trainTokens,
        selfBleuSteps,
        cfg,
      });
      const cacheOpts = {
        runDir,
        key,
        evalSteps: cfg.evalSteps,
        judgeFields: evalJudgeFields(evalCtx),
        onProgress: hooks.onEvalProgress,
      };
      const res = await cachedTeacherEval(cacheOpts, () => evaluateWeights(teacherParams0, -1, selfBleuSteps));
      writeJsonAtomic(runPaths.teacherEval(runDir), res);
      hooks.onTeacherEval?.(res);
      hooks.onSamples?.(-1, res.samplesFiles);
    }

    let lastCheckpoint = resumedFrom;
    const checkpoint = (): string => {
      const dir = checkpointDir(checkpointsDir, step);
      const r = roundAt(schedule, Math.max(0, Math.min(step, totalSteps - 1)))!;
      saveCheckpoint(dir, {
        config: mcfg,
        layout,
        params,
        ema: ema.values,
        emaUpdates: ema.updates,
        optimizer: { m: adam.m, v: adam.v, step: adam.t },
        state: {
          kind: 'distill',
          step,
          round: step >= totalSteps ? schedule.length : r.round,
          rng: rng.state(),
          dataCursor: batches.cursor(),
          teacher: teacherRef,
          seed: cfg.seed,
        },
        extraConfig: { tokenizer: tokenizer.toJSON(), sdtt: provenance(r, step) },
      });
      pruneCheckpoints(checkpointsDir, cfg.keepCheckpoints);
      hooks.onCheckpoint?.(step, dir);
      lastCheckpoint = dir;
      return dir;
    };
    const provenance = (r: RoundInfo, studentSteps: number) => ({
      objective: 'sdtt',
      round: r.round,
      teacherSteps: r.teacherSteps,
      studentSteps: r.studentSteps,
      divergence: cfg.divergence,
      teacher: teacherRef.dir,
      teacherWeights: teacherRef.weights,
      originalTeacher: teacherDir,
      data: resolve(dataPath),
      optimiserSteps: studentSteps,
    });

    let current = step < totalSteps ? roundAt(schedule, step) : null;
    if (current) hooks.onRoundStart?.(current, step >= current.firstStep);
    let roundStartedAt = Date.now();
    let roundTrainMs = 0;
    let roundStepsHere = 0;
    const startedAt = Date.now();
    let windowStart = Date.now();
    let windowSteps = 0;
    while (step < totalSteps) {
      await hooks.beforeStep?.(step);
      const round = roundAt(schedule, step)!;
      if (round !== current) {
        current = round;
        roundStartedAt = Date.now();
        roundTrainMs = 0;
        roundStepsHere = 0;
        hooks.onRoundStart?.(round, false);
      }
      const stepStarted = Date.now();
      const x0 = batches.next();
      const t = antitheticTimes(B, cfg.epsT, rng);
      const zt = forwardMask(x0, t, L, mcfg.maskId, rng);
      const tt = await teacherTargets(teacher!, zt, t, round.deltaTeacher, {
        K: cfg.teacherSubsteps,
        rng,
        legacyTimeGrid: cfg.legacyTimeGrid,
        maskId: mcfg.maskId,
        layout: 'masked',
      });
      const batch: GradBatch = { kind: 'distill', zt, batch: B, targets: tt.targets, divergence: cfg.divergence };
      const dropoutSeed = rng.nextU32();
      const res = await engine.computeGradients(params, batch, dropoutSeed);
      const loss = cfg.debugInjectNanAtStep === step + 1 ? NaN : res.loss;
      if (!Number.isFinite(loss) || !allFinite(res.grads)) {
        return {
          status: 'nan',
          step,
          reason: nonFiniteStepReason(loss, `step ${step + 1} (round ${round.round})`, lastCheckpoint),
          lastCheckpoint,
          roundsDone: round.round,
        };
      }
      const gradNorm = clipGradients(res.grads, cfg.optim.gradClip);
      const lr = lrAt(step, cfg.optim);
      adam.step(params, res.grads, lr);
      ema.update(params);
      step++;
      windowSteps++;
      roundStepsHere++;
      roundTrainMs += Date.now() - stepStarted;

      if (step % cfg.logEvery === 0 || step === round.lastStep) {
        const secs = (Date.now() - windowStart) / 1000;
        hooks.onStep?.({
          step,
          loss,
          lr,
          gradNorm,
          tokPerSec: (windowSteps * B * L) / Math.max(secs, 1e-9),
          elapsedS: (Date.now() - startedAt) / 1000,
          round: round.round,
        });
        windowStart = Date.now();
        windowSteps = 0;
      }
      let wrote = false;
      if (step === round.lastStep) {
        // ---- round boundary ----------------------------------------------------------------------------------
        const wallS = (Date.now() - roundStartedAt) / 1000;
        const rdir = runPaths.roundCheckpoint(runDir, round.round);
        saveCheckpoint(rdir, {
          config: mcfg,
          layout,
          params,
          ema: ema.values,
          emaUpdates: ema.updates,
          extraConfig: { tokenizer: tokenizer.toJSON(), sdtt: provenance(round, step) },
        });
        const ev = await evaluateWeights(ema.values, round.round, round.studentSteps);
        hooks.onSamples?.(round.round, ev.samplesFiles);
        hooks.onEval?.({
          step,
          valLoss: ev.heldoutNelbo,
          valPpl: Math.exp(ev.heldoutNelbo),
          elapsedS: (Date.now() - startedAt) / 1000,
        });
        const line: RoundLine = {
          round: round.round,
          teacherSteps: round.teacherSteps,
          studentSteps: round.studentSteps,
          label: round.label,
          status: 'done',
          firstStep: round.firstStep,
          lastStep: round.lastStep,
          checkpoint: runPaths.roundCheckpointName(round.round),
          eval: ev.rows,
          heldoutNelbo: ev.heldoutNelbo,
          selfBleu: ev.selfBleu,
          judge: ev.judge,
          ...(ev.note ? { note: ev.note } : {}),
          wallS,
          evalSeconds: ev.seconds,
          tokPerSec: (roundStepsHere * B * L) / Math.max(roundTrainMs / 1000, 1e-9),
        };
        upsertRoundLine(runDir, line as unknown as Record<string, unknown> & { round: number });
        hooks.onRound?.(line);
        // teacher <- the RAW student (docs/design/sdtt.md §4.4); optional resets (ablation).
        teacherRef = { dir: rdir, weights: 'raw', round: round.round };
        if (step < totalSteps) await buildTeacher(Float32Array.from(params), teacherRef);
        if (cfg.resetOptimizerEachRound) adam = new AdamW(params.length, cfg.optim);
        if (cfg.resetEmaEachRound) ema = new Ema(params, cfg.optim.emaDecay);
        checkpoint(); // every round boundary is a resume point (with the new teacher)
        wrote = true;
      } else if (step % cfg.checkpointEvery === 0) {
        checkpoint();
        wrote = true;
      }
      if (hooks.shouldStop?.()) {
        if (!wrote) checkpoint();
        return {
          status: 'stopped',
          step,
          reason: 'stopped by user',
          lastCheckpoint,
          roundsDone: doneRounds(schedule, step),
        };
      }
    }
    return { status: 'done', step, lastCheckpoint, roundsDone: doneRounds(schedule, step) };
  } finally {
    await (teacher as Inference | null)?.dispose();
    await judge?.dispose();
    await engine.dispose();
  }
}

function doneRounds(schedule: RoundInfo[], step: number): number {
  return schedule.filter((r) => r.lastStep <= step).length;
}

/** `make`, called at most once: its value is kept for later calls. */
function once<T>(make: () => T): () => T {
  let made: { value: T } | null = null;
  return () => (made ??= { value: make() }).value;
}
