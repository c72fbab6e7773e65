// The training step as an ONNX graph: forward, cross-entropy loss and a hand-written backward (the same
// derivation as kernels.ts / backward.ts), so onnxruntime's native CPU kernels compute d(loss)/d(params). The
// parameters are graph INPUTS (they change every step), named as in the checkpoint; the gradients are outputs
// named `grad.<name>`.
//
// Four graphs (modes) share the forward:
//   'loss'      cross-entropy loss only (validation)
//   'grads'     cross-entropy loss and the gradients (pretraining)
//   'logits'    the head rows' logits and softmax (distillation: the host computes the divergence and dlogits)
//   'backprop'  the gradients for given dlogits (distillation, second half; the forward is recomputed)
//
//   inputs   tokens int32 [B, S]      model input (zt for mdlm, the sequence for ar)
//            rows int64 [M]           flat positions b*S + l that carry a loss term (sorted, unique)
//            targets int64 [M]        loss, grads: target ids in HEAD coordinates (mdlm: past the MASK row)
//            weights float [M]        loss, grads: per-row weight, already divided by the global normaliser
//            dlogits float [M, Vh]    backprop: d(loss)/d(head logits)
//            dropout.<i>.attn|mlp     models with dropout: [B*S, d] masks of {0, 1/(1-p)} on block i's residual
//                                     branches (host RNG, the tfjs engine's; all 1 = eval mode)
//            <param name> float       every parameter of paramLayout()
//   outputs  loss float []            loss, grads: sum over rows of weight * -log p(target)
//            logits, probs [M, Vh]    logits mode
//            grad.<name>              grads, backprop: every parameter but the embedding and the head
//            grad.head.weight [Vh, d], grad.head.bias [Vh]   the head rows actually used (mdlm: all but MASK)
//            grad.embed_rows [B*S, d] d(loss)/d(embedding output): the host scatter-adds it into the table
//
// MDLM SUBS: the MASK logit is -1e6, so its probability and gradient are exactly 0 in float32; the head's MASK
// row is left out (Gather of the kept rows), as in shardLoss.ts. Activations are 2-D [N = B*S, d]; attention
// runs as [B, H, S, hd].
//
// Every node has a WebGPU kernel (docs/design/webgpu-placement.md): no shape arithmetic (constant shapes), no
// LogSoftmax / OneHot / ConstantOfShape, and the int64 inputs rows and targets are read only as Gather /
// GatherElements / ScatterElements indices (the WebGPU EP has no other int64 kernel): targets become int32 by a
// Gather from an iota table, and the head's backward scatters through an inverse row index (see dhf below).
import type { ModelConfig } from '../../shared/config.ts';
import { GELU_A, GELU_C } from '../model/kernels.ts';
import { paramLayout } from '../model/paramLayout.ts';
import { Builder, LN_EPS, MASK_VALUE, float, int, ints, ropeTablesHost } from './graph.ts';
import { DataType, encodeModel, type ModelDef, type ValueInfoDef } from './protobuf.ts';

export const TRAIN_TOKENS = 'tokens';
export const TRAIN_ROWS = 'rows';
export const TRAIN_TARGETS = 'targets';
export const TRAIN_WEIGHTS = 'weights';
export const TRAIN_DLOGITS = 'dlogits';
export const TRAIN_LOSS = 'loss';
export const TRAIN_LOGITS = 'logits';
export const TRAIN_PROBS = 'probs';
export const dropoutInput = (layer: number, branch: 'attn' | 'mlp') => `dropout.${layer}.${branch}`;
export const GRAD_EMBED_ROWS = 'grad.embed_rows';
export const GRAD_HEAD_W = 'grad.head.weight';
export const GRAD_HEAD_B = 'grad.head.bias';
export const gradName = (param: string) => `grad.${param}`;
const EMBED = 'backbone.vocab_embed.embedding';
const HEAD_W = 'backbone.output_layer.linear.weight';
const HEAD_B = 'backbone.output_layer.linear.bias';

