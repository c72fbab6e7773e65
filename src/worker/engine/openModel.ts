// Opens a model for inference from a checkpoint folder, a run folder (its latest checkpoint) or a shipped model,
// with its tokenizer, on the chosen backend. The one way CLI commands and the worker load weights to sample or score.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BackendName, ModelConfig } from '../../shared/config.ts';
import { initBackend } from './backend.ts';
import { latestCheckpoint, loadCheckpoint } from './checkpoint.ts';
import { createInferenceModel, paramLayout } from './model.ts';
import { checkpointTokenizer, type Tokenizer } from './tokenizers.ts';

export interface OpenedModel {
  config: ModelConfig;
  tokenizer: Tokenizer;
  model: ReturnType<typeof createInferenceModel>;
  checkpointDir: string;
  weights: 'ema' | 'raw';
  backend: string;
  device: string;
  extra: Record<string, unknown>;
}

/** Resolves a user-given path to a checkpoint folder (one holding config.json + model.safetensors). */
export function resolveCheckpointDir(path: string): string {
  const p = resolve(path);
  if (existsSync(join(p, 'config.json'))) return p;
  const ckDir = existsSync(join(p, 'checkpoints')) ? join(p, 'checkpoints') : p;
  const latest = latestCheckpoint(ckDir);
  if (latest) return latest.dir;
  throw new Error(`${path} is neither a checkpoint folder (config.json + model.safetensors) nor a run folder with checkpoints`);
}

export async function openModel(path: string, opts: { backend?: BackendName; weights?: 'ema' | 'raw' } = {}): Promise<OpenedModel> {
  const { backend, device } = await initBackend(opts.backend ?? 'auto');
  const checkpointDir = resolveCheckpointDir(path);
  const ck = loadCheckpoint(checkpointDir, { layoutFor: paramLayout });
  const weights = opts.weights ?? (ck.ema ? 'ema' : 'raw');
  if (weights === 'ema' && !ck.ema) throw new Error(`${checkpointDir} has no EMA weights; use --weights raw`);
  const params = weights === 'ema' ? ck.ema! : ck.params;
  const extra = ck.extraConfig;
  const tokenizer = checkpointTokenizer(extra);
  if (tokenizer.vocabSize !== ck.config.vocabSize) {
    throw new Error(`the checkpoint's ${tokenizer.kind} tokenizer has ${tokenizer.vocabSize} ids but the model has vocabSize ${ck.config.vocabSize}`);
  }
  return { config: ck.config, tokenizer, model: createInferenceModel(ck.config, params), checkpointDir, weights, backend, device, extra };
}
