// The heavy part of a training step: loss and d(loss)/d(params) over a flat parameter vector, with a hand-written
// backward (see kernels.ts for why not autograd), optionally data-parallel over worker threads.
//
// Losses (both normalised by the WHOLE batch, so shards simply add up):
//  - mdlm (docs/design/sdtt.md §1.5): SUBS = logit[MASK] := -1e6 then log-softmax; positions with zt != MASK carry over and
//    contribute exactly 0; loss = sum over masked positions of (1/t_b) * -log p(x0) / (B*L). Because MASK's
//    probability and gradient are exactly 0 in float32, its head row is left out of the matMul, and because
//    carry-over positions have zero gradient, the head runs only on masked rows (about half of them).
//  - ar: the model runs causally on all of tokens [B, L]; position l predicts tokens[l + 1]; loss = mean CE over
//    the B*(L-1) predictions (the last position predicts nothing).
//  - distill (SDTT, docs/design/sdtt.md §4.3): the student (mdlm model, train mode) runs on zt; loss = mean over the masked
//    positions S of the WHOLE batch of δ(student SUBS log-probs, teacher target log-probs), no 1/t weight; the
//    MASK column is left out of the comparison (= ignoreColumn maskId in sdtt/divergences.ts). See distillLoss.ts.
import * as tf from '@tensorflow/tfjs-core';
import { Worker } from 'node:worker_threads';
import type { BackendName, ModelConfig } from '../../shared/config.ts';
import { initBackend } from './backend.ts';
import type { DivergenceName } from '../../shared/distillConfig.ts';
import { distillRowsLoss, gatherTargets, maskedBefore } from '../sdtt/distillLoss.ts';
import {
  addInto,
  causalMask,
  scatterAddRows,
  disposeRope,
  heapView,
  linear,
  linearBwdInput,
  lnModBwd,
  read,
  ropeTables,
  view,
  type RopeTables,
  type T2,
} from './kernels.ts';
import { addHeadGrad, blockBwd, disposeSaved, disposeWeights, trunkFwd, uploadWeights, type Weights } from './model.ts';
import { blockOffsets, layoutMap, paramCount, type ParamEntry } from './paramLayout.ts';
import { Rng } from '../rng.ts';
import type { TrainingEngine } from '../types.ts';

export type GradBatch =
  | { kind: 'mdlm'; x0: Int32Array; zt: Int32Array; t: Float32Array; batch: number }
  | { kind: 'ar'; tokens: Int32Array; batch: number }
  // targets [nMasked, V]: teacher log-probs (SUBS rows, MASK column ≈ -1e6, ignored) for the masked positions of zt
  // [B, L], in row-major (b, l) order.
  | { kind: 'distill'; zt: Int32Array; batch: number; targets: Float32Array; divergence: DivergenceName };

/** A slice of the batch for one thread: model input, and the positions that carry loss with target and weight. */
export interface Shard {
  tokens: Int32Array; // [B, L] model input (zt for mdlm)
  B: number;
  rows: Int32Array; // flat positions n = b*L + l with a loss term
  targets: Int32Array;
  weights: Float32Array; // per-row loss weight, already divided by the global normaliser
  /** distill: [rows, V] teacher log-probs of the loss rows (targets is then empty). */
  soft?: Float32Array;
  divergence?: DivergenceName;
}

/** Splits a batch into `parts` shards, sequences interleaved (seq i -> shard i mod parts) so that the
 * stratified t values, and with them the number of masked rows, are balanced across threads. */
