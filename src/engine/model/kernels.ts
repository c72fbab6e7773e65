// The building blocks of the transformer, each as an explicit forward (returning what its backward needs) and an
// explicit backward. We do not use tfjs autograd for training because, on tfjs-wasm (measured, 2 cores):
//  - every matMul gradient uses transposeA/B, which skips XNNPACK (1-3 GFLOP/s instead of 24-33);
//  - batched (rank-3) matMul, i.e. attention, runs ~2 GFLOP/s, while the same products done as one 2-D matMul per
//    head run at ~10 GFLOP/s even after paying for the host round-trip (headMatMul below);
//  - the embedding gradient needs UnsortedSegmentSum, which wasm lacks (we scatter-add on the host instead);
//  - Tanh/Exp/Pow are scalar in wasm while Sigmoid and Softmax are vectorised, so GELU uses x*sigmoid(2u).
// Conventions: activations are 2-D [N, d] (N = batch*len tokens) unless said otherwise; a linear layer's weight
// is used as W [in, out] in the forward and Wt [out, in] (the PyTorch/stored layout) in the backward, so every
// matMul is untransposed.
import * as tf from '@tensorflow/tfjs-core';

export type T = tf.Tensor;
export type T2 = tf.Tensor2D;

// ---------------------------------------------------------------------------------------------------------------
// Host helpers

/** dst[c, r] = src[r, c] for a [rows, cols] row-major matrix; blocked so both sides stay in cache. */
export function transposeHost(
  src: Float32Array,
  rows: number,
  cols: number,
  dst = new Float32Array(rows * cols),
): Float32Array {
  const BS = 32;
  for (let r0 = 0; r0 < rows; r0 += BS) {
    const r1 = Math.min(rows, r0 + BS);
    for (let c0 = 0; c0 < cols; c0 += BS) {
      const c1 = Math.min(cols, c0 + BS);
      for (let r = r0; r < r1; r++) {
        const so = r * cols;
        for (let c = c0; c < c1; c++) dst[c * rows + r] = src[so + c];
      }
    }
  }
  return dst;
}

/** Reads a float32 tensor to the host (a copy). */
export function read(t: T): Float32Array {
  return t.dataSync() as Float32Array;
}

interface WasmInternals {
  wasm?: { HEAPF32: Float32Array };
  dataIdMap?: { get(id: object): { memoryOffset: number } | undefined };
}

/**
 * Zero-copy view of a float32 tensor's data in the wasm heap; a copy on other backends. The view is only valid
 * until the next tensor allocation (the heap may grow and move), so callers consume it at once. Saves a copy and
 * the garbage of ~100 MB of reads per training step.
 */
export function view(t: T): Float32Array {
  return heapView(t) ?? read(t);
}

/** The zero-copy wasm-heap view of view(), or null on backends without one. Writing through it changes the
 * tensor in place (used to turn a dead intermediate into a result without an upload). */
export function heapView(t: T): Float32Array | null {
  const b = tf.backend() as unknown as WasmInternals;
  const e = t.dtype === 'float32' && b.wasm && b.dataIdMap ? b.dataIdMap.get(t.dataId) : undefined;
  return e ? new Float32Array(b.wasm!.HEAPF32.buffer, e.memoryOffset, t.size) : null;
}

// ---------------------------------------------------------------------------------------------------------------
// Linear

/** y = x @ W (+ b), W [in, out]. */
export function linear(x: T2, W: T2, b?: T): T2 {
  return b ? (tf.fused.matMul({ a: x, b: W, bias: b }) as T2) : tf.matMul(x, W);
}

/** dx = dy @ Wt, Wt [out, in]. */
export function linearBwdInput(dy: T2, Wt: T2): T2 {
  return tf.matMul(dy, Wt);
}

/**
 * Adds the weight gradient of y = x @ W, in the stored [out, in] layout, into `out` at `offset`.
 * Two untransposed routes, chosen by how many floats must be transposed: dWt = dy^T @ x (transpose dy), or
 * dW = x^T @ dy (transpose x) and transpose the small [in, out] result on the host.
 */
export function addWeightGrad(dy: T2, x: T2, out: Float32Array, offset: number): void {
  const [n, fin] = x.shape;
  const fout = dy.shape[1];
  if (n * fout <= n * fin + fin * fout) {
    const g = tf.tidy(() => tf.matMul(tf.transpose(dy), x));
    addInto(out, offset, view(g));
    g.dispose();
  } else {
    const g = tf.tidy(() => tf.matMul(tf.transpose(x), dy));
    addTransposedInto(out, offset, view(g), fin, fout);
    g.dispose();
  }
}

