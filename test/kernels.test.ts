// Every hand-written kernel against a float64 plain-JS reference; every backward against finite differences of
// that float64 reference (so the check is precise, not limited by float32 noise).
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/model/backend.ts';
import {
  addColSum,
  addWeightGrad,
  attentionBwd,
  attentionFwd,
  causalMask,
  disposeRope,
  geluBwd,
  geluFwd,
  groupMatMul,
  headMatMul,
  lnModBwd,
  lnModFwd,
  read,
  ropeBwd,
  ropeFwd,
  ropeTables,
  transposeHost,
  view,
  type T2,
} from '../src/engine/model/kernels.ts';
import { Rng } from '../src/engine/rng.ts';

before(async () => {
  await initBackend('wasm');
});

const rng = new Rng(7);
const randn = (n: number, s = 1) => Float64Array.from({ length: n }, () => s * rng.normal());
const f32 = (a: ArrayLike<number>) => Float32Array.from(a);
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    assert.ok(
      err <= tol * Math.max(scale, 1e-3),
      `${what}[${i}]: ${actual[i]} vs ${expected[i]} (err ${err}, scale ${scale})`,
    );
  }
}

/** Central finite differences of a scalar float64 function, for every input coordinate. */
function fdGrad(f: (x: Float64Array) => number, x: Float64Array, h = 1e-5): Float64Array {
  const g = new Float64Array(x.length);
  const y = Float64Array.from(x);
  for (let i = 0; i < x.length; i++) {
    y[i] = x[i] + h;
    const a = f(y);
    y[i] = x[i] - h;
    const b = f(y);
    y[i] = x[i];
    g[i] = (a - b) / (2 * h);
  }
  return g;
}

// ---------------- float64 references ----------------
function refLnMod(
  x: Float64Array,
  n: number,
  d: number,
  w: ArrayLike<number>,
  shift: ArrayLike<number>,
  scale: ArrayLike<number>,
): Float64Array {
  const y = new Float64Array(n * d);
  for (let r = 0; r < n; r++) {
    let m = 0;
    for (let j = 0; j < d; j++) m += x[r * d + j];
    m /= d;
    let v = 0;
    for (let j = 0; j < d; j++) v += (x[r * d + j] - m) ** 2;
    const rs = 1 / Math.sqrt(v / d + 1e-5);
    for (let j = 0; j < d; j++) y[r * d + j] = (x[r * d + j] - m) * rs * w[j] * (1 + scale[j]) + shift[j];
  }
  return y;
}
const refGelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

/** q, k, v [B, L, H, hd]; non-interleaved RoPE applied by the caller. Returns o [B, Lq, H, hd]. */
function refAttention(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  B: number,
  Lq: number,
  Lk: number,
  H: number,
  hd: number,
  offset: number | null,
): Float64Array {
  const o = new Float64Array(B * Lq * H * hd);
  const at = (a: Float64Array, L: number, b: number, l: number, h: number, j: number) =>
    a[((b * L + l) * H + h) * hd + j];
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < Lq; i++) {
        const s = new Float64Array(Lk);
        let mx = -Infinity;
        for (let j = 0; j < Lk; j++) {
          let acc = 0;
          for (let c = 0; c < hd; c++) acc += at(q, Lq, b, i, h, c) * at(k, Lk, b, j, h, c);
          s[j] = offset !== null && j > offset + i ? -Infinity : acc / Math.sqrt(hd);
          mx = Math.max(mx, s[j]);
        }
        let z = 0;
        for (let j = 0; j < Lk; j++) z += s[j] = Math.exp(s[j] - mx);
        for (let c = 0; c < hd; c++) {
          let acc = 0;
          for (let j = 0; j < Lk; j++) acc += (s[j] / z) * at(v, Lk, b, j, h, c);
          o[((b * Lq + i) * H + h) * hd + c] = acc;
        }
      }
  return o;
}

