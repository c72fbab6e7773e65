// Reader and writer for the safetensors format (https://github.com/huggingface/safetensors), the on-disk format of
// every checkpoint and export, so that a PyTorch user can open our weights with `safetensors.torch.load_file`.
//
// Layout: u64 little-endian header length N | N bytes of UTF-8 JSON header | raw little-endian tensor bytes.
// Header: { "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, "__metadata__"?: {str: str} },
// offsets relative to the start of the data buffer. We validate as strictly as the reference (Rust) implementation,
// because a checkpoint is read back into a live training run: a corrupt file must fail here, loudly and with the
// file named, not turn into garbage weights three hours later.

import { F16_MAX, f32BitsToHalf, float32ToHalf, halfToFloat } from './half.ts';
import { findDuplicateKey } from './jsonDuplicateKey.ts';

/** Any problem with a checkpoint or safetensors file. The message always names the file (or source) at fault. */
export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

/** Same limit as the reference implementation: a bigger header is a corrupt length prefix, not a real file. */
export const MAX_HEADER_BYTES = 100_000_000;

/** Writable (and readable) element types, with their byte sizes in the file. F16 is written from a Float32Array. */
const WRITABLE = { F32: 4, F64: 8, I32: 4, I64: 8, U8: 1, F16: 2 } as const;
/** bf16 is read-only (PyTorch exports are often bf16); like F16 it decodes to Float32Array. */
const READ_ONLY = { BF16: 2 } as const;
const DTYPE_BYTES: Record<string, number> = { ...WRITABLE, ...READ_ONLY };

export type WritableDtype = keyof typeof WRITABLE;
export type Dtype = WritableDtype | keyof typeof READ_ONLY;
export const SUPPORTED_DTYPES = Object.keys(DTYPE_BYTES) as Dtype[];

/** The float16 conversions live in half.ts; re-exported so that safetensors users need one import. */
export { F16_MAX, float32ToHalf, halfToFloat };

export type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

/**
 * A tensor to write. `data` must be the typed array matching `dtype` (I64 -> BigInt64Array; F16 -> Float32Array,
 * rounded to nearest-even on write; a NaN, an infinity or a magnitude above 65504 is refused, naming the tensor).
 */
export interface SafetensorInput {
  dtype: WritableDtype;
  shape: number[];
  data: TensorData;
}

/** A decoded tensor. BF16 / F16 keep their dtype tag but `data` is already converted to Float32Array. */
export interface SafetensorEntry {
  dtype: Dtype;
  shape: number[];
  data: TensorData;
}

