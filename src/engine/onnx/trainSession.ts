// The training step on onnxruntime-node (its CPU EP, or a GPU EP: executionProvider.ts): runs trainGraph.ts with the current parameters as
// inputs and assembles the flat gradient. Same contract as the tfjs TfjsGradientEngine (gradients.ts): the batch is
// split by makeShards into rows / targets / weights, the loss is normalised by the whole batch, the dropout masks
// come from the same host RNG (workerDropoutSeed(seed, 0)), and the result is d(loss)/d(params) over the flat
// parameter vector. Pretraining runs one 'grads' graph; a distillation step runs 'logits', the host divergence
// kernel of the tfjs engine (distillLoss.ts) for the loss and dlogits, then 'backprop'.
import type { ModelConfig } from '../../shared/config.ts';
import { distillRowsLoss } from '../sdtt/distillLoss.ts';
import { makeShards, subShard, workerDropoutSeed, type GradBatch, type Shard } from '../model/gradShards.ts';
import { addInto, scatterAddRows } from '../model/kernels.ts';
import { dropoutMaskValues } from '../model/dropout.ts';
import { paramLayout, paramCount, type ParamEntry } from '../model/paramLayout.ts';
import { Rng } from '../rng.ts';
import {
  SESSION_OPTIONS,
  createSessionOn,
  loadOnnxRuntime,
  type OrtModule,
  type OrtSession,
  type OrtTensor,
  type OrtSessionOptions,
} from './runtime.ts';
import { adapterLabel, epDevice, onnxBackendLabel, type EpChoice } from './executionProvider.ts';
import { assertStepFits, measuredGpuMemory, trainingStepMemory, type StepMemory } from './deviceMemory.ts';
import { formatBytes } from '../../shared/units.ts';
import type { TrainingEngine } from '../types.ts';
import {
  GRAD_EMBED_ROWS,
  GRAD_HEAD_B,
  GRAD_HEAD_W,
  TRAIN_DLOGITS,
  TRAIN_LOGITS,
  TRAIN_LOSS,
  TRAIN_PROBS,
  TRAIN_ROWS,
  TRAIN_TARGETS,
  TRAIN_TOKENS,
  TRAIN_WEIGHTS,
  dropoutInput,
  gradName,
  headIds,
  trainGraphBytes,
  type TrainGraphMode,
} from './trainGraph.ts';

/** Tokens per graph run on the CPU EP: onnxruntime's memory grows with the largest run, so a batch runs in chunks
 * and the gradients add up (bench-5m, batch 32: 1024-token chunks 493 MB, 4096 988 MB,
 * same speed; 512 is 35% slower). */
const CPU_CHUNK_TOKENS = 1024;
/** On a GPU EP every run uploads the parameters and downloads their gradients (onnx/deviceMemory.ts, the placement
 * report in docs/design/webgpu-placement.md): fewer, larger runs, up to this many tokens or half the adapter's
 * memory by the estimate. */
const GPU_CHUNK_TOKENS = 8192;
const GPU_MEMORY_SHARE = 0.5;

/** Sequences per graph run: whole sequences, at least one; on a GPU EP as many as its memory budget allows. */
function chunkSequences(cfg: ModelConfig, choice: EpChoice): number {
  const L = cfg.seqLen;
  if (choice.ep === 'cpu') return Math.max(1, Math.floor(CPU_CHUNK_TOKENS / L));
  let per = Math.max(1, Math.floor(GPU_CHUNK_TOKENS / L));
  const memory = choice.adapter?.memoryBytes;
  if (memory) while (per > 1 && trainingStepMemory(cfg, per * L).total > GPU_MEMORY_SHARE * memory) per--;
  return per;
}
const EMBED = 'backbone.vocab_embed.embedding';
const HEAD_W = 'backbone.output_layer.linear.weight';
const HEAD_B = 'backbone.output_layer.linear.bias';

export class OnnxGradientEngine implements TrainingEngine {
  readonly backend: string;
  readonly device: string;
  readonly threads: number;
  readonly adapter: string | null;
  /** On a GPU EP: what a step holds on the device, estimated before the first one (deviceMemory.ts). */
  readonly stepMemory: StepMemory | null;
  private readonly layout: ParamEntry[];
  /** Sequences per graph run. */
  private readonly perChunk: number;
  private readonly n: number;
  private readonly headIds: Int32Array;
  /** vocabulary id -> head row (-1 for the left-out MASK row). */
  private readonly headRow: Int32Array;
  private disposed = false;
  private queue: Promise<unknown> = Promise.resolve();
  /** One session per graph mode, opened on first use (pretraining never builds the distillation graphs). */
  private readonly sessions = new Map<TrainGraphMode, Promise<OrtSession>>();

