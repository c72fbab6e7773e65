import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AdamW,
  Ema,
  allFinite,
  clipGradients,
  cooldownFactor,
  globalNorm,
  lrAt,
} from '../src/engine/training/optim.ts';
import { Rng } from '../src/engine/rng.ts';

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what = ''): void {
  assert.equal(actual.length, expected.length, `${what} length`);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    assert.ok(
      err <= tol * Math.max(1, Math.abs(expected[i])),
      `${what}[${i}]: ${actual[i]} vs ${expected[i]} (err ${err})`,
    );
  }
}

test('lrAt: linear warmup from 0 (as get_constant_schedule_with_warmup), then constant', () => {
  const cfg = { lr: 1e-3, warmupSteps: 4 };
  close(
    [0, 1, 2, 3, 4, 5, 1000].map((s) => lrAt(s, cfg)),
    [0, 2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3],
    1e-15,
  );
  assert.equal(lrAt(0, { lr: 6e-5, warmupSteps: 0 }), 6e-5);
  assert.equal(lrAt(250, { lr: 6e-5, warmupSteps: 500 }), 3e-5);
});

test('cooldownFactor: 1 until the last decaySteps of the run, then linear towards 0; 0 decay steps = constant', () => {
  close(
    [0, 5, 6, 7, 8, 9, 10].map((s) => cooldownFactor(s, 10, 4)),
    [1, 1, 1, 0.75, 0.5, 0.25, 0],
    1e-15,
  );
  assert.equal(cooldownFactor(9, 10, 0), 1);
  assert.equal(cooldownFactor(0, 10, 40), 0.25); // a cooldown longer than the run starts below 1
});

test('globalNorm over one or several arrays, in float64', () => {
  assert.equal(globalNorm(new Float32Array([3, 4])), 5);
  assert.equal(globalNorm([new Float32Array([1, 2]), new Float32Array([2]), new Float32Array(0)]), 3);
  assert.equal(globalNorm(new Float32Array(0)), 0);
  // 1e20^2 overflows float32 but not the float64 accumulator.
  close([globalNorm(new Float32Array([1e20, 1e20]))], [Math.fround(1e20) * Math.SQRT2], 1e-15);
});

test('clipGradients scales in place like clip_grad_norm_ and returns the norm before clipping', () => {
  const a = new Float32Array([3, 0]);
  const b = new Float32Array([4]);
  const norm = clipGradients([a, b], 1);
  assert.equal(norm, 5);
  const coef = 1 / (5 + 1e-6);
  close([...a, ...b], [3 * coef, 0, 4 * coef], 1e-7);

  const small = new Float32Array([0.3, 0.4]);
  assert.equal(clipGradients(small, 1), Math.hypot(Math.fround(0.3), Math.fround(0.4)));
  assert.deepEqual([...small], [Math.fround(0.3), Math.fround(0.4)], 'below the threshold: untouched');

  const bad = new Float32Array([1, NaN, 2]);
  assert.ok(Number.isNaN(clipGradients(bad, 1)));
  assert.equal(bad[0], 1, 'non-finite norm leaves gradients for the caller to inspect');
  assert.equal(clipGradients(new Float32Array([Infinity]), 1), Infinity);
});

test('allFinite detects NaN and infinities', () => {
  assert.equal(allFinite(new Float32Array([0, -1, 3.4e38, -0])), true);
  assert.equal(allFinite(new Float32Array(0)), true);
  assert.equal(allFinite(new Float32Array([0, NaN])), false);
  assert.equal(allFinite(new Float32Array([Infinity, 1])), false);
  assert.equal(allFinite(new Float64Array([1, -Infinity])), false);
  const big = new Float32Array(100_001);
  big[77_777] = NaN;
  assert.equal(allFinite(big), false);
});

