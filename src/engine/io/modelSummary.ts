// What a model is and what distilling it would cost, for the new-run form, without reading its weights (an official
// 169 M model is 676 MB): config.json, and a safetensors header where the config leaves the vocabulary out (an SDTT
// branch) or to notice a truncated download. Accepts what the distillation's teacher accepts: a workbench checkpoint
// folder, a run folder (its latest checkpoint), an official HF MDLM or SDTT folder, or a PyTorch file with its
// config.json beside it. Pure Node (no tfjs, no onnxruntime): the app's main process calls it.
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { DistillStepEstimate, ModelLayout, ModelSummary } from '../../shared/api.ts';
import { ModelConfig, describeConfigError } from '../../shared/config.ts';
import { MODEL_KEYS, MODEL_TYPES, resolveCheckpointDir } from '../../runs/checkpoint.ts';
import { CheckpointError, MAX_HEADER_BYTES, decodeSafetensorsHeader } from '../../runs/safetensors.ts';
import { brokenLinkReason } from '../../runs/safetensorsFile.ts';
import { paramCount } from '../model/paramLayout.ts';
import { trainingStepMemory } from '../onnx/deviceMemory.ts';
import {
  ditName,
  officialConfigProblem,
  officialDims,
  officialFormatOf,
  officialWeightFiles,
  readJsonObjectFile,
} from './officialCheckpoint.ts';
import { officialTokenizer } from './officialImport.ts';
import { officialModelConfig } from './officialLayout.ts';

const F32 = 4;
/** Tokens per graph run of a CPU training step (onnx/trainSession.ts CPU_CHUNK_TOKENS): what activations scale with. */
const CHUNK_TOKENS = 1024;

type Json = Record<string, unknown>;

interface SafetensorsHead {
  shapes: Map<string, number[]>;
  /** Set when the file is shorter than its header says: the data of the last tensors is missing. */
  truncated?: { bytes: number; declared: number };
}

/**
 * Reads and validates a safetensors header the way the loader does, except that missing data at the end is reported
 * (a download cut short) instead of refused: the summary can still say what the model is.
 */
function readSafetensorsHead(file: string): SafetensorsHead {
  const broken = brokenLinkReason(file);
  if (broken) throw new CheckpointError(`${file}: ${broken}`);
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const prefix = Buffer.alloc(8);
    if (readSync(fd, prefix, 0, 8, 0) !== 8)
      throw new CheckpointError(`${file}: ${size} bytes, too short for a safetensors file`);
    const n = prefix.readBigUInt64LE(0);
    if (n > BigInt(MAX_HEADER_BYTES) || 8 + Number(n) > size)
      throw new CheckpointError(`${file}: header length ${n} is out of range for a ${size}-byte file`);
    const head = Buffer.alloc(8 + Number(n));
    prefix.copy(head);
    if (readSync(fd, head, 8, Number(n), 8) !== Number(n)) throw new CheckpointError(`${file}: truncated header`);
    let dataBytes = 0;
    try {
      for (const [k, v] of Object.entries(JSON.parse(head.subarray(8).toString('utf8')) as Json)) {
        const end = (v as { data_offsets?: unknown[] })?.data_offsets?.[1];
        if (k !== '__metadata__' && typeof end === 'number') dataBytes = Math.max(dataBytes, end);
      }
    } catch {
      // decodeSafetensorsHeader names what is wrong with it
    }
    const declared = head.length + dataBytes;
    const { entries } = decodeSafetensorsHeader(head, file, Math.max(size, declared));
    return {
      shapes: new Map(entries.map((e) => [e.name, e.shape])),
      ...(size < declared ? { truncated: { bytes: size, declared } } : {}),
    };
  } finally {
    closeSync(fd);
  }
}

function truncationProblem(file: string, h: SafetensorsHead): string[] {
  return h.truncated
    ? [
        `${basename(file)} is truncated: ${h.truncated.bytes} of the ${h.truncated.declared} bytes its header declares (the download or copy is incomplete)`,
      ]
    : [];
}

