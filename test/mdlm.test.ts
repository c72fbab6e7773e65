import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../src/engine/rng.ts';
import {
  EPS_NOISE,
  SUBS_NEG_INF,
  alpha,
  antitheticTimes,
  forwardMask,
  maskProb,
  nelboWeight,
  sigma,
  subsLogProbs,
} from '../src/engine/model/mdlm.ts';

test('log-linear schedule: m(t) = 1 - exp(-sigma) = (1-eps_n) t, and the NELBO weight dsigma/expm1(sigma) is 1/t', () => {
  for (const t of [1e-5, 1e-3, 0.1, 0.5, 0.9, 1]) {
    assert.ok(Math.abs(1 - Math.exp(-sigma(t)) - maskProb(t)) < 1e-12);
    assert.ok(Math.abs(maskProb(t) - (1 - EPS_NOISE) * t) < 1e-15);
    assert.ok(Math.abs(alpha(t) + maskProb(t) - 1) < 1e-15);
    // Numerical derivative of sigma, divided by expm1(sigma): the reference code's weight.
    const h = Math.min(t, 1 - t, 1e-3) * 1e-3 || 1e-9;
    const dSigma = (sigma(t + h) - sigma(t - h)) / (2 * h);
    const weight = dSigma / Math.expm1(sigma(t));
    assert.ok(Math.abs(weight * t - 1) < 1e-6, `t=${t}: weight ${weight} vs 1/t ${nelboWeight(t)}`);
  }
});

test('antitheticTimes: one sample per stratum of u, all t in [epsT, 1]', () => {
  const rng = new Rng(7);
  for (const batch of [1, 4, 16, 33]) {
    for (let rep = 0; rep < 20; rep++) {
      const epsT = 1e-3;
      const t = antitheticTimes(batch, epsT, rng);
      assert.equal(t.length, batch);
      const u = Array.from(t, (x) => (x - epsT) / (1 - epsT)).sort((a, b) => a - b);
      for (const x of u) assert.ok(x >= -1e-6 && x < 1 + 1e-6);
      // Sorted u's are evenly spaced by 1/B (up to float32 rounding of t): exactly one per stratum.
      for (let i = 1; i < batch; i++) assert.ok(Math.abs(u[i] - u[i - 1] - 1 / batch) < 1e-5, `gap ${u[i] - u[i - 1]}`);
    }
  }
});

test('forwardMask: masking rate matches maskProb(t) per sequence, unmasked positions keep x0', () => {
  const L = 20000;
  const tValues = [0.05, 0.5, 0.95];
  const maskId = 99;
  const rng = new Rng(3);
  const x0 = new Int32Array(tValues.length * L);
  for (let i = 0; i < x0.length; i++) x0[i] = rng.int(99);
  const z = forwardMask(x0, Float32Array.from(tValues), L, maskId, rng);
  tValues.forEach((_, b) => {
    const t = Float32Array.of(tValues[b])[0];
    let masked = 0;
    for (let l = 0; l < L; l++) {
      const i = b * L + l;
      if (z[i] === maskId) masked++;
      else assert.equal(z[i], x0[i]);
    }
    const p = maskProb(t);
    const se = Math.sqrt((p * (1 - p)) / L);
    assert.ok(Math.abs(masked / L - p) < 4 * se, `t=${t}: rate ${masked / L} vs ${p}`);
  });
});

test('forwardMask is reproducible from the rng state', () => {
  const x0 = Int32Array.from({ length: 64 }, (_, i) => i % 7);
  const t = Float32Array.of(0.3, 0.7);
  const a = forwardMask(x0, t, 32, 9, new Rng(11));
  const b = forwardMask(x0, t, 32, 9, new Rng(11));
  assert.deepEqual(a, b);
});

test('SUBS: masked rows are normalised log-softmax with zero MASK mass; carry-over rows are one-hot', () => {
  const vocab = 11;
  const maskId = 10;
  const rng = new Rng(5);
  const positions = 40;
  const logits = new Float32Array(positions * vocab);
  for (let i = 0; i < logits.length; i++) logits[i] = 8 * rng.normal();
  // Some rows with huge offsets and a very confident MASK logit: the float64 log-softmax must stay exact.
  for (let v = 0; v < vocab; v++) logits[3 * vocab + v] += 3e4;
  logits[5 * vocab + maskId] = 1e4;
  const tokens = new Int32Array(positions);
  for (let i = 0; i < positions; i++) tokens[i] = i % 3 === 0 ? rng.int(maskId) : maskId;

  const lp = subsLogProbs(logits, tokens, vocab, maskId);
  assert.equal(lp.length, positions * vocab);
  for (let i = 0; i < positions; i++) {
    const row = lp.subarray(i * vocab, (i + 1) * vocab);
    if (tokens[i] !== maskId) {
      for (let v = 0; v < vocab; v++) assert.equal(row[v], v === tokens[i] ? 0 : SUBS_NEG_INF);
      continue;
    }
    let total = 0;
    for (let v = 0; v < vocab; v++) total += Math.exp(row[v]);
    assert.ok(Math.abs(total - 1) < 1e-12, `row ${i} sums to ${total}`);
    assert.equal(Math.exp(row[maskId]), 0, 'MASK has no mass');
    // Same as a direct float64 log-softmax over the non-MASK ids.
    let max = -Infinity;
    for (let v = 0; v < maskId; v++) max = Math.max(max, logits[i * vocab + v]);
    let z = 0;
    for (let v = 0; v < maskId; v++) z += Math.exp(logits[i * vocab + v] - max);
    for (let v = 0; v < maskId; v++) assert.ok(Math.abs(row[v] - (logits[i * vocab + v] - max - Math.log(z))) < 1e-9);
  }
});

test('subsLogProbs rejects mismatched shapes', () => {
  assert.throws(() => subsLogProbs(new Float32Array(10), new Int32Array(3), 4, 3));
});
