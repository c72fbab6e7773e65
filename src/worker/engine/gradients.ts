// The heavy part of a training step: loss and d(loss)/d(params) over a flat parameter vector, with a hand-written
// backward (see kernels.ts for why not autograd), optionally data-parallel over worker threads.
//
// Losses (both normalised by the WHOLE batch, so shards simply add up):
//  - mdlm (spec §1): SUBS = logit[MASK] := -1e6 then log-softmax; positions with zt != MASK carry over and
//    contribute exactly 0; loss = sum over masked positions of (1/t_b) * -log p(x0) / (B*L). Because MASK's
//    probability and gradient are exactly 0 in float32, its head row is left out of the matMul, and because
//    carry-over positions have zero gradient, the head runs only on masked rows (about half of them).
//  - ar: the model runs causally on all of tokens [B, L]; position l predicts tokens[l + 1]; loss = mean CE over
//    the B*(L-1) predictions (the last position predicts nothing).
import * as tf from '@tensorflow/tfjs-core';
import { Worker } from 'node:worker_threads';
import type { BackendName, ModelConfig } from '../../shared/config.ts';
import { initBackend } from './backend.ts';
import {
  addColSum, addInto, colSum, addWeightGrad, attentionBwd, causalMask, disposeRope, geluBwd, linear, linearBwdInput, lnModBwd, read,
  ropeBwd, ropeTables, view, type RopeTables, type T, type T2,
} from './kernels.ts';
import { disposeWeights, layoutMap, paramCount, trunkFwd, uploadWeights, type BlockSaved, type BlockWeights, type ParamEntry, type Weights } from './model.ts';
import { Rng } from './rng.ts';

export type GradBatch =
  | { kind: 'mdlm'; x0: Int32Array; zt: Int32Array; t: Float32Array; batch: number }
  | { kind: 'ar'; tokens: Int32Array; batch: number };

/** A slice of the batch for one thread: model input, and the positions that carry loss with target and weight. */
export interface Shard {
  tokens: Int32Array; // [B, L] model input (zt for mdlm)
  B: number;
  rows: Int32Array; // flat positions n = b*L + l with a loss term
  targets: Int32Array;
  weights: Float32Array; // per-row loss weight, already divided by the global normaliser
}

/** Splits a batch into `parts` shards, sequences interleaved (seq i -> shard i mod parts) so that the
 * stratified t values, and with them the number of masked rows, are balanced across threads. */
