// The full GPT-2 tokenizer (gpt-tokenizer's r50k_base, identical to GPT-2) with the MDLM's MASK appended: ids
// 0..50255 are GPT-2's BPE tokens, 50256 is <|endoftext|> (EOS, also the BOS of the official MDLM code), 50257 is
// MASK, so vocabSize 50258. This is the vocabulary of the official MDLM / SDTT checkpoints (kuleshov-group/mdlm-owt),
// which is why the workbench needs it: such a teacher samples, evaluates and distils on our corpus tokenised this way.
// Rendering conventions as the other kinds (data/tokenizer.ts): encode never produces EOS or MASK ("<|endoftext|>"
// text is ordinary text); decode concatenates token bytes before UTF-8 decoding (a character may span tokens).
// The token byte table is gpt2.ts's, built lazily once and shared with the compact tokenizer; nothing here is per
// instance, so a Gpt2Tokenizer costs nothing to create.
import { readFileSync } from 'node:fs';
import { GPT2_EOT, GPT2_VOCAB_SIZE, gpt2Encode, gpt2TokenBytes } from './gpt2.ts';
import {
  EOS_TEXT,
  MASK_PLACEHOLDER,
  decodeTokenBytes,
  tokenDisplayText,
  type DecodeOptions,
  type Tokenizer,
} from './tokenizer.ts';

/** GPT-2's ids + MASK: the vocabulary of every official MDLM checkpoint. */
export const GPT2_MDLM_VOCAB_SIZE = GPT2_VOCAB_SIZE + 1;
/** MASK comes last, after <|endoftext|>, as in the official MDLM code. */
export const GPT2_MASK_ID = GPT2_VOCAB_SIZE;

export interface Gpt2TokenizerJSON {
  format: 'sdtt-tokenizer';
  kind: 'gpt2';
  version: 1;
  base: 'gpt2-r50k_base';
  vocabSize: 50258;
  eosId: 50256;
  maskId: 50257;
}

const GPT2_JSON: Gpt2TokenizerJSON = {
  format: 'sdtt-tokenizer',
  kind: 'gpt2',
  version: 1,
  base: 'gpt2-r50k_base',
  vocabSize: 50258,
  eosId: 50256,
  maskId: 50257,
};

/** Bytes of an ordinary GPT-2 token, or null for EOS, MASK and ids outside the vocabulary. */
function gpt2BytesOf(id: number): Uint8Array | null {
  return Number.isInteger(id) && id >= 0 && id < GPT2_EOT ? gpt2TokenBytes()[id] : null;
}

export class Gpt2Tokenizer implements Tokenizer {
  readonly kind = 'gpt2' as const;
  readonly vocabSize = GPT2_MDLM_VOCAB_SIZE;
  readonly eosId = GPT2_EOT;
  readonly maskId = GPT2_MASK_ID;

  /** Refuses anything but exactly the gpt2 tokenizer JSON (a file naming other ids would silently mis-decode). */
  static fromJSON(j: unknown): Gpt2Tokenizer {
    const o = j as Partial<Record<keyof Gpt2TokenizerJSON, unknown>> | null;
    if (o?.format !== 'sdtt-tokenizer' || o.kind !== 'gpt2') throw new Error('not a GPT-2 tokenizer JSON');
    for (const key of ['version', 'base', 'vocabSize', 'eosId', 'maskId'] as const) {
      if (o[key] !== GPT2_JSON[key])
        throw new Error(
          `GPT-2 tokenizer JSON: ${key} is ${JSON.stringify(o[key])}, expected ${JSON.stringify(GPT2_JSON[key])}`,
        );
    }
    return new Gpt2Tokenizer();
  }

  static load(file: string): Gpt2Tokenizer {
    return Gpt2Tokenizer.fromJSON(JSON.parse(readFileSync(file, 'utf8')));
  }

  encode(text: string): Int32Array {
    return Int32Array.from(gpt2Encode(text));
  }

  /** GPT-2 ids are already this tokenizer's ids (the corpus build encodes once and maps; nothing is split). */
  fromGpt2(gpt2: ArrayLike<number>): { ids: Int32Array; fallbackTokens: number } {
    return { ids: Int32Array.from(gpt2), fallbackTokens: 0 };
  }

  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    return decodeTokenBytes(
      ids,
      gpt2BytesOf,
      this.eosId,
      this.maskId,
      opts.eos ?? EOS_TEXT,
      opts.mask ?? MASK_PLACEHOLDER,
      false,
    );
  }

  decodeStrict(ids: ArrayLike<number>): string {
    return decodeTokenBytes(ids, gpt2BytesOf, this.eosId, this.maskId, EOS_TEXT, MASK_PLACEHOLDER, true);
  }

  tokenText(id: number): string {
    return tokenDisplayText(this, id, gpt2BytesOf(id));
  }

  toJSON(): Gpt2TokenizerJSON {
    return { ...GPT2_JSON };
  }
}
