// A model seen through forward() only (model/logitRows.ts): its logits() is refused, and every read records how
// many rows it asked for, so a test can check that a consumer never asks for a whole [batch, len, V] at once.
// Not a *.test.ts file.
import { wholeLogitRows } from '../../src/engine/model/logitRows.ts';
import type { ArModel, Denoiser, LogitRows } from '../../src/engine/types.ts';

export interface RowReads {
  /** Largest number of rows one forEachRow call asked for. */
  maxRows: number;
  /** forEachRow calls, and forwards. */
  reads: number;
  forwards: number;
}

export function rowsOnly<M extends Denoiser | ArModel>(model: M): M & { rowReads: RowReads } {
  const rowReads: RowReads = { maxRows: 0, reads: 0, forwards: 0 };
  const forward = async (tokens: Int32Array, batch: number, len: number): Promise<LogitRows> => {
    rowReads.forwards++;
    const whole = wholeLogitRows(await (model as ArModel).logits(tokens, batch, len), model.vocabSize);
    return {
      ...whole,
      forEachRow(rows, visit) {
        rowReads.reads++;
        rowReads.maxRows = Math.max(rowReads.maxRows, rows.length);
        return whole.forEachRow(rows, visit);
      },
    };
  };
  return new Proxy(model, {
    get(target, key, receiver) {
      if (key === 'rowReads') return rowReads;
      if (key === 'forward') return forward;
      if (key === 'logits') return () => Promise.reject(new Error('logits() called: whole logits were asked for'));
      return Reflect.get(target, key, receiver);
    },
  }) as M & { rowReads: RowReads };
}
