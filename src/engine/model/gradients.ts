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
//
// Files: gradShards.ts splits the batch into shards (loss rows, targets, weights), shardLoss.ts computes one
// shard's loss and gradient, this file is the engine (in-process or the worker pool); gradWorker.ts is the worker.
import { Worker } from 'node:worker_threads';
import type { BackendName, ModelConfig } from '../../shared/config.ts';
import { initBackend } from './backend.ts';
import { addInto } from './kernels.ts';
import { makeShards, workerDropoutSeed, type GradBatch, type Shard } from './gradShards.ts';
import { shardLossAndGrads } from './shardLoss.ts';
import { paramCount } from './paramLayout.ts';
import type { TrainingEngine } from '../types.ts';

// ---------------------------------------------------------------------------------------------------------------
// The engine: in-process (threads = 1) or data-parallel over worker threads, each with its own tfjs instance
// (tfjs-wasm is single-threaded in Node, so one worker = one core). Parameters go to the workers through one
// SharedArrayBuffer, each worker writes its gradient into its own SharedArrayBuffer, and the parent sums them in
// worker order: the same seed and batch give bit-identical results run to run.

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
  /** tfjs does not say which GPU it runs on (tfjs-node-gpu: the device string names CUDA). */
  readonly adapter = null;
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
