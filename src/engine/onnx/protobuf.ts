// A minimal protocol-buffers encoder (write-only) and the subset of onnx.proto the exporter needs.
// Wire format (https://protobuf.dev/programming-guides/encoding/): every field is a varint key
// (field_number << 3 | wire_type) followed by a varint (type 0), 8 bytes (type 1), a varint length + bytes
// (type 2, strings/bytes/sub-messages/packed repeated scalars) or 4 bytes (type 5).
// onnx.proto is proto2: repeated scalars are unpacked unless marked [packed = true] (TensorProto.float_data,
// int32_data, int64_data, ...); parsers accept both forms anyway.
//
// Messages are built as trees of parts whose sizes are known up front and written once into a single buffer at
// the end, so a large raw_data payload (the weights) is copied exactly once, into the final bytes.

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

const textEncoder = new TextEncoder();
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Bytes of the varint encoding of a non-negative integer or an int64 (negative -> 10-byte two's complement). */
export function varintBytes(value: number | bigint): Uint8Array {
  let v: bigint;
  if (typeof value === 'bigint') v = value;
  else {
    if (!Number.isInteger(value)) throw new Error(`varint: ${value} is not an integer`);
    if (value >= 0 && value <= 0x7fffffff) {
      // fast path
      const out: number[] = [];
      let x = value;
      while (x > 0x7f) {
        out.push((x & 0x7f) | 0x80);
        x >>>= 7;
      }
      out.push(x);
      return Uint8Array.from(out);
    }
    if (!Number.isSafeInteger(value)) throw new Error(`varint: ${value} is not a safe integer (pass a bigint)`);
    v = BigInt(value);
  }
  if (v < -(1n << 63n) || v >= 1n << 64n) throw new Error(`varint: ${v} does not fit in 64 bits`);
  if (v < 0n) v += 1n << 64n; // int64 negative -> uint64 two's complement (always 10 bytes)
  const out: number[] = [];
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

type Part = Uint8Array | Message;

/** A message under construction: an ordered list of encoded fields. */
export class Message {
  private readonly parts: Part[] = [];
  private cachedSize = -1;

  private key(field: number, wire: number): void {
    if (!(Number.isInteger(field) && field >= 1 && field < 1 << 29)) throw new Error(`bad field number ${field}`);
    this.push(varintBytes(field * 8 + wire));
  }

  private push(p: Part): void {
    this.parts.push(p);
    this.cachedSize = -1;
  }

  /** int32/int64/uint64/enum/bool as a varint. */
  varint(field: number, value: number | bigint | boolean): this {
    this.key(field, WIRE_VARINT);
    this.push(varintBytes(typeof value === 'boolean' ? (value ? 1 : 0) : value));
    return this;
  }

  /** float (wire type 5, little-endian IEEE-754 single). */
  float(field: number, value: number): this {
    this.key(field, WIRE_I32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  /** double (wire type 1). */
  double(field: number, value: number): this {
    this.key(field, WIRE_I64);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, value, true);
    this.push(b);
    return this;
  }

  /** Length-delimited raw bytes (the array is referenced, not copied, until finish()). */
  bytes(field: number, value: Uint8Array): this {
    this.key(field, WIRE_LEN);
    this.push(varintBytes(value.length));
    this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, textEncoder.encode(value));
  }

  /** Embedded message. */
  message(field: number, m: Message): this {
    this.key(field, WIRE_LEN);
    this.push(m); // its length prefix is written by finish()
    return this;
  }

  /** Repeated varints, unpacked (proto2 default): one key per element. */
  repeatedVarint(field: number, values: ArrayLike<number | bigint>): this {
    for (let i = 0; i < values.length; i++) this.varint(field, values[i]);
    return this;
  }

  /** Packed repeated varints: one key, a length, then the varints. */
  packedVarint(field: number, values: ArrayLike<number | bigint>): this {
    const enc: Uint8Array[] = [];
    let n = 0;
    for (let i = 0; i < values.length; i++) {
      const b = varintBytes(values[i]);
      enc.push(b);
      n += b.length;
    }
    const all = new Uint8Array(n);
    let o = 0;
    for (const b of enc) {
      all.set(b, o);
      o += b.length;
    }
    return this.bytes(field, all);
  }

  /** Packed repeated float (little-endian). */
  packedFloat(field: number, values: ArrayLike<number>): this {
    const b = new Uint8Array(values.length * 4);
    const dv = new DataView(b.buffer);
    for (let i = 0; i < values.length; i++) dv.setFloat32(i * 4, values[i], true);
    return this.bytes(field, b);
  }

  /** Encoded size in bytes of this message's body (without its own key/length). */
  get size(): number {
    if (this.cachedSize >= 0) return this.cachedSize;
    let n = 0;
    for (const p of this.parts) {
      if (p instanceof Message) {
        const s = p.size;
        n += varintBytes(s).length + s;
      } else n += p.length;
    }
    this.cachedSize = n;
    return n;
  }

  private writeInto(out: Uint8Array, offset: number): number {
    let o = offset;
    for (const p of this.parts) {
      if (p instanceof Message) {
        const len = varintBytes(p.size);
        out.set(len, o);
        o += len.length;
        o = p.writeInto(out, o);
      } else {
        out.set(p, o);
        o += p.length;
      }
    }
    return o;
  }

  /** The encoded bytes of this message. */
  finish(): Uint8Array {
    const total = this.size;
    if (total > 0x7fffffff)
      throw new Error(
        `protobuf message of ${total} bytes exceeds the 2 GiB limit (the model needs ONNX external data)`,
      );
    const out = new Uint8Array(total);
    const end = this.writeInto(out, 0);
    if (end !== total) throw new Error(`protobuf encoder: wrote ${end} bytes, expected ${total}`);
    return out;
  }
}

/** Little-endian bytes viewing a typed array (no copy on little-endian hosts). */
export function leBytes(a: Float32Array | Int32Array | BigInt64Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const out = new Uint8Array(a.byteLength);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < a.length; i++) {
    if (a instanceof Float32Array) dv.setFloat32(i * 4, a[i], true);
    else if (a instanceof Int32Array) dv.setInt32(i * 4, a[i], true);
    else dv.setBigInt64(i * 8, a[i], true);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The onnx.proto subset (field numbers from onnx/onnx.proto, IR version 8+).

/** TensorProto.DataType */
export const DataType = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9 } as const;
export type DataTypeId = (typeof DataType)[keyof typeof DataType];

/** AttributeProto.AttributeType */
const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

export type AttrValue =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'tensor'; value: TensorDef };

export interface TensorDef {
  name: string;
  dims: number[];
  dataType: DataTypeId;
  data: Float32Array | Int32Array | BigInt64Array | Uint8Array;
}

export interface NodeDef {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  domain?: string;
  attrs?: Record<string, AttrValue>;
}

/** A dimension: a fixed size or a symbolic name ("batch"). */
export type Dim = number | string;

export interface ValueInfoDef {
  name: string;
  elemType: DataTypeId;
  shape: Dim[];
}

export interface GraphDef {
  name: string;
  nodes: NodeDef[];
  initializers: TensorDef[];
  inputs: ValueInfoDef[];
  outputs: ValueInfoDef[];
}

export interface ModelDef {
  irVersion: number;
  opset: number;
  producerName: string;
  producerVersion: string;
  docString?: string;
  metadata?: Record<string, string>;
  graph: GraphDef;
}

/** TensorProto: dims=1, data_type=2, name=8, raw_data=9. */
export function encodeTensor(t: TensorDef): Message {
  const n = t.dims.reduce((a, b) => a * b, 1);
  if (t.data.length !== n) throw new Error(`tensor ${t.name}: ${t.data.length} elements for dims [${t.dims}]`);
  const m = new Message().repeatedVarint(1, t.dims).varint(2, t.dataType).string(8, t.name);
  const raw = t.data instanceof Uint8Array ? t.data : leBytes(t.data);
  return m.bytes(9, raw);
}

/** AttributeProto: name=1, f=2, i=3, s=4, t=5, floats=7, ints=8, type=20. */
function encodeAttr(name: string, a: AttrValue): Message {
  const m = new Message().string(1, name);
  switch (a.kind) {
    case 'float':
      return m.float(2, a.value).varint(20, AttrType.FLOAT);
    case 'int':
      return m.varint(3, a.value).varint(20, AttrType.INT);
    case 'string':
      return m.string(4, a.value).varint(20, AttrType.STRING);
    case 'tensor':
      return m.message(5, encodeTensor(a.value)).varint(20, AttrType.TENSOR);
    case 'floats':
      for (const f of a.value) m.float(7, f);
      return m.varint(20, AttrType.FLOATS);
    case 'ints':
      return m.repeatedVarint(8, a.value).varint(20, AttrType.INTS);
  }
}

/** NodeProto: input=1, output=2, name=3, op_type=4, attribute=5, domain=7. */
function encodeNode(n: NodeDef): Message {
  const m = new Message();
  for (const i of n.inputs) m.string(1, i);
  for (const o of n.outputs) m.string(2, o);
  if (n.name) m.string(3, n.name);
  m.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attrs ?? {})) m.message(5, encodeAttr(k, v));
  if (n.domain) m.string(7, n.domain);
  return m;
}

