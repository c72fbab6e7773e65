// Tokenizers. Three kinds share one interface:
//
// * CompactTokenizer: GPT-2 BPE (gpt-tokenizer's r50k_base, identical to GPT-2) remapped onto a small vocabulary.
//   Compact ids 0..255 are the 256 single-byte GPT-2 tokens, ordered by BYTE VALUE (compact id b = byte b), then
//   the most frequent other GPT-2 tokens of the training split, then EOS (vocabSize-2), then MASK (vocabSize-1).
//   A GPT-2 token outside the compact set is split into compact pieces, so nothing is ever unknown and
//   decode(encode(text)) === text for every well-formed string (lone UTF-16 surrogates cannot round-trip).
//   How it is split is the tokenizer's `fallback`: 'bytes' (version 1 files) writes its bytes; 'bpe' (version 2,
//   what `sdtt data build` writes) re-runs GPT-2's merges on its bytes, allowing only merges whose result is in the
//   compact set. Why: with byte fallback half of the corpus' 4096-id tokens were single bytes (rare words spelt
//   letter by letter), which an MDLM samples as scrambled letters; 'bpe' needs 28 % fewer tokens for the same text.
// * ByteTokenizer: ids 0..255 = bytes of the UTF-8 text, 256 = EOS, 257 = MASK (vocabSize 258).
// * Gpt2Tokenizer (gpt2Tokenizer.ts): full GPT-2, ids 0..50255 = GPT-2's BPE tokens, 50256 = EOS (<|endoftext|>),
//   50257 = MASK (vocabSize 50258): the vocabulary of the official MDLM / SDTT checkpoints.
//
// Rendering conventions (every kind):
// * encode() never produces EOS or MASK; the literal text "<|endoftext|>" is encoded as ordinary text.
// * decode() renders EOS as "\n\n" (documents inside a corpus use "\n" between paragraphs, so a blank line in
//   decoded output is a document boundary) and MASK as "░" (U+2591), for UI display. Both are overridable.
// * decodeStrict() refuses MASK (throws) and out-of-range ids; use it wherever the text must be real text.
// * Byte sequences that are not valid UTF-8 (possible in model samples) decode to U+FFFD.
//
// Writing, hashing and loading tokenizer files: data/tokenizerFiles.ts.
import { readFileSync } from 'node:fs';
import { GPT2_EOT, GPT2_VOCAB_SIZE, gpt2ByteTokenIds, gpt2Encode, gpt2IdByBytes, gpt2TokenBytes } from './gpt2.ts';
import type { Gpt2TokenizerJSON } from './gpt2Tokenizer.ts';

export const MASK_PLACEHOLDER = '\u2591';
export const EOS_TEXT = '\n\n';
export const DEFAULT_COMPACT_SIZE = 4096;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

export interface DecodeOptions {
  /** Text for EOS (default "\n\n"). */
  eos?: string;
  /** Text for MASK (default "░"). */
  mask?: string;
}

export interface CompactTokenizerJSON {
  format: 'sdtt-tokenizer';
  kind: 'compact-gpt2';
  version: 1 | 2;
  base: 'gpt2-r50k_base';
  vocabSize: number;
  eosId: number;
  maskId: number;
  /** GPT-2 ids in compact order for compact ids 0..vocabSize-3 (the first 256 are the single-byte tokens). */
  gpt2Ids: number[];
  /** How a token outside the set is split (absent in version 1 files: 'bytes'). */
  fallback?: CompactFallback;
}

export type CompactFallback = 'bytes' | 'bpe';

export interface ByteTokenizerJSON {
  format: 'sdtt-tokenizer';
  kind: 'byte';
  version: 1;
  vocabSize: 258;
  eosId: 256;
  maskId: 257;
}

export type TokenizerJSON = CompactTokenizerJSON | ByteTokenizerJSON | Gpt2TokenizerJSON;

export interface Tokenizer {
  readonly kind: 'compact-gpt2' | 'byte' | 'gpt2';
  readonly vocabSize: number;
  readonly eosId: number;
  readonly maskId: number;
  encode(text: string): Int32Array;
  decode(ids: ArrayLike<number>, opts?: DecodeOptions): string;
  /** Like decode, but throws on MASK or an id outside the vocabulary. EOS is rendered as "\n\n". */
  decodeStrict(ids: ArrayLike<number>): string;
  /** Display text of one token (for token-level UI); "<eos>" / "░" for the specials. */
  tokenText(id: number): string;
  toJSON(): TokenizerJSON;
}

