// `sdtt import` and the on-the-fly import behind --model / --teacher / --judge: an official MDLM / SDTT checkpoint
// (officialCheckpoint.ts) becomes our model, with a tokenizer (GPT-2 for the 50258-id vocabulary of every official
// OpenWebText model; the one an official-layout export of ours recorded; or the one the user names), and a config
// that records where it came from (the source files' sha256). Nothing is written unless everything checked out.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { FORMAT_TAG, saveCheckpoint, CheckpointError } from '../../runs/checkpoint.ts';
import type { ModelConfig } from '../../shared/config.ts';
import { paramLayout } from '../model/paramLayout.ts';
import { resolveTokenizer, type Tokenizer } from '../data/tokenizers.ts';
import { tokenizerFromJSON } from '../data/tokenizerFiles.ts';
// GPT-2 + MASK: the vocabulary of every official OpenWebText MDLM / SDTT model.
import { GPT2_MDLM_VOCAB_SIZE } from '../data/gpt2Tokenizer.ts';
import { foldOfficial, officialFormatOf, readOfficialCheckpoint, type OfficialSource } from './officialCheckpoint.ts';

/** config.json key under which an official-layout export of ours keeps its tokenizer (the HF config allows extras). */
export const EXPORTED_TOKENIZER_KEY = 'sdtt_tokenizer';

export interface ImportOptions {
  /** A tokenizer reference (resolveTokenizer: gpt2, byte, compact-4096, a JSON file); default: see pickTokenizer. */
  tokenizer?: string;
  /** config.json for a PyTorch file that has none next to it. */
  config?: string;
}

export interface ImportedModel {
  config: ModelConfig;
  params: Float32Array;
  tokenizer: Tokenizer;
  /** config.json extras: `tokenizer` and `import` (provenance). */
  extra: Record<string, unknown>;
  source: OfficialSource;
}

export { officialFormatOf };

/**
 * The tokenizer of an official model with vocabulary V: `ref` when given, else the one an official-layout export of
 * ours recorded in config.json, else GPT-2's for 50258 ids. Throws CheckpointError when none is known or it does not
 * fit (MASK must be the last id, as in the official code).
 */
export function officialTokenizer(
  config: Record<string, unknown>,
  V: number,
  ref: string | undefined,
  where: string,
): Tokenizer {
  let tok: Tokenizer;
  if (ref) tok = resolveTokenizer(ref);
  else if (config[EXPORTED_TOKENIZER_KEY] !== undefined) {
    try {
      tok = tokenizerFromJSON(config[EXPORTED_TOKENIZER_KEY]);
    } catch (e) {
      throw new CheckpointError(
        `${where}: config.json's "${EXPORTED_TOKENIZER_KEY}" is unusable: ${(e as Error).message}`,
      );
    }
  } else if (V === GPT2_MDLM_VOCAB_SIZE) tok = resolveTokenizer('gpt2');
  else
    throw new CheckpointError(
      `${where}: a vocabulary of ${V} ids is not GPT-2's (${GPT2_MDLM_VOCAB_SIZE} with MASK) and config.json records no tokenizer: pass --tokenizer byte, compact-4096 or a tokenizer JSON file (to use it as a teacher: sdtt import <folder> --out DIR --tokenizer NAME, then pick the imported folder)`,
    );
  if (tok.vocabSize !== V || tok.maskId !== V - 1)
    throw new CheckpointError(
      `${where}: the ${tok.kind} tokenizer (${tok.vocabSize} ids, MASK ${tok.maskId}) does not fit the model (${V} ids, MASK ${V - 1} as in the official code)`,
    );
  return tok;
}

function firstNonFinite(p: Float32Array): number {
  for (let i = 0; i < p.length; i++) if (!Number.isFinite(p[i])) return i;
  return -1;
}

/** Reads, checks and folds an official checkpoint into our model, in memory. Throws CheckpointError. */
export function importedModel(path: string, opts: ImportOptions = {}): ImportedModel {
  const source = readOfficialCheckpoint(path, { config: opts.config });
  const where = resolve(path);
  const tokenizer = officialTokenizer(source.config, source.dims.vocabSize, opts.tokenizer, where);
  const { config, params } = foldOfficial(source, tokenizer.eosId);
  const bad = firstNonFinite(params);
  if (bad >= 0)
    throw new CheckpointError(
      `${where}: non-finite weights (value ${bad} of ${params.length} after folding); not imported`,
    );
  const extra = {
    tokenizer: tokenizer.toJSON(),
    import: {
      format: source.format,
      source: basename(where),
      files: source.files.map((f) => ({ name: basename(f.path), bytes: f.bytes, sha256: f.sha256 })),
      condDim: source.dims.condDim,
      importer: FORMAT_TAG,
      importedAt: new Date().toISOString(),
    },
  };
  return { config, params, tokenizer, extra, source };
}

/**
 * Imports `path` into the new (or empty) workbench checkpoint folder `out`, atomically (saveCheckpoint): on any refusal
 * or write error nothing is left at `out`. Returns what was imported.
 */
export function importOfficialCheckpoint(path: string, out: string, opts: ImportOptions = {}): ImportedModel {
  const dir = resolve(out);
  if (existsSync(dir) && (!statSync(dir).isDirectory() || readdirSync(dir).length))
    throw new CheckpointError(`${out} exists and is not an empty folder; import never overwrites: choose a new folder`);
  const m = importedModel(path, opts);
  saveCheckpoint(dir, { config: m.config, layout: paramLayout(m.config), params: m.params, extraConfig: m.extra });
  return m;
}