/** out[offset + c*rows + r] += v[r*cols + c]: adds the transpose of a [rows, cols] matrix, blocked like transposeHost. */
export function addTransposedInto(
  out: Float32Array,
  offset: number,
  v: Float32Array,
  rows: number,
  cols: number,
): void {
  const BS = 32;
  for (let r0 = 0; r0 < rows; r0 += BS) {
    const r1 = Math.min(rows, r0 + BS);
    for (let c0 = 0; c0 < cols; c0 += BS) {
      const c1 = Math.min(cols, c0 + BS);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[offset + c * rows + r] += v[r * cols + c];
    }
  }
}

/** out[offset + i] += v[i]. */
export function addInto(out: Float32Array, offset: number, v: ArrayLike<number>): void {
  for (let i = 0; i < v.length; i++) out[offset + i] += v[i];
}

/** The embedding gradient: adds row n of `rows` ([N, d]) into row tokens[n] of the table at `offset` (host scatter-add). */
export function scatterAddRows(
  out: Float32Array,
  offset: number,
  tokens: Int32Array,
  rows: ArrayLike<number>,
  d: number,
): void {
  for (let n = 0; n < tokens.length; n++) {
    const base = offset + tokens[n] * d;
    for (let j = 0; j < d; j++) out[base + j] += rows[n * d + j];
  }
}

/**
 * Column sums of a [N, k] tensor, on the host. Measured on tfjs-wasm for [1024, 256]: Sum over axis 0 ~2 ms
 * (it transposes first), ones[1, N] @ x ~1.2 ms (XNNPACK re-packs x as the weight operand), host ~0.5 ms.
 */
export function colSum(x: T2): Float64Array {
  const [n, k] = x.shape;
  const v = view(x);
  const s = new Float64Array(k);
  for (let r = 0; r < n; r++) {
    const o = r * k;
    for (let j = 0; j < k; j++) s[j] += v[o + j];
  }
  return s;
}

/** Column sums of a [N, k] tensor, added into out at offset (bias / shift gradients). */
export function addColSum(x: T2, out: Float32Array, offset: number): void {
  const s = colSum(x);
  for (let j = 0; j < s.length; j++) out[offset + j] += s[j];
}

// ---------------------------------------------------------------------------------------------------------------
// LayerNorm (weight only, eps 1e-5 like torch) fused with the DiT modulation: y = LN(x) * w * (1 + scale) + shift

export interface LnSaved {
  xhat: T2;
  rstd: T2;
}

export function lnModFwd(x: T2, w: T, shift: T, scale: T, eps = 1e-5): { y: T2; saved: LnSaved } {
  return tf.tidy(() => {
    const mean = tf.mean(x, -1, true);
    const xc = tf.sub(x, mean);
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.mul(xc, xc), -1, true), eps)) as T2;
    const xhat = tf.mul(xc, rstd) as T2;
    const g = tf.mul(w, tf.add(scale, 1));
    const y = tf.add(tf.mul(xhat, g), shift) as T2;
    return { y, saved: { xhat, rstd } };
  });
}