// ---------------------------------------------------------------------------------------------------------------
// Shared decoding (every kind: gpt2Tokenizer.ts uses these too)

/**
 * Concatenates the bytes of runs of ordinary tokens and UTF-8-decodes each run as a whole (a character may span
 * tokens), rendering EOS and MASK between runs; `bytesOf` returns null for an id outside the vocabulary.
 */
export function decodeTokenBytes(
  ids: ArrayLike<number>,
  bytesOf: (id: number) => Uint8Array | null,
  eosId: number,
  maskId: number,
  eos: string,
  mask: string,
  strict: boolean,
): string {
  let buf = new Uint8Array(Math.max(16, ids.length * 4));
  let n = 0;
  let out = '';
  const flush = () => {
    if (n > 0) out += utf8Decoder.decode(buf.subarray(0, n));
    n = 0;
  };
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id === eosId) {
      flush();
      out += eos;
      continue;
    }
    if (id === maskId) {
      if (strict) throw new Error(`decodeStrict: MASK (id ${maskId}) at position ${i}`);
      flush();
      out += mask;
      continue;
    }
    const b = bytesOf(id);
    if (!b) {
      if (strict) throw new Error(`decodeStrict: id ${id} at position ${i} is outside the vocabulary`);
      flush();
      out += '\uFFFD';
      continue;
    }
    if (n + b.length > buf.length) {
      const nb = new Uint8Array((n + b.length) * 2);
      nb.set(buf.subarray(0, n));
      buf = nb;
    }
    buf.set(b, n);
    n += b.length;
  }
  flush();
  return out;
}

/** Display text of one token: "<eos>", "░", or its bytes as UTF-8 (U+FFFD for a partial character). */
export function tokenDisplayText(tok: Tokenizer, id: number, bytes: Uint8Array | null): string {
  if (id === tok.eosId) return '<eos>';
  if (id === tok.maskId) return MASK_PLACEHOLDER;
  if (!bytes) return '\uFFFD';
  return utf8Decoder.decode(bytes);
}

// ---------------------------------------------------------------------------------------------------------------
// ByteTokenizer

const SINGLE_BYTES: Uint8Array[] = Array.from({ length: 256 }, (_, b) => Uint8Array.of(b));

export class ByteTokenizer implements Tokenizer {
  readonly kind = 'byte' as const;
  readonly vocabSize = 258;
  readonly eosId = 256;
  readonly maskId = 257;

  static load(file: string): ByteTokenizer {
    return ByteTokenizer.fromJSON(JSON.parse(readFileSync(file, 'utf8')));
  }

  static fromJSON(j: unknown): ByteTokenizer {
    const o = j as Partial<ByteTokenizerJSON>;
    if (o?.kind !== 'byte') throw new Error('not a byte tokenizer JSON');
    return new ByteTokenizer();
  }