export interface DecodedSafetensors {
  tensors: Map<string, SafetensorEntry>;
  metadata: Record<string, string>;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function elementCount(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Byte order used for the sorted layout: the reference sorts names as UTF-8 bytes, not UTF-16 code units. */
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

const ARRAY_FOR: Record<WritableDtype, new (n: number) => TensorData> = {
  F32: Float32Array,
  F64: Float64Array,
  I32: Int32Array,
  I64: BigInt64Array,
  U8: Uint8Array,
  F16: Float32Array,
};

// ---------------------------------------------------------------------------------------------------------- write

/**
 * Serialises tensors to a safetensors buffer. Tensors are laid out contiguously in sorted name order; the header is
 * padded with spaces to a multiple of 8 bytes (as the reference writer does) so the data starts 8-byte aligned.
 */
export function encodeSafetensors(tensors: Map<string, SafetensorInput>, metadata?: Record<string, string>): Buffer {
  const names = [...tensors.keys()].sort(compareUtf8);
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string')
        throw new CheckpointError(`safetensors metadata value for '${k}' must be a string, got ${typeof v}`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  // F16 tensors are converted while validating, so that a value f16 cannot hold fails before anything is built.
  const halves = new Map<string, Uint16Array>();
  for (const name of names) {
    const t = tensors.get(name)!;
    if (name === '' || name === '__metadata__') throw new CheckpointError(`invalid tensor name '${name}'`);
    const size = (WRITABLE as Record<string, number>)[t.dtype];
    if (size === undefined) {
      throw new CheckpointError(
        `tensor '${name}': dtype '${t.dtype}' cannot be written (writable: ${Object.keys(WRITABLE).join(', ')})`,
      );
    }
    if (!(t.data instanceof ARRAY_FOR[t.dtype])) {
      throw new CheckpointError(
        `tensor '${name}': dtype ${t.dtype} needs a ${ARRAY_FOR[t.dtype].name}, got ${t.data.constructor.name}`,
      );
    }
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new CheckpointError(`tensor '${name}': shape [${t.shape.join(', ')}] must be non-negative integers`);
    }
    if (elementCount(t.shape) !== t.data.length) {
      throw new CheckpointError(
        `tensor '${name}': shape [${t.shape.join(', ')}] has ${elementCount(t.shape)} elements but data has ${t.data.length}`,
      );
    }
    if (t.dtype === 'F16') halves.set(name, encodeF16(name, t.data as Float32Array));
    const bytes = t.data.length * size;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (headerBytes.length % 8)) % 8;
  if (pad) headerBytes = Buffer.concat([headerBytes, Buffer.alloc(pad, 0x20)]);

  const out = Buffer.allocUnsafe(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let pos = 8 + headerBytes.length;
  for (const name of names) {
    const t = tensors.get(name)!;
    pos += writeLittleEndian(out, pos, halves.get(name) ?? t.data);
  }
  return out;
}

function writeLittleEndian(out: Buffer, pos: number, data: TensorData | Uint16Array): number {
  const src = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  out.set(src, pos);
  // Every machine Node runs on today is little-endian; the swap keeps the format correct anywhere else.
  if (!LITTLE_ENDIAN_HOST && data.BYTES_PER_ELEMENT > 1) swapBytes(out, pos, data.byteLength, data.BYTES_PER_ELEMENT);
  return data.byteLength;
}

function swapBytes(buf: Uint8Array, pos: number, len: number, width: number): void {
  for (let i = pos; i < pos + len; i += width) {
    for (let a = i, b = i + width - 1; a < b; a++, b--) {
      const x = buf[a];
      buf[a] = buf[b];
      buf[b] = x;
    }
  }
}

/**
 * float32 -> binary16 bits for a whole tensor. Refuses NaN, ±Inf and |x| > 65504 rather than writing inf: an
 * infinite weight silently poisons every logit downstream, and values that large mean the export is wrong anyway
 * (even those in (65504, 65520) that IEEE rounding would bring back to 65504: the rule stays one comparison).
 */
function encodeF16(name: string, data: Float32Array): Uint16Array {
  const out = new Uint16Array(data.length);
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!(Math.abs(v) <= F16_MAX)) {
      const why = Number.isNaN(v)
        ? 'NaN'
        : Number.isFinite(v)
          ? `its magnitude exceeds the float16 maximum ${F16_MAX}`
          : 'infinite';
      throw new CheckpointError(`tensor '${name}': element ${i} (${v}) cannot be stored as F16: ${why}`);
    }
    out[i] = f32BitsToHalf(bits[i]);
  }
  return out;
}

// ----------------------------------------------------------------------------------------------------------- read

type HeaderEntry = { name: string; dtype: Dtype; shape: number[]; begin: number; end: number };

/**
 * Parses a safetensors buffer. `source` (usually the file path) prefixes every error message.
 * Tensor data is copied into fresh typed arrays: the buffer's byte offsets need not be aligned for a typed view,
 * and the caller may drop the (possibly huge) file buffer afterwards.
 */
export function decodeSafetensors(buf: Buffer | Uint8Array, source = 'file'): DecodedSafetensors {
  const { entries, metadata, dataStart } = decodeSafetensorsHeader(buf, source, buf.length);
  const tensors = new Map<string, SafetensorEntry>();
  for (const e of entries) {
    const bytes = buf.subarray(dataStart + e.begin, dataStart + e.end);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: readTyped(bytes, e.dtype) });
  }
  return { tensors, metadata };
}

/**
 * Validates the header of a safetensors file of `fileSize` bytes from `head`, its first bytes (at least the length
 * prefix and the header), exactly as decodeSafetensors does, without needing the tensor data in memory.
 */
