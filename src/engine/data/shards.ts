// Token sources for training and evaluation: a shard directory written by buildCorpus (manifest.json + uint16 LE
// .bin shards + tokenizer.json), or a plain UTF-8 text file tokenized on the fly (last ~5% of tokens = validation).
import { readFileSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { ByteTokenizer, type Tokenizer } from './tokenizer.ts';
import { loadTokenizer, sameTokenizer, sha256Hex } from './tokenizerFiles.ts';
import type { CorpusManifest, Split } from './corpusManifest.ts';
import type { TokenArray } from './batches.ts';

export interface TokenSource {
  kind: 'shards' | 'text';
  path: string;
  tokenizer: Tokenizer;
  /** Splits this source has ('train' and 'validation' always; 'test' only for shard directories). */
  splits: Split[];
  /** Token ids of one split (throws for a split the source does not have). Cached after the first call. */
  split(name: Split): TokenArray;
  /** The corpus manifest (shard directories only). */
  manifest?: CorpusManifest;
}

export interface OpenTokenSourceOptions {
  /** Tokenizer for text files (default ByteTokenizer). For shard directories it must match the shipped one. */
  tokenizer?: Tokenizer;
  /** Fraction of a text file's tokens held out as validation (default 0.05). */
  validationFraction?: number;
  /** Verify shard and tokenizer sha256 against the manifest (default true). */
  verify?: boolean;
}

/** Opens a shard directory or a UTF-8 text file. The second argument may be a tokenizer or an options object. */
export function openTokenSource(path: string, tokenizerOrOpts?: Tokenizer | OpenTokenSourceOptions): TokenSource {
  const opts: OpenTokenSourceOptions =
    tokenizerOrOpts && 'encode' in tokenizerOrOpts ? { tokenizer: tokenizerOrOpts } : (tokenizerOrOpts ?? {});
  if (!existsSync(path)) throw new Error(`data: ${path} does not exist`);
  if (statSync(path).isDirectory()) return openShardDir(path, opts);
  return openTextFile(path, opts);
}

function openShardDir(dir: string, opts: OpenTokenSourceOptions): TokenSource {
  const mpath = join(dir, 'manifest.json');
  if (!existsSync(mpath)) throw new Error(`data: ${dir} is a directory without manifest.json`);
  const manifest = JSON.parse(readFileSync(mpath, 'utf8')) as CorpusManifest;
  if (manifest.format !== 'sdtt-token-shards' || manifest.dtype !== 'uint16' || manifest.byteOrder !== 'little') {
    throw new Error(`data: ${mpath} is not an sdtt uint16 little-endian shard manifest`);
  }
  const verify = opts.verify !== false;
  const shipped = loadTokenizer(join(dir, manifest.tokenizer.file), verify ? manifest.tokenizer.sha256 : undefined);
  if (opts.tokenizer && !sameTokenizer(opts.tokenizer, shipped)) {
    throw new Error(
      `data: the given tokenizer (${opts.tokenizer.kind}, vocab ${opts.tokenizer.vocabSize}) differs from the one the shards in ${dir} were written with (${shipped.kind}, vocab ${shipped.vocabSize})`,
    );
  }
  const cache = new Map<Split, Uint16Array>();
  return {
    kind: 'shards',
    path: dir,
    tokenizer: shipped,
    splits: ['train', 'validation', 'test'],
    manifest,
    split(name: Split): Uint16Array {
      const hit = cache.get(name);
      if (hit) return hit;
      const info = manifest.splits[name];
      if (!info) throw new Error(`data: ${dir} has no split ${name}`);
      const out = new Uint16Array(info.tokens);
      let k = 0;
      for (const sh of info.shards) {
        const bytes = readFileSync(join(dir, sh.file));
        if (bytes.length !== sh.tokens * 2)
          throw new Error(`data: ${sh.file} has ${bytes.length} bytes, expected ${sh.tokens * 2}`);
        if (verify && sha256Hex(bytes) !== sh.sha256) throw new Error(`data: ${sh.file} sha256 mismatch`);
        const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        for (let i = 0; i < sh.tokens; i++) out[k++] = dv.getUint16(2 * i, true);
      }
      if (k !== info.tokens) throw new Error(`data: split ${name} has ${k} tokens, manifest says ${info.tokens}`);
      const v = shipped.vocabSize;
      for (let i = 0; i < out.length; i++)
        if (out[i] >= v) throw new Error(`data: split ${name} token ${i} = ${out[i]} >= vocab ${v}`);
      cache.set(name, out);
      return out;
    },
  };
}

function openTextFile(path: string, opts: OpenTokenSourceOptions): TokenSource {
  const tokenizer = opts.tokenizer ?? new ByteTokenizer();
  const buf = readFileSync(path);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    throw new Error(`data: ${path} is not valid UTF-8 text`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const all = tokenizer.encode(text.replace(/\r\n?/g, '\n'));
  const frac = opts.validationFraction ?? 0.05;
  const cut = Math.max(1, Math.min(all.length - 1, Math.floor(all.length * (1 - frac))));
  if (all.length < 2) throw new Error(`data: ${path} is too short (${all.length} tokens)`);
  const parts: Partial<Record<Split, Int32Array>> = { train: all.subarray(0, cut), validation: all.subarray(cut) };
  return {
    kind: 'text',
    path,
    tokenizer,
    splits: ['train', 'validation'],
    split(name: Split): Int32Array {
      const p = parts[name];
      if (!p)
        throw new Error(
          `data: text file ${path} has no ${name} split (only train and validation: the last ${Math.round(frac * 100)}% of tokens)`,
        );
      return p;
    },
  };
}
