// Builds the ONNX graph of our model (model.ts semantics) from a ModelConfig and the flat parameter vector.
//
// Standard ONNX ops only (default opset 17), so the file also runs in other runtimes. Two graph flavours:
//  - 'mdlm' (denoiser): input  tokens int32 [batch, seqLen]
//                       output logits float32 [batch, seqLen, vocab]        (non-causal attention)
//  - 'ar' (causal, KV cache): inputs  tokens int32 [batch, len], past_key.{i} / past_value.{i} float32
//                       [batch, heads, past, headDim] (past may be 0);
//                       outputs logits float32 [batch, len, vocab], present_key.{i} / present_value.{i}
//                       [batch, heads, past + len, headDim]. RoPE positions start at `past`; past + len <= seqLen.
//                       A full-recompute forward is the same graph with past = 0.
// Either flavour can end before its head (output 'hidden' [batch*len, d]); buildHeadModel is then the head alone,
// hidden [rows, d] -> logits [rows, vocab]. The runtime uses that split (runtime.ts); exportOnnx writes whole models.
// Layout inside the graph: activations are 2-D [N = batch*len, d]; every linear layer is a Gemm with transB = 1 on
// the weight in its stored PyTorch layout [out, in] (initializer named as in the checkpoint). The weight-only
// LayerNorm and the DiT modulation are folded into one LayerNormalization: scale = norm.weight * (1 + scale_mod),
// bias = shift_mod (initializers "<block>.ln{1,2}.scale|bias"). RoPE is non-interleaved (rotate_half), written as
// x * cos + swap_halves(x) * sin_signed; the attention scale 1/sqrt(hd) is folded into q's cos/sin tables.
// No shape arithmetic at run time (docs/design/webgpu-placement.md): int64 ops have no WebGPU kernel, so every
// shape is a constant using Reshape's 0 (copy the input's dimension) and -1 (infer), or a Shape of a tensor that
// already has it, and the AR graph slices its RoPE tables and causal mask with Shape outputs, never adds them.
import { writeFile } from 'node:fs/promises';
import type { ModelConfig } from '../../shared/config.ts';
import { GELU_A, GELU_C } from '../model/kernels.ts';
import { layoutMap } from '../model/paramLayout.ts';
import {
  DataType,
  encodeModel,
  type AttrValue,
  type DataTypeId,
  type ModelDef,
  type NodeDef,
  type TensorDef,
  type ValueInfoDef,
} from './protobuf.ts';

export interface OnnxGraphOptions {
  /** ONNX opset: 17 (default; tanh-GELU composed of elementwise ops) or >= 20 (uses the Gelu op, approximate = tanh). */
  opset?: number;
  /**
   * 'logits' (default, what exportOnnx writes): the whole model. 'hidden': the transformer without its head, output
   * `hidden` [batch·len, d] (the input of the head's Linear); buildHeadModel is the rest. The runtime runs the two
   * apart so that the head computes only the rows a caller reads (model/logitRows.ts).
   */
  output?: 'logits' | 'hidden';
}

export const ONNX_INPUT_TOKENS = 'tokens';
export const ONNX_OUTPUT_LOGITS = 'logits';
export const ONNX_OUTPUT_HIDDEN = 'hidden';
export const pastKeyName = (i: number) => `past_key.${i}`;
export const pastValueName = (i: number) => `past_value.${i}`;
export const presentKeyName = (i: number) => `present_key.${i}`;
export const presentValueName = (i: number) => `present_value.${i}`;

export const LN_EPS = 1e-5; // kernels.ts lnModFwd
export const MASK_VALUE = -1e9; // kernels.ts causalMask

/** Appends nodes and initializers with unique names (shared by the inference graph and trainGraph.ts). */
export class Builder {
  readonly nodes: NodeDef[] = [];
  readonly inits: TensorDef[] = [];
  private n = 0;
  private readonly names = new Set<string>();

  private fresh(base: string): string {
    let name = base;
    while (this.names.has(name)) name = `${base}_${++this.n}`;
    this.names.add(name);
    return name;
  }

