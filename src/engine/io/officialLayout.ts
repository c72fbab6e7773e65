// The official MDLM network (kuleshov-group/mdlm `models/dit.py` DIT; jdeschena/sdtt's `dit_orig.py` repeats it) in
// terms of our DiT (model/model.ts). Both are the same network up to the adaLN parametrisation: the official blocks
// compute their modulation as W·c + b with c = SiLU(sigma_map(σ)), and a model without time conditioning always runs
// at σ = 0, so every modulation is one constant vector: exactly our `modulation [6, d]` (final layer `[2, d]`).
// Importing folds that constant (in float64, then rounded once); exporting writes W = 0 and b = our modulation, which
// the official forward turns back into the same constant whatever sigma_map holds (we write zeros).
// This file holds the official state-dict names and shapes, the fold and its reverse; reading official folders is
// officialCheckpoint.ts. Pure Node (no tfjs, no onnxruntime).
import type { ModelConfig } from '../../shared/config.ts';
import { CheckpointError, type SafetensorInput } from '../../runs/safetensors.ts';
import { layoutMap, paramLayout } from '../model/paramLayout.ts';

/** Width of the official sinusoidal embedding of σ (TimestepEmbedder.frequency_embedding_size). */
export const SIGMA_FREQUENCIES = 256;
/** cond_dim of every official MDLM / SDTT model; what an export writes. */
export const DEFAULT_COND_DIM = 128;

/** The hyper-parameters of an official DIT (the HF MDLMConfig's names). */
export interface OfficialDims {
  vocabSize: number;
  hiddenDim: number;
  condDim: number;
  nBlocks: number;
  nHeads: number;
  modelLength: number;
  dropout: number;
}

export interface HostTensor32 {
  shape: number[];
  data: Float32Array;
}

/** Names and shapes of the official DIT's state dict (no `backbone.` prefix), in module order. */
export function officialTensorShapes(dims: OfficialDims): Map<string, number[]> {
  const { vocabSize: V, hiddenDim: d, condDim: c } = dims;
  const m = new Map<string, number[]>();
  m.set('vocab_embed.embedding', [V, d]);
  m.set('sigma_map.mlp.0.weight', [c, SIGMA_FREQUENCIES]);
  m.set('sigma_map.mlp.0.bias', [c]);
  m.set('sigma_map.mlp.2.weight', [c, c]);
  m.set('sigma_map.mlp.2.bias', [c]);
  m.set('rotary_emb.inv_freq', [d / dims.nHeads / 2]);
  for (let i = 0; i < dims.nBlocks; i++) {
    const p = `blocks.${i}.`;
    m.set(p + 'norm1.weight', [d]);
    m.set(p + 'attn_qkv.weight', [3 * d, d]);
    m.set(p + 'attn_out.weight', [d, d]);
    m.set(p + 'norm2.weight', [d]);
    m.set(p + 'mlp.0.weight', [4 * d, d]);
    m.set(p + 'mlp.0.bias', [4 * d]);
    m.set(p + 'mlp.2.weight', [d, 4 * d]);
    m.set(p + 'mlp.2.bias', [d]);
    m.set(p + 'adaLN_modulation.weight', [6 * d, c]);
    m.set(p + 'adaLN_modulation.bias', [6 * d]);
  }
  m.set('output_layer.norm_final.weight', [d]);
  m.set('output_layer.linear.weight', [V, d]);
  m.set('output_layer.linear.bias', [V]);
  m.set('output_layer.adaLN_modulation.weight', [2 * d, c]);
  m.set('output_layer.adaLN_modulation.bias', [2 * d]);
  return m;
}

/** Our model config for official dims (MASK is the last id, as in every official model). */
export function officialModelConfig(dims: OfficialDims, eosId: number): ModelConfig {
  return {
    arch: 'mdlm',
    vocabSize: dims.vocabSize,
    dModel: dims.hiddenDim,
    nLayers: dims.nBlocks,
    nHeads: dims.nHeads,
    mlpRatio: 4,
    seqLen: dims.modelLength,
    dropout: dims.dropout,
    ropeBase: 10000,
    maskId: dims.vocabSize - 1,
    eosId,
  };
}

/** The rotary buffer the official Rotary registers: 1 / 10000^(2i / headDim), computed in float32 as torch does. */
export function rotaryInvFreq(headDim: number, base = 10000): Float32Array {
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < out.length; i++) out[i] = 1 / Math.fround(base ** Math.fround((2 * i) / headDim));
  return out;
}