/** ValueInfoProto{name=1, type=2} > TypeProto{tensor_type=1} > Tensor{elem_type=1, shape=2} > TensorShapeProto{dim=1} > Dimension{dim_value=1, dim_param=2}. */
function encodeValueInfo(v: ValueInfoDef): Message {
  const shape = new Message();
  for (const d of v.shape)
    shape.message(1, typeof d === 'number' ? new Message().varint(1, d) : new Message().string(2, d));
  const tensorType = new Message().varint(1, v.elemType).message(2, shape);
  return new Message().string(1, v.name).message(2, new Message().message(1, tensorType));
}

/** GraphProto: node=1, name=2, initializer=5, input=11, output=12. */
function encodeGraph(g: GraphDef): Message {
  const m = new Message();
  for (const n of g.nodes) m.message(1, encodeNode(n));
  m.string(2, g.name);
  for (const t of g.initializers) m.message(5, encodeTensor(t));
  for (const i of g.inputs) m.message(11, encodeValueInfo(i));
  for (const o of g.outputs) m.message(12, encodeValueInfo(o));
  return m;
}

/** ModelProto: ir_version=1, producer_name=2, producer_version=3, doc_string=6, graph=7, opset_import=8 (OperatorSetIdProto{domain=1, version=2}), metadata_props=14 (StringStringEntryProto{key=1, value=2}). */
export function encodeModel(model: ModelDef): Uint8Array {
  const m = new Message().varint(1, model.irVersion).string(2, model.producerName).string(3, model.producerVersion);
  if (model.docString) m.string(6, model.docString);
  m.message(7, encodeGraph(model.graph));
  m.message(8, new Message().string(1, '').varint(2, model.opset));
  for (const [k, v] of Object.entries(model.metadata ?? {})) m.message(14, new Message().string(1, k).string(2, v));
  return m.finish();
}
