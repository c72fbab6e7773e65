import type { RunStatus } from '../../shared/runState.ts';

/**
 * What a distillation's evaluation is doing now ("round 0: self-BLEU"): it logs no steps for minutes, so without
 * this line the run looks stuck. Nothing unless the run is running and its worker reported an activity.
 */
export function ActivityLine({ status, text }: { status: RunStatus; text?: string }) {
  if (status !== 'running' || !text) return null;
  return (
    <div className="run-activity" role="status" title={text} data-testid="run-activity">
      evaluating — {text}
    </div>
  );
}