  init(name: string, dims: number[], data: Float32Array | Int32Array | BigInt64Array): string {
    const dataType: DataTypeId =
      data instanceof Float32Array ? DataType.FLOAT : data instanceof Int32Array ? DataType.INT32 : DataType.INT64;
    const nm = this.fresh(name);
    this.inits.push({ name: nm, dims, dataType, data });
    return nm;
  }

  f32(name: string, dims: number[], data: ArrayLike<number>): string {
    return this.init(name, dims, data instanceof Float32Array ? data : Float32Array.from(data));
  }

  i64(name: string, values: number[], scalar = false): string {
    return this.init(name, scalar ? [] : [values.length], BigInt64Array.from(values.map((v) => BigInt(v))));
  }

  op(opType: string, inputs: string[], attrs?: Record<string, AttrValue>, nOut = 1, hint?: string): string[] {
    const base = hint ?? opType.toLowerCase();
    const outputs = Array.from({ length: nOut }, (_, i) => this.fresh(nOut > 1 ? `${base}:${i}` : base));
    this.nodes.push({ opType, inputs, outputs, name: this.fresh(`${base}/${opType}`), attrs });
    return outputs;
  }

  op1(opType: string, inputs: string[], attrs?: Record<string, AttrValue>, hint?: string): string {
    return this.op(opType, inputs, attrs, 1, hint)[0];
  }
}

export const int = (value: number): AttrValue => ({ kind: 'int', value });
export const ints = (value: number[]): AttrValue => ({ kind: 'ints', value });
export const float = (value: number): AttrValue => ({ kind: 'float', value });

/** cos / signed-sin tables [S, 1, hd] for absolute positions 0..S-1, multiplied by `mult`. */
export function ropeTablesHost(
  S: number,
  hd: number,
  base: number,
  mult: number,
): { cos: Float32Array; sin: Float32Array } {
  const h = hd / 2;
  const cos = new Float32Array(S * hd);
  const sin = new Float32Array(S * hd);
  for (let p = 0; p < S; p++) {
    for (let j = 0; j < h; j++) {
      const ang = p * Math.pow(base, (-2 * j) / hd);
      const c = Math.cos(ang) * mult;
      const s = Math.sin(ang) * mult;
      cos[p * hd + j] = c;
      cos[p * hd + j + h] = c;
      // rotate_half(x) = [-x2, x1] = swap_halves(x) * [-1..., +1...]
      sin[p * hd + j] = -s;
      sin[p * hd + j + h] = s;
    }
  }
  return { cos, sin };
}

