// Autoregressive sampling with a KV-cache session: the "GPT-2 + nucleus" baseline (docs/design/sdtt.md §3.5), float64 on the host.
import { nucleusSample, sequenceRng } from './sampler.ts';
import type { ArModel } from '../types.ts';

export interface SampleArOptions {
  batch: number;
  /** Total tokens per output sequence, prefix included (<= model.seqLen). */
  length: number;
  seed: number;
  /** Softmax temperature; <= 0 means greedy argmax. Default 1. */
  temperature?: number;
  /** Nucleus mass p in (0, 1]; 1 = plain sampling. Default 1. */
  topP?: number;
  /** Conditioning tokens, one for all or one per sequence (all the same length); default [eosId] as BOS. */
  prefix?: Int32Array | Int32Array[];
  /** Sequence b of this call uses random stream sequenceRng(seed, sequenceOffset + b) (default 0), so a large
   *  sample set drawn in chunks can give sample k the same stream whatever the chunk size. */
  sequenceOffset?: number;
  /** Once a sequence generates EOS, fill the rest of it with EOS (it draws no more random numbers). */
  stopAtEos?: boolean;
}

/**
 * Samples [batch, length] tokens: the prefix is appended to a KV session in one call, then one token per
 * sequence per call. Sequence b draws one uniform per generated token from sequenceRng(seed, sequenceOffset + b)
 * only, so its sample does not depend on the batch size. Returned tokens include the prefix (the default BOS too).
 */
export async function sampleAr(model: ArModel, opts: SampleArOptions): Promise<Int32Array> {
  const { batch, length, seed } = opts;
  const temperature = opts.temperature ?? 1;
  const topP = opts.topP ?? 1;
  const vocab = model.vocabSize;
  const eos = model.eosId;
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`sampleAr: batch must be an integer >= 1, got ${batch}`);
  if (length > model.seqLen) throw new Error(`sampleAr: length ${length} exceeds the model's seqLen ${model.seqLen}`);

  const prefixes =
    opts.prefix === undefined ? [Int32Array.of(eos)] : Array.isArray(opts.prefix) ? opts.prefix : [opts.prefix];
  if (prefixes.length !== 1 && prefixes.length !== batch)
    throw new Error(`sampleAr: ${prefixes.length} prefixes for batch ${batch}`);
  const prefixLen = prefixes[0].length;
  if (prefixLen < 1 || prefixes.some((p) => p.length !== prefixLen))
    throw new Error('sampleAr: prefixes must be non-empty and of equal length');
  if (prefixLen > length) throw new Error(`sampleAr: prefix of ${prefixLen} tokens exceeds length ${length}`);

  const tokens = new Int32Array(batch * length);
  const prefixBatch = new Int32Array(batch * prefixLen);
  for (let b = 0; b < batch; b++) {
    const p = prefixes.length === 1 ? prefixes[0] : prefixes[b];
    tokens.set(p, b * length);
    prefixBatch.set(p, b * prefixLen);
  }
  if (prefixLen === length) return tokens;

  const offset = opts.sequenceOffset ?? 0;
  const rngs = Array.from({ length: batch }, (_, b) => sequenceRng(seed, offset + b));
  const finished = new Uint8Array(batch);
  const session = model.session(batch);
  try {
    let last = await session.append(prefixBatch, prefixLen);
    for (let pos = prefixLen; pos < length; pos++) {
      const column = new Int32Array(batch);
      for (let b = 0; b < batch; b++) {
        if (finished[b]) {
          column[b] = eos;
          continue;
        }
        const row = last.subarray(b * vocab, (b + 1) * vocab);
        const u = temperature > 0 ? rngs[b].uniform() : 0;
        column[b] = nucleusSample(row, temperature, topP, u);
        if (opts.stopAtEos && column[b] === eos) finished[b] = 1;
      }
      for (let b = 0; b < batch; b++) tokens[b * length + pos] = column[b];
      if (pos === length - 1) break;
      if (opts.stopAtEos && finished.every((f) => f === 1)) {
        for (let b = 0; b < batch; b++) tokens.fill(eos, b * length + pos + 1, (b + 1) * length);
        break;
      }
      last = await session.append(column, 1);
    }
  } finally {
    session.dispose();
  }
  return tokens;
}