  private constructor(
    private readonly cfg: ModelConfig,
    private readonly ort: OrtModule,
    private readonly options: OrtSessionOptions,
    private readonly choice: EpChoice,
    info: { version: string; threads: number },
  ) {
    this.threads = info.threads;
    this.backend = onnxBackendLabel(choice);
    this.adapter = adapterLabel(choice);
    this.perChunk = chunkSequences(cfg, choice);
    this.stepMemory = choice.ep === 'cpu' ? null : assertStepFits(cfg, this.perChunk * cfg.seqLen, choice.adapter);
    const detail = this.stepMemory
      ? `a step holds about ${formatBytes(this.stepMemory.total)} on the device`
      : `${info.threads} threads`;
    this.device = epDevice(info.version, choice, detail);
    this.layout = paramLayout(cfg);
    this.n = paramCount(cfg);
    this.headIds = headIds(cfg);
    this.headRow = new Int32Array(cfg.vocabSize).fill(-1);
    this.headIds.forEach((v, k) => (this.headRow[v] = k));
  }

  /** Throws (with the reason) when onnxruntime-node is missing. */
  static async create(cfg: ModelConfig, opts: { threads: number; choice?: EpChoice }): Promise<OnnxGradientEngine> {
    const rt = await loadOnnxRuntime();
    if (!rt.ort) throw new Error(`onnx training engine unavailable: ${rt.reason}`);
    const threads = Math.max(1, Math.floor(opts.threads));
    const so: OrtSessionOptions = { ...SESSION_OPTIONS, intraOpNumThreads: threads };
    const choice = opts.choice ?? { ep: 'cpu', adapter: null };
    const engine = new OnnxGradientEngine(cfg, rt.ort, so, choice, { version: rt.version, threads });
    await engine.session('grads'); // a graph onnxruntime rejects fails here, not at the first step
    return engine;
  }

  private session(mode: TrainGraphMode): Promise<OrtSession> {
    let s = this.sessions.get(mode);
    if (!s)
      this.sessions.set(
        mode,
        (s = createSessionOn(this.ort, trainGraphBytes(this.cfg, mode), this.options, this.choice)),
      );
    return s;
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
    if (this.disposed) throw new Error('OnnxGradientEngine used after dispose()');
    if (params.length !== this.n) throw new Error(`expected ${this.n} parameters, got ${params.length}`);
    const L = this.cfg.seqLen;
    const s = makeShards(this.cfg, batch, 1)[0];
    const grads = wantGrads ? new Float32Array(this.n) : null;
    const rng = dropoutSeed === null ? null : new Rng(workerDropoutSeed(dropoutSeed, 0));
    const per = this.perChunk;
    let loss = 0;
    for (let j = 0; j < s.B; j += per)
      loss += await this.runChunk(params, s.B <= per ? s : subShard(s, L, j, Math.min(s.B, j + per)), rng, grads);
    return { loss, grads };
  }