export function makeShards(cfg: ModelConfig, batch: GradBatch, parts: number): Shard[] {
  const L = cfg.seqLen;
  const Btot = batch.batch;
  const V = cfg.vocabSize;
  const input = batch.kind === 'ar' ? batch.tokens : batch.zt;
  if (input.length !== Btot * L)
    throw new Error(`batch: expected ${Btot} x ${L} = ${Btot * L} tokens, got ${input.length}`);
  if (batch.kind !== 'ar' && cfg.arch !== 'mdlm')
    throw new Error(`an ${batch.kind} batch needs an mdlm model (got arch '${cfg.arch}')`);
  if (batch.kind === 'ar' && cfg.arch !== 'ar')
    throw new Error(`an ar batch needs an ar model (got arch '${cfg.arch}')`);
  if (batch.kind === 'mdlm' && (batch.x0.length !== input.length || batch.t.length !== Btot)) {
    throw new Error(
      `mdlm batch: x0 has ${batch.x0.length} tokens and t ${batch.t.length} values, expected ${input.length} and ${Btot}`,
    );
  }
  const before = batch.kind === 'distill' ? maskedBefore(batch.zt, Btot, L, cfg.maskId, batch.targets.length, V) : null;
  const shards: Shard[] = [];
  const nParts = Math.min(parts, Btot);
  for (let p = 0; p < nParts; p++) {
    const seqs: number[] = [];
    for (let b = p; b < Btot; b += parts) seqs.push(b);
    const B = seqs.length;
    const tokens = new Int32Array(B * L);
    const rows: number[] = [];
    const targets: number[] = [];
    const weights: number[] = [];
    seqs.forEach((b, j) => {
      tokens.set(input.subarray(b * L, (b + 1) * L), j * L);
      if (batch.kind !== 'ar') {
        const w = batch.kind === 'mdlm' ? 1 / (batch.t[b] * Btot * L) : 1 / before![Btot]; // distill: 1/|S|
        for (let l = 0; l < L; l++) {
          if (batch.zt[b * L + l] !== cfg.maskId) continue;
          if (batch.kind === 'mdlm') {
            const x = batch.x0[b * L + l];
            if (x === cfg.maskId) throw new Error(`x0 contains the MASK id ${x} at sequence ${b}, position ${l}`);
            targets.push(x);
          }
          rows.push(j * L + l);
          weights.push(w);
        }
      } else {
        const w = 1 / (Btot * (L - 1));
        for (let l = 0; l < L - 1; l++) {
          rows.push(j * L + l);
          targets.push(batch.tokens[b * L + l + 1]);
          weights.push(w);
        }
      }
    });
    const shard: Shard = {
      tokens,
      B,
      rows: Int32Array.from(rows),
      targets: Int32Array.from(targets),
      weights: Float32Array.from(weights),
    };
    if (batch.kind === 'distill') {
      shard.divergence = batch.divergence;
      shard.soft = nParts === 1 ? batch.targets : gatherTargets(batch.targets, before!, seqs, V); // no copy in-process
    }
    shards.push(shard);
  }
  return shards;
}

// ---------------------------------------------------------------------------------------------------------------
// One shard on the current backend

/** Tokens per forward/backward chunk: a wasm heap never shrinks, so one chunk's peak sets it (base-5m: 512 -> 172 MB, 1024 -> 248 MB; same speed). */
const MAX_CHUNK_TOKENS = 512;

/** Sequences [j0, j1) of a shard, rows re-based (rows are sorted by construction). */
export function subShard(s: Shard, L: number, j0: number, j1: number): Shard {
  let a = 0;
  while (a < s.rows.length && s.rows[a] < j0 * L) a++;
  let b = a;
  while (b < s.rows.length && s.rows[b] < j1 * L) b++;
  return {
    tokens: s.tokens.subarray(j0 * L, j1 * L),
    B: j1 - j0,
    rows: s.rows.slice(a, b).map((r) => r - j0 * L),
    targets: s.targets.subarray(a, b),
    weights: s.weights.subarray(a, b),
    soft: s.soft?.subarray(
      (a * s.soft.length) / Math.max(1, s.rows.length),
      (b * s.soft.length) / Math.max(1, s.rows.length),
    ),
    divergence: s.divergence,
  };
}

interface StepCtx {
  cfg: ModelConfig;
  w: Weights;
  lm: Map<string, ParamEntry>;
  rope: RopeTables;
  attnMask: T2 | null;
  dropout?: { p: number; rng: Rng };
}

/**
 * Loss of one shard; with `grads` (zero-filled, params.length) also adds d(loss)/d(params) into it.
 * `dropoutSeed`: train-mode dropout (null = eval mode). Runs synchronously on the current tfjs backend; the
 * weights are uploaded once, then the shard runs in chunks of at most MAX_CHUNK_TOKENS tokens (losses and
 * gradients are sums, so chunks simply add up).
 */