export function makeShards(cfg: ModelConfig, batch: GradBatch, parts: number): Shard[] {
  const L = cfg.seqLen;
  const Btot = batch.batch;
  const input = batch.kind === 'mdlm' ? batch.zt : batch.tokens;
  if (input.length !== Btot * L) throw new Error(`batch: expected ${Btot} x ${L} = ${Btot * L} tokens, got ${input.length}`);
  if (batch.kind === 'mdlm' && cfg.arch !== 'mdlm') throw new Error(`an mdlm batch needs an mdlm model (got arch '${cfg.arch}')`);
  if (batch.kind === 'ar' && cfg.arch !== 'ar') throw new Error(`an ar batch needs an ar model (got arch '${cfg.arch}')`);
  if (batch.kind === 'mdlm' && (batch.x0.length !== input.length || batch.t.length !== Btot)) {
    throw new Error(`mdlm batch: x0 has ${batch.x0.length} tokens and t ${batch.t.length} values, expected ${input.length} and ${Btot}`);
  }
  const shards: Shard[] = [];
  for (let p = 0; p < Math.min(parts, Btot); p++) {
    const seqs: number[] = [];
    for (let b = p; b < Btot; b += parts) seqs.push(b);
    const B = seqs.length;
    const tokens = new Int32Array(B * L);
    const rows: number[] = [];
    const targets: number[] = [];
    const weights: number[] = [];
    seqs.forEach((b, j) => {
      tokens.set(input.subarray(b * L, (b + 1) * L), j * L);
      if (batch.kind === 'mdlm') {
        const w = 1 / (batch.t[b] * Btot * L);
        for (let l = 0; l < L; l++) {
          if (batch.zt[b * L + l] !== cfg.maskId) continue;
          const x = batch.x0[b * L + l];
          if (x === cfg.maskId) throw new Error(`x0 contains the MASK id ${x} at sequence ${b}, position ${l}`);
          rows.push(j * L + l);
          targets.push(x);
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
    shards.push({ tokens, B, rows: Int32Array.from(rows), targets: Int32Array.from(targets), weights: Float32Array.from(weights) });
  }
  return shards;
}

// ---------------------------------------------------------------------------------------------------------------
// One shard on the current backend

/** Offsets of block i's parameters in the flat vector. */
function blockOffsets(lm: Map<string, ParamEntry>, i: number) {
  const o = (n: string) => lm.get(`backbone.blocks.${i}.${n}`)!.offset;
  return { norm1: o('norm1.weight'), qkv: o('attn_qkv.weight'), out: o('attn_out.weight'), norm2: o('norm2.weight'), w0: o('mlp.0.weight'), b0: o('mlp.0.bias'), w2: o('mlp.2.weight'), b2: o('mlp.2.bias'), mod: o('modulation') };
}
type BlockOffsets = ReturnType<typeof blockOffsets>;

/** Backward through one block: dx2 (gradient w.r.t. its output) -> gradient w.r.t. its input. */
function blockBwd(cfg: ModelConfig, w: BlockWeights, s: BlockSaved, dx2: T2, rope: ReturnType<typeof ropeTables>, g: Float32Array, o: BlockOffsets): T2 {
  const d = cfg.dModel;
  return tf.tidy(() => {
    // x2 = x1 + gate2 * h2m, h2m = mask2 * (g @ W2 + b2)
    addInto(g, o.mod + 5 * d, colSum(tf.mul(dx2, s.h2m) as T2));
    let dh2 = tf.mul(dx2, w.gate2) as T2;
    if (s.mask2) dh2 = tf.mul(dh2, s.mask2) as T2;
    addColSum(dh2, g, o.b2);
    addWeightGrad(dh2, s.g, g, o.w2);
    const dpre = geluBwd(linearBwdInput(dh2, w.w2T!), s.pre, s.s);
    addColSum(dpre, g, o.b0);
    addWeightGrad(dpre, s.a2, g, o.w0);
    const da2 = linearBwdInput(dpre, w.w0T!);
    const dx1 = tf.add(dx2, lnModBwd(da2, s.ln2, w.norm2, w.scale2, g, { w: o.norm2, shift: o.mod + 3 * d, scale: o.mod + 4 * d })) as T2;
    // x1 = x + gate1 * hm, hm = mask1 * (attn(a1) @ Wo)
    addInto(g, o.mod + 2 * d, colSum(tf.mul(dx1, s.hm) as T2));
    let dh = tf.mul(dx1, w.gate1) as T2;
    if (s.mask1) dh = tf.mul(dh, s.mask1) as T2;
    addWeightGrad(dh, s.o, g, o.out);
    const at = attentionBwd(linearBwdInput(dh, w.woT!), s.attn);
    const N = dx2.shape[0];
    const dqkv = tf.concat([tf.reshape(ropeBwd(at.dq, rope), [N, d]), tf.reshape(ropeBwd(at.dk, rope), [N, d]), tf.reshape(at.dv, [N, d])], 1) as T2;
    addWeightGrad(dqkv, s.a1, g, o.qkv);
    const da1 = linearBwdInput(dqkv, w.wqkvT!);
    return tf.add(dx1, lnModBwd(da1, s.ln1, w.norm1, w.scale1, g, { w: o.norm1, shift: o.mod, scale: o.mod + d })) as T2;
  });
}

function disposeSaved(s: BlockSaved): void {
  tf.dispose([s.ln1.xhat, s.ln1.rstd, s.a1, s.attn.q, s.attn.k, s.attn.v, s.attn.p, s.o, s.hm, s.ln2.xhat, s.ln2.rstd, s.a2, s.pre, s.s, s.g, s.h2m]);
  tf.dispose([s.mask1, s.mask2].filter((t): t is T => t !== null));
}

/** Sequences per forward/backward chunk: bounds activation memory (wasm32 heaps stop at 4 GB) for any batch. */
const MAX_CHUNK_TOKENS = 4096;

/** Sequences [j0, j1) of a shard, rows re-based (rows are sorted by construction). */
function subShard(s: Shard, L: number, j0: number, j1: number): Shard {
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
export function shardLossAndGrads(cfg: ModelConfig, params: Float32Array, s: Shard, dropoutSeed: number | null, grads: Float32Array | null): number {
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
    for (let j = 0; j < s.B; j += per) loss += chunkLossAndGrads(ctx, s.B <= per ? s : subShard(s, L, j, Math.min(s.B, j + per)), grads);
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
      // Head on the loss rows only; targets re-indexed past the excluded (MASK) row.
      const tgt = s.targets.map((x) => (excl >= 0 && x > excl ? x - 1 : x));
      const rowsT = tf.tensor1d(s.rows, 'int32');
      const hm = tf.gather(fw.h, rowsT) as T2;
      const logits = linear(hm, w.head, w.headB);
      const p = tf.softmax(logits);
      // -log p[x] = logsumexp - logit[x], logsumexp = max + log(sum exp(l - max)) = max - log(max p): exact and
      // never log(0), using the vectorised Softmax instead of the slow elementwise Exp.
      const flatIdx = tf.tensor1d(Int32Array.from(tgt, (x, r) => r * Vh + x), 'int32');
      const [lmax, pmax, lt] = [tf.max(logits, -1), tf.max(p, -1), tf.gather(tf.reshape(logits, [-1]), flatIdx)].map(read);
      for (let r = 0; r < M; r++) loss += s.weights[r] * (lmax[r] - Math.log(pmax[r]) - lt[r]);
      if (!backward) return loss;
      // d loss / d logits = w_r * (p - onehot(x))
      const wcol = tf.tensor2d(s.weights, [M, 1]);
      const pairs = Int32Array.from({ length: 2 * M }, (_, i) => (i & 1 ? tgt[i >> 1] : i >> 1)); // (row, target)
      const onehot = tf.scatterND(tf.tensor2d(pairs, [M, 2], 'int32'), tf.tensor1d(s.weights), [M, Vh]);
      const dlogits = tf.sub(tf.mul(p, wcol), onehot) as T2;
      const hOff = lm.get('backbone.output_layer.linear.weight')!.offset;
      const bOff = lm.get('backbone.output_layer.linear.bias')!.offset;
      if (excl < 0 || excl === V - 1) {
        addWeightGrad(dlogits, hm, grads, hOff);
        addColSum(dlogits, grads, bOff);
      } else {
        // MASK row in the middle: compute without it, then spread back around the (zero) MASK row.
        const tmp = new Float32Array(Vh * d + Vh);
        addWeightGrad(dlogits, hm, tmp, 0);
        addColSum(dlogits, tmp, Vh * d);
        addInto(grads, hOff, tmp.subarray(0, excl * d));
        addInto(grads, hOff + (excl + 1) * d, tmp.subarray(excl * d, Vh * d));
        addInto(grads, bOff, tmp.subarray(Vh * d, Vh * d + excl));
        addInto(grads, bOff + excl + 1, tmp.subarray(Vh * d + excl));
      }
      const dhm = linearBwdInput(dlogits, w.headT!);
      dh = tf.scatterND(tf.reshape(rowsT, [M, 1]), dhm, [N, d]) as T2;
    }
    if (!backward) return loss;
    const g = grads;
    const fmod = lm.get('backbone.output_layer.modulation')!.offset;
    let dx = lnModBwd(dh, fw.lnf!, w.normf, w.scalef, g, { w: lm.get('backbone.output_layer.norm_final.weight')!.offset, shift: fmod, scale: fmod + d });
    for (let i = cfg.nLayers - 1; i >= 0; i--) {
      const next = blockBwd(cfg, w.blocks[i], fw.saved[i], dx, rope, g, blockOffsets(lm, i));
      disposeSaved(fw.saved[i]);
      dx.dispose();
      dx = next;
    }
    // Embedding gradient: scatter-add rows on the host (wasm has no UnsortedSegmentSum).
    const dxe = view(dx);
    const eOff = lm.get('backbone.vocab_embed.embedding')!.offset;
    for (let n = 0; n < N; n++) {
      const base = eOff + s.tokens[n] * d;
      for (let j = 0; j < d; j++) g[base + j] += dxe[n * d + j];
    }
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

export type WorkerRequest = { type: 'step'; id: number; shard: Shard; dropoutSeed: number | null; wantGrads: boolean } | { type: 'close' };
export type WorkerReply = { type: 'ready'; backend: string; device: string } | { type: 'done'; id: number; loss: number; ms: number } | { type: 'error'; id?: number; message: string };

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

export class GradientEngine {
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

  static async create(cfg: ModelConfig, opts: { backend: BackendName; threads: number }): Promise<GradientEngine> {
    const threads = Math.max(1, Math.floor(opts.threads));
    if (threads === 1) return new GradientEngine(cfg, await initBackend(opts.backend), null);
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
            else if (m.type === 'done') pw.pending.get(m.id)?.resolve(m), pw.pending.delete(m.id);
            else if (m.id !== undefined) pw.pending.get(m.id)?.reject(new Error(m.message)), pw.pending.delete(m.id);
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
    return new GradientEngine(cfg, { backend: info.backend, device: `${info.device} x ${threads} workers` }, { workers, params });
  }

  private checkParams(params: Float32Array): void {
    if (params.length !== this.n) throw new Error(`expected ${this.n} parameters, got ${params.length}`);
  }

  private run(params: Float32Array, batch: GradBatch, dropoutSeed: number | null, wantGrads: boolean): Promise<{ loss: number; grads: Float32Array | null }> {
    const r = this.queue.then(() => this.runNow(params, batch, dropoutSeed, wantGrads));
    this.queue = r.catch(() => undefined);
    return r;
  }

  private async runNow(params: Float32Array, batch: GradBatch, dropoutSeed: number | null, wantGrads: boolean): Promise<{ loss: number; grads: Float32Array | null }> {
    if (this.disposed) throw new Error('GradientEngine used after dispose()');
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
          pw.worker.postMessage({ type: 'step', id, shard, dropoutSeed: seed, wantGrads } satisfies WorkerRequest);
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
  async computeGradients(params: Float32Array, batch: GradBatch, dropoutSeed: number): Promise<{ loss: number; grads: Float32Array }> {
    const r = await this.run(params, batch, dropoutSeed, true);
    return { loss: r.loss, grads: r.grads! };
  }

  /** Loss only, eval mode (no dropout): the validation NELBO. */
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
