// GPT-2 (r50k_base, via gpt-tokenizer) tables the compact tokenizer is built on: the bytes of every token, the
// reverse map bytes -> id (to re-run merges), the single-byte tokens, and plain encoding. Built lazily, once.
import { encode as gpt2EncodeRaw } from 'gpt-tokenizer/encoding/r50k_base';
import gpt2Ranks from 'gpt-tokenizer/bpeRanks/r50k_base';

export const GPT2_VOCAB_SIZE = 50257; // 50256 BPE tokens + <|endoftext|>
export const GPT2_EOT = 50256;

const utf8 = new TextEncoder();

let gpt2BytesCache: Uint8Array[] | null = null;
/** Bytes of every GPT-2 BPE token (index = GPT-2 id = merge rank, 0..50255). */
export function gpt2TokenBytes(): Uint8Array[] {
  if (gpt2BytesCache) return gpt2BytesCache;
  const ranks = gpt2Ranks as unknown as (string | number[])[];
  gpt2BytesCache = ranks.map((t) => (typeof t === 'string' ? utf8.encode(t) : Uint8Array.from(t)));
  return gpt2BytesCache;
}

let gpt2IdByBytesCache: Map<string, number> | null = null;
/** GPT-2 id of a byte string (latin1 key), for re-running merges. */
export function gpt2IdByBytes(): Map<string, number> {
  if (gpt2IdByBytesCache) return gpt2IdByBytesCache;
  const m = new Map<string, number>();
  gpt2TokenBytes().forEach((b, id) => {
    const k = Buffer.from(b).toString('latin1');
    if (!m.has(k)) m.set(k, id);
  });
  gpt2IdByBytesCache = m;
  return m;
}

let byteToGpt2Cache: Int32Array | null = null;
/** GPT-2 id of the single-byte token for each byte value 0..255. */
export function gpt2ByteTokenIds(): Int32Array {
  if (byteToGpt2Cache) return byteToGpt2Cache;
  const out = new Int32Array(256).fill(-1);
  gpt2TokenBytes().forEach((b, id) => {
    if (b.length === 1 && out[b[0]] < 0) out[b[0]] = id;
  });
  for (let b = 0; b < 256; b++) if (out[b] < 0) throw new Error(`GPT-2 has no single-byte token for byte ${b}`);
  byteToGpt2Cache = out;
  return out;
}

const NO_SPECIAL = { allowedSpecial: new Set<string>(), disallowedSpecial: new Set<string>() };
/** Plain GPT-2 (r50k_base) encoding; special-token text is treated as ordinary text. */
export function gpt2Encode(text: string): number[] {
  return gpt2EncodeRaw(text, NO_SPECIAL);
}