/** Builds the in-memory ONNX model (ModelDef) for `cfg` with the flat `params` (paramLayout order). */
export function buildOnnxModel(cfg: ModelConfig, params: Float32Array, opts: OnnxGraphOptions = {}): ModelDef {
  const opset = opts.opset ?? 17;
  if (!(opset >= 17)) throw new Error(`ONNX opset ${opset} is not supported (need >= 17 for LayerNormalization)`);
  const { vocabSize: V, dModel: d, nHeads: H, nLayers, seqLen: S } = cfg;
  const hd = d / H;
  if (!Number.isInteger(hd) || hd % 2 !== 0)
    throw new Error(`dModel ${d} / nHeads ${H} must be an even integer head dim`);
  const m = cfg.mlpRatio * d;
  const causal = cfg.arch === 'ar';
  const L = layoutMap(cfg);
  const last = [...L.values()].reduce((a, e) => Math.max(a, e.offset + e.size), 0);
  if (params.length !== last)
    throw new Error(`params has ${params.length} floats, the layout of this config needs ${last}`);
  const get = (name: string): Float32Array => {
    const e = L.get(name);
    if (!e) throw new Error(`no parameter ${name} in the layout`);
    return params.subarray(e.offset, e.offset + e.size);
  };

  const g = new Builder();
  const W = (name: string, dims: number[]) => g.init(name, dims, get(name));

  // Inputs / outputs
  const inputs: ValueInfoDef[] = [
    { name: ONNX_INPUT_TOKENS, elemType: DataType.INT32, shape: ['batch', causal ? 'len' : S] },
  ];
  const hiddenOnly = opts.output === 'hidden';
  const outputs: ValueInfoDef[] = [
    hiddenOnly
      ? { name: ONNX_OUTPUT_HIDDEN, elemType: DataType.FLOAT, shape: ['positions', d] }
      : { name: ONNX_OUTPUT_LOGITS, elemType: DataType.FLOAT, shape: ['batch', causal ? 'len' : S, V] },
  ];
  if (causal) {
    for (let i = 0; i < nLayers; i++) {
      inputs.push({ name: pastKeyName(i), elemType: DataType.FLOAT, shape: ['batch', H, 'past', hd] });
      inputs.push({ name: pastValueName(i), elemType: DataType.FLOAT, shape: ['batch', H, 'past', hd] });
      outputs.push({ name: presentKeyName(i), elemType: DataType.FLOAT, shape: ['batch', H, 'total', hd] });
      outputs.push({ name: presentValueName(i), elemType: DataType.FLOAT, shape: ['batch', H, 'total', hd] });
    }
  }

  // Embedding: [B, L, d], then the 2-D activations [N, d]
  const emb = W('backbone.vocab_embed.embedding', [V, d]);
  const x3 = g.op1('Gather', [emb, ONNX_INPUT_TOKENS], { axis: int(0) }, 'embed');
  const flatD = g.i64('const.flat_d', [-1, d]);
  // [N, d] -> [B, L, H, hd] and [N, V] -> [B, L, V]. mdlm: constants (L = S). ar (L dynamic): the Shape of a
  // tensor that has it: x3 viewed as [B, L, H, hd], and an empty [B, L, 0] slice of x3, whose 0 makes Reshape
  // copy V from its input [N, 1, V].
  const zero1 = causal ? g.i64('const.zero1', [0]) : '';
  const shapeOf = (x: string, hint: string) => g.op1('Shape', [x], undefined, hint);
  const shape4 = causal
    ? shapeOf(g.op1('Reshape', [x3, g.i64('const.heads', [0, 0, H, hd])], undefined, 'x0.heads'), 'shape_blhd')
    : g.i64('const.shape_blhd', [-1, S, H, hd]);

  // RoPE tables: [S, 1, hd]; for the AR graph sliced to the positions past .. past + len - 1.
  const rq = ropeTablesHost(S, hd, cfg.ropeBase, 1 / Math.sqrt(hd));
  const rk = ropeTablesHost(S, hd, cfg.ropeBase, 1);
  let cosQ = g.f32('rope.cos_q', [S, 1, hd], rq.cos);
  let sinQ = g.f32('rope.sin_q', [S, 1, hd], rq.sin);
  let cosK = g.f32('rope.cos_k', [S, 1, hd], rk.cos);
  let sinK = g.f32('rope.sin_k', [S, 1, hd], rk.sin);
  // AR: additive causal mask over absolute positions, maskAdd[q, k] = MASK_VALUE where k > q (else 0); rows
  // past .. past + len - 1 and columns 0 .. past + len - 1 are sliced at run time (softmax gives the masked keys
  // exactly 0 either way: scores + MASK_VALUE underflows exp just as MASK_VALUE does).
  let maskAdd: string | null = null;
  let axes0 = '';
  let axes1 = '';
  if (causal) {
    const pastV = g.op1('Shape', [pastKeyName(0)], { start: int(2), end: int(3) }, 'past_len'); // [1]
    const lenV = g.op1('Shape', [ONNX_INPUT_TOKENS], { start: int(1), end: int(2) }, 'new_len'); // [1]
    axes0 = g.i64('const.axes0', [0]);
    axes1 = g.i64('const.axes1', [1]);
    const endS = g.i64('const.seq_len', [S]);
    // positions past .. past + len - 1 as two slices (past .. S - 1, then the first len), so no Add of shapes
    const pos = (t: string, hint: string) =>
      g.op1('Slice', [g.op1('Slice', [t, pastV, endS, axes0]), zero1, lenV, axes0], undefined, hint);
    cosQ = pos(cosQ, 'rope.cos_q.pos');
    sinQ = pos(sinQ, 'rope.sin_q.pos');
    cosK = pos(cosK, 'rope.cos_k.pos');
    sinK = pos(sinK, 'rope.sin_k.pos');
    const m = new Float32Array(S * S);
    for (let q = 0; q < S; q++) for (let k = q + 1; k < S; k++) m[q * S + k] = MASK_VALUE;
    maskAdd = pos(g.f32('const.causal_mask', [S, S], m), 'causal_mask.rows'); // [len, S]; columns: block 0
  }

  // Equal split: opset 18+ needs num_outputs (or a 'split' input); before, the output count implies it.
  const split = (x: string, axis: number, n: number, hint: string): string[] =>
    g.op('Split', [x], opset >= 18 ? { axis: int(axis), num_outputs: int(n) } : { axis: int(axis) }, n, hint);

  const rope = (x4: string, cos: string, sin: string, hint: string): string => {
    const [x1, x2] = split(x4, -1, 2, `${hint}.halves`);
    const sw = g.op1('Concat', [x2, x1], { axis: int(-1) }, `${hint}.swap`);
    return g.op1('Add', [g.op1('Mul', [x4, cos]), g.op1('Mul', [sw, sin])], undefined, `${hint}.rope`);
  };

  // LayerNormalization with the modulation folded in: scale = w * (1 + scaleMod), bias = shiftMod.
  const lnMod = (x: string, w: Float32Array, shift: Float32Array, scale: Float32Array, name: string): string => {
    const sc = new Float32Array(d);
    for (let j = 0; j < d; j++) sc[j] = w[j] * (1 + scale[j]);
    const s = g.f32(`${name}.scale`, [d], sc);
    const b = g.f32(`${name}.bias`, [d], Float32Array.from(shift));
    return g.op1('LayerNormalization', [x, s, b], { axis: int(-1), epsilon: float(LN_EPS) }, name);
  };

  const gemm = (x: string, w: string, b: string | null, hint: string) =>
    g.op1('Gemm', b ? [x, w, b] : [x, w], { transB: int(1) }, hint);

  const gelu = (x: string, hint: string): string => {
    if (opset >= 20) return g.op1('Gelu', [x], { approximate: { kind: 'string', value: 'tanh' } }, hint);
    // 0.5 x (1 + tanh(x (c + c a x^2)))
    const x2 = g.op1('Mul', [x, x], undefined, `${hint}.x2`);
    const inner = g.op1('Add', [g.op1('Mul', [x2, gcA]), gC]);
    const th = g.op1('Tanh', [g.op1('Mul', [x, inner])]);
    return g.op1('Mul', [g.op1('Mul', [x, g.op1('Add', [th, gOne])]), gHalf], undefined, hint);
  };
  const gcA = g.f32('const.gelu_ca', [], [GELU_C * GELU_A]);
  const gC = g.f32('const.gelu_c', [], [GELU_C]);
  const gOne = g.f32('const.one_f', [], [1]);
  const gHalf = g.f32('const.half', [], [0.5]);

  let x = g.op1('Reshape', [x3, flatD], undefined, 'x0');

  for (let i = 0; i < nLayers; i++) {
    const p = `backbone.blocks.${i}.`;
    const mod = get(p + 'modulation');
    const row = (r: number) => mod.subarray(r * d, (r + 1) * d);
    const a1 = lnMod(x, get(p + 'norm1.weight'), row(0), row(1), `${p}ln1`);
    const qkv = gemm(a1, W(p + 'attn_qkv.weight', [3 * d, d]), null, `${p}qkv`);
    const [q2, k2, v2] = split(qkv, 1, 3, `${p}qkv.split`);
    const to4 = (t: string, hint: string) => g.op1('Reshape', [t, shape4], undefined, hint); // [B, L, H, hd]
    const q4 = rope(to4(q2, `${p}q`), cosQ, sinQ, `${p}q`);
    const k4 = rope(to4(k2, `${p}k`), cosK, sinK, `${p}k`);
    const v4 = to4(v2, `${p}v`);
    const qh = g.op1('Transpose', [q4], { perm: ints([0, 2, 1, 3]) }, `${p}q.bhld`);
    let kh = g.op1('Transpose', [k4], { perm: ints([0, 2, 1, 3]) }, `${p}k.bhld`);
    let vh = g.op1('Transpose', [v4], { perm: ints([0, 2, 1, 3]) }, `${p}v.bhld`);
    if (causal) {
      kh = g.op1('Concat', [pastKeyName(i), kh], { axis: int(2) }, presentKeyName(i));
      vh = g.op1('Concat', [pastValueName(i), vh], { axis: int(2) }, presentValueName(i));
      if (i === 0) {
        // the mask's columns: 0 .. past + len - 1, the length of the first present key
        const totalV = g.op1('Shape', [kh], { start: int(2), end: int(3) }, 'total_len');
        maskAdd = g.op1('Slice', [maskAdd!, zero1, totalV, axes1], undefined, 'causal_mask'); // [len, past + len]
      }
    }
    const kT = g.op1('Transpose', [kh], { perm: ints([0, 1, 3, 2]) }, `${p}k.bhdl`);
    let s = g.op1('MatMul', [qh, kT], undefined, `${p}scores`);
    if (maskAdd) s = g.op1('Add', [s, maskAdd], undefined, `${p}scores.masked`);
    const pr = g.op1('Softmax', [s], { axis: int(-1) }, `${p}probs`);
    const oh = g.op1('MatMul', [pr, vh], undefined, `${p}attn`);
    const o = g.op1(
      'Reshape',
      [g.op1('Transpose', [oh], { perm: ints([0, 2, 1, 3]) }), flatD],
      undefined,
      `${p}attn.flat`,
    );
    const h = gemm(o, W(p + 'attn_out.weight', [d, d]), null, `${p}attn_out`);
    const x1 = g.op1(
      'Add',
      [x, g.op1('Mul', [h, g.f32(p + 'gate1', [d], Float32Array.from(row(2)))])],
      undefined,
      `${p}x1`,
    );
    const a2 = lnMod(x1, get(p + 'norm2.weight'), row(3), row(4), `${p}ln2`);
    const pre = gemm(a2, W(p + 'mlp.0.weight', [m, d]), W(p + 'mlp.0.bias', [m]), `${p}mlp0`);
    const h2 = gemm(gelu(pre, `${p}gelu`), W(p + 'mlp.2.weight', [d, m]), W(p + 'mlp.2.bias', [d]), `${p}mlp2`);
    x = g.op1('Add', [x1, g.op1('Mul', [h2, g.f32(p + 'gate2', [d], Float32Array.from(row(5)))])], undefined, `${p}x2`);
  }

  const fmod = get('backbone.output_layer.modulation');
  const hf = lnMod(
    x,
    get('backbone.output_layer.norm_final.weight'),
    fmod.subarray(0, d),
    fmod.subarray(d, 2 * d),
    'backbone.output_layer.ln',
  );
  if (hiddenOnly) {
    g.nodes.push({ opType: 'Identity', inputs: [hf], outputs: [ONNX_OUTPUT_HIDDEN], name: 'hidden/Identity' });
    return modelDef(cfg, opset, g, inputs, outputs, 'tokens -> hidden [batch·len, d], the input of the head');
  }
  const lg = gemm(
    hf,
    W('backbone.output_layer.linear.weight', [V, d]),
    W('backbone.output_layer.linear.bias', [V]),
    'logits.flat',
  );
  const shapeOut = causal
    ? shapeOf(g.op1('Slice', [x3, zero1, zero1, g.i64('const.axes2', [2])], undefined, 'x0.empty'), 'shape_bl0')
    : g.i64('const.shape_blv', [-1, S, V]);
  // Final Reshape writes the graph output name directly (ar: from [N, 1, V], see shapeOut).
  const lgIn = causal ? g.op1('Unsqueeze', [lg, axes1], undefined, 'logits.n1v') : lg;
  g.nodes.push({ opType: 'Reshape', inputs: [lgIn, shapeOut], outputs: [ONNX_OUTPUT_LOGITS], name: 'logits/Reshape' });

  return modelDef(
    cfg,
    opset,
    g,
    inputs,
    outputs,
    causal
      ? 'Causal transformer LM (SDTT Workbench). tokens int32 [batch, len] + past_key/value.{i} [batch, heads, past, head_dim] -> logits [batch, len, vocab] + present_key/value.{i}.'
      : 'MDLM DiT denoiser without time conditioning (SDTT Workbench). tokens int32 [batch, seqLen] -> logits [batch, seqLen, vocab] (raw; apply SUBS outside).',
  );
}

