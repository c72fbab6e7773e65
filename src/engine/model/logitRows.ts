// Logits handed out row by row (docs/design/sdtt.md §6): at the official size (V = 50258, L = 1024) the logits of a
// batch of 8 are 1.6 GB of float32, yet every consumer reads only some rows (the positions a sampling step reveals,
// the masked positions of a loss or a NELBO, one row at a time for the judge). A model that can compute rows on
// demand (onnx/runtime.ts: the transformer once, its head per row chunk) implements Denoiser/ArModel.forward; a model
// that returns whole logits (the tfjs fallback, test fakes) is wrapped by wholeLogitRows.
import type { ArModel, Denoiser, LogitRows } from '../types.ts';

/** Bytes of float32 logits one row chunk may hold: 64 MiB is 1300 rows at V = 50258 and all rows of small models. */
export const ROW_CHUNK_BYTES = 64 * 2 ** 20;

/** Rows per chunk of `vocab` float32 logits within ROW_CHUNK_BYTES (at least one). */
export function rowChunk(vocab: number): number {
  return Math.max(1, Math.floor(ROW_CHUNK_BYTES / (4 * vocab)));
}

/** Rows of an existing [positions, vocab] logits array; visiting needs no copy. */
export function wholeLogitRows(logits: Float32Array, vocab: number): LogitRows {
  const positions = logits.length / vocab;
  return {
    positions,
    vocab,
    async forEachRow(rows, visit) {
      for (let k = 0; k < rows.length; k++) {
        const p = rows[k];
        if (!(p >= 0 && p < positions)) throw new Error(`logit row ${p} outside [0, ${positions})`);
        visit(k, logits, p * vocab);
      }
    },
    dispose() {},
  };
}

/** One forward of `model` on [batch, len] tokens, its logits available by row (the one way samplers, targets and
 * evaluators read logits). */
export async function logitRows(
  model: Denoiser | ArModel,
  tokens: Int32Array,
  batch: number,
  len = model.seqLen,
): Promise<LogitRows> {
  if (model.forward) return model.forward(tokens, batch, len);
  // A denoiser's logits() takes no length (it is always seqLen); the extra argument is ignored there.
  const logits = await (model as ArModel).logits(tokens, batch, len);
  if (logits.length !== batch * len * model.vocabSize)
    throw new Error(`model returned ${logits.length} logits, expected ${batch}×${len}×${model.vocabSize}`);
  return wholeLogitRows(logits, model.vocabSize);
}

/** The flat positions start .. end − 1, e.g. to read every row of a forward. */
export function positionRange(start: number, end: number): Int32Array {
  const out = new Int32Array(Math.max(0, end - start));
  for (let k = 0; k < out.length; k++) out[k] = start + k;
  return out;
}
