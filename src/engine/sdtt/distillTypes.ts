// The shapes runDistill (distill.ts) shares with its callers: what it reports through its hooks (start info, the
// current teacher, the rounds-file line) and what it returns. Kept apart from the loop so the worker, the CLI's
// report and the tests can name them without reading or importing the loop itself.
import type { EvalMetric, StepMetric } from '../../shared/runState.ts';
import type { RoundInfo } from './rounds.ts';
import type { DistillEvalResult } from './distillEval.ts';

export interface DistillStartInfo {
  backend: string;
  device: string;
  params: number;
  startStep: number;
  resumedFrom?: string;
  trainTokens: number;
  valTokens: number;
  totalSteps: number;
  schedule: RoundInfo[];
  /** The original teacher checkpoint and which of its weights were loaded. */
  teacher: string;
  teacherWeights: 'ema' | 'raw';
  teacherRuntime: string;
  judge: string | null;
  judgeNote?: string;
}

/** The current teacher: a checkpoint folder and which of its weights (the original's EMA, or a round's raw student). */
export interface TeacherRef {
  dir: string;
  weights: 'ema' | 'raw';
  /** -1 = the original teacher, r = the raw student of round r. */
  round: number;
}

/** One line of the rounds file (see apiHost.ts's header for the fields the UI reads). */
export interface RoundLine {
  round: number;
  teacherSteps: number;
  studentSteps: number;
  label: string;
  status: 'done';
  firstStep: number;
  lastStep: number;
  /** The round's checkpoint folder, relative to the run folder. */
  checkpoint: string;
  eval: DistillEvalResult['rows'];
  heldoutNelbo: number;
  selfBleu: DistillEvalResult['selfBleu'];
  judge: string | null;
  note?: string;
  /** Wall time of the round's training in this process (s), excluding the evaluation; evalSeconds separately. */
  wallS: number;
  evalSeconds: number;
  tokPerSec: number;
}

export interface DistillHooks {
  onStart?(info: DistillStartInfo): void;
  onStep?(m: StepMetric): void;
  onEval?(m: EvalMetric): void;
  onCheckpoint?(step: number, dir: string): void;
  shouldStop?(): boolean;
  beforeStep?(step: number): Promise<void> | void;
  /** A round starts (or continues after a resume). */
  onRoundStart?(round: RoundInfo, resumed: boolean): void;
  /** The teacher model was (re)built: on start, and after every round. checksum = paramsChecksum of its weights. */
  onTeacher?(info: TeacherRef & { checksum: string }): void;
  /** The teacher's round −1 evaluation (once per run). */
  onTeacherEval?(result: DistillEvalResult): void;
  onRound?(line: RoundLine): void;
  onSamples?(round: number, files: string[]): void;
  onEvalProgress?(what: string): void;
}

export interface DistillResult {
  status: 'done' | 'stopped' | 'nan';
  step: number;
  reason?: string;
  lastCheckpoint?: string;
  roundsDone: number;
}
