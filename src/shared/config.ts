// The one contract for model and run configuration. Every config that crosses a process boundary or is read
// from disk goes through these schemas, so a malformed file fails here with the offending key named.
import { z } from 'zod';

/**
 * Compute backends. onnxruntime's execution providers: 'webgpu' (its bundled WebGPU EP: Vulkan, D3D12, Metal),
 * 'cuda' (its CUDA EP, where the provider library is installed), 'onnx-cpu' (its CPU EP). tfjs, the fallbacks:
 * 'tensorflow-gpu' (tfjs-node-gpu: CUDA 11.2 + cuDNN 8.1), 'tensorflow', 'tfjs-webgpu', 'wasm', 'cpu'. 'auto' takes
 * a GPU (CUDA, or WebGPU on a hardware adapter), else onnxruntime's CPU EP, else the best tfjs backend.
 */
export const BACKENDS = [
  'auto',
  'webgpu',
  'cuda',
  'onnx-cpu',
  'tensorflow-gpu',
  'tensorflow',
  'tfjs-webgpu',
  'wasm',
  'cpu',
] as const;
export const BackendName = z.enum(BACKENDS);
export type BackendName = z.infer<typeof BackendName>;
/** The backends onnxruntime computes on, and the execution provider each names. */
export const ONNX_BACKENDS = { webgpu: 'webgpu', cuda: 'cuda', 'onnx-cpu': 'cpu' } as const;
export type OnnxBackendName = keyof typeof ONNX_BACKENDS;
export const isOnnxBackend = (b: BackendName): b is OnnxBackendName => b in ONNX_BACKENDS;

/** Model hyper-parameters, stored flat in config.json (Hugging Face style). */
export const ModelConfig = z
  .object({
    /** 'mdlm' = non-causal DiT-style denoiser; 'ar' = the same blocks, causal, for the AR baseline / judge. */
    arch: z.enum(['mdlm', 'ar']),
    /** Number of token ids including EOS and (for mdlm) MASK. */
    vocabSize: z
      .number()
      .int()
      .min(3)
      .max(1 << 20),
    dModel: z.number().int().min(8).max(8192),
    nLayers: z.number().int().min(1).max(128),
    nHeads: z.number().int().min(1).max(128),
    mlpRatio: z.number().int().min(1).max(16).default(4),
    seqLen: z.number().int().min(2).max(16384),
    dropout: z.number().min(0).max(0.9).default(0),
    ropeBase: z.number().positive().default(10000),
    /** MASK id (mdlm only; by convention the last id). -1 for ar. */
    maskId: z.number().int().min(-1),
    eosId: z.number().int().min(0),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.dModel % c.nHeads !== 0)
      ctx.addIssue({
        code: 'custom',
        path: ['nHeads'],
        message: `dModel ${c.dModel} is not divisible by nHeads ${c.nHeads}`,
      });
    if ((c.dModel / c.nHeads) % 2 !== 0)
      ctx.addIssue({ code: 'custom', path: ['nHeads'], message: 'head dimension must be even for RoPE' });
    if (c.arch === 'mdlm' && (c.maskId < 0 || c.maskId >= c.vocabSize))
      ctx.addIssue({
        code: 'custom',
        path: ['maskId'],
        message: `maskId ${c.maskId} must be a valid id < vocabSize ${c.vocabSize} for mdlm`,
      });
    if (c.eosId >= c.vocabSize)
      ctx.addIssue({ code: 'custom', path: ['eosId'], message: `eosId ${c.eosId} must be < vocabSize ${c.vocabSize}` });
  });
export type ModelConfig = z.infer<typeof ModelConfig>;

/** Optimisation settings shared by pretraining (MDLM / AR) and, later, distillation. */
export const OptimConfig = z
  .object({
    lr: z.number().positive().max(1).default(3e-4),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.999),
    eps: z.number().positive().default(1e-8),
    weightDecay: z.number().min(0).default(0),
    warmupSteps: z.number().int().min(0).default(500),
    gradClip: z.number().positive().default(1.0),
    emaDecay: z.number().min(0).lt(1).default(0.999),
  })
  .strict();
export type OptimConfig = z.infer<typeof OptimConfig>;

export const PretrainConfig = z
  .object({
    kind: z.enum(['pretrain', 'pretrain-ar']),
    model: ModelConfig,
    optim: OptimConfig,
    /** A UTF-8 text file, or a token shard directory (manifest.json + *.bin). */
    data: z.string().min(1),
    /** 'auto' (a shard folder's own, else bytes), 'byte', 'gpt2', 'compact-4096' (shipped) or a tokenizer JSON path. */
    tokenizer: z.string().min(1).default('auto'),
    batchSize: z.number().int().min(1).max(4096).default(16),
    steps: z.number().int().min(1).max(100_000_000),
    /** Cooldown: the learning rate decays linearly to 0 over the last decaySteps of `steps` (0 = constant after warm-up). */
    decaySteps: z.number().int().min(0).default(0),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(0),
    /** MDLM minimum t for antithetic sampling (1e-3 in pretraining: docs/design/sdtt.md §1.2). */
    epsT: z.number().positive().lt(1).default(1e-3),
    logEvery: z.number().int().min(1).default(10),
    evalEvery: z.number().int().min(1).default(500),
    evalBatches: z.number().int().min(1).default(8),
    checkpointEvery: z.number().int().min(1).default(200),
    keepCheckpoints: z.number().int().min(1).default(3),
    backend: BackendName.default('auto'),
    /** Data-parallel worker threads for the training step (1 = in-process). */
    threads: z.number().int().min(1).max(64).default(2),
  })
  .strict();
export type PretrainConfig = z.infer<typeof PretrainConfig>;

/** Formats a zod error as one line per problem, each naming the key path, for CLI and UI alike. */
export function describeConfigError(err: z.ZodError, what = 'config'): string {
  return err.issues.map((i) => `${what}: ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('\n');
}
