import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emaSmooth, minMaxDownsample } from '../src/renderer/lib/downsample.ts';

function series(n: number, f: (i: number) => number) {
  const x = new Float64Array(n);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = i;
    y[i] = f(i);
  }
  return { x, y };
}

test('short series pass through unchanged (minus non-finite points)', () => {
  const { x, y } = series(10, (i) => (i === 3 ? NaN : i * 2));
  const d = minMaxDownsample(x, y, 10, 1000);
  assert.equal(d.buckets, 0);
  assert.equal(d.length, 9);
  assert.deepEqual([...d.x], [0, 1, 2, 4, 5, 6, 7, 8, 9]);
});

test('100k points reduce to <= target with target/2 buckets, keeping the global min and max (spikes)', () => {
  const n = 100_000;
  const { x, y } = series(n, (i) => 1 + 0.1 * Math.sin(i / 50));
  y[31_337] = 42; // spike up
  y[77_777] = -5; // spike down
  const d = minMaxDownsample(x, y, n, 1000);
  assert.equal(d.buckets, 500);
  assert.ok(d.length <= 1000 && d.length >= 500, `length ${d.length}`);
  assert.equal(Math.max(...d.y), 42);
  assert.equal(Math.min(...d.y), -5);
  assert.ok(d.x.includes(31_337) && d.x.includes(77_777));
  for (let i = 1; i < d.length; i++) assert.ok(d.x[i]! > d.x[i - 1]!, 'x stays increasing');
});

test('every bucket contributes its min and max in index order', () => {
  const { x, y } = series(40, (i) => [3, 1, 4, 1, 5, 9, 2, 6][i % 8]!);
  const d = minMaxDownsample(x, y, 40, 10); // 5 buckets of 8
  assert.equal(d.buckets, 5);
  assert.equal(d.length, 10);
  for (let b = 0; b < 5; b++) {
    assert.deepEqual([d.y[2 * b], d.y[2 * b + 1]], [1, 9]);
    assert.deepEqual([d.x[2 * b], d.x[2 * b + 1]], [8 * b + 1, 8 * b + 5]);
  }
});

test('NaN and Infinity never become extremes; an all-NaN bucket contributes nothing', () => {
  const n = 4000;
  const { x, y } = series(n, (i) => (i >= 1000 && i < 2000 ? NaN : i % 7));
  y[10] = Infinity;
  y[20] = -Infinity;
  const d = minMaxDownsample(x, y, n, 8); // 4 buckets of 1000; the second is all NaN
  assert.equal(d.buckets, 4);
  assert.equal(d.length, 6);
  for (const v of d.y) assert.ok(Number.isFinite(v));
  for (const v of d.x) assert.ok(v < 1000 || v >= 2000);
  assert.equal(Math.max(...d.y), 6);
  assert.equal(Math.min(...d.y), 0);
});

test('log scale drops non-positive values', () => {
  const { x, y } = series(3000, (i) => (i % 2 ? 0 : 1 + (i % 10)));
  const d = minMaxDownsample(x, y, 3000, 100, true);
  for (const v of d.y) assert.ok(v > 0);
});

test('a bucket whose min and max coincide (flat) yields one point', () => {
  const { x, y } = series(2000, () => 5);
  const d = minMaxDownsample(x, y, 2000, 20);
  assert.equal(d.length, 10);
});

test('respects n shorter than the arrays (typed-array capacity)', () => {
  const { x, y } = series(100, (i) => i);
  const d = minMaxDownsample(x, y, 50, 1000);
  assert.equal(d.length, 50);
  assert.equal(d.y[49], 49);
});

test('EMA: weight 0 is the identity, a constant stays constant (debiased), output follows the input length', () => {
  const raw = [3, 1, 4, 1, 5];
  assert.deepEqual([...emaSmooth(raw, 0)], raw);
  const c = emaSmooth(new Float64Array(100).fill(7), 0.95);
  for (const v of c) assert.ok(Math.abs(v - 7) < 1e-9);
  assert.equal(emaSmooth(raw, 0.5, 3).length, 3);
});

test('EMA: matches the debiased recurrence', () => {
  const y = [1, 2, 3];
  const w = 0.5;
  const s = emaSmooth(y, w);
  // last1 = 0.5 -> /0.5 = 1; last2 = 0.25 + 1 = 1.25 -> /0.75; last3 = 0.625 + 1.5 = 2.125 -> /0.875
  assert.ok(Math.abs(s[0]! - 1) < 1e-12);
  assert.ok(Math.abs(s[1]! - 1.25 / 0.75) < 1e-12);
  assert.ok(Math.abs(s[2]! - 2.125 / 0.875) < 1e-12);
  assert.ok(s[2]! < 3 && s[2]! > 2, 'lags behind a rising series');
});

test('EMA: NaN passes through without poisoning later values', () => {
  const s = emaSmooth([1, 1, NaN, 1, 1], 0.9);
  assert.ok(Number.isNaN(s[2]!));
  for (const i of [0, 1, 3, 4]) assert.ok(Math.abs(s[i]! - 1) < 1e-9);
});

test('EMA: smooths noise over 100k points (variance drops)', () => {
  const n = 100_000;
  let seed = 1;
  const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5;
  const y = new Float64Array(n).map(() => 1 + rnd());
  const s = emaSmooth(y, 0.9);
  const v = (a: ArrayLike<number>) => {
    let m = 0;
    for (let i = 1000; i < n; i++) m += a[i]!;
    m /= n - 1000;
    let q = 0;
    for (let i = 1000; i < n; i++) q += (a[i]! - m) ** 2;
    return q / (n - 1000);
  };
  assert.ok(v(s) < v(y) / 5);
});

import { firstNonFinite, meanDownsample, niceTicks } from '../src/renderer/lib/downsample.ts';

test('meanDownsample: bucket means, NaN skipped, bounded output', () => {
  const n = 10_000;
  const x = Float64Array.from({ length: n }, (_, i) => i);
  const y = Float64Array.from({ length: n }, (_, i) => (i % 2 ? 1 : 3));
  y[5] = NaN;
  const d = meanDownsample(x, y, n, 100);
  assert.equal(d.length, 100);
  for (const v of d.y) assert.ok(Math.abs(v - 2) < 0.02);
  assert.equal(firstNonFinite(y), 5);
  assert.equal(firstNonFinite([1, 2]), -1);
});

test('niceTicks cover the range with round numbers (linear and log)', () => {
  const t = niceTicks(0.0323, 3.39, 5);
  assert.ok(t[0]! <= 0.0323 && t[t.length - 1]! >= 3.39);
  assert.deepEqual(t, [0, 1, 2, 3, 4]);
  assert.deepEqual(niceTicks(-4e-6, 1.05e-4, 4), [-0.00005, 0, 0.00005, 0.0001, 0.00015]);
  const l = niceTicks(0.3, 3, 5, true);
  assert.deepEqual(l, [0.5, 1, 2]);
  assert.deepEqual(niceTicks(0.3, 0.9, 5, true), [0.3, 0.5, 0.7]);
});
