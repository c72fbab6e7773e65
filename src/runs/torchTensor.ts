// Turns a torch tensor view (storage bytes + element offset, shape and strides) into a dense row-major typed array,
// the form every consumer of a state dict wants. Split from torchPickle.ts, which decides what a view is.

import { halfToFloat } from './safetensors.ts';

export type TorchDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';
export type TorchTensorData = Float32Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

/** A tensor read from a checkpoint. F16 / BF16 / F64 keep their dtype tag but `data` is a Float32Array. */
export interface TorchTensor {
  shape: number[];
  dtype: TorchDtype;
  data: TorchTensorData;
}

/** Element layout in the file: half floats are read as their bits, then widened. */
const FILE_ARRAY = {
  F32: Float32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  F64: Float64Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
} satisfies Record<TorchDtype, { BYTES_PER_ELEMENT: number }>;

export const itemBytes = (dtype: TorchDtype): number => FILE_ARRAY[dtype].BYTES_PER_ELEMENT;

/** The bytes of one storage record (8-byte aligned), and whether a tensor already owns them. */
export interface LoadedStorage {
  bytes: Uint8Array;
  numel: number;
  lent: boolean;
}

export interface TensorView {
  dtype: TorchDtype;
  offset: number;
  shape: number[];
  stride: number[];
}

type Indexed = { [i: number]: unknown; length: number; slice(a: number, b: number): Indexed };
let HALF_TABLE: Float32Array | undefined;

/** C-contiguous strides for `shape`; a dimension of size 1 may carry any stride. */
function isContiguous(shape: number[], stride: number[]): boolean {
  let expect = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expect) return false;
    expect *= shape[i];
  }
  return true;
}

/**
 * A dense copy of the view, except in the usual case, a weight that is its whole storage: then the storage bytes
 * themselves are handed out, once (`s.lent`), so a 700 MB checkpoint costs 700 MB and no second copy.
 */
export function materialise(t: TensorView, s: LoadedStorage): TorchTensor {
  const Ctor = FILE_ARRAY[t.dtype] as unknown as new (b: ArrayBuffer, o: number, n: number) => Indexed;
  const src = new Ctor(s.bytes.buffer as ArrayBuffer, s.bytes.byteOffset, s.numel);
  const numel = t.shape.reduce((a, b) => a * b, 1);
  let out: Indexed;
  if (isContiguous(t.shape, t.stride)) {
    const whole = t.offset === 0 && numel === s.numel && !s.lent;
    out = whole ? src : src.slice(t.offset, t.offset + numel);
    // Widened dtypes get fresh arrays anyway, so their storage is never handed out.
    if (whole) s.lent = t.dtype !== 'F16' && t.dtype !== 'BF16' && t.dtype !== 'F64';
  } else {
    out = new Ctor(new ArrayBuffer(numel * itemBytes(t.dtype)), 0, numel);
    gather(src, out, t.shape, t.stride, t.offset, numel);
  }
  return { shape: [...t.shape], dtype: t.dtype, data: widen(out, t.dtype) };
}

/** Copies a strided view into `out` in row-major order (expanded dims have stride 0; transposes any order). */
function gather(src: Indexed, out: Indexed, shape: number[], stride: number[], offset: number, numel: number): void {
  if (numel === 0) return;
  const nd = shape.length;
  if (nd === 0) {
    out[0] = src[offset];
    return;
  }
  const idx = new Array<number>(nd).fill(0);
  const n = shape[nd - 1];
  const step = stride[nd - 1];
  let base = offset;
  for (let o = 0; ;) {
    for (let i = 0; i < n; i++) out[o++] = src[base + i * step];
    let d = nd - 2;
    for (; d >= 0; d--) {
      base += stride[d];
      if (++idx[d] < shape[d]) break;
      base -= stride[d] * shape[d];
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

function widen(a: Indexed, dtype: TorchDtype): TorchTensorData {
  if (dtype === 'F64') return Float32Array.from(a as unknown as Float64Array);
  if (dtype === 'BF16') {
    // bf16 is the top half of a float32: widening is exact.
    const out = new Float32Array(a.length);
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < a.length; i++) bits[i] = (a[i] as number) << 16;
    return out;
  }
  if (dtype === 'F16') {
    if (!HALF_TABLE) {
      HALF_TABLE = new Float32Array(65536);
      for (let h = 0; h < 65536; h++) HALF_TABLE[h] = halfToFloat(h);
    }
    const out = new Float32Array(a.length);
    for (let i = 0; i < a.length; i++) out[i] = HALF_TABLE[a[i] as number];
    return out;
  }
  return a as unknown as TorchTensorData;
}