  /** Loss of one chunk of sequences; adds its gradient into `grads` when given. rng: dropout (null = eval mode). */
  private async runChunk(params: Float32Array, s: Shard, rng: Rng | null, grads: Float32Array | null): Promise<number> {
    const { cfg, ort } = this;
    const M = s.rows.length;
    const feeds: Record<string, OrtTensor> = {
      [TRAIN_TOKENS]: new ort.Tensor('int32', s.tokens, [s.B, cfg.seqLen]),
      [TRAIN_ROWS]: new ort.Tensor(
        'int64',
        BigInt64Array.from(s.rows, (v) => BigInt(v)),
        [M],
      ),
    };
    for (const e of this.layout)
      feeds[e.name] = new ort.Tensor('float32', params.subarray(e.offset, e.offset + e.size), e.shape);
    this.addDropoutMasks(feeds, s.tokens.length, rng); // drawn even for a chunk without loss rows, as the tfjs engine does
    if (M === 0) return 0; // no loss term: loss and gradient are exactly 0

    if (!s.soft) {
      const targets = new BigInt64Array(M);
      for (let r = 0; r < M; r++) {
        const k = this.headRow[s.targets[r]];
        if (k < 0) throw new Error(`target id ${s.targets[r]} is the MASK id, which the model never predicts`);
        targets[r] = BigInt(k);
      }
      feeds[TRAIN_TARGETS] = new ort.Tensor('int64', targets, [M]);
      feeds[TRAIN_WEIGHTS] = new ort.Tensor('float32', s.weights, [M]);
      const out = await (await this.session(grads ? 'grads' : 'loss')).run(feeds);
      const loss = (out[TRAIN_LOSS].data as Float32Array)[0];
      if (grads) this.addGrads(out, s, grads);
      for (const t of Object.values(out)) t.dispose?.();
      return loss;
    }

    // Distillation: student logits -> host divergence and dlogits (distillLoss.ts) -> backprop.
    const Vh = this.headIds.length;
    const fwd = await (await this.session('logits')).run(feeds);
    const probs = fwd[TRAIN_PROBS].data as Float32Array;
    // dlogits overwrite the softmax they are computed from (distillRowsLoss allows it): at V = 50258 each
    // [M, Vh] array of a 1024-token chunk is 200 MB.
    const dl = grads ? probs : null;
    const loss = distillRowsLoss(
      s.divergence!,
      fwd[TRAIN_LOGITS].data as Float32Array,
      probs,
      s.soft,
      s.weights,
      cfg.vocabSize,
      cfg.maskId,
      dl,
    );
    fwd[TRAIN_LOGITS].dispose?.();
    try {
      if (!grads) return loss;
      feeds[TRAIN_DLOGITS] = new ort.Tensor('float32', dl!, [M, Vh]);
      const out = await (await this.session('backprop')).run(feeds);
      this.addGrads(out, s, grads);
      for (const t of Object.values(out)) t.dispose?.();
      return loss;
    } finally {
      fwd[TRAIN_PROBS].dispose?.();
    }
  }

  /** Dropout masks in the tfjs engine's order (per chunk, per block: attention branch, then MLP); ones in eval mode. */
  private addDropoutMasks(feeds: Record<string, OrtTensor>, N: number, rng: Rng | null): void {
    const { cfg, ort } = this;
    if (!(cfg.dropout > 0)) return;
    const d = cfg.dModel;
    const ones = rng ? null : new Float32Array(N * d).fill(1);
    for (let i = 0; i < cfg.nLayers; i++) {
      for (const br of ['attn', 'mlp'] as const)
        feeds[dropoutInput(i, br)] = new ort.Tensor(
          'float32',
          rng ? dropoutMaskValues(N, d, cfg.dropout, rng) : ones!,
          [N, d],
        );
    }
  }

  /** Adds the graph's gradient outputs into the flat vector (head rows around MASK, embedding rows scatter-added). */
  private addGrads(out: Record<string, OrtTensor>, s: Shard, grads: Float32Array): void {
    const d = this.cfg.dModel;
    const at = (name: string) => out[name].data as Float32Array;
    for (const e of this.layout) {
      if (e.name === EMBED || e.name === HEAD_W || e.name === HEAD_B) continue;
      addInto(grads, e.offset, at(gradName(e.name)));
    }
    const headW = this.offsetOf(HEAD_W);
    const headB = this.offsetOf(HEAD_B);
    const dW = at(GRAD_HEAD_W);
    const dB = at(GRAD_HEAD_B);
    this.headIds.forEach((v, k) => {
      addInto(grads, headW + v * d, dW.subarray(k * d, (k + 1) * d));
      grads[headB + v] += dB[k];
    });
    scatterAddRows(grads, this.offsetOf(EMBED), s.tokens, at(GRAD_EMBED_ROWS), d);
  }

  private offsetOf(name: string): number {
    return this.layout.find((e) => e.name === name)!.offset;
  }

  async computeGradients(
    params: Float32Array,
    batch: GradBatch,
    dropoutSeed: number,
  ): Promise<{ loss: number; grads: Float32Array }> {
    const r = await this.run(params, batch, dropoutSeed, true);
    return { loss: r.loss, grads: r.grads! };
  }

  async evalLoss(params: Float32Array, batch: GradBatch): Promise<number> {
    return (await this.run(params, batch, null, false)).loss;
  }

  /** GPU memory this process holds now where the driver tells it (nvidia-smi), else null. */
  gpuMemoryUsed(): number | null {
    return this.stepMemory ? measuredGpuMemory() : null;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.queue;
    const opened = await Promise.allSettled(this.sessions.values());
    await Promise.all(opened.map((r) => (r.status === 'fulfilled' ? r.value.release() : undefined)));
  }
}
