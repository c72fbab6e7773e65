// Reads a model's weights for inference or export from a checkpoint folder, a run folder (its latest checkpoint) or
// a shipped/exported model, with its tokenizer: the one loader behind sample, eval, distill's teacher and judge, Try
// it and export, so what one refuses they all refuse. Pure Node (no tfjs, no onnxruntime): main may use it.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ModelConfig } from '../../shared/config.ts';
import { CheckpointError, latestCheckpoint, type ParamLayout } from '../../runs/checkpoint.ts';
import { loadCheckpoint } from '../../runs/checkpointLoad.ts';
import { brokenLinkReason } from '../../runs/safetensorsFile.ts';
import { paramLayout } from '../model/paramLayout.ts';
import { checkpointTokenizer, type Tokenizer } from '../data/tokenizers.ts';
import { runPaths } from '../../runs/runFolder.ts';

export interface ModelWeights {
  config: ModelConfig;
  layout: ParamLayout;
  tokenizer: Tokenizer;
  checkpointDir: string;
  /** What `params` are: EMA weights (ema.safetensors, or an export whose metadata says so) or the raw parameters. */
  weights: 'ema' | 'raw';
  params: Float32Array;
  /** config.json keys beyond the model's (tokenizer, sdtt provenance, export). */
  extra: Record<string, unknown>;
}

/** Resolves a user-given path to a checkpoint folder (one holding config.json + model.safetensors). */
export function resolveCheckpointDir(path: string): string {
  const p = resolve(path);
  const broken = brokenLinkReason(p);
  if (broken) throw new CheckpointError(`${path} is not a model folder: ${broken}`);
  if (existsSync(join(p, 'config.json'))) return p;
  const ckDir = existsSync(runPaths.checkpoints(p)) ? runPaths.checkpoints(p) : p;
  let latest: ReturnType<typeof latestCheckpoint>;
  try {
    latest = latestCheckpoint(ckDir);
  } catch (e) {
    throw new CheckpointError(
      `${path}: cannot list ${ckDir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): not a checkpoint folder or a run folder`,
    );
  }
  if (latest) return latest.dir;
  throw new CheckpointError(
    `${path} is neither a checkpoint folder (config.json + model.safetensors) nor a run folder with checkpoints`,
  );
}

/**
 * Loads and validates (loadCheckpoint: names, shapes, dtypes, finite values) the weights `opts.weights` asks for,
 * by default EMA when the folder has them. The tokenizer must fit the model's vocabulary.
 */
export function readModelWeights(path: string, opts: { weights?: 'ema' | 'raw' } = {}): ModelWeights {
  const checkpointDir = resolveCheckpointDir(path);
  const ck = loadCheckpoint(checkpointDir, { layoutFor: paramLayout });
  // An export holds one set of weights in model.safetensors and says in its metadata which.
  const paramsAre = ck.modelMetadata.weights === 'ema' ? 'ema' : 'raw';
  const weights = opts.weights ?? (ck.ema ? 'ema' : paramsAre);
  let params: Float32Array;
  if (weights === 'ema') {
    if (!ck.ema && paramsAre !== 'ema')
      throw new CheckpointError(`${checkpointDir} has no EMA weights; use --weights raw`);
    params = ck.ema ?? ck.params;
  } else {
    if (paramsAre === 'ema')
      throw new CheckpointError(
        `${checkpointDir} holds only EMA weights (its model.safetensors says so); use --weights ema`,
      );
    params = ck.params;
  }
  const tokenizer = checkpointTokenizer(ck.extraConfig);
  if (tokenizer.vocabSize !== ck.config.vocabSize) {
    throw new CheckpointError(
      `${checkpointDir}: the checkpoint's ${tokenizer.kind} tokenizer has ${tokenizer.vocabSize} ids but the model has vocabSize ${ck.config.vocabSize}`,
    );
  }
  return { config: ck.config, layout: ck.layout, tokenizer, checkpointDir, weights, params, extra: ck.extraConfig };
}