export function decodeSafetensorsHeader(
  head: Buffer | Uint8Array,
  source: string,
  fileSize: number,
): { entries: HeaderEntry[]; metadata: Record<string, string>; dataStart: number } {
  const fail = (msg: string): never => {
    throw new CheckpointError(`${source}: ${msg}`);
  };
  if (fileSize < 8 || head.length < 8)
    fail(
      `file is ${fileSize} bytes, shorter than the 8-byte header length prefix (truncated or not a safetensors file)`,
    );
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const headerLen = view.getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES))
    fail(
      `header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt length prefix or not a safetensors file)`,
    );
  const n = Number(headerLen);
  if (8 + n > fileSize)
    fail(`header length ${n} reaches beyond the end of the file (${fileSize} bytes): file is truncated`);
  if (8 + n > head.length) fail(`header length ${n} reaches beyond the ${head.length} bytes read`);

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(8, 8 + n));
  } catch {
    return fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('header is not a JSON object');
  // JSON.parse keeps the last of two equal keys silently; a duplicate tensor name would hide a tensor.
  const dup = findDuplicateKey(text);
  if (dup) fail(`duplicate key '${dup.key}' in the header${dup.path ? ` (inside '${dup.path}')` : ''}`);

  const dataStart = 8 + n;
  const dataLen = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];

  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
        fail('__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__ value for '${k}' must be a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(`tensor '${name}': entry is not an object`);
    const info = raw as Record<string, unknown>;
    const dtype = info.dtype;
    if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
      fail(
        `tensor '${name}': unknown or unsupported dtype ${JSON.stringify(dtype)} (supported: ${SUPPORTED_DTYPES.join(', ')})`,
      );
    }
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor '${name}': shape ${JSON.stringify(shape)} is not an array of non-negative integers`);
    }
    const offs = info.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`tensor '${name}': data_offsets ${JSON.stringify(offs)} is not two non-negative integers`);
    }
    const [begin, end] = offs as number[];
    if (begin > end) fail(`tensor '${name}': data_offsets [${begin}, ${end}] has begin > end`);
    if (end > dataLen)
      fail(
        `tensor '${name}': data_offsets [${begin}, ${end}] are out of range: the data section holds ${dataLen} bytes`,
      );
    const expected = elementCount(shape as number[]) * DTYPE_BYTES[dtype as string];
    if (end - begin !== expected) {
      fail(
        `tensor '${name}': ${end - begin} bytes of data but shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${expected}`,
      );
    }
    entries.push({ name, dtype: dtype as Dtype, shape: shape as number[], begin, end });
  }

  // Like the reference implementation, the ranges must tile the data buffer exactly: no overlap, no holes,
  // no trailing bytes. Overlap means two tensors alias the same bytes; a hole means bytes nobody accounts for.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let prev: string | undefined;
  for (const e of sorted) {
    if (e.begin < covered)
      fail(`tensor '${e.name}' [${e.begin}, ${e.end}) overlaps tensor '${prev}' (which ends at ${covered})`);
    if (e.begin > covered) {
      fail(
        `bytes [${covered}, ${e.begin}) of the data section belong to no tensor (safetensors requires the tensors to cover the data exactly, without holes)`,
      );
    }
    covered = e.end;
    prev = e.name;
  }
  if (covered !== dataLen) {
    fail(
      `${dataLen - covered} trailing bytes after the last tensor belong to no tensor (safetensors requires the tensors to cover the data exactly; truncated write or appended garbage?)`,
    );
  }

  return { entries, metadata, dataStart };
}

function readTyped(bytes: Uint8Array, dtype: Dtype): TensorData {
  if (dtype === 'BF16' || dtype === 'F16') {
    const n = bytes.length / 2;
    const out = new Float32Array(n);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (dtype === 'BF16') {
      // bf16 is the top half of a float32: widening is exact.
      const u32 = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u32[i] = dv.getUint16(2 * i, true) << 16;
    } else {
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true));
    }
    return out;
  }
  const Ctor = ARRAY_FOR[dtype];
  const copy = new Uint8Array(bytes); // fresh, aligned ArrayBuffer
  if (!LITTLE_ENDIAN_HOST && DTYPE_BYTES[dtype] > 1) swapBytes(copy, 0, copy.length, DTYPE_BYTES[dtype]);
  return new (Ctor as unknown as new (b: ArrayBuffer) => TensorData)(copy.buffer);
}

/** I64 tensors decode as BigInt64Array; converts to numbers, refusing values that a double cannot hold exactly. */
export function int64ToNumbers(data: BigInt64Array, what = 'tensor'): Float64Array {
  const out = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new CheckpointError(`${what}: element ${i} (${v}) is outside the exactly representable integer range`);
    }
    out[i] = Number(v);
  }
  return out;
}
