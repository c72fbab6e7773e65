import { fmtDuration, fmtPct } from '../lib/format.ts';

export function ProgressBar({ step, total, etaS }: { step: number; total: number; etaS: number }) {
  const pct = total > 0 ? Math.min(100, (100 * step) / total) : 0;
  return (
    <div className="progress-wrap">
      <div
        className="progress"
        data-testid="progress-bar"
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={total}
        aria-valuenow={step}
        aria-label="run progress"
      >
        <div className="progress-fill" style={{ width: `${pct}%` }} />
      </div>
      <span className="progress-text">
        {step.toLocaleString()} / {total.toLocaleString()} ({fmtPct(step, total)})
      </span>
      <span className="eta" data-testid="eta" title="estimated time left, from the recent step rate">
        ETA {fmtDuration(etaS)}
      </span>
    </div>
  );
}
