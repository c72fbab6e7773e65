// Reading official MDLM / SDTT checkpoints (what `sdtt import` and every --model/--teacher/--judge accept):
//   * the Hugging Face layout of kuleshov-group/mdlm-owt: config.json with model_type "mdlm" (hidden_dim, cond_dim,
//     n_blocks, n_heads, model_length, vocab_size, time_conditioning) + model.safetensors, or sharded safetensors with
//     model.safetensors.index.json, or pytorch_model.bin; tensor names `backbone.<DIT name>`;
//   * a jdeschena/sdtt branch: an OmegaConf config.json (model.hidden_size, model.cond_dim, model.length,
//     model.n_blocks, model.n_heads, model.type "ddit-orig", time_conditioning) + model.safetensors, names
//     `backbone.<DIT name>` (`backbone.backbone.` for a student grown from the HF teacher);
//   * a PyTorch file (.ckpt, .pt, .pth, .bin: a Lightning checkpoint's `state_dict` or a bare state dict), read by the
//     restricted unpickler (runs/torchPickle.ts), with the model's config.json next to it or given by --config.
// Names are normalised to the DIT's own (officialLayout.ts), checked name by name and shape by shape, and folded.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { CheckpointError } from '../../runs/safetensors.ts';
import { readSafetensorsFile } from '../../runs/safetensorsFile.ts';
import { readTorchStateDict } from '../../runs/torchPickle.ts';
import type { ModelConfig } from '../../shared/config.ts';
import {
  checkOfficialTensors,
  foldOfficialTensors,
  officialModelConfig,
  type HostTensor32,
  type OfficialDims,
} from './officialLayout.ts';

export type OfficialFormat = 'hf-mdlm' | 'sdtt-branch' | 'torch-file';

const TORCH_EXTENSIONS = new Set(['.ckpt', '.pt', '.pth', '.bin']);

export interface OfficialSource {
  format: OfficialFormat;
  dims: OfficialDims;
  /** The files the weights and config were read from, with their sha256 (what the import records). */
  files: { path: string; bytes: number; sha256: string }[];
  /** The official config.json as it was (for provenance). */
  config: Record<string, unknown>;
  tensors: Map<string, HostTensor32>;
}