function refRope(
  x: Float64Array,
  B: number,
  L: number,
  H: number,
  hd: number,
  base: number,
  offset: number,
): Float64Array {
  const y = new Float64Array(x.length);
  const half = hd / 2;
  for (let b = 0; b < B; b++)
    for (let l = 0; l < L; l++)
      for (let h = 0; h < H; h++)
        for (let j = 0; j < half; j++) {
          const ang = (l + offset) * Math.pow(base, (-2 * j) / hd);
          const o = ((b * L + l) * H + h) * hd;
          const x1 = x[o + j];
          const x2 = x[o + j + half];
          y[o + j] = x1 * Math.cos(ang) - x2 * Math.sin(ang);
          y[o + j + half] = x2 * Math.cos(ang) + x1 * Math.sin(ang);
        }
  return y;
}

// ---------------- tests ----------------
test('forcing an unavailable backend throws an error naming it', async () => {
  await assert.rejects(
    initBackend('tensorflow'),
    /backend 'tensorflow' is unavailable: @tensorflow\/tfjs-node could not be loaded/,
  );
  await assert.rejects(
    initBackend('tensorflow-gpu'),
    /backend 'tensorflow-gpu' is unavailable: @tensorflow\/tfjs-node-gpu could not be loaded/,
  );
  const info = await initBackend('wasm');
  assert.equal(info.backend, 'wasm');
  assert.match(info.device, /^CPU \(wasm, (SIMD|no SIMD), 1 thread\)$/);
  assert.equal(tf.getBackend(), 'wasm');
});

test('transposeHost matches the definition, including ragged block edges', () => {
  const r = 37;
  const c = 70;
  const a = f32(randn(r * c));
  const t = transposeHost(a, r, c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) assert.equal(t[j * r + i], a[i * c + j]);
});

test('headMatMul = per-group matrix products', () => {
  const [G, m, k, n] = [3, 5, 4, 6];
  const a = f32(randn(G * m * k));
  const b = f32(randn(G * k * n));
  const out = headMatMul(a, b, G, m, k, n);
  const ref = new Float64Array(G * m * n);
  for (let g = 0; g < G; g++)
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++)
        for (let c = 0; c < k; c++) ref[(g * m + i) * n + j] += a[(g * m + i) * k + c] * b[(g * k + c) * n + j];
  assert.deepEqual(out.shape, [G, m, n]);
  close(read(out), ref, 1e-5, 'headMatMul');
  out.dispose();
});

test('groupMatMul: rank-3 path for tiny products and per-group path for big ones agree with the definition', () => {
  for (const [G, m, k, n] of [
    [3, 1, 8, 5],
    [2, 64, 32, 40],
  ]) {
    const a = f32(randn(G * m * k));
    const b = f32(randn(G * k * n));
    const out = groupMatMul(tf.tensor3d(a, [G, m, k]), tf.tensor3d(b, [G, k, n]));
    const ref = new Float64Array(G * m * n);
    for (let g = 0; g < G; g++)
      for (let i = 0; i < m; i++)
        for (let j = 0; j < n; j++)
          for (let c = 0; c < k; c++) ref[(g * m + i) * n + j] += a[(g * m + i) * k + c] * b[(g * k + c) * n + j];
    close(read(out), ref, 1e-5, `groupMatMul ${[G, m, k, n]}`);
  }
});

test('addWeightGrad gives dL/dWt [out, in] through both transpose routes; addColSum', () => {
  for (const [n, fin, fout] of [
    [7, 3, 9],
    [7, 9, 3],
  ]) {
    const x = f32(randn(n * fin));
    const dy = f32(randn(n * fout));
    const ref = new Float64Array(fout * fin);
    for (let o = 0; o < fout; o++)
      for (let i = 0; i < fin; i++) for (let r = 0; r < n; r++) ref[o * fin + i] += dy[r * fout + o] * x[r * fin + i];
    const out = new Float32Array(fout * fin + 2).fill(1);
    const [tx, tdy] = [tf.tensor2d(x, [n, fin]), tf.tensor2d(dy, [n, fout])];
    assert.deepEqual(view(tx), read(tx)); // zero-copy heap view = copy
    addWeightGrad(tdy, tx, out, 1);
    close(
      out.subarray(1, 1 + fout * fin),
      ref.map((v) => v + 1),
      1e-5,
      `dWt ${n}x${fin}x${fout}`,
    );
    assert.equal(out[0], 1);
    assert.equal(out[out.length - 1], 1);
    const cs = new Float32Array(fout);
    addColSum(tdy, cs, 0);
    close(
      cs,
      Array.from({ length: fout }, (_, o) => {
        let s = 0;
        for (let r = 0; r < n; r++) s += dy[r * fout + o];
        return s;
      }),
      1e-5,
      'colsum',
    );
    tf.dispose([tx, tdy]);
  }
});