/**
 * The head alone: hidden [rows, d] (buildOnnxModel's 'hidden' output, gathered at the rows wanted) -> logits
 * [rows, V], the same Gemm as the whole model's last node.
 */
export function buildHeadModel(cfg: ModelConfig, params: Float32Array, opts: OnnxGraphOptions = {}): ModelDef {
  const opset = opts.opset ?? 17;
  const { vocabSize: V, dModel: d } = cfg;
  const L = layoutMap(cfg);
  const g = new Builder();
  const W = (name: string, dims: number[]) => {
    const e = L.get(name)!;
    return g.init(name, dims, params.subarray(e.offset, e.offset + e.size));
  };
  g.nodes.push({
    opType: 'Gemm',
    inputs: [
      ONNX_OUTPUT_HIDDEN,
      W('backbone.output_layer.linear.weight', [V, d]),
      W('backbone.output_layer.linear.bias', [V]),
    ],
    outputs: [ONNX_OUTPUT_LOGITS],
    name: 'logits/Gemm',
    attrs: { transB: int(1) },
  });
  const inputs: ValueInfoDef[] = [{ name: ONNX_OUTPUT_HIDDEN, elemType: DataType.FLOAT, shape: ['rows', d] }];
  const outputs: ValueInfoDef[] = [{ name: ONNX_OUTPUT_LOGITS, elemType: DataType.FLOAT, shape: ['rows', V] }];
  return modelDef(cfg, opset, g, inputs, outputs, 'hidden [rows, d] -> logits [rows, vocab] (the output head)');
}

