// Run-state types: what run.json holds, shared by RunStore, the CLI, the worker protocol and the UI.
import { z } from 'zod';

export const RUN_STATUSES = ['queued', 'running', 'paused', 'done', 'failed', 'nan', 'stopped'] as const;
export const RunStatus = z.enum(RUN_STATUSES);
export type RunStatus = z.infer<typeof RunStatus>;

export const RunKind = z.enum(['pretrain', 'pretrain-ar', 'distill']);
export type RunKind = z.infer<typeof RunKind>;

export const RunRecord = z
  .object({
    id: z.string(),
    kind: RunKind,
    /** The validated job config (schema depends on kind; validated again by the job that runs it). */
    config: z.record(z.string(), z.unknown()),
    status: RunStatus,
    reason: z.string().optional(),
    backend: z.string().optional(),
    device: z.string().optional(),
    step: z.number().int().min(0).default(0),
    totalSteps: z.number().int().min(0),
    pid: z.number().int().optional(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .strict();
export type RunRecord = z.infer<typeof RunRecord>;

/** One logged training step, as appended to the run's metrics log and streamed to the UI. */
export interface StepMetric {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokPerSec: number;
  elapsedS: number;
  round?: number;
}

/** One validation measurement. */
export interface EvalMetric {
  step: number;
  valLoss: number;
  valPpl: number;
  elapsedS: number;
}
