// Tokenizer files: the canonical text a tokenizer is written and hashed as, loading any kind from its JSON or a
// file (optionally sha256-checked), the path of the shipped compact tokenizer, and tokenizer equality. Kept apart
// from tokenizer.ts and gpt2Tokenizer.ts, which hold the tokenizers themselves.
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { ByteTokenizer, CompactTokenizer, DEFAULT_COMPACT_SIZE, type Tokenizer } from './tokenizer.ts';
import { Gpt2Tokenizer } from './gpt2Tokenizer.ts';

/** Canonical file text of a tokenizer (what is written to disk and hashed): compact JSON, one trailing newline. */
export function tokenizerFileText(t: Tokenizer): string {
  return JSON.stringify(t.toJSON()) + '\n';
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Builds any kind of tokenizer from its JSON. */
export function tokenizerFromJSON(j: unknown): Tokenizer {
  const kind = (j as { kind?: string })?.kind;
  if (kind === 'byte') return ByteTokenizer.fromJSON(j);
  if (kind === 'compact-gpt2') return CompactTokenizer.fromJSON(j);
  if (kind === 'gpt2') return Gpt2Tokenizer.fromJSON(j);
  throw new Error(`unknown tokenizer kind ${JSON.stringify(kind)}`);
}

/** Loads any kind of tokenizer from a file; with `sha256`, verifies the file first. */
export function loadTokenizer(file: string, sha256?: string): Tokenizer {
  const text = readFileSync(file);
  if (sha256 && sha256Hex(text) !== sha256) throw new Error(`tokenizer ${file}: sha256 mismatch (expected ${sha256})`);
  return tokenizerFromJSON(JSON.parse(text.toString('utf8')));
}

/** Path of the shipped compact tokenizer (assets/tokenizer/compact-<size>.json), resolved from this source file. */
export function shippedTokenizerPath(size = DEFAULT_COMPACT_SIZE): string {
  return new URL(`../../../assets/tokenizer/compact-${size}.json`, import.meta.url).pathname;
}

/** True when two tokenizers map text to the same ids (their canonical JSON is equal). */
export function sameTokenizer(a: Tokenizer, b: Tokenizer): boolean {
  return JSON.stringify(a.toJSON()) === JSON.stringify(b.toJSON());
}
