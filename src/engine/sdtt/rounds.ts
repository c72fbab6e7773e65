// SDTT round schedule (docs/design/sdtt.md §4.4). Round r distils a teacher sampling with N0/2^r steps into a student for
// N0/2^(r+1) steps; the teacher's sub-step is Δ_r = (1 − ε_s)·2^r/N0 and the student's step 2Δ_r. Each round is
// `stepsPerRound` optimiser steps; the rounds tile the optimiser steps contiguously.
//
// Step numbering: RoundInfo.firstStep / lastStep are COMPLETED-step counts (1-based), the numbers metrics, checkpoints
// and the UI use: round 0 of 20 steps covers steps 1..20 (after its last step, 20 steps are done). roundAt() takes
// the 0-based INDEX of the optimiser step about to run (= the number of steps completed before it), as the training
// loop has it: roundAt(s, 0) is round 0, roundAt(s, 19) is round 0, roundAt(s, 20) is round 1 (20 per round).
import { EPS_SAMPLE } from '../model/mdlm.ts';

export interface RoundScheduleConfig {
  /** N0: the teacher's step count in round 0 (default seqLen, e.g. 128: docs/design/sdtt.md §4.4). */
  startSteps: number;
  /** Maximum number of rounds (r = 0..rounds−1). */
  rounds: number;
  /** Stop before a round whose student would sample with fewer than minSteps steps (default 1). */
  minSteps?: number;
  stepsPerRound: number;
  /** ε_s (default 1e-5). */
  epsS?: number;
}

export interface RoundInfo {
  round: number;
  teacherSteps: number;
  studentSteps: number;
  /** Teacher sub-step size Δ_r = (1 − ε_s)·2^r/N0. */
  deltaTeacher: number;
  /** First step of the round, as a completed-step count (1-based, inclusive): r·stepsPerRound + 1. */
  firstStep: number;
  /** Last step of the round, as a completed-step count (inclusive): firstStep + stepsPerRound − 1 = (r+1)·stepsPerRound;
   * the round is over once this many optimiser steps are done. */
  lastStep: number;
  /** "teacher N -> student N/2". */
  label: string;
}

/**
 * The rounds r = 0..rounds−1 while N0/2^(r+1) ≥ minSteps. Throws if a kept round's student step count is not an
 * integer (N0 must be divisible by 2^(rounds kept)). Note: the released code stops on the TEACHER's step count
 * (round(1/Δ_r) < min_num_sampling_steps), i.e. it runs one round more for the same number; here minSteps is the
 * smallest STUDENT step count, as in the brief/UI ("distil down to N steps").
 */
export function roundSchedule(cfg: RoundScheduleConfig): RoundInfo[] {
  const { startSteps: n0, rounds, stepsPerRound } = cfg;
  const minSteps = cfg.minSteps ?? 1;
  const epsS = cfg.epsS ?? EPS_SAMPLE;
  if (!Number.isInteger(n0) || n0 < 2) throw new Error(`roundSchedule: startSteps must be an integer >= 2, got ${n0}`);
  if (!Number.isInteger(rounds) || rounds < 0)
    throw new Error(`roundSchedule: rounds must be an integer >= 0, got ${rounds}`);
  if (!Number.isInteger(stepsPerRound) || stepsPerRound < 1)
    throw new Error(`roundSchedule: stepsPerRound must be an integer >= 1, got ${stepsPerRound}`);
  if (!(minSteps >= 1)) throw new Error(`roundSchedule: minSteps must be >= 1, got ${minSteps}`);
  const out: RoundInfo[] = [];
  for (let r = 0; r < rounds; r++) {
    const teacherSteps = n0 / 2 ** r;
    const studentSteps = n0 / 2 ** (r + 1);
    if (studentSteps < minSteps) break;
    if (!Number.isInteger(studentSteps))
      throw new Error(
        `roundSchedule: round ${r} would distil ${teacherSteps} steps into ${studentSteps}; startSteps ${n0} is not divisible by 2^${r + 1}`,
      );
    const firstStep = r * stepsPerRound + 1;
    out.push({
      round: r,
      teacherSteps,
      studentSteps,
      deltaTeacher: ((1 - epsS) * 2 ** r) / n0,
      firstStep,
      lastStep: firstStep + stepsPerRound - 1,
      label: `teacher ${teacherSteps} -> student ${studentSteps}`,
    });
  }
  return out;
}

/** Total optimiser steps of a schedule. */
export function scheduleSteps(schedule: readonly RoundInfo[]): number {
  return schedule.length === 0 ? 0 : schedule[schedule.length - 1].lastStep;
}

/**
 * The round that the optimiser step with 0-based INDEX `step` belongs to (i.e. the step run when `step` steps are
 * already done; it completes step number step + 1), or null once the schedule is over.
 */
export function roundAt(schedule: readonly RoundInfo[], step: number): RoundInfo | null {
  if (!Number.isInteger(step) || step < 0) throw new Error(`roundAt: step must be an integer >= 0, got ${step}`);
  const n = step + 1;
  for (const r of schedule) if (n >= r.firstStep && n <= r.lastStep) return r;
  return null;
}
