// The SDTT distillation job config (docs/design/sdtt.md §4, §7). Validated like PretrainConfig: a malformed file fails here with
// the offending key named (see describeConfigError in config.ts).
import { z } from 'zod';
import { BackendName, OptimConfig } from './config.ts';

/**
 * 'kld' = reverse KL KL(student‖teacher) (paper default, "kl-bwd"); 'kl-fwd' = KL(teacher‖student);
 * 'mse' = mean squared log-prob difference; 'tvd' = paper's ½·L1 on probabilities;
 * 'tvd-log-l1' = the released code's "tvd": L1 on log-probs (no ½).
 */
export const DIVERGENCE_NAMES = ['kld', 'kl-fwd', 'mse', 'tvd', 'tvd-log-l1'] as const;
export const DivergenceName = z.enum(DIVERGENCE_NAMES);
export type DivergenceName = z.infer<typeof DivergenceName>;

/** OptimConfig with the distillation defaults (docs/design/sdtt.md §7): lr 1e-4, one 200-step warmup (not per round), EMA 0.998. */
export const DistillOptimConfig = OptimConfig.extend({
  lr: z.number().positive().max(1).default(1e-4),
  warmupSteps: z.number().int().min(0).default(200),
  emaDecay: z.number().min(0).lt(1).default(0.998),
}).strict();
export type DistillOptimConfig = z.infer<typeof DistillOptimConfig>;

export const DEFAULT_EVAL_STEPS = [128, 64, 32, 16, 8, 4];

export const DistillConfig = z
  .object({
    kind: z.literal('distill').default('distill'),
    /** Teacher checkpoint (directory or file) of an MDLM model; the student starts as a copy of it. */
    teacher: z.string().min(1),
    /** Training text / token shard directory; absent = the data recorded with the teacher's run. */
    data: z.string().min(1).optional(),
    divergence: DivergenceName.default('kld'),
    /** Maximum number of rounds r = 0..rounds−1 (round r: teacher N0/2^r steps -> student N0/2^(r+1)). */
    rounds: z.number().int().min(1).max(20).default(5),
    /** Optimiser steps per round (paper: 10k; docs/design/sdtt.md §7). */
    stepsPerRound: z.number().int().min(1).max(10_000_000).default(2000),
    /** K: teacher ancestral sub-steps per student step (paper: 2; ablation 4, 8). */
    teacherSubsteps: z.number().int().min(1).max(16).default(2),
    /** N0: teacher steps of round 0. Absent = the model's seqLen (docs/design/sdtt.md §4.4); see distillStartSteps. */
    startSteps: z
      .number()
      .int()
      .min(2)
      .max(1 << 20)
      .optional(),
    /** Stop before a round whose student would use fewer steps than this. */
    minSteps: z.number().int().min(1).default(4),
    /** Released-code teacher sub-step time grid (docs/design/sdtt.md §4.2) instead of the paper's. */
    legacyTimeGrid: z.boolean().default(false),
    /** Paper default: optimizer and EMA carry over across rounds (docs/design/sdtt.md §4.4); the reset is an ablation. */
    resetOptimizerEachRound: z.boolean().default(false),
    resetEmaEachRound: z.boolean().default(false),
    optim: DistillOptimConfig.prefault({}),
    batchSize: z.number().int().min(1).max(4096).default(32),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(0),
    /** Lower end of the antithetic t ∈ [ε_t, 1] (1e-5 in distillation: docs/design/sdtt.md §1.2). */
    epsT: z.number().positive().lt(1).default(1e-5),
    /** Sampling step counts evaluated for the teacher and each round's student. */
    evalSteps: z
      .array(
        z
          .number()
          .int()
          .min(1)
          .max(1 << 20),
      )
      .min(1)
      .default(DEFAULT_EVAL_STEPS),
    /** Samples per eval point (docs/design/sdtt.md §5). */
    evalSamples: z
      .number()
      .int()
      .min(1)
      .max(1 << 20)
      .default(256),
    /**
     * AR judge checkpoint for the per-round gen PPL. Absent = the shipped assets/models/judge-ar-base-5m when it
     * exists; without any judge the per-round evaluation reports unigram entropy and held-out NELBO only (and says why).
     */
    judge: z.string().min(1).optional(),
    /** Sequences per sampling / scoring / NELBO batch in the per-round evaluation. */
    evalBatch: z.number().int().min(1).max(4096).default(16),
    /** Validation batches (of evalBatch windows) for the student's held-out NELBO after each round. */
    evalHeldoutBatches: z.number().int().min(1).max(10_000).default(4),
    /** Samples per (round, steps) cell written to samples/<round>-<steps>.json for the UI (metrics use all evalSamples). */
    samplesPerCell: z.number().int().min(1).max(64).default(4),
    /** Self-BLEU prompts from the validation split (4 continuations each at the student's step count); 0 = skip. */
    selfBleuPrompts: z.number().int().min(0).max(1000).default(4),
    /** Test hook: pretend the loss of this (1-based) optimiser step is NaN. */
    debugInjectNanAtStep: z.number().int().min(1).optional(),
    /** Student dropout in training (the teacher always runs in eval mode, no dropout). */
    studentDropout: z.number().min(0).max(0.9).default(0.1),
    logEvery: z.number().int().min(1).default(10),
    checkpointEvery: z.number().int().min(1).default(200),
    keepCheckpoints: z.number().int().min(1).default(3),
    backend: BackendName.default('auto'),
    /** Data-parallel worker threads for the training step (1 = in-process). */
    threads: z.number().int().min(1).max(64).default(2),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.startSteps !== undefined) {
      const problem = startStepsProblem(c.startSteps, c.rounds, c.minSteps);
      if (problem) ctx.addIssue({ code: 'custom', path: ['startSteps'], message: problem });
    }
  });