export function shardLossAndGrads(
  cfg: ModelConfig,
  params: Float32Array,
  s: Shard,
  dropoutSeed: number | null,
  grads: Float32Array | null,
): number {
  const L = cfg.seqLen;
  const ctx: StepCtx = {
    cfg,
    w: uploadWeights(cfg, params, { backward: grads !== null, exclude: cfg.arch === 'mdlm' ? cfg.maskId : -1 }),
    lm: layoutMap(cfg),
    rope: ropeTables(L, cfg.dModel / cfg.nHeads, cfg.ropeBase, 0),
    attnMask: cfg.arch === 'ar' ? causalMask(L, L, 0) : null,
    dropout: dropoutSeed !== null && cfg.dropout > 0 ? { p: cfg.dropout, rng: new Rng(dropoutSeed) } : undefined,
  };
  const per = Math.max(1, Math.floor(MAX_CHUNK_TOKENS / L));
  try {
    let loss = 0;
    for (let j = 0; j < s.B; j += per)
      loss += chunkLossAndGrads(ctx, s.B <= per ? s : subShard(s, L, j, Math.min(s.B, j + per)), grads);
    return loss;
  } finally {
    disposeWeights(ctx.w);
    disposeRope(ctx.rope);
    ctx.attnMask?.dispose();
  }
}