test('lnModFwd / lnModBwd vs float64 reference and finite differences', () => {
  const [n, d] = [5, 8];
  const x = randn(n * d, 2);
  const w = randn(d).map((v) => 1 + 0.3 * v);
  const shift = randn(d, 0.3);
  const scale = randn(d, 0.3);
  const R = randn(n * d);
  const [tx, tw, tsh, tsc] = [
    tf.tensor2d(f32(x), [n, d]),
    tf.tensor1d(f32(w)),
    tf.tensor1d(f32(shift)),
    tf.tensor1d(f32(scale)),
  ];
  const { y, saved } = lnModFwd(tx, tw, tsh, tsc);
  close(read(y), refLnMod(x, n, d, w, shift, scale), 1e-5, 'ln fwd');
  const g = new Float32Array(3 * d);
  const dx = lnModBwd(tf.tensor2d(f32(R), [n, d]), saved, tw, tsc, g, { w: 0, shift: d, scale: 2 * d });
  const L = (
    xx: Float64Array,
    ww: ArrayLike<number> = w,
    sh: ArrayLike<number> = shift,
    sc: ArrayLike<number> = scale,
  ) => dot(refLnMod(xx, n, d, ww, sh, sc), R);
  close(
    read(dx),
    fdGrad((xx) => L(xx), x),
    1e-4,
    'ln dx',
  );
  close(
    g.subarray(0, d),
    fdGrad((ww) => L(x, ww), w),
    1e-4,
    'ln dw',
  );
  close(
    g.subarray(d, 2 * d),
    fdGrad((sh) => L(x, w, sh), shift),
    1e-4,
    'ln dshift',
  );
  close(
    g.subarray(2 * d),
    fdGrad((sc) => L(x, w, shift, sc), scale),
    1e-4,
    'ln dscale',
  );
  tf.dispose([tx, tw, tsh, tsc, y, saved.xhat, saved.rstd, dx]);
});

test('GELU (tanh approximation via sigmoid) forward and backward', () => {
  const n = 64;
  const x = randn(n, 3);
  const R = randn(n);
  const tx = tf.tensor2d(f32(x), [8, 8]);
  const { y, s } = geluFwd(tx);
  close(read(y), x.map(refGelu), 2e-6, 'gelu fwd');
  const dx = geluBwd(tf.tensor2d(f32(R), [8, 8]), tx, s);
  close(
    read(dx),
    fdGrad((xx) => dot(xx.map(refGelu), R), x),
    1e-4,
    'gelu bwd',
  );
  tf.dispose([tx, y, s, dx]);
});

test('RoPE forward matches rotate_half reference (with position offset); backward is its adjoint', () => {
  const [B, L, H, hd] = [2, 5, 3, 8];
  const x = randn(B * L * H * hd);
  const dy = randn(x.length);
  for (const offset of [0, 7]) {
    const r = ropeTables(L, hd, 100, offset);
    const tx = tf.tensor4d(f32(x), [B, L, H, hd]);
    const y = ropeFwd(tx, r);
    close(read(y), refRope(x, B, L, H, hd, 100, offset), 1e-5, `rope fwd offset ${offset}`);
    const dx = ropeBwd(tf.tensor4d(f32(dy), [B, L, H, hd]), r);
    // RoPE is linear: <rope(x), dy> = <x, rope^T(dy)> pins the backward down exactly.
    assert.ok(Math.abs(dot(read(y), dy) - dot(x, read(dx))) < 1e-4 * x.length);
    close(
      read(dx),
      fdGrad((xx) => dot(refRope(xx, B, L, H, hd, 100, offset), dy), x),
      1e-4,
      'rope bwd',
    );
    tf.dispose([tx, y, dx]);
    disposeRope(r);
  }
});