export type DistillConfig = z.infer<typeof DistillConfig>;
export type DistillConfigInput = z.input<typeof DistillConfig>;

/**
 * Why N0 = startSteps does not work with these rounds/minSteps, or null: at least one round must fit
 * (N0/2 ≥ minSteps), and every kept round's student step count N0/2^(r+1) must be an integer.
 */
export function startStepsProblem(startSteps: number, rounds: number, minSteps: number): string | null {
  if (startSteps / 2 < minSteps)
    return `startSteps ${startSteps} leaves no round: the first student (${startSteps / 2} steps) is below minSteps ${minSteps}`;
  for (let r = 0; r < rounds; r++) {
    const student = startSteps / 2 ** (r + 1);
    if (student < minSteps) break;
    if (!Number.isInteger(student))
      return `startSteps ${startSteps} is not divisible by 2^${r + 1} (round ${r} student would use ${student} steps)`;
  }
  return null;
}

/** N0 for a run: cfg.startSteps, or the model's seqLen when absent. Throws if that N0 does not fit the rounds. */
export function distillStartSteps(
  cfg: Pick<DistillConfig, 'startSteps' | 'rounds' | 'minSteps'>,
  seqLen: number,
): number {
  const n0 = cfg.startSteps ?? seqLen;
  const problem = startStepsProblem(n0, cfg.rounds, cfg.minSteps);
  if (problem) throw new Error(`distill config: ${problem}`);
  return n0;
}

/**
 * Total optimiser steps of a run without reading the teacher: exact when startSteps is set (or seqLen is given),
 * else rounds × stepsPerRound (an upper bound: minSteps may end the schedule earlier once N0 = seqLen is known).
 */
export function distillTotalSteps(
  cfg: Pick<DistillConfig, 'startSteps' | 'rounds' | 'minSteps' | 'stepsPerRound'>,
  seqLen?: number,
): number {
  const n0 = cfg.startSteps ?? seqLen;
  if (n0 === undefined) return cfg.rounds * cfg.stepsPerRound;
  let kept = 0;
  for (let r = 0; r < cfg.rounds && n0 / 2 ** (r + 1) >= cfg.minSteps; r++) kept++;
  return kept * cfg.stepsPerRound;
}
