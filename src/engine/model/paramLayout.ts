// The flat parameter vector of the denoiser / AR model (model.ts): its layout (names, shapes, offsets), the named
// views code addresses it by, and the deterministic init. Everything that stores or updates parameters (optimiser,
// EMA, checkpoints, export, data parallelism) works on this one Float32Array. Names follow MDLM's DiT; matrices are
// stored in the PyTorch layout [out, in] so an export loads into torch without transposes. Host-only: no tfjs.
import type { ModelConfig } from '../../shared/config.ts';
import { Rng } from '../rng.ts';

export interface ParamEntry {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

/** The flat parameter layout. Matrices are [out, in] (PyTorch); modulation rows are shift1, scale1, gate1, shift2, scale2, gate2. */
export function paramLayout(cfg: ModelConfig): ParamEntry[] {
  const { vocabSize: V, dModel: d } = cfg;
  const m = cfg.mlpRatio * d;
  const out: ParamEntry[] = [];
  let offset = 0;
  const add = (name: string, shape: number[]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    out.push({ name, shape, offset, size });
    offset += size;
  };
  add('backbone.vocab_embed.embedding', [V, d]);
  for (let i = 0; i < cfg.nLayers; i++) {
    const p = `backbone.blocks.${i}.`;
    add(p + 'norm1.weight', [d]);
    add(p + 'attn_qkv.weight', [3 * d, d]);
    add(p + 'attn_out.weight', [d, d]);
    add(p + 'norm2.weight', [d]);
    add(p + 'mlp.0.weight', [m, d]);
    add(p + 'mlp.0.bias', [m]);
    add(p + 'mlp.2.weight', [d, m]);
    add(p + 'mlp.2.bias', [d]);
    add(p + 'modulation', [6, d]);
  }
  add('backbone.output_layer.norm_final.weight', [d]);
  add('backbone.output_layer.modulation', [2, d]);
  add('backbone.output_layer.linear.weight', [V, d]);
  add('backbone.output_layer.linear.bias', [V]);
  return out;
}

export function paramCount(cfg: ModelConfig): number {
  const l = paramLayout(cfg);
  const last = l[l.length - 1];
  return last.offset + last.size;
}

/** name -> entry, for code that addresses parameters by name. */
export function layoutMap(cfg: ModelConfig): Map<string, ParamEntry> {
  return new Map(paramLayout(cfg).map((e) => [e.name, e]));
}

/** Deterministic init: N(0, 0.02) matrices and embedding, LN weights 1, biases/modulation 0, zero head. */
export function initParams(cfg: ModelConfig, seed: number): Float32Array {
  const rng = new Rng(seed);
  const layout = paramLayout(cfg);
  const last = layout[layout.length - 1];
  const p = new Float32Array(last.offset + last.size);
  for (const e of layout) {
    if (e.name.endsWith('norm1.weight') || e.name.endsWith('norm2.weight') || e.name.endsWith('norm_final.weight'))
      p.fill(1, e.offset, e.offset + e.size);
    else if (
      e.name.startsWith('backbone.output_layer.linear') ||
      e.name.endsWith('bias') ||
      e.name.endsWith('modulation')
    )
      continue;
    else for (let i = 0; i < e.size; i++) p[e.offset + i] = 0.02 * rng.normal();
  }
  return p;
}

/** Offsets of block i's parameters in the flat vector. */
export function blockOffsets(lm: Map<string, ParamEntry>, i: number) {
  const o = (n: string) => lm.get(`backbone.blocks.${i}.${n}`)!.offset;
  return {
    norm1: o('norm1.weight'),
    qkv: o('attn_qkv.weight'),
    out: o('attn_out.weight'),
    norm2: o('norm2.weight'),
    w0: o('mlp.0.weight'),
    b0: o('mlp.0.bias'),
    w2: o('mlp.2.weight'),
    b2: o('mlp.2.bias'),
    mod: o('modulation'),
  };
}
export type BlockOffsets = ReturnType<typeof blockOffsets>;