  encode(text: string): Int32Array {
    return Int32Array.from(utf8.encode(text));
  }

  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    return decodeTokenBytes(
      ids,
      (id) => (id >= 0 && id < 256 ? SINGLE_BYTES[id] : null),
      256,
      257,
      opts.eos ?? EOS_TEXT,
      opts.mask ?? MASK_PLACEHOLDER,
      false,
    );
  }

  decodeStrict(ids: ArrayLike<number>): string {
    return decodeTokenBytes(
      ids,
      (id) => (id >= 0 && id < 256 ? SINGLE_BYTES[id] : null),
      256,
      257,
      EOS_TEXT,
      MASK_PLACEHOLDER,
      true,
    );
  }

  tokenText(id: number): string {
    return tokenDisplayText(this, id, id >= 0 && id < 256 ? SINGLE_BYTES[id] : null);
  }

  toJSON(): ByteTokenizerJSON {
    return { format: 'sdtt-tokenizer', kind: 'byte', version: 1, vocabSize: 258, eosId: 256, maskId: 257 };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// CompactTokenizer

export class CompactTokenizer implements Tokenizer {
  readonly kind = 'compact-gpt2' as const;
  readonly vocabSize: number;
  readonly eosId: number;
  readonly maskId: number;
  /** GPT-2 id for each compact id < eosId. */
  readonly gpt2Ids: Int32Array;
  readonly fallback: CompactFallback;
  /** Compact id for each GPT-2 id, or -1 when the token is split into pieces. */
  private readonly toCompact: Int32Array;
  private readonly bytes: Uint8Array[];
  /** Pieces of each out-of-set GPT-2 token met so far (the split is a pure function of the token). */
  private readonly pieceCache = new Map<number, Int32Array>();

  private constructor(gpt2Ids: number[], fallback: CompactFallback) {
    this.fallback = fallback;
    const byteIds = gpt2ByteTokenIds();
    for (let b = 0; b < 256; b++) {
      if (gpt2Ids[b] !== byteIds[b])
        throw new Error(`compact id ${b} must be the GPT-2 byte token ${byteIds[b]}, got ${gpt2Ids[b]}`);
    }
    this.vocabSize = gpt2Ids.length + 2;
    if (this.vocabSize > 65536) throw new Error('compact vocabulary must fit uint16 (<= 65536 ids)');
    this.eosId = this.vocabSize - 2;
    this.maskId = this.vocabSize - 1;
    this.gpt2Ids = Int32Array.from(gpt2Ids);
    this.toCompact = new Int32Array(GPT2_VOCAB_SIZE).fill(-1);
    const all = gpt2TokenBytes();
    this.bytes = [];
    for (let c = 0; c < gpt2Ids.length; c++) {
      const g = gpt2Ids[c];
      if (!Number.isInteger(g) || g < 0 || g >= GPT2_EOT) throw new Error(`invalid GPT-2 id ${g} at compact id ${c}`);
      if (this.toCompact[g] >= 0) throw new Error(`GPT-2 id ${g} appears twice`);
      this.toCompact[g] = c;
      this.bytes.push(all[g]);
    }
  }

  /**
   * Builds the compact vocabulary from GPT-2 token counts of the training split (index = GPT-2 id, or a Map).
   * Keeps the 256 byte tokens, then the `size - 258` most frequent other tokens (ties: lower GPT-2 id first).
   */
  static build(
    counts: ArrayLike<number> | Map<number, number>,
    size = DEFAULT_COMPACT_SIZE,
    fallback: CompactFallback = 'bpe',
  ): CompactTokenizer {
    if (!Number.isInteger(size) || size < 258 || size > 65536)
      throw new Error(`compact size must be an integer in [258, 65536], got ${size}`);
    const byteIds = gpt2ByteTokenIds();
    const isByte = new Uint8Array(GPT2_VOCAB_SIZE);
    for (const g of byteIds) isByte[g] = 1;
    const cand: [number, number][] = [];
    const push = (g: number, c: number) => {
      if (g >= 0 && g < GPT2_EOT && !isByte[g] && c > 0) cand.push([g, c]);
    };
    if (counts instanceof Map) for (const [g, c] of counts) push(g, c);
    else for (let g = 0; g < counts.length; g++) push(g, counts[g]);
    cand.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    const ids = Array.from(byteIds);
    for (let i = 0; i < cand.length && ids.length < size - 2; i++) ids.push(cand[i][0]);
    return new CompactTokenizer(ids, fallback);
  }

  static fromJSON(j: unknown): CompactTokenizer {
    const o = j as Partial<CompactTokenizerJSON>;
    if (o?.format !== 'sdtt-tokenizer' || o.kind !== 'compact-gpt2' || !Array.isArray(o.gpt2Ids))
      throw new Error('not a compact GPT-2 tokenizer JSON');
    if (o.version !== 1 && o.version !== 2)
      throw new Error(`compact tokenizer version ${JSON.stringify(o.version)} is not supported (1 or 2)`);
    const fallback = o.fallback ?? 'bytes';
    if (fallback !== 'bytes' && fallback !== 'bpe')
      throw new Error(`unknown compact tokenizer fallback ${JSON.stringify(o.fallback)} (bytes | bpe)`);
    if (o.version === 1 && fallback !== 'bytes')
      throw new Error('a version 1 compact tokenizer has byte fallback only');
    const t = new CompactTokenizer(o.gpt2Ids, fallback);
    if (o.vocabSize !== undefined && o.vocabSize !== t.vocabSize)
      throw new Error(`tokenizer JSON says vocabSize ${o.vocabSize} but lists ${t.vocabSize - 2} tokens`);
    return t;
  }

  static load(file: string): CompactTokenizer {
    return CompactTokenizer.fromJSON(JSON.parse(readFileSync(file, 'utf8')));
  }

  /** Maps GPT-2 ids to compact ids (tokens outside the set are split). Returns the ids and how many tokens were split. */
  fromGpt2(gpt2: ArrayLike<number>): { ids: Int32Array; fallbackTokens: number } {
    let len = 0;
    let fallback = 0;
    for (let i = 0; i < gpt2.length; i++) {
      const c = this.toCompact[gpt2[i]];
      if (c >= 0) len++;
      else {
        len += this.piecesOf(gpt2[i]).length;
        fallback++;
      }
    }
    const ids = new Int32Array(len);
    let k = 0;
    for (let i = 0; i < gpt2.length; i++) {
      const c = this.toCompact[gpt2[i]];
      if (c >= 0) ids[k++] = c;
      else for (const p of this.piecesOf(gpt2[i])) ids[k++] = p;
    }
    return { ids, fallbackTokens: fallback };
  }

  /** Compact pieces of an out-of-set GPT-2 token: its bytes (compact id b = byte b), merged per `fallback`. */
  piecesOf(gpt2Id: number): Int32Array {
    const cached = this.pieceCache.get(gpt2Id);
    if (cached) return cached;
    const bytes = gpt2TokenBytes()[gpt2Id];
    let pieces = Array.from(bytes);
    if (this.fallback === 'bpe') pieces = this.restrictedMerge(pieces);
    const out = Int32Array.from(pieces);
    this.pieceCache.set(gpt2Id, out);
    return out;
  }

  /** GPT-2 BPE on compact pieces, lowest rank (= GPT-2 id) first, merging only into tokens of the compact set. */
  private restrictedMerge(pieces: number[]): number[] {
    const byBytes = gpt2IdByBytes();
    const key = (a: number, b: number) => Buffer.concat([this.bytes[a], this.bytes[b]]).toString('latin1');
    for (;;) {
      let best = -1;
      let bestGpt2 = Infinity;
      let bestCompact = -1;
      for (let i = 0; i + 1 < pieces.length; i++) {
        const g = byBytes.get(key(pieces[i], pieces[i + 1]));
        if (g === undefined || g >= bestGpt2) continue;
        const c = this.toCompact[g];
        if (c < 0) continue;
        best = i;
        bestGpt2 = g;
        bestCompact = c;
      }
      if (best < 0) return pieces;
      pieces.splice(best, 2, bestCompact);
    }
  }

  encode(text: string): Int32Array {
    return this.fromGpt2(gpt2Encode(text)).ids;
  }

  private bytesOf = (id: number): Uint8Array | null => (id >= 0 && id < this.eosId ? this.bytes[id] : null);

  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    return decodeTokenBytes(
      ids,
      this.bytesOf,
      this.eosId,
      this.maskId,
      opts.eos ?? EOS_TEXT,
      opts.mask ?? MASK_PLACEHOLDER,
      false,
    );
  }

  decodeStrict(ids: ArrayLike<number>): string {
    return decodeTokenBytes(ids, this.bytesOf, this.eosId, this.maskId, EOS_TEXT, MASK_PLACEHOLDER, true);
  }

  tokenText(id: number): string {
    return tokenDisplayText(this, id, this.bytesOf(id));
  }

  toJSON(): CompactTokenizerJSON {
    return {
      format: 'sdtt-tokenizer',
      kind: 'compact-gpt2',
      // Version 1 files (byte fallback) are written unchanged so their sha256 and sameTokenizer() still hold.
      ...(this.fallback === 'bytes' ? { version: 1 as const } : { version: 2 as const }),
      base: 'gpt2-r50k_base',
      vocabSize: this.vocabSize,
      eosId: this.eosId,
      maskId: this.maskId,
      gpt2Ids: Array.from(this.gpt2Ids),
      ...(this.fallback === 'bytes' ? {} : { fallback: this.fallback }),
    };
  }
}
