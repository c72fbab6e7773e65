import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CheckpointError,
  MAX_HEADER_BYTES,
  decodeSafetensors,
  encodeSafetensors,
  F16_MAX,
  float32ToHalf,
  halfToFloat,
  int64ToNumbers,
  type SafetensorInput,
} from '../src/runs/safetensors.ts';
import { findDuplicateKey } from '../src/runs/jsonDuplicateKey.ts';
import { Rng } from '../src/engine/rng.ts';

/** Builds a file from raw header text and data bytes, the way a hostile or broken writer might. */
function rawFile(header: string, data: Uint8Array = new Uint8Array(0), lengthPrefix?: bigint): Buffer {
  const h = Buffer.from(header, 'utf8');
  const out = Buffer.alloc(8 + h.length + data.length);
  out.writeBigUInt64LE(lengthPrefix ?? BigInt(h.length), 0);
  h.copy(out, 8);
  out.set(data, 8 + h.length);
  return out;
}

function rejects(buf: Buffer, pattern: RegExp): void {
  assert.throws(
    () => decodeSafetensors(buf, 'bad.safetensors'),
    (e: unknown) => {
      assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${e}`);
      assert.match(e.message, /^bad\.safetensors: /);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

test('round trip of every writable dtype, an empty tensor, a scalar and metadata', () => {
  const tensors = new Map<string, SafetensorInput>([
    ['w.f32', { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, -2.5, 3e-8, Infinity, -0, 6]) }],
    ['w.f64', { dtype: 'F64', shape: [3], data: new Float64Array([Math.PI, -1e300, 5e-324]) }],
    ['ids.i32', { dtype: 'I32', shape: [2, 2], data: new Int32Array([-2147483648, 2147483647, 0, -1]) }],
    ['ids.i64', { dtype: 'I64', shape: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 53n + 1n]) }],
    ['bytes.u8', { dtype: 'U8', shape: [5], data: new Uint8Array([0, 1, 127, 128, 255]) }],
    ['empty', { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) }],
    ['scalar', { dtype: 'F32', shape: [], data: new Float32Array([7]) }],
  ]);
  const buf = encodeSafetensors(tensors, { format: 'pt', note: 'héllo ✓' });
  const { tensors: back, metadata } = decodeSafetensors(buf);
  assert.deepEqual(metadata, { format: 'pt', note: 'héllo ✓' });
  assert.deepEqual([...back.keys()].sort(), [...tensors.keys()].sort());
  for (const [name, t] of tensors) {
    const b = back.get(name)!;
    assert.equal(b.dtype, t.dtype, name);
    assert.deepEqual(b.shape, t.shape, name);
    assert.equal(b.data.constructor, t.data.constructor, name);
    assert.deepEqual(b.data, t.data, name);
  }
  assert.ok(Object.is((back.get('w.f32')!.data as Float32Array)[4], -0), 'negative zero survives');
});

test('encodes a subarray view (not the whole backing buffer) and copies data out on decode', () => {
  const backing = new Float32Array([9, 1, 2, 3, 9]);
  const buf = encodeSafetensors(new Map([['x', { dtype: 'F32', shape: [3], data: backing.subarray(1, 4) }]]));
  const back = decodeSafetensors(buf).tensors.get('x')!.data as Float32Array;
  assert.deepEqual([...back], [1, 2, 3]);
  buf.fill(0); // the decoded tensor must not alias the file buffer
  assert.deepEqual([...back], [1, 2, 3]);
});

test('byte layout matches the reference format: exact bytes of a tiny file', () => {
  const buf = encodeSafetensors(new Map([['a', { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }]]));
  // What the Rust / Python writer produces: serde key order dtype, shape, data_offsets; spaces pad to 8 bytes.
  const json = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  const padded = json + ' '.repeat((8 - (json.length % 8)) % 8);
  const expected = Buffer.concat([Buffer.alloc(8), Buffer.from(padded), Buffer.from(new Float32Array([1, 2]).buffer)]);
  expected.writeBigUInt64LE(BigInt(padded.length), 0);
  assert.deepEqual(buf, expected);
});

test('header length is a multiple of 8, tensors are contiguous in sorted name order, metadata first', () => {
  const tensors = new Map<string, SafetensorInput>([
    ['zeta', { dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) }],
    ['alpha', { dtype: 'F64', shape: [1], data: new Float64Array([1]) }],
    ['mid', { dtype: 'I32', shape: [2], data: new Int32Array([4, 5]) }],
  ]);
  const metas: (Record<string, string> | undefined)[] = [undefined, { a: 'b' }, { longer: 'x'.repeat(13) }];
  for (const meta of metas) {
    const buf = encodeSafetensors(tensors, meta);
    const n = Number(buf.readBigUInt64LE(0));
    assert.equal(n % 8, 0);
    const headerText = buf.subarray(8, 8 + n).toString('utf8');
    assert.match(headerText, /^\{.*\} *$/);
    const header = JSON.parse(headerText);
    const keys = Object.keys(header);
    if (meta) assert.equal(keys[0], '__metadata__');
    assert.deepEqual(
      keys.filter((k) => k !== '__metadata__'),
      ['alpha', 'mid', 'zeta'],
    );
    assert.deepEqual(header.alpha.data_offsets, [0, 8]);
    assert.deepEqual(header.mid.data_offsets, [8, 16]);
    assert.deepEqual(header.zeta.data_offsets, [16, 19]);
    assert.equal(buf.length, 8 + n + 19);
  }
});

test('decodes a hand-built file, including header whitespace padding and unaligned offsets', () => {
  const data = Buffer.alloc(4 + 3 + 8);
  data.writeFloatLE(1.5, 0);
  data.set([7, 8, 9], 4);
  data.writeDoubleLE(-2.25, 7); // deliberately at an unaligned position
  const header =
    '{"b":{"dtype":"U8","shape":[3],"data_offsets":[4,7]}, "a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"c":{"dtype":"F64","shape":[1],"data_offsets":[7,15]}}   ';
  const { tensors, metadata } = decodeSafetensors(rawFile(header, data));
  assert.deepEqual(metadata, {});
  assert.deepEqual([...tensors.get('a')!.data], [1.5]);
  assert.deepEqual([...tensors.get('b')!.data], [7, 8, 9]);
  assert.deepEqual([...tensors.get('c')!.data], [-2.25]);
});

test('BF16 and F16 are read and widened to float32', () => {
  const bf = Buffer.alloc(6);
  bf.writeUInt16LE(0x3f80, 0); // 1.0
  bf.writeUInt16LE(0xc040, 2); // -3.0
  bf.writeUInt16LE(0x7f80, 4); // +inf
  const h = Buffer.alloc(8);
  h.writeUInt16LE(0x3c00, 0); // 1.0
  h.writeUInt16LE(0xc000, 2); // -2.0
  h.writeUInt16LE(0x0001, 4); // smallest subnormal 2^-24
  h.writeUInt16LE(0x7bff, 6); // 65504, largest finite
  const header =
    '{"bf":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]},"h":{"dtype":"F16","shape":[2,2],"data_offsets":[6,14]}}';
  const { tensors } = decodeSafetensors(rawFile(header, Buffer.concat([bf, h])));
  assert.ok(tensors.get('bf')!.data instanceof Float32Array);
  assert.deepEqual([...tensors.get('bf')!.data], [1, -3, Infinity]);
  assert.deepEqual([...tensors.get('h')!.data], [1, -2, 2 ** -24, 65504]);
  assert.ok(Number.isNaN(halfToFloat(0x7e00)));
  assert.throws(
    () => encodeSafetensors(new Map([['x', { dtype: 'BF16' as never, shape: [1], data: new Float32Array(1) }]])),
    /cannot be written/,
  );
});

test('int64ToNumbers converts safe values and refuses unsafe ones', () => {
  assert.deepEqual([...int64ToNumbers(new BigInt64Array([-5n, 2n ** 53n - 1n]))], [-5, 2 ** 53 - 1]);
  assert.throws(() => int64ToNumbers(new BigInt64Array([2n ** 53n + 1n]), 'ids'), /ids: element 0/);
});

test('encode refuses mismatched data', () => {
  assert.throws(
    () => encodeSafetensors(new Map([['x', { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) }]])),
    /'x'.*4 elements but data has 3/,
  );
  assert.throws(
    () => encodeSafetensors(new Map([['x', { dtype: 'F32', shape: [2], data: new Float64Array(2) }]])),
    /needs a Float32Array/,
  );
  assert.throws(
    () => encodeSafetensors(new Map([['__metadata__', { dtype: 'U8', shape: [0], data: new Uint8Array(0) }]])),
    /invalid tensor name/,
  );
});

test('rejects a truncated file (shorter than the length prefix)', () => {
  rejects(Buffer.from([1, 2, 3]), /3 bytes, shorter than the 8-byte header length/);
});

test('rejects a header length beyond the file or above 100 MB', () => {
  const good = encodeSafetensors(new Map([['a', { dtype: 'F32', shape: [4], data: new Float32Array(4) }]]));
  rejects(good.subarray(0, 20), /beyond the end of the file.*truncated/);
  rejects(rawFile('{}', undefined, BigInt(MAX_HEADER_BYTES) + 1n), /exceeds the 100000000-byte limit/);
  rejects(rawFile('{}', undefined, 2n ** 64n - 1n), /exceeds the 100000000-byte limit/);
});

test('rejects a truncated data section', () => {
  const good = encodeSafetensors(new Map([['a', { dtype: 'F32', shape: [4], data: new Float32Array(4) }]]));
  rejects(good.subarray(0, good.length - 1), /tensor 'a'.*out of range.*15 bytes/);
});

test('rejects a header that is not JSON, not an object, or not UTF-8', () => {
  rejects(rawFile('{"a": [1, 2'), /not valid JSON/);
  rejects(rawFile('[1, 2, 3]'), /not a JSON object/);
  rejects(rawFile('null    '), /not a JSON object/);
  rejects(rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}').fill(0xff, 8, 12), /not valid UTF-8/);
});

test('rejects an unknown dtype', () => {
  rejects(
    rawFile('{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}', new Uint8Array(16)),
    /tensor 'a': unknown or unsupported dtype "F128".*supported: F32/,
  );
});

test('rejects bad shapes and data_offsets', () => {
  rejects(
    rawFile('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}'),
    /'a': shape \[-1\] is not an array of non-negative integers/,
  );
  rejects(rawFile('{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,0]}}'), /shape \[1.5\]/);
  rejects(rawFile('{"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}'), /shape "2"/);
  rejects(
    rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}'),
    /data_offsets \[0\] is not two non-negative integers/,
  );
  rejects(rawFile('{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}', new Uint8Array(4)), /begin > end/);
});

test('rejects byte size that does not match shape x dtype', () => {
  rejects(
    rawFile('{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}', new Uint8Array(12)),
    /'a': 12 bytes of data but shape \[2, 2\] of F32 needs 16/,
  );
});

test('rejects out-of-range offsets', () => {
  rejects(
    rawFile('{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', new Uint8Array(8)),
    /'a': data_offsets \[4, 12\] are out of range: the data section holds 8 bytes/,
  );
});

test('rejects overlapping tensors', () => {
  const header =
    '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}';
  rejects(rawFile(header, new Uint8Array(12)), /tensor 'b' \[4, 12\) overlaps tensor 'a'/);
  // Exact aliasing (two names, same bytes) is overlap too.
  const alias =
    '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  rejects(rawFile(alias, new Uint8Array(8)), /overlaps/);
});

test('rejects holes and trailing bytes, like the reference implementation', () => {
  rejects(
    rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', new Uint8Array(8)),
    /bytes \[0, 4\) .*belong to no tensor.*without holes/,
  );
  rejects(
    rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', new Uint8Array(6)),
    /2 trailing bytes after the last tensor/,
  );
});

test('rejects duplicate tensor names even though JSON.parse would accept them', () => {
  const header =
    '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}';
  rejects(rawFile(header, new Uint8Array(8)), /duplicate key 'a' in the header/);
  // The same name spelt with an escape is still the same name.
  const escaped =
    '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"\\u0061":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}';
  rejects(rawFile(escaped, new Uint8Array(8)), /duplicate key 'a'/);
  // A duplicate field inside one entry is caught too, with its path.
  rejects(
    rawFile('{"a":{"dtype":"F32","dtype":"U8","shape":[4],"data_offsets":[0,4]}}', new Uint8Array(4)),
    /duplicate key 'dtype' in the header \(inside 'a'\)/,
  );
});

test('findDuplicateKey handles strings with quotes, braces and escapes', () => {
  assert.equal(findDuplicateKey('{"a\\"}{": [1, {"x": "}\\\\"}], "b": {"a": 1}, "c": [], "d": {}}'), null);
  assert.deepEqual(findDuplicateKey('{"k": [{"x": 1, "y": 2, "x": 3}]}'), { key: 'x', path: 'k[0]' });
});

test('rejects malformed metadata', () => {
  rejects(rawFile('{"__metadata__":{"step":3}}'), /__metadata__ value for 'step' must be a string/);
  rejects(rawFile('{"__metadata__":[1]}'), /__metadata__ must be an object/);
});

test('an empty file (no tensors) round-trips', () => {
  const buf = encodeSafetensors(new Map());
  assert.equal(buf.length, 16); // "{}" padded to 8 bytes
  assert.equal(decodeSafetensors(buf).tensors.size, 0);
});

// ------------------------------------------------------------------------------------------------- F16 writing

/** Every non-negative half value by bit pattern (0x0000..0x7bff), plus 2^16 standing in for inf at 0x7c00. */
const HALVES = Float64Array.from({ length: 0x7c01 }, (_, b) => (b === 0x7c00 ? 65536 : halfToFloat(b)));

/**
 * Reference rounding, independent of the implementation: bracket |x| between adjacent half values by binary
 * search, compare the two distances in float64 (exact here), ties to the even bit pattern.
 */
function refHalf(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  let lo = 0;
  let hi = 0x7c00;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (HALVES[mid] <= a) lo = mid;
    else hi = mid;
  }
  if (HALVES[lo] === a) return sign | lo;
  const dLo = a - HALVES[lo];
  const dHi = HALVES[hi] - a;
  return sign | (dLo < dHi ? lo : dHi < dLo ? hi : lo % 2 === 0 ? lo : hi);
}

/** Random float32 values over every scale that f16 can hold, weight-like values, and exact ties +/- one float32 ulp. */
function f16TestValues(): Float32Array {
  const r = new Rng(11);
  const out: number[] = [];
  const bits = new Uint32Array(1);
  const f = new Float32Array(bits.buffer);
  while (out.length < 20_000) {
    bits[0] = r.nextU32();
    if (Math.abs(f[0]) <= F16_MAX) out.push(f[0]);
  }
  for (let i = 0; i < 20_000; i++) out.push(0.05 * r.normal());
  for (let i = 0; i < 20_000; i++) {
    const b = r.int(0x7bff); // a pair of adjacent halves (b, b + 1), the midpoint exact in float32
    const mid = (HALVES[b] + HALVES[b + 1]) / 2;
    const s = r.int(2) ? -1 : 1;
    f[0] = mid;
    const m = bits[0];
    for (const d of [-1, 0, 1]) {
      bits[0] = m + d;
      out.push(s * f[0]);
    }
  }
  return Float32Array.from(out);
}

test('float32ToHalf rounds to nearest even like the reference, at the edges and on random values', () => {
  const edges: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // tie between 0 and 2^-24: even is 0
    [Math.fround(2 ** -25 * 1.0000001), 0x0001],
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 units: even is 2
    [2 ** -14 - 2 ** -24, 0x03ff], // largest subnormal
    [2 ** -14 - 2 ** -26, 0x0400], // rounds up into the smallest normal
    [2 ** -14, 0x0400],
    [1, 0x3c00],
    [-1.5, 0xbe00],
    [1 + 2 ** -11, 0x3c00], // tie: 1.0 has the even fraction
    [1 + 3 * 2 ** -11, 0x3c02], // tie: 1 + 2^-9 has the even fraction
    [2049, 0x6800], // tie between 2048 and 2050: 2048
    [2051, 0x6802], // tie between 2050 and 2052: 2052
    [F16_MAX, 0x7bff], // max normal
    [-F16_MAX, 0xfbff],
    [65519, 0x7bff], // IEEE: still rounds down to 65504 (the encoder refuses it anyway)
    [65520, 0x7c00], // IEEE: rounds to inf (the encoder refuses it)
    [1e-30, 0x0000],
  ];
  for (const [x, bits] of edges) {
    assert.equal(float32ToHalf(x), bits, `${x}: got 0x${float32ToHalf(x).toString(16)}`);
    assert.equal(refHalf(Math.fround(x)), bits, `reference disagrees on ${x}`);
  }
  assert.equal(float32ToHalf(Infinity), 0x7c00);
  assert.equal(float32ToHalf(-Infinity), 0xfc00);
  assert.ok(Number.isNaN(halfToFloat(float32ToHalf(NaN))));
  for (const x of f16TestValues()) {
    const got = float32ToHalf(x);
    if (got !== refHalf(x)) assert.fail(`${x}: got 0x${got.toString(16)}, reference 0x${refHalf(x).toString(16)}`);
  }
});

test('F16 tensors encode from Float32Array with the reference bits and decode within 2^-11 relative', () => {
  const values = f16TestValues();
  const backing = new Float32Array(values.length + 2);
  backing.set(values, 1);
  const buf = encodeSafetensors(
    new Map([['h', { dtype: 'F16', shape: [values.length], data: backing.subarray(1, values.length + 1) }]]),
  );
  const { tensors } = decodeSafetensors(buf);
  const t = tensors.get('h')!;
  assert.equal(t.dtype, 'F16');
  assert.ok(t.data instanceof Float32Array);
  const dataStart = buf.length - 2 * values.length; // one tensor: the data section is the tail of the file
  let worstRel = 0;
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    const bits = buf.readUInt16LE(dataStart + 2 * i);
    if (bits !== refHalf(x))
      assert.fail(`element ${i} (${x}): wrote 0x${bits.toString(16)}, reference 0x${refHalf(x).toString(16)}`);
    const y = t.data[i] as number;
    if (Math.abs(x) >= 2 ** -14) worstRel = Math.max(worstRel, Math.abs(y - x) / Math.abs(x));
    else assert.ok(Math.abs(y - x) <= 2 ** -25, `subnormal ${x} -> ${y}`);
  }
  assert.ok(worstRel <= 2 ** -11, `worst relative error ${worstRel}`);
  assert.ok(
    Object.is(
      (
        decodeSafetensors(
          encodeSafetensors(new Map([['z', { dtype: 'F16', shape: [1], data: new Float32Array([-0]) }]])),
        ).tensors.get('z')!.data as Float32Array
      )[0],
      -0,
    ),
  );
});

test('F16 refuses NaN, infinities and magnitudes above 65504, naming the tensor and element', () => {
  const enc = (v: number) =>
    encodeSafetensors(
      new Map([
        ['ok', { dtype: 'F16', shape: [1], data: new Float32Array([1]) }],
        ['blk.w', { dtype: 'F16', shape: [3], data: new Float32Array([0, F16_MAX, v]) }],
      ]),
    );
  for (const [v, why] of [
    [65505, /exceeds the float16 maximum 65504/],
    [-70000, /exceeds/],
    [65519, /exceeds/],
    [NaN, /NaN/],
    [Infinity, /infinite/],
    [-Infinity, /infinite/],
  ] as const) {
    assert.throws(
      () => enc(v),
      (e: unknown) =>
        e instanceof CheckpointError && /^tensor 'blk\.w': element 2 \(/.test(e.message) && why.test(e.message),
      String(v),
    );
  }
  assert.equal(decodeSafetensors(enc(-F16_MAX)).tensors.get('blk.w')!.data[2], -F16_MAX);
  assert.throws(
    () => encodeSafetensors(new Map([['x', { dtype: 'F16', shape: [1], data: new Float64Array(1) }]])),
    /F16 needs a Float32Array/,
  );
});
