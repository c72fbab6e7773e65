// Typed-array-backed, append-only metric series. Metric points never live in React state one by one: the event
// listener appends here, and the UI re-reads the arrays when the store's version counter moves (at most ~4 Hz).

/** Growable Float64Array column. */
export class Column {
  data: Float64Array;
  length = 0;
  constructor(capacity = 1024) {
    this.data = new Float64Array(Math.max(16, capacity));
  }
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  /** A view of the filled part (no copy). */
  view(): Float64Array {
    return this.data.subarray(0, this.length);
  }
  last(): number {
    return this.length ? this.data[this.length - 1]! : NaN;
  }
}

export const TRAIN_FIELDS = ['loss', 'lr', 'gradNorm', 'tokPerSec', 'elapsedS', 'round'] as const;
export const EVAL_FIELDS = ['valLoss', 'valPpl', 'elapsedS'] as const;
export type TrainField = (typeof TRAIN_FIELDS)[number];
export type EvalField = (typeof EVAL_FIELDS)[number];

/** One table of columns keyed by field name, with a step column; only strictly increasing steps are accepted. */
export class Table<F extends string> {
  readonly step = new Column();
  readonly cols: Record<F, Column>;
  constructor(readonly fields: readonly F[]) {
    this.cols = Object.fromEntries(fields.map((f) => [f, new Column()])) as Record<F, Column>;
  }
  get length(): number {
    return this.step.length;
  }
  lastStep(): number {
    return this.step.length ? this.step.last() : -Infinity;
  }
  /** Appends a point unless its step is not after the last one (duplicates from a reload / reconnect overlap). */
  append(p: { step: number; [k: string]: unknown }): boolean {
    if (!(typeof p.step === 'number') || !(p.step > this.lastStep())) return false;
    this.step.push(p.step);
    for (const f of this.fields) {
      const v = p[f];
      this.cols[f].push(typeof v === 'number' ? v : NaN);
    }
    return true;
  }
}

/** All metric series of one run. */
export class RunSeries {
  readonly train = new Table(TRAIN_FIELDS);
  readonly eval = new Table(EVAL_FIELDS);
  append(points: readonly { type: string; step: number; [k: string]: unknown }[]): number {
    let added = 0;
    for (const p of points) {
      if (p.type === 'train' ? this.train.append(p) : p.type === 'eval' ? this.eval.append(p) : false) added++;
    }
    return added;
  }
}

/**
 * Training speed in steps per second over the last `window` logged points (from elapsedS), or NaN.
 */
export function stepRate(s: RunSeries, window = 20): number {
  const n = s.train.length;
  if (n < 2) return NaN;
  const i0 = Math.max(0, n - 1 - window);
  const steps = s.train.step.data;
  const el = s.train.cols.elapsedS.data;
  const dt = el[n - 1]! - el[i0]!;
  const ds = steps[n - 1]! - steps[i0]!;
  return dt > 0 && ds > 0 ? ds / dt : NaN;
}
