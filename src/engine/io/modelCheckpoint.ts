// Reads a model's weights for inference or export from a checkpoint folder, a run folder (its latest checkpoint) or
// a shipped/exported model, with its tokenizer: the one loader behind sample, eval, distill's teacher and judge, Try
// it and export, so what one refuses they all refuse. Pure Node (no tfjs, no onnxruntime): main may use it.
import { resolve } from 'node:path';
import type { ModelConfig } from '../../shared/config.ts';
import { CheckpointError, resolveCheckpointDir, type ParamLayout } from '../../runs/checkpoint.ts';
import { loadCheckpoint } from '../../runs/checkpointLoad.ts';
import { paramLayout } from '../model/paramLayout.ts';
import { checkpointTokenizer, type Tokenizer } from '../data/tokenizers.ts';
import { importedModel, officialFormatOf } from './officialImport.ts';

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

/**
 * Loads and validates (loadCheckpoint: names, shapes, dtypes, finite values) the weights `opts.weights` asks for,
 * by default EMA when the folder has them. The tokenizer must fit the model's vocabulary. An official MDLM / SDTT
 * checkpoint (officialImport.ts) is imported in memory: it holds one set of weights, read as they are.
 */
export function readModelWeights(path: string, opts: { weights?: 'ema' | 'raw' } = {}): ModelWeights {
  if (officialFormatOf(path)) {
    if (opts.weights === 'ema')
      throw new CheckpointError(`${path} is an official checkpoint with one set of weights; use --weights raw`);
    // Only the folded parameters are kept: the official tensors (as large again) are garbage once folded.
    const { config, params, tokenizer, extra } = importedModel(path);
    return {
      config,
      layout: paramLayout(config),
      tokenizer,
      checkpointDir: resolve(path),
      weights: 'raw',
      params,
      extra,
    };
  }
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