function shapeText(s: number[]): string {
  return `[${s.join(', ')}]`;
}

/**
 * Checks that `tensors` is exactly the official state dict of `dims`: every name present with its shape, nothing
 * else. `where` names the source in the messages. Throws CheckpointError listing what is wrong.
 */
export function checkOfficialTensors(tensors: Map<string, HostTensor32>, dims: OfficialDims, where: string): void {
  const want = officialTensorShapes(dims);
  const problems: string[] = [];
  for (const [name, shape] of want) {
    const t = tensors.get(name);
    if (!t) problems.push(`missing tensor '${name}' ${shapeText(shape)}`);
    else if (shapeText(t.shape) !== shapeText(shape))
      problems.push(`'${name}' has shape ${shapeText(t.shape)} but the config says ${shapeText(shape)}`);
  }
  const foreign = [...tensors.keys()].filter((n) => !want.has(n));
  if (foreign.length)
    problems.push(
      `foreign tensor${foreign.length > 1 ? 's' : ''} ${foreign
        .slice(0, 6)
        .map((n) => `'${n}'`)
        .join(', ')}${foreign.length > 6 ? ` (${foreign.length} in all)` : ''} (not part of an MDLM DIT)`,
    );
  if (problems.length)
    throw new CheckpointError(
      `${where} is not an official MDLM DIT of the configured size: ${problems.slice(0, 8).join('; ')}${problems.length > 8 ? `; ... (${problems.length} problems)` : ''}`,
    );
}

const silu = (x: number) => x / (1 + Math.exp(-x));

/** c = SiLU(sigma_map(0)) in float64: the conditioning vector every modulation of an unconditioned model sees. */
function conditioningAtZero(t: Map<string, HostTensor32>, c: number): Float64Array {
  // timestep_embedding(0) = [cos(0) x 128, sin(0) x 128] = [1 ... 1, 0 ... 0]
  const half = SIGMA_FREQUENCIES / 2;
  const w0 = t.get('sigma_map.mlp.0.weight')!.data;
  const b0 = t.get('sigma_map.mlp.0.bias')!.data;
  const h = new Float64Array(c);
  for (let i = 0; i < c; i++) {
    let s = b0[i];
    for (let k = 0; k < half; k++) s += w0[i * SIGMA_FREQUENCIES + k];
    h[i] = silu(s);
  }
  const w2 = t.get('sigma_map.mlp.2.weight')!.data;
  const b2 = t.get('sigma_map.mlp.2.bias')!.data;
  const out = new Float64Array(c);
  for (let i = 0; i < c; i++) {
    let s = b2[i];
    for (let k = 0; k < c; k++) s += w2[i * c + k] * h[k];
    out[i] = silu(s);
  }
  return out;
}

/** W·c + b for an adaLN Linear [rows, c], in float64, rounded once into `out`. */
function foldModulation(w: Float32Array, b: Float32Array, cond: Float64Array, out: Float32Array): void {
  const c = cond.length;
  for (let r = 0; r < b.length; r++) {
    let s = b[r];
    for (let k = 0; k < c; k++) s += w[r * c + k] * cond[k];
    out[r] = s;
  }
}

/**
 * The flat parameter vector of our model for official tensors (checked with checkOfficialTensors first): names map
 * one to one except the adaLN pairs, which fold into our modulation rows; sigma_map and the rotary buffer (a
 * function of the head size, which our RoPE computes itself) are consumed.
 */
export function foldOfficialTensors(
  tensors: Map<string, HostTensor32>,
  dims: OfficialDims,
  cfg: ModelConfig,
): Float32Array {
  const lm = layoutMap(cfg);
  const last = paramLayout(cfg).at(-1)!;
  const params = new Float32Array(last.offset + last.size);
  const cond = conditioningAtZero(tensors, dims.condDim);
  const put = (ours: string, data: Float32Array) => params.set(data, lm.get(ours)!.offset);
  const view = (ours: string) => {
    const e = lm.get(ours)!;
    return params.subarray(e.offset, e.offset + e.size);
  };
  const get = (name: string) => tensors.get(name)!.data;
  put('backbone.vocab_embed.embedding', get('vocab_embed.embedding'));
  for (let i = 0; i < dims.nBlocks; i++) {
    const p = `blocks.${i}.`;
    for (const n of ['norm1.weight', 'attn_qkv.weight', 'attn_out.weight', 'norm2.weight'])
      put(`backbone.${p}${n}`, get(p + n));
    for (const n of ['mlp.0.weight', 'mlp.0.bias', 'mlp.2.weight', 'mlp.2.bias']) put(`backbone.${p}${n}`, get(p + n));
    foldModulation(
      get(p + 'adaLN_modulation.weight'),
      get(p + 'adaLN_modulation.bias'),
      cond,
      view(`backbone.${p}modulation`),
    );
  }
  put('backbone.output_layer.norm_final.weight', get('output_layer.norm_final.weight'));
  put('backbone.output_layer.linear.weight', get('output_layer.linear.weight'));
  put('backbone.output_layer.linear.bias', get('output_layer.linear.bias'));
  foldModulation(
    get('output_layer.adaLN_modulation.weight'),
    get('output_layer.adaLN_modulation.bias'),
    cond,
    view('backbone.output_layer.modulation'),
  );
  return params;
}

