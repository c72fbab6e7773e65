// Resolves a tokenizer reference ('auto', 'byte', 'gpt2', a shipped name such as 'compact-4096', or a file path) to
// a Tokenizer. Checkpoints embed the tokenizer's JSON in config.json, so a model never depends on this name later.
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ByteTokenizer, type Tokenizer } from './tokenizer.ts';
import { Gpt2Tokenizer } from './gpt2Tokenizer.ts';
import { loadTokenizer, sameTokenizer, tokenizerFromJSON } from './tokenizerFiles.ts';
import { openTokenSource } from './shards.ts';

export { sameTokenizer, type Tokenizer };

const ASSETS = resolve(dirname(fileURLToPath(import.meta.url)), '../../../assets');

/** The tokenizers that need no file, by name (the shipped ones are files in assets/tokenizer/). */
const BUILT_IN_TOKENIZERS = new Map<string, () => Tokenizer>([
  ['byte', () => new ByteTokenizer()],
  ['gpt2', () => new Gpt2Tokenizer()],
]);

/** The shipped tokenizers by name. */
export function shippedTokenizerFile(name: string): string | undefined {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) return undefined; // a name, never a path out of assets/
  const file = join(ASSETS, 'tokenizer', `${name}.json`);
  return existsSync(file) ? file : undefined;
}

/** True when resolveTokenizer reads `ref` as a name ('auto', built-in or shipped), not as a file path. */
export function isTokenizerName(ref: string): boolean {
  return ref === 'auto' || BUILT_IN_TOKENIZERS.has(ref) || shippedTokenizerFile(ref) !== undefined;
}

/**
 * 'auto' = the tokenizer a shard folder was written with, else bytes. Naming one that disagrees with a shard
 * folder is refused later by openTokenSource, with both named.
 */
export function resolveTokenizer(ref: string, dataPath?: string): Tokenizer {
  if (ref === 'auto') {
    if (dataPath && existsSync(dataPath) && statSync(dataPath).isDirectory())
      return openTokenSource(dataPath).tokenizer;
    return new ByteTokenizer();
  }
  const builtIn = BUILT_IN_TOKENIZERS.get(ref);
  if (builtIn) return builtIn();
  const shipped = shippedTokenizerFile(ref);
  if (shipped) return loadTokenizer(shipped);
  if (existsSync(ref)) return loadTokenizer(ref);
  throw new Error(
    `unknown tokenizer "${ref}": use auto, byte, gpt2, a shipped name (e.g. compact-4096) or a tokenizer JSON file`,
  );
}

/** The tokenizer embedded in a checkpoint's config.json (`tokenizer` key); bytes for checkpoints without one. */
export function checkpointTokenizer(extraConfig: Record<string, unknown>): Tokenizer {
  const j = extraConfig.tokenizer;
  if (j === undefined) return new ByteTokenizer();
  try {
    return tokenizerFromJSON(j);
  } catch (e) {
    throw new Error(`checkpoint config.json has an unusable "tokenizer": ${(e as Error).message}`);
  }
}