/** The safetensors header holding the embedding (its shard, for a sharded folder), or null for PyTorch weights. */
function embeddingHead(path: string, format: ModelLayout): { file: string; head: SafetensorsHead } | null {
  if (format === 'torch-file') return null;
  for (const file of officialWeightFiles(path)) {
    if (!file.endsWith('.safetensors')) return null;
    const head = readSafetensorsHead(file);
    if ([...head.shapes.keys()].some((k) => ditName(k) === 'vocab_embed.embedding')) return { file, head };
  }
  throw new CheckpointError(`${path}: no weight file holds 'vocab_embed.embedding': not an MDLM DIT`);
}

type Summary = { summary: Omit<ModelSummary, 'estimate'>; config: ModelConfig };

function summariseOfficial(path: string, format: ModelLayout): Summary {
  const dir = format === 'torch-file' ? dirname(path) : path;
  const cfgFile = join(dir, 'config.json');
  if (!existsSync(cfgFile))
    throw new CheckpointError(
      `${path}: a PyTorch file alone does not say the model's size; put its config.json (HF "mdlm" or SDTT) next to it`,
    );
  const cfg = readJsonObjectFile(cfgFile, 'config.json');
  const kind: 'hf-mdlm' | 'sdtt-branch' = cfg.model_type === 'mdlm' ? 'hf-mdlm' : 'sdtt-branch';
  const refusal = officialConfigProblem(cfg);
  const problems = refusal ? [refusal] : [];
  const emb = embeddingHead(path, format);
  // An SDTT config leaves the vocabulary to the tokenizer; the embedding's rows say it.
  const dims = officialDims(cfg, cfgFile, () => {
    if (!emb)
      throw new CheckpointError(
        `${path}: an SDTT config does not state the vocabulary and the weights are a PyTorch pickle, which only a full read reveals; import it with \`sdtt import\` and pick the imported folder`,
      );
    const name = [...emb.head.shapes.keys()].find((k) => ditName(k) === 'vocab_embed.embedding')!;
    return emb.head.shapes.get(name)![0]!;
  });
  const parsed = ModelConfig.safeParse(officialModelConfig(dims, 0));
  if (!parsed.success)
    throw new CheckpointError(
      `${cfgFile} does not describe a model the workbench can run: ${describeConfigError(parsed.error, 'config')}`,
    );
  let tokenizer: string | null = null;
  try {
    tokenizer = officialTokenizer(cfg, dims.vocabSize, undefined, path).kind;
  } catch (e) {
    problems.push((e as Error).message);
  }
  if (emb) problems.push(...truncationProblem(emb.file, emb.head));
  const summary = {
    path,
    checkpoint: path,
    layout: format === 'torch-file' ? format : kind,
    ...dimsOf(parsed.data),
    tokenizer,
    problems,
  };
  return { summary, config: parsed.data };
}

function dimsOf(c: ModelConfig) {
  return {
    arch: c.arch,
    params: paramCount(c),
    vocabSize: c.vocabSize,
    seqLen: c.seqLen,
    dModel: c.dModel,
    nLayers: c.nLayers,
    nHeads: c.nHeads,
  };
}

function summariseWorkbench(path: string): Summary {
  const dir = resolveCheckpointDir(path);
  const cfgFile = join(dir, 'config.json');
  const raw = readJsonObjectFile(cfgFile, 'config.json');
  if (!Object.values(MODEL_TYPES).includes(raw.model_type as never))
    throw new CheckpointError(
      `${dir} is not a model folder: its config.json has model_type ${JSON.stringify(raw.model_type)}, neither the workbench's (${Object.values(MODEL_TYPES).join(', ')}) nor an official MDLM / SDTT config`,
    );
  const parsed = ModelConfig.safeParse(Object.fromEntries(Object.entries(raw).filter(([k]) => MODEL_KEYS.includes(k))));
  if (!parsed.success)
    throw new CheckpointError(`invalid checkpoint config: ${describeConfigError(parsed.error, cfgFile)}`);
  const cfg = parsed.data;
  const problems: string[] = [];
  if (cfg.arch !== 'mdlm')
    problems.push('an autoregressive model (a judge) cannot be a distillation teacher: choose an MDLM denoiser');
  // A checkpoint without a recorded tokenizer is read with bytes (data/tokenizers.ts checkpointTokenizer).
  const tok = (raw.tokenizer ?? { kind: 'byte', vocabSize: 258 }) as { kind?: unknown; vocabSize?: unknown };
  const kind = typeof tok.kind === 'string' ? tok.kind : null;
  if (!kind) problems.push('config.json\'s "tokenizer" names no tokenizer kind');
  else if (tok.vocabSize !== cfg.vocabSize)
    problems.push(
      `the checkpoint's ${kind} tokenizer has ${JSON.stringify(tok.vocabSize)} ids but the model ${cfg.vocabSize}`,
    );
  const weights = join(dir, 'model.safetensors');
  if (!existsSync(weights)) throw new CheckpointError(`${dir}: config.json present but no model.safetensors`);
  const head = readSafetensorsHead(weights);
  problems.push(...truncationProblem(weights, head));
  return {
    summary: { path, checkpoint: dir, layout: 'workbench', ...dimsOf(cfg), tokenizer: kind, problems },
    config: cfg,
  };
}