test('attention forward (non-causal, causal, causal with KV offset) and backward', () => {
  const [B, H, hd] = [2, 2, 4];
  for (const [Lq, Lk, offset] of [
    [5, 5, null],
    [5, 5, 0],
    [2, 6, 4],
  ] as [number, number, number | null][]) {
    const q = randn(B * Lq * H * hd);
    const k = randn(B * Lk * H * hd);
    const v = randn(B * Lk * H * hd);
    const R = randn(B * Lq * H * hd);
    const mask = offset === null ? null : causalMask(Lq, Lk, offset);
    const [tq, tk, tv] = [
      tf.tensor4d(f32(q), [B, Lq, H, hd]),
      tf.tensor4d(f32(k), [B, Lk, H, hd]),
      tf.tensor4d(f32(v), [B, Lk, H, hd]),
    ];
    const { o, saved } = attentionFwd(tq, tk, tv, mask);
    const what = `attention Lq=${Lq} Lk=${Lk} offset=${offset}`;
    close(read(o), refAttention(q, k, v, B, Lq, Lk, H, hd, offset), 1e-5, `${what} fwd`);
    const g = attentionBwd(tf.tensor2d(f32(R), [B * Lq, H * hd]), saved);
    const f = (qq: Float64Array, kk: Float64Array, vv: Float64Array) =>
      dot(refAttention(qq, kk, vv, B, Lq, Lk, H, hd, offset), R);
    close(
      read(g.dq),
      fdGrad((x) => f(x, k, v), q),
      1e-4,
      `${what} dq`,
    );
    close(
      read(g.dk),
      fdGrad((x) => f(q, x, v), k),
      1e-4,
      `${what} dk`,
    );
    close(
      read(g.dv),
      fdGrad((x) => f(q, k, x), v),
      1e-4,
      `${what} dv`,
    );
    tf.dispose([tq, tk, tv, o, saved.q, saved.k, saved.v, saved.p, g.dq, g.dk, g.dv]);
    mask?.dispose();
  }
});

test('kernels leak no tensors', () => {
  const before = tf.memory().numTensors;
  const tx = tf.tensor2d(f32(randn(64)), [8, 8]);
  for (let i = 0; i < 3; i++) {
    const { y, s } = geluFwd(tx);
    const dx = geluBwd(tx, tx, s);
    tf.dispose([y, s, dx]);
    const out = new Float32Array(64);
    addWeightGrad(tx as T2, tx as T2, out, 0);
  }
  tx.dispose();
  assert.equal(tf.memory().numTensors, before);
});

test('attention at a size that takes the per-head path: forward vs reference, backward vs directional derivative', () => {
  const [B, L, H, hd] = [2, 64, 2, 16];
  const n = B * L * H * hd;
  const [q, k, v, R] = [randn(n), randn(n), randn(n), randn(n)];
  const mask = causalMask(L, L, 0);
  const [tq, tk, tv] = [q, k, v].map((x) => tf.tensor4d(f32(x), [B, L, H, hd]));
  const { o, saved } = attentionFwd(tq, tk, tv, mask);
  close(read(o), refAttention(q, k, v, B, L, L, H, hd, 0), 1e-5, 'big attention fwd');
  const g = attentionBwd(tf.tensor2d(f32(R), [B * L, H * hd]), saved);
  // d/de f(q + e*u, k + e*u', v + e*u'') = <dq, u> + <dk, u'> + <dv, u''>
  const [u1, u2, u3] = [randn(n), randn(n), randn(n)];
  const f = (e: number) =>
    dot(
      refAttention(
        q.map((x, i) => x + e * u1[i]),
        k.map((x, i) => x + e * u2[i]),
        v.map((x, i) => x + e * u3[i]),
        B,
        L,
        L,
        H,
        hd,
        0,
      ),
      R,
    );
  const fd = (f(1e-4) - f(-1e-4)) / 2e-4;
  const an = dot(read(g.dq), u1) + dot(read(g.dk), u2) + dot(read(g.dv), u3);
  assert.ok(Math.abs(fd - an) < 1e-4 * Math.abs(fd) + 1e-3, `directional derivative ${fd} vs ${an}`);
  tf.dispose([tq, tk, tv, o, saved.q, saved.k, saved.v, saved.p, g.dq, g.dk, g.dv, mask]);
});
