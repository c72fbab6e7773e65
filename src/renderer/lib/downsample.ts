// Chart data reduction. MIN/MAX per bucket (both extremes, in x order) keeps every spike visible while bounding
// the points a chart draws to ~`target` whatever the series length; the EMA is TensorBoard's debiased smoothing.

export interface XY {
  x: Float64Array;
  y: Float64Array;
  length: number;
  /** Buckets used (0 when the series was short enough to pass through unreduced). */
  buckets: number;
}

/**
 * Reduces (x[i], y[i]), i < n, to at most `target` points: n/bucket buckets of equal index width, each
 * contributing its minimum and maximum finite y (in index order; one point if they coincide). Non-finite y (NaN,
 * ±Infinity) are skipped, so a NaN never hides a bucket's extremes; an all-NaN bucket contributes nothing.
 * When `positiveOnly` (log scale), y <= 0 counts as missing too.
 */
export function minMaxDownsample(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  n = Math.min(x.length, y.length),
  target = 1000,
  positiveOnly = false,
): XY {
  const ok = (v: number) => Number.isFinite(v) && (!positiveOnly || v > 0);
  if (n <= target) {
    const ox = new Float64Array(n);
    const oy = new Float64Array(n);
    let k = 0;
    for (let i = 0; i < n; i++) {
      const v = y[i]!;
      if (!ok(v)) continue;
      ox[k] = x[i]!;
      oy[k++] = v;
    }
    return { x: ox.subarray(0, k), y: oy.subarray(0, k), length: k, buckets: 0 };
  }
  const buckets = Math.max(1, Math.floor(target / 2));
  const ox = new Float64Array(buckets * 2);
  const oy = new Float64Array(buckets * 2);
  let k = 0;
  for (let b = 0; b < buckets; b++) {
    const lo = Math.floor((b * n) / buckets);
    const hi = Math.floor(((b + 1) * n) / buckets);
    let iMin = -1;
    let iMax = -1;
    for (let i = lo; i < hi; i++) {
      const v = y[i]!;
      if (!ok(v)) continue;
      if (iMin < 0 || v < y[iMin]!) iMin = i;
      if (iMax < 0 || v > y[iMax]!) iMax = i;
    }
    if (iMin < 0) continue;
    const a = Math.min(iMin, iMax);
    const c = Math.max(iMin, iMax);
    ox[k] = x[a]!;
    oy[k++] = y[a]!;
    if (c !== a) {
      ox[k] = x[c]!;
      oy[k++] = y[c]!;
    }
  }
  return { x: ox.subarray(0, k), y: oy.subarray(0, k), length: k, buckets };
}

/**
 * Debiased exponential moving average (TensorBoard's smoothing): weight 0 = raw, 0.99 = very smooth. The
 * debiasing keeps the start of the curve at the data instead of pulling it to 0. Non-finite values pass through
 * unchanged and do not enter the average, so one NaN does not wipe out the rest of the curve.
 */
export function emaSmooth(y: ArrayLike<number>, weight: number, n = y.length): Float64Array {
  const w = Math.min(Math.max(weight, 0), 0.9999);
  const out = new Float64Array(n);
  let last = 0;
  // w^count, carried instead of Math.pow: once it is below double precision it is 0, which also keeps it out of
  // subnormal numbers (100x slower arithmetic; the 1M-point smoothing took 450 ms instead of ~5).
  let wPow = 1;
  for (let i = 0; i < n; i++) {
    const v = y[i]!;
    if (!Number.isFinite(v)) {
      out[i] = v;
      continue;
    }
    last = last * w + (1 - w) * v;
    wPow = wPow * w < 1e-17 ? 0 : wPow * w;
    out[i] = last / (1 - wPow);
  }
  return out;
}

/** Recharts wants row objects: one row per reduced point. */
export function toRows(d: XY, key = 'y'): { x: number; [k: string]: number }[] {
  const rows = new Array(d.length);
  for (let i = 0; i < d.length; i++) rows[i] = { x: d.x[i]!, [key]: d.y[i]! };
  return rows;
}

/**
 * Mean per bucket (x = bucket's mean x), for an already smoothed trend line where MIN/MAX would redraw the noise
 * envelope; non-finite values are skipped, an all-NaN bucket contributes nothing. Short series pass through.
 */
export function meanDownsample(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  n = Math.min(x.length, y.length),
  target = 1000,
  positiveOnly = false,
): XY {
  if (n <= target) return minMaxDownsample(x, y, n, target, positiveOnly);
  const buckets = Math.max(1, target);
  const ox = new Float64Array(buckets);
  const oy = new Float64Array(buckets);
  let k = 0;
  for (let b = 0; b < buckets; b++) {
    const lo = Math.floor((b * n) / buckets);
    const hi = Math.floor(((b + 1) * n) / buckets);
    let sx = 0;
    let sy = 0;
    let c = 0;
    for (let i = lo; i < hi; i++) {
      const v = y[i]!;
      if (!Number.isFinite(v) || (positiveOnly && v <= 0)) continue;
      sx += x[i]!;
      sy += v;
      c++;
    }
    if (c === 0) continue;
    ox[k] = sx / c;
    oy[k++] = sy / c;
  }
  return { x: ox.subarray(0, k), y: oy.subarray(0, k), length: k, buckets };
}

/** Index of the first non-finite value among the first n, or -1. */
export function firstNonFinite(y: ArrayLike<number>, n = y.length): number {
  for (let i = 0; i < n; i++) if (!Number.isFinite(y[i]!)) return i;
  return -1;
}

/** "Nice" axis ticks (1, 2, 2.5, 5 × 10^k) covering [lo, hi]; for log scale, 1/2/5 × powers of ten inside it. */
export function niceTicks(lo: number, hi: number, count = 5, log = false): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (log) {
    if (hi <= 0) return [];
    lo = Math.max(lo, hi * 1e-12);
    const out: number[] = [];
    const e0 = Math.floor(Math.log10(lo));
    const e1 = Math.ceil(Math.log10(hi));
    const mults = e1 - e0 <= 1 ? [1, 2, 3, 5, 7] : e1 - e0 <= 3 ? [1, 2, 5] : [1];
    for (let e = e0; e <= e1; e++)
      for (const m of mults) {
        const v = m * 10 ** e;
        if (v >= lo && v <= hi) out.push(Number(v.toPrecision(6)));
      }
    return out.length >= 2 ? out : [lo, hi];
  }
  if (hi === lo) {
    const d = Math.abs(lo) * 0.1 || 1;
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const start = Math.floor(lo / step) * step;
  const out: number[] = [];
  for (let v = start; v <= hi + step * 1e-9 + step; v += step) {
    out.push(Number(v.toPrecision(12)));
    if (v >= hi) break;
  }
  return out;
}
