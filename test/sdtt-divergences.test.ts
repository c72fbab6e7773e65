import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../src/engine/rng.ts';
import {
  DIVERGENCES,
  divergence,
  divergenceGradLogits,
  kldGradLogits,
  rowDivergence,
  rowGradLogits,
  type DivergenceName,
} from '../src/engine/sdtt/divergences.ts';

const NEG = -1e6;
const close = (a: number, b: number, tol = 1e-12, msg = '') =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${msg} ${a} vs ${b}`);

// V = 3, column 2 is MASK (≈ −1e6 in both, the SUBS convention).
const ln = Math.log;
const student = new Float64Array([
  ln(0.5),
  ln(0.5),
  NEG, // row A
  ln(0.2),
  ln(0.8),
  NEG, // row B (identical to teacher)
  NaN,
  NaN,
  NaN, // row C: not in S, garbage must be ignored
]);
const teacher = new Float64Array([ln(0.25), ln(0.75), NEG, ln(0.2), ln(0.8), NEG, 0, 0, 0]);
const S = new Uint8Array([1, 1, 0]);

test('hand-computed values on tiny rows, averaged over |S| (MASK column at −1e6 in both contributes 0)', () => {
  const A: Record<DivergenceName, number> = {
    kld: 0.5 * ln(0.5 / 0.25) + 0.5 * ln(0.5 / 0.75),
    'kl-fwd': 0.25 * ln(0.25 / 0.5) + 0.75 * ln(0.75 / 0.5),
    mse: ((ln(0.5) - ln(0.25)) ** 2 + (ln(0.5) - ln(0.75)) ** 2 + 0) / 3,
    tvd: 0.5 * (0.25 + 0.25),
    'tvd-log-l1': ln(2) + ln(1.5),
  };
  for (const name of DIVERGENCES) {
    close(divergence(name, student, teacher, 3, S), A[name] / 2, 1e-12, name);
    close(rowDivergence(name, student, teacher, 0, 3), A[name], 1e-12, name);
    assert.equal(rowDivergence(name, student, teacher, 3, 3), 0, `${name} of identical rows`);
  }
  assert.equal(divergence('kld', student, teacher, 3, new Uint8Array(3)), 0, 'empty S → 0');
});

test('V = 4 row with a second hand-computed case; float32 inputs accepted', () => {
  const ps = [0.1, 0.2, 0.7];
  const pt = [0.3, 0.3, 0.4];
  const s = new Float32Array([...ps.map(ln), NEG]);
  const t = new Float32Array([...pt.map(ln), NEG]);
  const lsf = Array.from(s.subarray(0, 3)),
    ltf = Array.from(t.subarray(0, 3)); // float32-rounded logs
  const m = new Uint8Array([1]);
  let kld = 0,
    fwd = 0,
    mse = 0,
    tvd = 0,
    l1 = 0;
  for (let v = 0; v < 3; v++) {
    const a = Math.exp(lsf[v]),
      b = Math.exp(ltf[v]);
    kld += a * (lsf[v] - ltf[v]);
    fwd += b * (ltf[v] - lsf[v]);
    mse += (lsf[v] - ltf[v]) ** 2 / 4;
    tvd += 0.5 * Math.abs(a - b);
    l1 += Math.abs(lsf[v] - ltf[v]);
  }
  close(divergence('kld', s, t, 4, m), kld);
  close(divergence('kl-fwd', s, t, 4, m), fwd);
  close(divergence('mse', s, t, 4, m), mse);
  close(divergence('tvd', s, t, 4, m), tvd);
  close(divergence('tvd-log-l1', s, t, 4, m), l1);
  // sanity against the exact (unrounded) numbers
  close(kld, 0.1 * ln(1 / 3) + 0.2 * ln(2 / 3) + 0.7 * ln(7 / 4), 1e-6);
  close(tvd, 0.3, 1e-6);
});

test('MASK column: −∞ in both, and a student/teacher offset (only mse / tvd-log-l1 see it, ignoreColumn removes it)', () => {
  const m = new Uint8Array([1]);
  const sInf = new Float64Array([ln(0.5), ln(0.5), -Infinity]);
  const tInf = new Float64Array([ln(0.25), ln(0.75), -Infinity]);
  const sOff = new Float64Array([ln(0.5), ln(0.5), NEG + 0.5]);
  const tOff = new Float64Array([ln(0.25), ln(0.75), NEG]);
  for (const name of DIVERGENCES) {
    const base = divergence(name, student.subarray(0, 3), teacher.subarray(0, 3), 3, m);
    const inf = divergence(name, sInf, tInf, 3, m);
    assert.ok(Number.isFinite(inf), `${name} with −∞ MASK column`);
    close(inf, base, 1e-12, name);
    const off = divergence(name, sOff, tOff, 3, m);
    const extra = name === 'mse' ? 0.25 / 3 : name === 'tvd-log-l1' ? 0.5 : 0;
    close(off, base + extra, 1e-9, name);
    close(divergence(name, sOff, tOff, 3, m, { ignoreColumn: 2 }), base, 1e-12, `${name} ignoreColumn`);
    // gradients stay finite too
    for (const g of rowGradLogits(name, sInf, tInf, 0, 3, new Float64Array(3)))
      assert.ok(Number.isFinite(g), `${name} grad`);
  }
});

test('0 when student == teacher, ≥ 0 otherwise (random rows)', () => {
  const rng = new Rng(1);
  const V = 6,
    n = 50;
  const a = randomLogpRows(rng, n, V, 5);
  const b = randomLogpRows(rng, n, V, 5);
  const m = new Uint8Array(n).fill(1);
  for (const name of DIVERGENCES) {
    assert.equal(divergence(name, a, a, V, m), 0, name);
    for (let i = 0; i < n; i++) assert.ok(rowDivergence(name, a, b, i * V, V) > 0, `${name} row ${i}`);
  }
});

test('kld gradient w.r.t. student logits = p ⊙ (d − KL), matches finite differences', () => {
  const rng = new Rng(2);
  for (let trial = 0; trial < 5; trial++) {
    const V = 5;
    const z = Array.from({ length: V }, () => 2 * rng.normal());
    const tl = randomLogpRows(rng, 1, V, 4);
    const g = kldGradLogits(logSubs(z, V), tl);
    const fd = fdGrad((zz) => rowDivergence('kld', logSubs(zz, V), tl, 0, V), z);
    for (let v = 0; v < V; v++) close(g[v], fd[v], 1e-6, `kld grad ${v}`);
    assert.equal(g[V - 1], 0, 'MASK logit gets no gradient');
  }
});

test('every divergence gradient (and ignoreColumn) matches finite differences; batch gradient divides by |S|', () => {
  const rng = new Rng(3);
  const V = 5;
  for (const name of DIVERGENCES) {
    for (const ignore of [undefined, V - 1]) {
      for (let trial = 0; trial < 4; trial++) {
        const z = Array.from({ length: V }, () => 2 * rng.normal());
        const tl = randomLogpRows(rng, 1, V, 4);
        const opts = { ignoreColumn: ignore };
        const g = rowGradLogits(name, logSubs(z, V), tl, 0, V, new Float64Array(V), opts);
        const fd = fdGrad((zz) => rowDivergence(name, logSubs(zz, V), tl, 0, V, opts), z, 1e-4);
        for (let v = 0; v < V; v++) close(g[v], fd[v], 1e-5, `${name} ignore=${ignore} grad ${v}`);
      }
    }
    // batch: 3 rows, middle one not selected
    const zs = Array.from({ length: 3 * V }, () => 2 * rng.normal());
    const tl = randomLogpRows(rng, 3, V, 4);
    const m = new Uint8Array([1, 0, 1]);
    const rows = (zz: number[]) => {
      const out = new Float64Array(3 * V);
      for (let i = 0; i < 3; i++) out.set(logSubs(zz.slice(i * V, (i + 1) * V), V), i * V);
      return out;
    };
    const g = divergenceGradLogits(name, rows(zs), tl, V, m);
    // h = 1e-4: the MASK column sits at −1e6 (float64 spacing ~1e-10), which limits FD accuracy for mse / tvd-log-l1
    const fd = fdGrad((zz) => divergence(name, rows(zz), tl, V, m), zs, 1e-4);
    for (let k = 0; k < 3 * V; k++) close(g[k], fd[k], 1e-5, `${name} batch grad ${k}`);
    for (let v = 0; v < V; v++) assert.equal(g[V + v], 0);
  }
});

test('input validation', () => {
  assert.throws(() => divergence('kld', new Float64Array(5), new Float64Array(6), 3, new Uint8Array(2)));
  assert.throws(() =>
    divergence('nope' as DivergenceName, new Float64Array(3), new Float64Array(3), 3, new Uint8Array([1])),
  );
});

// ---------- helpers ----------

/** SUBS of a masked position: log-softmax with −1e6 added to the last (MASK) logit. */
function logSubs(z: number[], V: number): Float64Array {
  const x = z.map((v, i) => (i === V - 1 ? v + NEG : v));
  const max = Math.max(...x);
  const lse = max + Math.log(x.reduce((a, v) => a + Math.exp(v - max), 0));
  return Float64Array.from(x, (v) => v - lse);
}

/** n rows of SUBS log-probs from random logits with the given scale (MASK = last column). */
function randomLogpRows(rng: Rng, n: number, V: number, scale: number): Float64Array {
  const out = new Float64Array(n * V);
  for (let i = 0; i < n; i++)
    out.set(
      logSubs(
        Array.from({ length: V }, () => scale * rng.normal()),
        V,
      ),
      i * V,
    );
  return out;
}

function fdGrad(f: (z: number[]) => number, z: number[], h = 1e-5): number[] {
  return z.map((_, k) => {
    const zp = z.slice(),
      zm = z.slice();
    zp[k] += h;
    zm[k] -= h;
    return (f(zp) - f(zm)) / (2 * h);
  });
}
