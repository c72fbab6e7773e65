// Batches of packed text windows (MDLM-style grouping: documents are joined with EOS and cut into fixed windows).
//
// Training: each epoch picks a random offset in [0, seqLen) and a seeded permutation of the windows
// tokens[offset + k*seqLen, offset + (k+1)*seqLen). Both depend only on (seed, epoch), so the cursor
// {epoch, index} (index = windows already drawn this epoch) fully determines every later batch: a resumed run
// draws exactly the batches an uninterrupted run would, even across epoch boundaries, and even with a different
// batch size after the resume (windows are consumed one at a time).
import { Rng } from '../rng.ts';

export type TokenArray = Uint16Array | Int32Array;

export interface BatchCursor {
  version: 1;
  seed: number;
  seqLen: number;
  /** Length of the token array the cursor belongs to (checked on resume). */
  tokens: number;
  epoch: number;
  /** Windows already drawn in this epoch. */
  index: number;
  /** Total windows drawn since the start (informational). */
  drawn: number;
}

function epochSeed(seed: number, epoch: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ (epoch + 0x632be5ab), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

export class BatchIterator {
  readonly seqLen: number;
  readonly batch: number;
  readonly seed: number;
  private readonly tokens: TokenArray;
  private epoch = 0;
  private index = 0;
  private drawn = 0;
  private offset = 0;
  private perm: Uint32Array = new Uint32Array(0);

  constructor(tokens: TokenArray, seqLen: number, batch: number, seed: number) {
    if (!Number.isInteger(seqLen) || seqLen < 1) throw new Error(`seqLen must be a positive integer, got ${seqLen}`);
    if (!Number.isInteger(batch) || batch < 1) throw new Error(`batch must be a positive integer, got ${batch}`);
    if (tokens.length < 2 * seqLen)
      throw new Error(`need at least ${2 * seqLen} tokens for seqLen ${seqLen}, got ${tokens.length}`);
    this.tokens = tokens;
    this.seqLen = seqLen;
    this.batch = batch;
    this.seed = seed >>> 0;
    this.startEpoch(0);
  }

  static resume(tokens: TokenArray, seqLen: number, batch: number, cursor: BatchCursor): BatchIterator {
    if (cursor.version !== 1) throw new Error(`unsupported batch cursor version ${cursor.version}`);
    if (cursor.seqLen !== seqLen) throw new Error(`batch cursor is for seqLen ${cursor.seqLen}, not ${seqLen}`);
    if (cursor.tokens !== tokens.length)
      throw new Error(`batch cursor is for ${cursor.tokens} tokens, the data has ${tokens.length}: different data`);
    const it = new BatchIterator(tokens, seqLen, batch, cursor.seed);
    it.startEpoch(cursor.epoch);
    if (!Number.isInteger(cursor.index) || cursor.index < 0 || cursor.index > it.perm.length)
      throw new Error(`batch cursor index ${cursor.index} out of range`);
    it.index = cursor.index;
    it.drawn = cursor.drawn;
    return it;
  }

  /** Number of windows in the current epoch. */
  get windowsPerEpoch(): number {
    return this.perm.length;
  }

  private startEpoch(epoch: number) {
    const rng = new Rng(epochSeed(this.seed, epoch));
    this.epoch = epoch;
    this.index = 0;
    this.offset = rng.int(this.seqLen);
    const n = Math.floor((this.tokens.length - this.offset) / this.seqLen);
    const perm = new Uint32Array(n);
    for (let i = 0; i < n; i++) perm[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    this.perm = perm;
  }

  /** Next batch: Int32Array of shape [batch, seqLen], row-major. */
  next(): Int32Array {
    const out = new Int32Array(this.batch * this.seqLen);
    for (let b = 0; b < this.batch; b++) {
      if (this.index >= this.perm.length) this.startEpoch(this.epoch + 1);
      const start = this.offset + this.perm[this.index++] * this.seqLen;
      out.set(this.tokens.subarray(start, start + this.seqLen), b * this.seqLen);
      this.drawn++;
    }
    return out;
  }

  /** JSON-serialisable position; `BatchIterator.resume(tokens, seqLen, batch, cursor)` continues from here. */
  cursor(): BatchCursor {
    return {
      version: 1,
      seed: this.seed,
      seqLen: this.seqLen,
      tokens: this.tokens.length,
      epoch: this.epoch,
      index: this.index,
      drawn: this.drawn,
    };
  }
}

/**
 * Deterministic evaluation batches: `count` batches of `batch` non-overlapping windows spread evenly over the whole
 * token array (window i of n starts at floor(i * W / n) * seqLen, W = number of whole windows). When there are
 * fewer than batch*count windows, returns as many full batches as fit (at least one; throws if not even one fits).
 */
export function validationBatches(tokens: TokenArray, seqLen: number, batch: number, count: number): Int32Array[] {
  const W = Math.floor(tokens.length / seqLen);
  if (W < batch)
    throw new Error(`validation data has ${W} windows of ${seqLen} tokens, fewer than one batch of ${batch}`);
  const nb = Math.min(count, Math.floor(W / batch));
  const n = nb * batch;
  const out: Int32Array[] = [];
  for (let k = 0; k < nb; k++) {
    const a = new Int32Array(batch * seqLen);
    for (let b = 0; b < batch; b++) {
      const i = k * batch + b;
      const start = Math.floor((i * W) / n) * seqLen;
      a.set(tokens.subarray(start, start + seqLen), b * seqLen);
    }
    out.push(a);
  }
  return out;
}
