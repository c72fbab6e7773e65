// The corpus's shapes: the split names, the build options and progress events of buildCorpus, and the manifest.json
// it writes (read back by data/shards.ts). Kept apart from the build so readers of a corpus need only these types.
import type { CompactFallback } from './tokenizer.ts';
import type { SourceId, SourceInfo } from './sources.ts';

export const SPLITS = ['train', 'validation', 'test'] as const;
export type Split = (typeof SPLITS)[number];

export interface BuildProgress {
  stage: 'read' | 'clean' | 'split' | 'tokenize' | 'tokenizer' | 'write' | 'verify' | 'done';
  message: string;
  /** 0..1 within the stage, when known. */
  fraction?: number;
}

export interface BuildCorpusOptions {
  seed?: number;
  /** Compact vocabulary size including EOS and MASK (default 4096). Ignored when `tokenizer` is given. */
  vocabSize?: number;
  /** How GPT-2 tokens outside the compact set are split (default 'bpe'; see data/tokenizer.ts). */
  fallback?: CompactFallback;
  /**
   * Use this tokenizer instead of building the compact one from the train split: a resolveTokenizer reference
   * ('gpt2', 'byte', a shipped name such as 'compact-4096', or a tokenizer JSON file).
   */
  tokenizer?: string;
  /** Fractions of each source's characters held out (default 0.05 / 0.05). */
  validationFraction?: number;
  testFraction?: number;
  /** Max tokens per .bin shard (default 4 Mi). */
  shardTokens?: number;
  /** Only the first N files of each source (tests / quick runs). */
  limitFiles?: number;
  /** Sources to include (default all four). */
  sources?: SourceId[];
  /** Paragraphs at least this long are removed when they repeat an earlier paragraph exactly (default 64). */
  dedupMinChars?: number;
  /** Assert decode(encode(doc)) === doc for every document (default true). */
  verifyRoundTrip?: boolean;
  /** Copy tokenizer and manifest to `${assetsDir}/tokenizer/compact-<V>.json` and `${assetsDir}/data/manifest.json`. */
  assetsDir?: string;
  /** node_modules resolution root (default: the project this module belongs to). */
  fromDir?: string;
  onProgress?: (p: BuildProgress) => void;
}

export interface ShardInfo {
  file: string;
  tokens: number;
  sha256: string;
}

export interface SplitInfo {
  documents: number;
  tokens: number;
  gpt2Tokens: number;
  shards: ShardInfo[];
}

export interface SourceManifest extends SourceInfo {
  documents: Record<Split, number>;
  tokens: Record<Split, number>;
  gpt2Tokens: Record<Split, number>;
  characters: number;
}

export interface CorpusManifest {
  format: 'sdtt-token-shards';
  version: 1;
  dtype: 'uint16';
  byteOrder: 'little';
  seed: number;
  /** Documents inside a split are joined as doc EOS doc EOS ... (every document is followed by EOS). */
  separator: 'eos-after-each-document';
  tokenizer: {
    file: string;
    sha256: string;
    kind: string;
    vocabSize: number;
    eosId: number;
    maskId: number;
    builtFrom: 'train' | 'given';
  };
  splits: Record<Split, SplitInfo>;
  sources: SourceManifest[];
  stats: {
    documents: number;
    gpt2Tokens: number;
    tokens: number;
    /** GPT-2 tokens outside the compact set (split into pieces per the tokenizer's fallback). */
    fallbackGpt2Tokens: number;
    fallbackFraction: number;
    fallbackFractionTrain: number;
    /** Single-byte tokens (ids 0..255) in all splits: text spelt byte by byte. */
    byteTokens: number;
    duplicateDocumentsRemoved: number;
    duplicateParagraphsRemoved: number;
    roundTripVerifiedDocuments: number;
    excluded: string[];
  };
  options: {
    vocabSize: number;
    fallback: CompactFallback | null;
    validationFraction: number;
    testFraction: number;
    shardTokens: number;
    dedupMinChars: number;
    limitFiles: number | null;
    sources: SourceId[];
  };
}