/** A JSON object file (config.json, a shard index), or CheckpointError saying why not. */
export function readJsonObjectFile(file: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`${file}: cannot read ${what}: ${(e as Error).message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new CheckpointError(`${file}: ${what} is not an object`);
  return v as Record<string, unknown>;
}

/** What kind of official config a parsed config.json is, or null (ours, or something else). */
function configFormat(cfg: Record<string, unknown>): 'hf-mdlm' | 'sdtt-branch' | null {
  if (cfg.model_type === 'mdlm') return 'hf-mdlm';
  const model = cfg.model as Record<string, unknown> | undefined;
  if (model && typeof model === 'object' && 'hidden_size' in model && 'n_blocks' in model) return 'sdtt-branch';
  return null;
}

/**
 * The official format of `path` (a folder or a PyTorch file), or null when it is not an official checkpoint (for
 * example one of ours). Reads config.json only.
 */
export function officialFormatOf(path: string): OfficialFormat | null {
  const p = resolve(path);
  if (!existsSync(p)) return null;
  if (statSync(p).isFile()) return TORCH_EXTENSIONS.has(extname(p).toLowerCase()) ? 'torch-file' : null;
  const cfgFile = join(p, 'config.json');
  if (!existsSync(cfgFile)) return null;
  try {
    return configFormat(JSON.parse(readFileSync(cfgFile, 'utf8')));
  } catch {
    return null;
  }
}

function int(cfg: Record<string, unknown>, key: string, where: string): number {
  const v = cfg[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
    throw new CheckpointError(`${where}: "${key}" must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Why an official config describes a model the workbench cannot import, or null: time conditioning (the modulation
 * then depends on σ, which our denoiser does not take), another SDTT network type, tied embeddings.
 */
export function officialConfigProblem(cfg: Record<string, unknown>): string | null {
  const tc = cfg.time_conditioning;
  if (tc !== false && tc !== undefined)
    return `the model is time-conditioned (time_conditioning ${JSON.stringify(tc)}): its adaLN modulation depends on the noise level, which the workbench's denoiser does not take as an input; only models trained with time_conditioning false (like mdlm-owt and the SDTT students) can be imported`;
  const m = cfg.model as Record<string, unknown> | undefined;
  if (configFormat(cfg) === 'sdtt-branch' && m) {
    if (m.type !== undefined && m.type !== 'ddit-orig')
      return `model.type ${JSON.stringify(m.type)} is not the original MDLM DIT ("ddit-orig"); only that network can be imported`;
    if (m.tie_word_embeddings === true)
      return 'tied input/output embeddings are not supported (the MDLM DIT unties them)';
  }
  return null;
}

/**
 * Official dims from a config.json (either kind; officialConfigProblem is checked apart). An SDTT config leaves the
 * vocabulary to its tokenizer: `vocabFromTensors` reads it off the embedding.
 */
export function officialDims(
  cfg: Record<string, unknown>,
  where: string,
  vocabFromTensors: () => number,
): OfficialDims {
  const format = configFormat(cfg);
  if (format === 'hf-mdlm') {
    return {
      vocabSize: int(cfg, 'vocab_size', where),
      hiddenDim: int(cfg, 'hidden_dim', where),
      condDim: int(cfg, 'cond_dim', where),
      nBlocks: int(cfg, 'n_blocks', where),
      nHeads: int(cfg, 'n_heads', where),
      modelLength: int(cfg, 'model_length', where),
      dropout: typeof cfg.dropout === 'number' ? cfg.dropout : 0,
    };
  }
  if (format === 'sdtt-branch') {
    const m = cfg.model as Record<string, unknown>;
    return {
      vocabSize: vocabFromTensors(),
      hiddenDim: int(m, 'hidden_size', `${where} model`),
      condDim: int(m, 'cond_dim', `${where} model`),
      nBlocks: int(m, 'n_blocks', `${where} model`),
      nHeads: int(m, 'n_heads', `${where} model`),
      modelLength: int(m, 'length', `${where} model`),
      dropout: typeof m.dropout === 'number' ? m.dropout : 0,
    };
  }
  throw new CheckpointError(
    `${where} is neither an HF MDLM config (model_type "mdlm") nor an SDTT config (model.hidden_size, model.n_blocks)`,
  );
}

/** Official names with their wrapper prefixes removed: `_orig_mod.` (torch.compile), `backbone.` (HF, SDTT, twice). */
export function ditName(name: string): string {
  let n = name.replace(/^_orig_mod\./, '');
  while (n.startsWith('backbone.')) n = n.slice('backbone.'.length);
  return n;
}

function addTensor(out: Map<string, HostTensor32>, name: string, shape: number[], data: unknown, file: string): void {
  if (!(data instanceof Float32Array))
    throw new CheckpointError(`${file}: tensor '${name}' is not floating point (MDLM weights are float32/16)`);
  const n = ditName(name);
  if (out.has(n)) throw new CheckpointError(`${file}: tensors '${name}' and another both map to '${n}'`);
  out.set(n, { shape, data });
}

function safetensorsInto(out: Map<string, HostTensor32>, file: string): void {
  for (const [name, t] of readSafetensorsFile(file).tensors) addTensor(out, name, t.shape, t.data, file);
}

/** model.safetensors, the shards of model.safetensors.index.json (each must exist), or pytorch_model.bin. */
export function officialWeightFiles(dir: string): string[] {
  const single = join(dir, 'model.safetensors');
  if (existsSync(single)) return [single];
  const index = join(dir, 'model.safetensors.index.json');
  if (existsSync(index)) {
    const map = readJsonObjectFile(index, 'the shard index').weight_map;
    if (!map || typeof map !== 'object') throw new CheckpointError(`${index}: no "weight_map"`);
    const shards = [...new Set(Object.values(map as Record<string, unknown>))];
    const bad = shards.find((s) => typeof s !== 'string' || s.includes('/') || s.includes('\\') || s.startsWith('.'));
    if (bad !== undefined) throw new CheckpointError(`${index}: shard name ${JSON.stringify(bad)} is not a file name`);
    const missing = (shards as string[]).filter((s) => !existsSync(join(dir, s)));
    if (missing.length)
      throw new CheckpointError(
        `${index} names shard${missing.length > 1 ? 's' : ''} ${missing.join(', ')}, missing from ${dir}: the download is incomplete`,
      );
    return (shards as string[]).map((s) => join(dir, s));
  }
  const bin = join(dir, 'pytorch_model.bin');
  if (existsSync(bin)) return [bin];
  throw new CheckpointError(
    `${dir} has an official config.json but no weights (model.safetensors, model.safetensors.index.json or pytorch_model.bin)`,
  );
}

function sha256File(file: string): string {
  const h = createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(8 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/**
 * Reads an official checkpoint (folder or PyTorch file) and checks it against its config: every tensor present with
 * its shape, no foreign ones, not time-conditioned. `opts.config` is a config.json for a PyTorch file without one
 * next to it. Throws CheckpointError naming the problem; writes nothing.
 */
export function readOfficialCheckpoint(path: string, opts: { config?: string } = {}): OfficialSource {
  const p = resolve(path);
  const format = officialFormatOf(p);
  if (!format)
    throw new CheckpointError(
      `${path} is not an official MDLM/SDTT checkpoint (a folder with an HF "mdlm" or SDTT config.json, or a .ckpt/.pt/.bin file)`,
    );
  const dir = format === 'torch-file' ? dirname(p) : p;
  const cfgFile = opts.config ? resolve(opts.config) : join(dir, 'config.json');
  if (!existsSync(cfgFile))
    throw new CheckpointError(
      `${path}: a PyTorch file alone does not say the model's sequence length or whether it is time-conditioned; put the model's config.json (HF "mdlm" or SDTT) next to it or pass --config FILE`,
    );
  const config = readJsonObjectFile(cfgFile, 'config.json');
  // Refused before any weights are read (folding needs σ = 0 for every input).
  const problem = officialConfigProblem(config);
  if (problem) throw new CheckpointError(`${cfgFile}: ${problem}`);
  const weightFiles = format === 'torch-file' ? [p] : officialWeightFiles(dir);
  const tensors = new Map<string, HostTensor32>();
  for (const f of weightFiles) {
    if (f.endsWith('.safetensors')) safetensorsInto(tensors, f);
    else for (const [name, t] of readTorchStateDict(f)) addTensor(tensors, name, t.shape, t.data, f);
  }
  const where = format === 'torch-file' ? `${basename(p)} (config ${cfgFile})` : dir;
  const dims = officialDims(config, cfgFile, () => tensors.get('vocab_embed.embedding')?.shape[0] ?? 0);
  if (dims.hiddenDim % dims.nHeads !== 0 || (dims.hiddenDim / dims.nHeads) % 2 !== 0)
    throw new CheckpointError(
      `${cfgFile}: hidden size ${dims.hiddenDim} does not split into ${dims.nHeads} even heads`,
    );
  checkOfficialTensors(tensors, dims, where);
  const files = [cfgFile, ...weightFiles].map((f) => ({ path: f, bytes: statSync(f).size, sha256: sha256File(f) }));
  return { format, dims, files, config, tensors };
}

/** An official checkpoint as our model: config (MASK last, `eosId` from the tokenizer) and folded parameters. */
export function foldOfficial(src: OfficialSource, eosId: number): { config: ModelConfig; params: Float32Array } {
  const config = officialModelConfig(src.dims, eosId);
  return { config, params: foldOfficialTensors(src.tensors, src.dims, config) };
}
