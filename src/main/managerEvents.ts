// ManagerEvent: what the RunManager (runManager.ts) reports to its subscribers. Its own module so that the readers of
// the events (ApiHost's apiEvents.ts, the hosts, tests) depend on the event shape alone, not on the manager.
import type { ExitReason } from '../shared/messages.ts';
import type { EvalMetric, RunRecord, StepMetric } from '../shared/runState.ts';

/**
 * What the RunManager reports to its subscribers: the worker's view of a run (started, progress, checkpoint, eval,
 * exit reason), richer than the client-facing `RunEvent` of shared/api.ts, which ApiHost derives from it.
 */
export type ManagerEvent =
  | {
      type: 'status';
      runId: string;
      record: RunRecord;
      exit?: { reason: ExitReason; code: number | null; signal: string | null };
    }
  | {
      type: 'started';
      runId: string;
      backend: string;
      device: string;
      params: number;
      startStep: number;
      resumedFrom?: string;
    }
  | { type: 'metrics'; runId: string; points: StepMetric[] }
  | { type: 'eval'; runId: string; metric: EvalMetric }
  | { type: 'checkpoint'; runId: string; step: number; dir: string }
  | { type: 'progress'; runId: string; step: number; total: number; etaS: number | null }
  /** distill: a round finished (its line of the rounds file) / sample files were written. */
  | { type: 'round'; runId: string; round: Record<string, unknown> }
  | { type: 'samples'; runId: string; round: number }
  /** distill: what the evaluation is doing now; null when training resumed. */
  | { type: 'activity'; runId: string; text: string | null }
  /** The run's folder was deleted (remove()). */
  | { type: 'deleted'; runId: string };
