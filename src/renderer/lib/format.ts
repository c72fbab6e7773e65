// Small display helpers shared by the views.

export function fmtNum(v: number | undefined | null, digits = 4): string {
  if (v === undefined || v === null) return '—';
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '∞' : '-∞';
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  return Number(v.toPrecision(digits)).toString();
}

export function fmtDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${String(m % 60).padStart(2, '0')}m`;
}

export function fmtPct(step: number, total: number): string {
  if (!(total > 0)) return '0%';
  return `${Math.min(100, Math.floor((100 * step) / total))}%`;
}

export function fmtRate(tokPerSec: number): string {
  if (!Number.isFinite(tokPerSec)) return '—';
  if (tokPerSec >= 1e6) return `${(tokPerSec / 1e6).toFixed(2)}M tok/s`;
  if (tokPerSec >= 1e3) return `${(tokPerSec / 1e3).toFixed(1)}k tok/s`;
  return `${tokPerSec.toFixed(0)} tok/s`;
}

export function fmtParams(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)}k`;
  return String(n);
}

/** "teacher 128 -> student 64" */
export function roundLabel(teacherSteps: number, studentSteps: number): string {
  return `teacher ${teacherSteps} -> student ${studentSteps}`;
}