/** Backward of lnModFwd; adds the gradients of w, shift and scale into `grads` at the given offsets. */
export function lnModBwd(
  dy: T2,
  s: LnSaved,
  w: T,
  scale: T,
  grads: Float32Array,
  off: { w: number; shift: number; scale: number },
): T2 {
  const dyXhat = tf.mul(dy, s.xhat) as T2;
  const t = colSum(dyXhat);
  dyXhat.dispose();
  const wv = read(w);
  const sv = read(scale);
  for (let j = 0; j < t.length; j++) {
    grads[off.w + j] += t[j] * (1 + sv[j]);
    grads[off.scale + j] += t[j] * wv[j];
  }
  addColSum(dy, grads, off.shift);
  return tf.tidy(() => {
    const dxhat = tf.mul(dy, tf.mul(w, tf.add(scale, 1)));
    const m1 = tf.mean(dxhat, -1, true);
    const m2 = tf.mean(tf.mul(dxhat, s.xhat), -1, true);
    return tf.mul(tf.sub(tf.sub(dxhat, m1), tf.mul(s.xhat, m2)), s.rstd) as T2;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// GELU, tanh approximation, written as x * sigmoid(2u) (identical to 0.5x(1 + tanh u)), u = c(x + 0.044715x^3):
// wasm's Sigmoid is vectorised, Tanh is not (5x slower, measured). Pow is avoided (slow): x*x*x.

/** The one definition of the tanh-GELU constants c = sqrt(2/pi) and a; the ONNX graph builders import them. */
export const GELU_C = Math.sqrt(2 / Math.PI);
export const GELU_A = 0.044715;

export function geluFwd(x: T2): { y: T2; s: T2 } {
  return tf.tidy(() => {
    const x2 = tf.mul(x, x);
    const s = tf.sigmoid(tf.mul(x, tf.add(tf.mul(x2, 2 * GELU_C * GELU_A), 2 * GELU_C))) as T2;
    return { y: tf.mul(x, s) as T2, s };
  });
}

/** d/dx [x s(2u)] = s + x s (1 - s) 2c (1 + 3a x^2). */
export function geluBwd(dy: T2, x: T2, s: T2): T2 {
  return tf.tidy(() => {
    const du = tf.add(tf.mul(tf.mul(x, x), 2 * GELU_C * 3 * GELU_A), 2 * GELU_C);
    const ds = tf.mul(tf.mul(s, tf.sub(1, s)), tf.mul(x, du));
    return tf.mul(dy, tf.add(s, ds)) as T2;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// RoPE, non-interleaved ("rotate_half", as flash-attn / MDLM's DiT): for head dim hd, h = hd/2,
// out = x * cos + rotate_half(x) * sin, rotate_half(x) = [-x[h:], x[:h]], angle(pos, j) = pos * base^(-2(j mod h)/hd).
// rotate_half is a signed permutation, applied as a tiny [hd, hd] matMul so no slicing is needed.

export interface RopeTables {
  cos: T; // [len, 1, hd]
  sin: T; // [len, 1, hd]
  rot: T2; // [hd, hd]: x @ rot = rotate_half(x)
  rotT: T2; // its transpose (= -rot)
}

export function ropeTables(len: number, hd: number, base: number, offset = 0): RopeTables {
  const h = hd / 2;
  const c = new Float32Array(len * hd);
  const s = new Float32Array(len * hd);
  for (let p = 0; p < len; p++) {
    for (let j = 0; j < h; j++) {
      const ang = (p + offset) * Math.pow(base, (-2 * j) / hd);
      c[p * hd + j] = c[p * hd + j + h] = Math.cos(ang);
      s[p * hd + j] = s[p * hd + j + h] = Math.sin(ang);
    }
  }
  const r = new Float32Array(hd * hd);
  for (let j = 0; j < h; j++) {
    r[(j + h) * hd + j] = -1; // out[j] = -x[j + h]
    r[j * hd + j + h] = 1; // out[j + h] = x[j]
  }
  return {
    cos: tf.tensor3d(c, [len, 1, hd]),
    sin: tf.tensor3d(s, [len, 1, hd]),
    rot: tf.tensor2d(r, [hd, hd]),
    rotT: tf.tensor2d(transposeHost(r, hd, hd), [hd, hd]),
  };
}

export function disposeRope(r: RopeTables): void {
  tf.dispose([r.cos, r.sin, r.rot, r.rotT]);
}

/** x [B, L, H, hd] -> rotated, same shape. */
export function ropeFwd(x: T, r: RopeTables): T {
  return tf.tidy(() => {
    const hd = x.shape[3]!;
    const xr = tf.reshape(tf.matMul(tf.reshape(x, [-1, hd]) as T2, r.rot), x.shape);
    return tf.add(tf.mul(x, r.cos), tf.mul(xr, r.sin));
  });
}

export function ropeBwd(dy: T, r: RopeTables): T {
  return tf.tidy(() => {
    const hd = dy.shape[3]!;
    const ds = tf.reshape(tf.mul(dy, r.sin), [-1, hd]) as T2;
    return tf.add(tf.mul(dy, r.cos), tf.reshape(tf.matMul(ds, r.rotT), dy.shape));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Attention

/**
 * G independent products A[g] @ B[g] (A [G, m, k], B [G, k, n], host row-major) as G 2-D matMuls -> [G, m, n].
 * Why: rank-3 BatchMatMul in tfjs-wasm does not use XNNPACK (~2 GFLOP/s); 2-D matMuls on per-head uploads of
 * host subarrays run ~5x faster overall, and wasm's Slice would copy the whole source tensor per slice.
 */
export function headMatMul(a: Float32Array, b: Float32Array, G: number, m: number, k: number, n: number): T {
  return tf.tidy(() => {
    const outs: T[] = [];
    for (let g = 0; g < G; g++) {
      const ag = tf.tensor2d(a.subarray(g * m * k, (g + 1) * m * k), [m, k]);
      const bg = tf.tensor2d(b.subarray(g * k * n, (g + 1) * k * n), [k, n]);
      outs.push(tf.matMul(ag, bg));
    }
    return tf.reshape(tf.concat(outs, 0), [G, m, n]);
  });
}

/**
 * a [G, m, k] @ b [G, k, n] -> [G, m, n], by whichever path is faster: per-group 2-D matMuls (above) for the
 * big products of training and full forwards, one rank-3 BatchMatMul for tiny ones (KV-cache decoding, m = 1),
 * where the per-group uploads and op overhead (~3 ops per group) would dominate.
 */
export function groupMatMul(a: T, b: T): T {
  const [G, m, k] = a.shape as number[];
  const n = b.shape[2]!;
  if (m * n * k < 65536) return tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D);
  return headMatMul(read(a), read(b), G, m, k, n);
}

/** Additive mask [lq, lk] for causal attention where query i sits at absolute position offset + i. */
export function causalMask(lq: number, lk: number, offset: number): T2 {
  const m = new Float32Array(lq * lk);
  for (let i = 0; i < lq; i++) for (let j = offset + i + 1; j < lk; j++) m[i * lk + j] = -1e9;
  return tf.tensor2d(m, [lq, lk]);
}

export interface AttnSaved {
  q: T; // [B, H, Lq, hd], pre-scaled by 1/sqrt(hd)
  k: T; // [B, H, Lk, hd]
  v: T; // [B, H, Lk, hd]
  p: T; // [B*H, Lq, Lk] softmax probabilities
}

/**
 * Multi-head attention core. q [B, Lq, H, hd], k/v [B, Lk, H, hd] (already RoPE'd); mask [Lq, Lk] additive or
 * null. Returns o [B*Lq, H*hd] and what the backward needs.
 */
export function attentionFwd(q: T, k: T, v: T, mask: T | null): { o: T2; saved: AttnSaved } {
  const [B, Lq, H, hd] = q.shape as number[];
  const Lk = k.shape[1]!;
  const G = B * H;
  return tf.tidy(() => {
    const qh = tf.mul(tf.transpose(q, [0, 2, 1, 3]), 1 / Math.sqrt(hd));
    const kh = tf.transpose(k, [0, 2, 1, 3]);
    const vh = tf.transpose(v, [0, 2, 1, 3]);
    const kT = tf.transpose(k, [0, 2, 3, 1]); // [B, H, hd, Lk]
    let s = groupMatMul(tf.reshape(qh, [G, Lq, hd]), tf.reshape(kT, [G, hd, Lk]));
    if (mask) s = tf.add(s, mask);
    const p = tf.softmax(s);
    const oh = groupMatMul(p, tf.reshape(vh, [G, Lk, hd]));
    const o = tf.reshape(tf.transpose(tf.reshape(oh, [B, H, Lq, hd]), [0, 2, 1, 3]), [B * Lq, H * hd]) as T2;
    return { o, saved: { q: qh, k: kh, v: vh, p } };
  });
}

/** Backward of attentionFwd: dO [B*Lq, H*hd] -> dq, dk, dv in the input layout [B, L, H, hd]. */
export function attentionBwd(dO: T2, s: AttnSaved): { dq: T; dk: T; dv: T } {
  const [B, H, Lq, hd] = s.q.shape as number[];
  const Lk = s.k.shape[2]!;
  const G = B * H;
  return tf.tidy(() => {
    const g3 = (x: T, r: number, c: number) => tf.reshape(x, [G, r, c]);
    const dOh = g3(tf.transpose(tf.reshape(dO, [B, Lq, H, hd]), [0, 2, 1, 3]), Lq, hd);
    const dP = groupMatMul(dOh, g3(tf.transpose(s.v, [0, 1, 3, 2]), hd, Lk)); // dO @ V^T
    const dV = groupMatMul(tf.transpose(s.p, [0, 2, 1]), dOh); // P^T @ dO
    // softmax backward: dS = P * (dP - rowsum(dP * P))
    const dS = tf.mul(s.p, tf.sub(dP, tf.sum(tf.mul(dP, s.p), -1, true)));
    const dQ = tf.mul(groupMatMul(dS, g3(s.k, Lk, hd)), 1 / Math.sqrt(hd));
    const dK = groupMatMul(tf.transpose(dS, [0, 2, 1]), g3(s.q, Lq, hd));
    const back = (x: T, L: number) => tf.transpose(tf.reshape(x, [B, H, L, hd]), [0, 2, 1, 3]);
    return { dq: back(dQ, Lq), dk: back(dK, Lk), dv: back(dV, Lk) };
  });
}