const OPSET = 17; // ReduceMean takes axes as an attribute, ReduceSum as an input

/** Vocabulary ids the head predicts: all but MASK for mdlm (SUBS), all for ar. */
export function headIds(cfg: ModelConfig): Int32Array {
  const V = cfg.vocabSize;
  const excl = cfg.arch === 'mdlm' ? cfg.maskId : -1;
  const out = new Int32Array(excl >= 0 ? V - 1 : V);
  for (let v = 0, k = 0; v < V; v++) if (v !== excl) out[k++] = v;
  return out;
}

export type TrainGraphMode = 'loss' | 'grads' | 'logits' | 'backprop';

/** The graph of one mode; with cfg.dropout > 0 it takes the dropout masks as inputs. */
export function buildTrainGraph(cfg: ModelConfig, mode: TrainGraphMode): ModelDef {
  const { vocabSize: V, dModel: d, nHeads: H, nLayers, seqLen: S } = cfg;
  const hd = d / H;
  const m = cfg.mlpRatio * d;
  const causal = cfg.arch === 'ar';
  const bwd = mode === 'grads' || mode === 'backprop';
  const ce = mode === 'loss' || mode === 'grads';
  const dropout = cfg.dropout > 0;
  const keep = headIds(cfg);
  const Vh = keep.length;
  const g = new Builder();
  const op = (t: string, ins: string[], attrs?: Parameters<Builder['op1']>[2], hint?: string) =>
    g.op1(t, ins, attrs, hint);
  const mul = (a: string, b: string) => op('Mul', [a, b]);
  const add = (a: string, b: string) => op('Add', [a, b]);
  const sub = (a: string, b: string) => op('Sub', [a, b]);
  const mm = (a: string, b: string) => op('MatMul', [a, b]);
  const tr = (x: string, perm: number[]) => op('Transpose', [x], { perm: ints(perm) });
  const axes0 = g.i64('const.axes0', [0]);
  const axes1 = g.i64('const.axes1', [1]);
  const colSum = (x: string) => op('ReduceSum', [x, axes0], { keepdims: int(0) }); // [N, k] -> [k]
  const rowMean = (x: string) => op('ReduceMean', [x], { axes: ints([-1]), keepdims: int(1) }); // [.., k] -> [.., 1]
  const one = g.f32('const.one', [], [1]);
  const half = g.f32('const.half', [], [0.5]);
  const geluCA = g.f32('const.gelu_ca', [], [GELU_C * GELU_A]);
  const geluC = g.f32('const.gelu_c', [], [GELU_C]);
  const lnEps = g.f32('const.ln_eps', [], [LN_EPS]);
  const rowIdx = [0, 1, 2, 3, 4, 5].map((r) => g.i64(`const.row${r}`, [r], true));
  const axesLast = g.i64('const.axes_last', [-1]);

  const inputs: ValueInfoDef[] = [
    { name: TRAIN_TOKENS, elemType: DataType.INT32, shape: ['batch', S] },
    { name: TRAIN_ROWS, elemType: DataType.INT64, shape: ['rows'] },
  ];
  if (ce)
    inputs.push(
      { name: TRAIN_TARGETS, elemType: DataType.INT64, shape: ['rows'] },
      { name: TRAIN_WEIGHTS, elemType: DataType.FLOAT, shape: ['rows'] },
    );
  if (mode === 'backprop') inputs.push({ name: TRAIN_DLOGITS, elemType: DataType.FLOAT, shape: ['rows', Vh] });
  if (dropout) {
    for (let i = 0; i < nLayers; i++)
      for (const br of ['attn', 'mlp'] as const)
        inputs.push({ name: dropoutInput(i, br), elemType: DataType.FLOAT, shape: ['tokens', d] });
  }
  for (const e of paramLayout(cfg)) inputs.push({ name: e.name, elemType: DataType.FLOAT, shape: e.shape });
  const outputs: ValueInfoDef[] = [];
  /** Routes a computed tensor to a graph output of the given name. */
  const emit = (value: string, name: string, shape: (number | string)[]) => {
    g.nodes.push({ opType: 'Identity', inputs: [value], outputs: [name], name: `${name}/Identity` });
    outputs.push({ name, elemType: DataType.FLOAT, shape });
  };

  const shape4 = g.i64('const.shape_bshd', [-1, S, H, hd]); // [N, d] -> [B, S, H, hd]
  const flatD = g.i64('const.flat_d', [-1, d]);
  const rq = ropeTablesHost(S, hd, cfg.ropeBase, 1 / Math.sqrt(hd)); // attention scale folded into q's tables
  const rk = ropeTablesHost(S, hd, cfg.ropeBase, 1);
  const cosQ = g.f32('rope.cos_q', [S, 1, hd], rq.cos);
  const sinQ = g.f32('rope.sin_q', [S, 1, hd], rq.sin);
  const cosK = g.f32('rope.cos_k', [S, 1, hd], rk.cos);
  const sinK = g.f32('rope.sin_k', [S, 1, hd], rk.sin);
  // swap_halves is its own transpose, so RoPE's backward is dy*cos + swap(dy*sin).
  const swap = (x: string) => {
    const [a, b] = g.op('Split', [x], { axis: int(-1) }, 2, 'halves');
    return op('Concat', [b, a], { axis: int(-1) });
  };
  const rope = (x4: string, cos: string, sin: string) => add(mul(x4, cos), mul(swap(x4), sin));
  const ropeBwd = (dy4: string, cos: string, sin: string) => add(mul(dy4, cos), swap(mul(dy4, sin)));
  let causalMask = '';
  let negBig = '';
  if (causal) {
    const mask = new Int32Array(S * S);
    for (let i = 0; i < S; i++) for (let j = i + 1; j < S; j++) mask[i * S + j] = 1;
    causalMask = op('Cast', [g.init('const.causal', [S, S], mask)], { to: int(DataType.BOOL) }, 'causal_mask');
    negBig = g.f32('const.mask_value', [], [MASK_VALUE]);
  }

  // Weight-only LayerNorm + DiT modulation: y = xhat * w * (1 + scale) + shift.
  interface Ln {
    xhat: string;
    rstd: string;
    w: string;
    scale: string;
  }
  const lnFwd = (x: string, w: string, shift: string, scale: string): { y: string; ln: Ln } => {
    const xc = sub(x, rowMean(x));
    const rstd = op('Reciprocal', [op('Sqrt', [add(rowMean(mul(xc, xc)), lnEps)])]);
    const xhat = mul(xc, rstd);
    return { y: add(mul(xhat, mul(w, add(scale, one))), shift), ln: { xhat, rstd, w, scale } };
  };
  /** Backward of lnFwd: dx, and the gradients of w, shift and scale ([d] each). */
  const lnBwd = (dy: string, s: Ln) => {
    const t = colSum(mul(dy, s.xhat));
    const dxhat = mul(dy, mul(s.w, add(s.scale, one)));
    const dx = mul(sub(sub(dxhat, rowMean(dxhat)), mul(s.xhat, rowMean(mul(dxhat, s.xhat)))), s.rstd);
    return { dx, dw: mul(t, add(s.scale, one)), dscale: mul(t, s.w), dshift: colSum(dy) };
  };
  const gemmT = (x: string, w: string, b?: string) => op('Gemm', b ? [x, w, b] : [x, w], { transB: int(1) }); // x W^T + b
  const weightGrad = (dy: string, x: string) => op('Gemm', [dy, x], { transA: int(1) }); // dy^T x: [out, in]
  const modRow = (mod: string, r: number) => op('Gather', [mod, rowIdx[r]], { axis: int(0) });
  const stackRows = (rows: string[]) =>
    op(
      'Concat',
      rows.map((r) => op('Unsqueeze', [r, axes0])),
      { axis: int(0) },
    );

  // ---- forward
  let x = op('Reshape', [op('Gather', [EMBED, TRAIN_TOKENS], { axis: int(0) }), flatD], undefined, 'x0');
  interface Saved {
    ln1: Ln;
    ln2: Ln;
    a1: string;
    a2: string;
    qh: string;
    kh: string;
    vh: string;
    probs: string;
    o: string;
    hAttn: string;
    gate1: string;
    pre: string;
    th: string;
    act: string;
    h2: string;
    gate2: string;
  }
  const saved: Saved[] = [];
  for (let i = 0; i < nLayers; i++) {
    const p = `backbone.blocks.${i}.`;
    const mod = p + 'modulation';
    const { y: a1, ln: ln1 } = lnFwd(x, p + 'norm1.weight', modRow(mod, 0), modRow(mod, 1));
    const [q2, k2, v2] = g.op('Split', [gemmT(a1, p + 'attn_qkv.weight')], { axis: int(1) }, 3, `${p}qkv`);
    const heads = (t: string) => tr(t, [0, 2, 1, 3]); // [B, S, H, hd] -> [B, H, S, hd]
    const qh = heads(rope(op('Reshape', [q2, shape4]), cosQ, sinQ));
    const kh = heads(rope(op('Reshape', [k2, shape4]), cosK, sinK));
    const vh = heads(op('Reshape', [v2, shape4]));
    let scores = mm(qh, tr(kh, [0, 1, 3, 2]));
    if (causal) scores = op('Where', [causalMask, negBig, scores]);
    const probs = op('Softmax', [scores], { axis: int(-1) }, `${p}probs`);
    const o = op('Reshape', [tr(mm(probs, vh), [0, 2, 1, 3]), flatD]);
    // hAttn / h2 are the branches after dropout (as the tfjs engine's hm / h2m), so gate grads and backward match
    const hAttn = dropout
      ? mul(gemmT(o, p + 'attn_out.weight'), dropoutInput(i, 'attn'))
      : gemmT(o, p + 'attn_out.weight');
    const gate1 = modRow(mod, 2);
    const x1 = add(x, mul(hAttn, gate1));
    const { y: a2, ln: ln2 } = lnFwd(x1, p + 'norm2.weight', modRow(mod, 3), modRow(mod, 4));
    const pre = gemmT(a2, p + 'mlp.0.weight', p + 'mlp.0.bias');
    // tanh-GELU 0.5 x (1 + tanh u), u = c (x + a x^3); tanh u is kept for the backward
    const th = op('Tanh', [mul(pre, add(mul(mul(pre, pre), geluCA), geluC))]);
    const act = mul(mul(pre, add(th, one)), half);
    const h2 = dropout
      ? mul(gemmT(act, p + 'mlp.2.weight', p + 'mlp.2.bias'), dropoutInput(i, 'mlp'))
      : gemmT(act, p + 'mlp.2.weight', p + 'mlp.2.bias');
    const gate2 = modRow(mod, 5);
    saved.push({ ln1, ln2, a1, a2, qh, kh, vh, probs, o, hAttn, gate1, pre, th, act, h2, gate2 });
    x = add(x1, mul(h2, gate2));
  }
  const fmod = 'backbone.output_layer.modulation';
  const { y: hf, ln: lnF } = lnFwd(x, 'backbone.output_layer.norm_final.weight', modRow(fmod, 0), modRow(fmod, 1));
  const keepIdx = g.init(
    'const.head_ids',
    [Vh],
    BigInt64Array.from(keep, (v) => BigInt(v)),
  );
  const headW = Vh === V ? HEAD_W : op('Gather', [HEAD_W, keepIdx], { axis: int(0) }, 'head_w');
  const headB = Vh === V ? HEAD_B : op('Gather', [HEAD_B, keepIdx], { axis: int(0) }, 'head_b');
  const hr = op('Gather', [hf, TRAIN_ROWS], { axis: int(0) }, 'h_rows'); // [M, d]
  const logits = gemmT(hr, headW, headB); // [M, Vh]
  // cross-entropy: log p(target) = z_t - log(sum exp z), z = logits - max (the WebGPU EP has no LogSoftmax)
  let expZ = '';
  let sumExp = '';
  let targetCol = '';
  let weightCol = '';
  if (ce) {
    const z = sub(logits, op('ReduceMax', [logits], { axes: ints([-1]), keepdims: int(1) }));
    expZ = op('Exp', [z]);
    sumExp = op('ReduceSum', [expZ, axesLast], { keepdims: int(1) }); // [M, 1]
    // targets int64 -> int32 [M, 1]: a Gather from the table 0 .. Vh - 1
    const iota = g.init(
      'const.iota_vh',
      [Vh],
      Int32Array.from({ length: Vh }, (_, k) => k),
    );
    targetCol = op('Unsqueeze', [op('Gather', [iota, TRAIN_TARGETS], { axis: int(0) }, 'targets32'), axes1]);
    weightCol = op('Unsqueeze', [TRAIN_WEIGHTS, axes1]);
    const lt = sub(op('GatherElements', [z, targetCol], { axis: int(1) }), op('Log', [sumExp])); // [M, 1]
    emit(op('Neg', [op('ReduceSum', [mul(lt, weightCol)], { keepdims: int(0) })]), TRAIN_LOSS, []);
  }
  if (mode === 'logits') {
    emit(logits, TRAIN_LOGITS, ['rows', Vh]);
    emit(op('Softmax', [logits], { axis: int(-1) }), TRAIN_PROBS, ['rows', Vh]);
  }

  if (bwd) {
    const geluC3A = g.f32('const.gelu_3ca', [], [3 * GELU_C * GELU_A]);
    // ---- head: cross-entropy dlogits = w_r * (softmax - onehot(target)), or given
    let dlogits = TRAIN_DLOGITS;
    if (ce) {
      // w * softmax, then w * (p_t - 1) written at the targets (ScatterElements takes int32 indices; no OneHot)
      const wp = mul(op('Div', [expZ, sumExp]), weightCol);
      const atTarget = sub(op('GatherElements', [wp, targetCol], { axis: int(1) }), weightCol);
      dlogits = op('ScatterElements', [wp, targetCol, atTarget], { axis: int(1) }, 'dlogits');
    }
    emit(weightGrad(dlogits, hr), GRAD_HEAD_W, [Vh, d]);
    emit(colSum(dlogits), GRAD_HEAD_B, [Vh]);
    // dhf [N, d]: row rows[m] of dlogits @ headW, zero elsewhere. ScatterND would need rows as [M, 1] (an int64
    // Unsqueeze: CPU), so: inv[n] = m where rows[m] = n, else -1 (ScatterElements of 0 .. M-1, as float: exact
    // below 2^24 rows), then a Gather from the M rows plus one zero row, which index -1 picks.
    const lenOf = (x: string) => op('Shape', [x], { end: int(1) }); // [first dimension]
    const minusOnes = op('Expand', [g.f32('const.minus_one', [], [-1]), lenOf(hf)]); // [N]
    const axis0i32 = g.init('const.axis0_i32', [], Int32Array.from([0]));
    const iotaM = op('CumSum', [op('Expand', [one, lenOf(hr)]), axis0i32], { exclusive: int(1) }); // 0 .. M-1
    const invF = op('ScatterElements', [minusOnes, TRAIN_ROWS, iotaM], { axis: int(0) });
    const inv = op('Cast', [invF], { to: int(DataType.INT32) }, 'inv_rows'); // [N]
    const zeroRow = g.f32('const.zero_row', [1, d], new Float32Array(d));
    const dhrPadded = op('Concat', [mm(dlogits, headW), zeroRow], { axis: int(0) }); // [M + 1, d]
    const dhf = op('Gather', [dhrPadded, inv], { axis: int(0) }, 'dhf');
    const f = lnBwd(dhf, lnF);
    emit(f.dw, gradName('backbone.output_layer.norm_final.weight'), [d]);
    emit(stackRows([f.dshift, f.dscale]), gradName(fmod), [2, d]);
    let dx = f.dx;
    for (let i = nLayers - 1; i >= 0; i--) {
      const p = `backbone.blocks.${i}.`;
      const s = saved[i];
      // x2 = x1 + h2 * gate2
      const dgate2 = colSum(mul(dx, s.h2));
      const dh2 = dropout ? mul(mul(dx, s.gate2), dropoutInput(i, 'mlp')) : mul(dx, s.gate2);
      emit(weightGrad(dh2, s.act), gradName(p + 'mlp.2.weight'), [d, m]);
      emit(colSum(dh2), gradName(p + 'mlp.2.bias'), [d]);
      // GELU'(x) = 0.5(1 + tanh u) + 0.5 x (1 - tanh^2 u) c (1 + 3a x^2)
      const du = add(mul(mul(s.pre, s.pre), geluC3A), geluC);
      const dgelu = add(mul(add(s.th, one), half), mul(mul(mul(s.pre, half), sub(one, mul(s.th, s.th))), du));
      const dpre = mul(mm(dh2, p + 'mlp.2.weight'), dgelu);
      emit(weightGrad(dpre, s.a2), gradName(p + 'mlp.0.weight'), [m, d]);
      emit(colSum(dpre), gradName(p + 'mlp.0.bias'), [m]);
      const l2 = lnBwd(mm(dpre, p + 'mlp.0.weight'), s.ln2);
      const dx1 = add(dx, l2.dx);
      // x1 = x + hAttn * gate1
      const dgate1 = colSum(mul(dx1, s.hAttn));
      const dhAttn = dropout ? mul(mul(dx1, s.gate1), dropoutInput(i, 'attn')) : mul(dx1, s.gate1);
      emit(weightGrad(dhAttn, s.o), gradName(p + 'attn_out.weight'), [d, d]);
      const doh = tr(op('Reshape', [mm(dhAttn, p + 'attn_out.weight'), shape4]), [0, 2, 1, 3]); // [B, H, S, hd]
      const dvh = mm(tr(s.probs, [0, 1, 3, 2]), doh);
      const dprobs = mm(doh, tr(s.vh, [0, 1, 3, 2]));
      const dscores = mul(
        s.probs,
        sub(dprobs, op('ReduceSum', [mul(dprobs, s.probs), axesLast], { keepdims: int(1) })),
      );
      const dqh = mm(dscores, s.kh);
      const dkh = mm(tr(dscores, [0, 1, 3, 2]), s.qh);
      const back = (t: string) => op('Reshape', [t, flatD]);
      const dq = back(ropeBwd(tr(dqh, [0, 2, 1, 3]), cosQ, sinQ));
      const dk = back(ropeBwd(tr(dkh, [0, 2, 1, 3]), cosK, sinK));
      const dv = back(tr(dvh, [0, 2, 1, 3]));
      const dqkv = op('Concat', [dq, dk, dv], { axis: int(1) });
      emit(weightGrad(dqkv, s.a1), gradName(p + 'attn_qkv.weight'), [3 * d, d]);
      const l1 = lnBwd(mm(dqkv, p + 'attn_qkv.weight'), s.ln1);
      emit(l1.dw, gradName(p + 'norm1.weight'), [d]);
      emit(l2.dw, gradName(p + 'norm2.weight'), [d]);
      emit(stackRows([l1.dshift, l1.dscale, dgate1, l2.dshift, l2.dscale, dgate2]), gradName(p + 'modulation'), [6, d]);
      dx = add(dx1, l1.dx);
    }
    emit(dx, GRAD_EMBED_ROWS, ['tokens', d]);
  }

  return {
    irVersion: 8,
    opset: OPSET,
    producerName: 'sdtt-workbench',
    producerVersion: '0.1.0',
    docString: `SDTT Workbench ${cfg.arch} training step, mode ${mode}`,
    metadata: { 'sdtt.model_config': JSON.stringify(cfg) },
    graph: { name: `sdtt_train_${mode}`, nodes: g.nodes, initializers: g.inits, inputs, outputs },
  };
}

export function trainGraphBytes(cfg: ModelConfig, mode: TrainGraphMode): Uint8Array {
  return encodeModel(buildTrainGraph(cfg, mode));
}