/**
 * One distillation step with `cfg` as the teacher and its copy as the student, on `batchSize` sequences of L tokens.
 *
 * FLOPs. Matmul parameters per token (the embedding is a lookup; norms and modulation are elementwise):
 *   Pmm = layers·(3d² + d² + 2·r·d²) + V·d        (QKV, attention output, the r-times-wide MLP, the output head)
 * A forward costs 2·Pmm per token plus attention's QKᵀ and A·V, 4·L·d per token and layer; a backward twice that:
 *   student forward + backward    6·Pmm·B·L + 12·layers·B·L²·d
 *   teacher, K forwards (K = 2)   K·(2·Pmm·B·L + 4·layers·B·L²·d)
 *
 * Peak host memory: 6 float32 copies of the n parameters (student weights, gradients, AdamW m and v, EMA; the
 * teacher's weights), one chunk's activations and logits (onnx/deviceMemory.ts trainingStepMemory, chunks of whole
 * sequences up to 1024 tokens as the CPU step runs them), and the teacher's target distributions for the masked
 * rows, half of the B·L positions on average: 0.5·B·L·V floats.
 */
export function estimateDistillStep(
  cfg: ModelConfig,
  opts: { batchSize: number; gflops?: number | null; teacherForwards?: number },
): DistillStepEstimate {
  const { dModel: d, nLayers, seqLen: L, vocabSize: V } = cfg;
  const B = opts.batchSize;
  const K = opts.teacherForwards ?? 2;
  const matmulParams = nLayers * (4 * d * d + 2 * cfg.mlpRatio * d * d) + V * d;
  const tokens = B * L;
  const attention = nLayers * tokens * L * d;
  const flops = 6 * matmulParams * tokens + 12 * attention + K * (2 * matmulParams * tokens + 4 * attention);
  const weights = 6 * F32 * paramCount(cfg);
  const chunk = Math.min(B, Math.max(1, Math.floor(CHUNK_TOKENS / L))) * L;
  const step = trainingStepMemory(cfg, chunk);
  const activations = step.activations + step.logits;
  const targets = 0.5 * tokens * V * F32;
  const gflops = opts.gflops && opts.gflops > 0 ? opts.gflops : null;
  return {
    batchSize: B,
    flops,
    peakBytes: weights + activations + targets,
    memory: { weights, activations, targets },
    gflops,
    secondsPerStep: gflops ? flops / (gflops * 1e9) : null,
  };
}

/**
 * What the model at `path` is and what a distillation step with it as the teacher costs at `opts.batchSize`. Throws
 * CheckpointError naming the problem when `path` is not a model the workbench can read; what only stops it from being
 * a teacher as it is (no tokenizer, an AR model, a truncated file) is listed in `problems`.
 */
export function summariseModel(path: string, opts: { batchSize: number; gflops?: number | null }): ModelSummary {
  const abs = resolve(path);
  const broken = brokenLinkReason(abs);
  if (broken) throw new CheckpointError(`${path}: ${broken}`);
  if (!existsSync(abs)) throw new CheckpointError(`${path}: no such file or folder`);
  const format = officialFormatOf(abs);
  if (!format && statSync(abs).isFile())
    throw new CheckpointError(
      `${path} is a file, not a model: choose a checkpoint folder (config.json + model.safetensors), a run folder, or a PyTorch .ckpt/.pt/.pth/.bin file`,
    );
  const { summary, config } = format ? summariseOfficial(abs, format) : summariseWorkbench(abs);
  return { ...summary, estimate: estimateDistillStep(config, opts) };
}