function modelDef(
  cfg: ModelConfig,
  opset: number,
  g: Builder,
  inputs: ValueInfoDef[],
  outputs: ValueInfoDef[],
  docString: string,
): ModelDef {
  return {
    irVersion: opset >= 21 ? 10 : opset >= 19 ? 9 : 8,
    opset,
    producerName: 'sdtt-workbench',
    producerVersion: '0.1.0',
    docString,
    metadata: {
      'sdtt.model_config': JSON.stringify(cfg),
      'sdtt.arch': cfg.arch,
      'sdtt.mask_id': String(cfg.maskId),
      'sdtt.eos_id': String(cfg.eosId),
    },
    graph: {
      name: cfg.arch === 'ar' ? 'sdtt_ar' : 'sdtt_mdlm',
      nodes: g.nodes,
      initializers: g.inits,
      inputs,
      outputs,
    },
  };
}

/** The serialized ONNX ModelProto bytes. */
export function onnxModelBytes(cfg: ModelConfig, params: Float32Array, opts: OnnxGraphOptions = {}): Uint8Array {
  return encodeModel(buildOnnxModel(cfg, params, opts));
}

/** Writes the model as an .onnx file (mdlm: denoiser graph; ar: KV-cache graph). Returns the byte count. */
export async function exportOnnx(
  cfg: ModelConfig,
  params: Float32Array,
  file: string,
  opts: OnnxGraphOptions = {},
): Promise<{ bytes: number }> {
  const bytes = onnxModelBytes(cfg, params, opts);
  await writeFile(file, bytes);
  return { bytes: bytes.length };
}