test('AdamW: hand-computed two-step example (decoupled weight decay + bias correction)', () => {
  // Worked by hand: step 1 m=[.05,-.1] v=[.00025,.001] -> mhat/sqrt(vhat) = [1,-1], p = 0.999*p - 0.1*[1,-1].
  // Step 2 m=[.145,-.04] v=[.00124975,.001249], bc1=.19, bc2=.001999.
  const opt = new AdamW(2, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
  const p = new Float32Array([1, -2]);
  opt.step(p, new Float32Array([0.5, -1]), 0.1);
  close(p, [0.899, -1.898], 1e-6, 'after step 1');
  close(opt.m, [0.05, -0.1], 1e-7, 'm1');
  close(opt.v, [0.00025, 0.001], 1e-7, 'v1');
  opt.step(p, new Float32Array([1, 0.5]), 0.1);
  close(p, [0.8015828, -1.8694683], 1e-6, 'after step 2');
  close(opt.m, [0.145, -0.04], 1e-7, 'm2');
  close(opt.v, [0.00124975, 0.001249], 1e-7, 'v2');
  assert.equal(opt.t, 2);
});

/** The textbook algorithm (Loshchilov & Hutter; torch.optim.AdamW docs), all in float64. */
function referenceAdamW(
  p: Float64Array,
  grads: Float64Array[],
  lrs: number[],
  b1: number,
  b2: number,
  eps: number,
  wd: number,
): Float64Array {
  const m = new Float64Array(p.length);
  const v = new Float64Array(p.length);
  grads.forEach((g, k) => {
    const t = k + 1;
    for (let i = 0; i < p.length; i++) {
      p[i] = p[i] - lrs[k] * wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const mHat = m[i] / (1 - Math.pow(b1, t));
      const vHat = v[i] / (1 - Math.pow(b2, t));
      p[i] = p[i] - (lrs[k] * mHat) / (Math.sqrt(vHat) + eps);
    }
  });
  return p;
}

test('AdamW agrees with a straightforward float64 reference over 60 random steps with warmup', () => {
  const rng = new Rng(7);
  const n = 257;
  const cfg = { beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 0.05 };
  const init = Float64Array.from({ length: n }, () => rng.normal());
  const grads = Array.from({ length: 60 }, () =>
    Float64Array.from({ length: n }, () => Math.fround(rng.normal() * 0.1)),
  );
  const lrs = grads.map((_, s) => lrAt(s, { lr: 1e-2, warmupSteps: 10 }));
  const expected = referenceAdamW(Float64Array.from(init), grads, lrs, cfg.beta1, cfg.beta2, cfg.eps, cfg.weightDecay);
  const opt = new AdamW(n, cfg);
  const p = Float32Array.from(init);
  grads.forEach((g, s) => opt.step(p, Float32Array.from(g), lrs[s]));
  close(p, expected, 2e-5, 'params');
});

test('AdamW state survives save/load: a resumed optimiser continues identically', () => {
  const rng = new Rng(3);
  const n = 33;
  const cfg = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
  const g = () => Float32Array.from({ length: n }, () => rng.normal());
  const a = new AdamW(n, cfg);
  const pa = Float32Array.from({ length: n }, () => rng.normal());
  for (let s = 0; s < 5; s++) a.step(pa, g(), 1e-3);
  const b = new AdamW(n, cfg);
  const s = a.state();
  b.load({ m: Float32Array.from(s.m), v: Float32Array.from(s.v), t: s.t });
  const pb = Float32Array.from(pa);
  const next = g();
  a.step(pa, next, 1e-3);
  b.step(pb, next, 1e-3);
  assert.deepEqual(pb, pa);
  assert.throws(
    () => b.load({ m: new Float32Array(2), v: new Float32Array(2), t: 1 }),
    /2\/2 moments for 33 parameters/,
  );
  assert.throws(() => b.step(new Float32Array(3), new Float32Array(3), 1e-3), /expected 33/);
});

test('Ema: decay warm-up min(decay, (1+n)/(10+n)) with n counting the current update', () => {
  const ema = new Ema(new Float32Array([0, 10]), 0.9);
  assert.equal(ema.nextDecay(), 2 / 11);
  ema.update(new Float32Array([1, 0]));
  const d1 = 2 / 11;
  close(ema.values, [1 - d1, 10 * d1], 1e-6, 'after 1');
  const d2 = 3 / 12;
  ema.update(new Float32Array([1, 0]));
  close(ema.values, [d2 * (1 - d1) + (1 - d2), d2 * 10 * d1], 1e-6, 'after 2');
  assert.equal(ema.updates, 2);
  // Once (1+n)/(10+n) passes the configured decay, the configured decay holds.
  for (let i = 0; i < 200; i++) ema.update(new Float32Array([1, 0]));
  assert.equal(ema.nextDecay(), 0.9);
});

test('Ema without warm-up uses the fixed decay; its constructor copies the parameters', () => {
  const p = new Float32Array([2]);
  const ema = new Ema(p, 0.75, false);
  p[0] = 100;
  assert.equal(ema.values[0], 2, 'copied');
  ema.update(new Float32Array([6]));
  assert.equal(ema.values[0], 0.75 * 2 + 0.25 * 6);
  assert.throws(() => new Ema(p, 1), /decay/);
});

test('Ema state round trip continues the warm-up where it stopped', () => {
  const a = new Ema(new Float32Array([1, 2, 3]), 0.999);
  for (let i = 0; i < 7; i++) a.update(new Float32Array([i, -i, 2 * i]));
  const s = a.state();
  const b = Ema.fromState({ ...s, values: Float32Array.from(s.values) });
  assert.equal(b.updates, 7);
  assert.equal(b.nextDecay(), a.nextDecay());
  a.update(new Float32Array([5, 5, 5]));
  b.update(new Float32Array([5, 5, 5]));
  assert.deepEqual(b.values, a.values);
});