/** Whether our model config can be written in the official layout (the official DIT has no other shape knobs). */
export function officialExportProblem(cfg: ModelConfig): string | null {
  if (cfg.arch !== 'mdlm') return `an ${cfg.arch} model has no official MDLM layout (the official DIT is a denoiser)`;
  if (cfg.mlpRatio !== 4) return `the official DIT's MLP is 4x wide; this model's is ${cfg.mlpRatio}x`;
  if (cfg.ropeBase !== 10000) return `the official DIT's rotary base is 10000; this model's is ${cfg.ropeBase}`;
  if (cfg.maskId !== cfg.vocabSize - 1)
    return `the official code puts MASK at the last id (${cfg.vocabSize - 1}); this model's MASK is ${cfg.maskId}`;
  return null;
}

/**
 * Our parameters as the HF MDLM state dict (`backbone.` + the official names), float32: adaLN weights 0 and biases our
 * modulation, sigma_map zeros, the rotary buffer. Views into `params` where the names map one to one.
 */
export function officialTensorsOf(
  cfg: ModelConfig,
  params: Float32Array,
  condDim = DEFAULT_COND_DIM,
): Map<string, SafetensorInput> {
  const problem = officialExportProblem(cfg);
  if (problem) throw new CheckpointError(`cannot write the official layout: ${problem}`);
  const dims = officialDimsOf(cfg, condDim);
  const lm = layoutMap(cfg);
  const ours = (name: string) => {
    const e = lm.get(name)!;
    return params.subarray(e.offset, e.offset + e.size);
  };
  const out = new Map<string, SafetensorInput>();
  for (const [name, shape] of officialTensorShapes(dims)) {
    let data: Float32Array;
    if (name === 'rotary_emb.inv_freq') data = rotaryInvFreq(cfg.dModel / cfg.nHeads);
    else if (name.startsWith('sigma_map.') || name.endsWith('adaLN_modulation.weight'))
      data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    else if (name.endsWith('adaLN_modulation.bias'))
      data = ours(`backbone.${name.replace('adaLN_modulation.bias', 'modulation')}`);
    else data = ours(`backbone.${name}`);
    out.set(`backbone.${name}`, { dtype: 'F32', shape, data });
  }
  return out;
}

export function officialDimsOf(cfg: ModelConfig, condDim = DEFAULT_COND_DIM): OfficialDims {
  return {
    vocabSize: cfg.vocabSize,
    hiddenDim: cfg.dModel,
    condDim,
    nBlocks: cfg.nLayers,
    nHeads: cfg.nHeads,
    modelLength: cfg.seqLen,
    dropout: cfg.dropout,
  };
}

/** The HF config.json of mdlm-owt for these dims; the model code comes from that hub repository (auto_map). */
export function officialHfConfig(dims: OfficialDims): Record<string, unknown> {
  return {
    architectures: ['MDLM'],
    auto_map: {
      AutoConfig: 'kuleshov-group/mdlm-owt--configuration_mdlm.MDLMConfig',
      AutoModelForMaskedLM: 'kuleshov-group/mdlm-owt--modeling_mdlm.MDLM',
    },
    model_type: 'mdlm',
    vocab_size: dims.vocabSize,
    model_length: dims.modelLength,
    hidden_dim: dims.hiddenDim,
    cond_dim: dims.condDim,
    n_blocks: dims.nBlocks,
    n_heads: dims.nHeads,
    dropout: dims.dropout,
    time_conditioning: false,
    return_dict: false,
    torch_dtype: 'float32',
  };
}