function chunkLossAndGrads(ctx: StepCtx, s: Shard, grads: Float32Array | null): number {
  const { cfg, w, lm, rope, attnMask, dropout } = ctx;
  const L = cfg.seqLen;
  const d = cfg.dModel;
  const V = cfg.vocabSize;
  const N = s.B * L;
  const backward = grads !== null;
  const excl = w.excluded;
  const Vh = excl >= 0 ? V - 1 : V;
  return tf.tidy(() => {
    const fw = trunkFwd(cfg, w, s.tokens, { B: s.B, L, rope, attnMask, dropout, save: backward });
    const M = s.rows.length;
    let loss = 0;
    let dh: T2;
    if (M === 0) {
      dh = tf.zeros([N, d]);
    } else {
      // Head on the loss rows only (without the excluded MASK row).
      const rowsT = tf.tensor1d(s.rows, 'int32');
      const hm = tf.gather(fw.h, rowsT) as T2;
      const logits = linear(hm, w.head, w.headB);
      const p = tf.softmax(logits);
      let dlogits: T2;
      if (s.soft) {
        // SDTT: divergence to the teacher rows, on the host (distillLoss.ts). On wasm the gradient overwrites p in
        // place (p is dead afterwards; no 16 MB upload); the views are consumed before any allocation.
        const inPlace = heapView(p);
        const dl = backward ? (inPlace ?? new Float32Array(M * Vh)) : null;
        loss = distillRowsLoss(s.divergence!, view(logits), inPlace ?? read(p), s.soft, s.weights, V, excl, dl);
        if (!backward) return loss;
        dlogits = inPlace ? p : tf.tensor2d(dl!, [M, Vh]);
      } else {
        // Cross-entropy; targets re-indexed past the excluded (MASK) row. -log p[x] = logsumexp - logit[x],
        // logsumexp = max - log(max p): exact and never log(0), using the vectorised Softmax instead of Exp.
        const tgt = s.targets.map((x) => (excl >= 0 && x > excl ? x - 1 : x));
        const flatIdx = tf.tensor1d(
          Int32Array.from(tgt, (x, r) => r * Vh + x),
          'int32',
        );
        const [lmax, pmax, lt] = [tf.max(logits, -1), tf.max(p, -1), tf.gather(tf.reshape(logits, [-1]), flatIdx)].map(
          read,
        );
        for (let r = 0; r < M; r++) loss += s.weights[r] * (lmax[r] - Math.log(pmax[r]) - lt[r]);
        if (!backward) return loss;
        // d loss / d logits = w_r * (p - onehot(x))
        const pairs = Int32Array.from({ length: 2 * M }, (_, i) => (i & 1 ? tgt[i >> 1] : i >> 1)); // (row, target)
        const onehot = tf.scatterND(tf.tensor2d(pairs, [M, 2], 'int32'), tf.tensor1d(s.weights), [M, Vh]);
        dlogits = tf.sub(tf.mul(p, tf.tensor2d(s.weights, [M, 1])), onehot) as T2;
      }
      addHeadGrad(lm, dlogits, hm, excl, grads);
      const dhm = linearBwdInput(dlogits, w.headT!);
      dh = tf.scatterND(tf.reshape(rowsT, [M, 1]), dhm, [N, d]) as T2;
    }
    if (!backward) return loss;
    const g = grads;
    const fmod = lm.get('backbone.output_layer.modulation')!.offset;
    let dx = lnModBwd(dh, fw.lnf!, w.normf, w.scalef, g, {
      w: lm.get('backbone.output_layer.norm_final.weight')!.offset,
      shift: fmod,
      scale: fmod + d,
    });
    for (let i = cfg.nLayers - 1; i >= 0; i--) {
      const next = blockBwd(cfg, w.blocks[i], fw.saved[i], dx, rope, g, blockOffsets(lm, i));
      disposeSaved(fw.saved[i]);
      dx.dispose();
      dx = next;
    }
    // Embedding gradient: scatter-add rows on the host (wasm has no UnsortedSegmentSum).
    scatterAddRows(g, lm.get('backbone.vocab_embed.embedding')!.offset, s.tokens, view(dx), d);
    return loss;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The engine: in-process (threads = 1) or data-parallel over worker threads, each with its own tfjs instance
// (tfjs-wasm is single-threaded in Node, so one worker = one core). Parameters go to the workers through one
// SharedArrayBuffer, each worker writes its gradient into its own SharedArrayBuffer, and the parent sums them in
// worker order: the same seed and batch give bit-identical results run to run.

/** Per-worker dropout seed: derived from the step's seed and the worker index. */
export function workerDropoutSeed(seed: number, index: number): number {
  return (seed ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0;
}

export type WorkerRequest =
  { type: 'step'; id: number; shard: Shard; dropoutSeed: number | null; wantGrads: boolean } | { type: 'close' };
export type WorkerReply =
  | { type: 'ready'; backend: string; device: string }
  | { type: 'done'; id: number; loss: number; ms: number }
  | { type: 'error'; id?: number; message: string };

interface PoolWorker {
  worker: Worker;
  grads: Float32Array;
  /** Set once the worker crashed or exited: the pool is unusable from then on. */
  dead: Error | null;
  pending: Map<number, { resolve: (r: { loss: number; ms: number }) => void; reject: (e: Error) => void }>;
}

/**
 * The worker runs gradWorker.ts under tsx whatever the parent was started with. `execArgv: ['--import', tsx]`
 * does NOT work for worker threads on Node 20 (measured: "Unknown file extension .ts"), so a tiny eval'd
 * bootstrap registers tsx's loader inside the worker, then imports the entry. A compiled build ships gradWorker.js.
 */
function spawnGradWorker(workerData: unknown): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./gradWorker.js', import.meta.url), { workerData });
  const api = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./gradWorker.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

export class TfjsGradientEngine implements TrainingEngine {
  readonly backend: string;
  readonly device: string;
  readonly threads: number;
  /** Wall time of each worker's share of the last call (diagnostics; empty in-process). */
  lastWorkerMs: number[] = [];
  private readonly n: number;
  private nextId = 1;
  private disposed = false;
  /** Calls are serialised: the pool has one shared parameter buffer. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly cfg: ModelConfig,
    info: { backend: string; device: string },
    private readonly pool: { workers: PoolWorker[]; params: Float32Array } | null,
  ) {
    this.backend = info.backend;
    this.device = info.device;
    this.threads = pool ? pool.workers.length : 1;
    this.n = paramCount(cfg);
  }

  static async create(cfg: ModelConfig, opts: { backend: BackendName; threads: number }): Promise<TfjsGradientEngine> {
    const threads = Math.max(1, Math.floor(opts.threads));
    if (threads === 1) return new TfjsGradientEngine(cfg, await initBackend(opts.backend), null);
    const n = paramCount(cfg);
    const params = new Float32Array(new SharedArrayBuffer(4 * n));
    const workers: PoolWorker[] = [];
    const infos: Promise<{ backend: string; device: string }>[] = [];
    for (let i = 0; i < threads; i++) {
      const grads = new Float32Array(new SharedArrayBuffer(4 * n));
      const worker = spawnGradWorker({ cfg, backend: opts.backend, index: i, params, grads });
      const pw: PoolWorker = { worker, grads, dead: null, pending: new Map() };
      infos.push(
        new Promise((resolve, reject) => {
          const fail = (e: Error) => {
            pw.dead ??= e;
            reject(e);
            for (const p of pw.pending.values()) p.reject(e);
            pw.pending.clear();
          };
          worker.on('message', (m: WorkerReply) => {
            if (m.type === 'ready') resolve({ backend: m.backend, device: m.device });
            else if (m.type === 'done') (pw.pending.get(m.id)?.resolve(m), pw.pending.delete(m.id));
            else if (m.id !== undefined) (pw.pending.get(m.id)?.reject(new Error(m.message)), pw.pending.delete(m.id));
            else fail(new Error(`gradient worker ${i}: ${m.message}`));
          });
          worker.on('error', (e) => fail(new Error(`gradient worker ${i} crashed: ${e.message}`)));
          worker.on('exit', (code) => fail(new Error(`gradient worker ${i} exited (code ${code})`)));
        }),
      );
      workers.push(pw);
    }
    let info: { backend: string; device: string };
    try {
      info = (await Promise.all(infos))[0];
    } catch (e) {
      await Promise.all(workers.map((w) => w.worker.terminate()));
      throw e;
    }
    return new TfjsGradientEngine(
      cfg,
      { backend: info.backend, device: `${info.device} x ${threads} workers` },
      { workers, params },
    );
  }

  private checkParams(params: Float32Array): void {
    if (params.length !== this.n) throw new Error(`expected ${this.n} parameters, got ${params.length}`);
  }

  private run(
    params: Float32Array,
    batch: GradBatch,
    dropoutSeed: number | null,
    wantGrads: boolean,
  ): Promise<{ loss: number; grads: Float32Array | null }> {
    const r = this.queue.then(() => this.runNow(params, batch, dropoutSeed, wantGrads));
    this.queue = r.catch(() => undefined);
    return r;
  }

  private async runNow(
    params: Float32Array,
    batch: GradBatch,
    dropoutSeed: number | null,
    wantGrads: boolean,
  ): Promise<{ loss: number; grads: Float32Array | null }> {
    if (this.disposed) throw new Error('TfjsGradientEngine used after dispose()');
    this.checkParams(params);
    if (!this.pool) {
      const shard = makeShards(this.cfg, batch, 1)[0];
      const grads = wantGrads ? new Float32Array(this.n) : null;
      const seed = dropoutSeed === null ? null : workerDropoutSeed(dropoutSeed, 0);
      return { loss: shardLossAndGrads(this.cfg, params, shard, seed, grads), grads };
    }
    const { workers } = this.pool;
    const dead = workers.find((w) => w.dead)?.dead;
    if (dead) throw new Error(`the gradient worker pool is broken: ${dead.message}`);
    this.pool.params.set(params);
    const shards = makeShards(this.cfg, batch, workers.length);
    const done = await Promise.all(
      shards.map((shard, i) => {
        const id = this.nextId++;
        const pw = workers[i];
        return new Promise<{ loss: number; ms: number }>((resolve, reject) => {
          pw.pending.set(id, { resolve, reject });
          const seed = dropoutSeed === null ? null : workerDropoutSeed(dropoutSeed, i);
          // distill targets copied per shard are moved, not cloned (never the caller's own array)
          const move =
            shard.soft && batch.kind === 'distill' && shard.soft.buffer !== batch.targets.buffer
              ? [shard.soft.buffer as ArrayBuffer]
              : [];
          pw.worker.postMessage(
            { type: 'step', id, shard, dropoutSeed: seed, wantGrads } satisfies WorkerRequest,
            move,
          );
        });
      }),
    );
    this.lastWorkerMs = done.map((r) => r.ms);
    let loss = 0;
    for (const r of done) loss += r.loss;
    if (!wantGrads) return { loss, grads: null };
    // Fixed-order reduction: worker 0 + worker 1 + ... (deterministic).
    const grads = Float32Array.from(workers[0].grads);
    for (let i = 1; i < shards.length; i++) addInto(grads, 0, workers[i].grads);
    return { loss, grads };
  }

  /** loss and d(loss)/d(params) for the batch; dropoutSeed makes dropout deterministic. grads has params.length. */
  async computeGradients(
    params: Float32Array,
    batch: GradBatch,
    dropoutSeed: number,
  ): Promise<{ loss: number; grads: Float32Array }> {
    const r = await this.run(params, batch, dropoutSeed, true);
    return { loss: r.loss, grads: r.grads! };
  }

  /** Loss only, eval mode (no dropout): the validation loss (NELBO for MDLM, next-token NLL for AR). */
  async evalLoss(params: Float32Array, batch: GradBatch): Promise<number> {
    return (await this.run(params, batch, null, false)).loss;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    if (!this.pool) return;
    await this.queue;
    await Promise.all(
      this.pool.workers.map(async (w) => {
        w.worker.removeAllListeners('exit');
        w.worker.postMessage({ type: 'close' } satisfies WorkerRequest);
        await w.worker.terminate();
      }),
    );
  }
}
