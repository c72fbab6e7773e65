// How fast this machine multiplies float32 matrices on what `--backend auto` trains on, in GFLOP/s: `sdtt backend`
// prints it and the new-run form divides a distillation step's FLOPs by it (engine/io/modelSummary.ts). It takes a
// fraction of a second: one warm-up run, then runs until MEASURE_MS have passed. A step also spends time in softmax,
// norms and memory traffic, so the rate is an upper bound on what a step achieves and the time a lower bound.
import * as tf from '@tensorflow/tfjs-core';
import { Builder, int } from './onnx/graph.ts';
import { DataType, encodeModel } from './onnx/protobuf.ts';
import { createSessionOn, type OrtModule } from './onnx/runtime.ts';
import type { EpChoice } from './onnx/executionProvider.ts';
import { onnxRuntimeFor } from './io/openModel.ts';
import { initBackend } from './model/backend.ts';

const MEASURE_MS = 250;
const MAX_RUNS = 40;
/** A run's default `threads` (shared/distillConfig.ts): the onnxruntime CPU step runs on that many intra-op threads. */
const TRAINING_THREADS = 2;

/** GFLOP/s of `run` (2·m·k·n FLOPs each), after one warm-up run that pays for allocation and kernel choice. */
async function rateOf(run: () => Promise<void>, m: number, k: number, n: number): Promise<number> {
  await run();
  let runs = 0;
  const t0 = performance.now();
  do {
    await run();
    runs++;
  } while (performance.now() - t0 < MEASURE_MS && runs < MAX_RUNS);
  const seconds = (performance.now() - t0) / 1000;
  return (2 * m * k * n * runs) / seconds / 1e9;
}

/**
 * sum((X + shift)·W) with X [m, k] and W [k, n] held in the graph: only a one-float input goes in and a scalar comes
 * out, so a GPU EP is timed on the multiplication rather than on copies, and `shift`, an input, keeps onnxruntime from
 * folding the product into a constant.
 */
function matmulGraph(m: number, k: number, n: number): Uint8Array {
  const g = new Builder();
  const x = g.f32('x', [m, k], new Float32Array(m * k));
  const w = g.f32('w', [k, n], new Float32Array(k * n).fill(1 / k));
  const y = g.op1('MatMul', [g.op1('Add', [x, 'shift']), w]);
  g.nodes.push({
    opType: 'ReduceSum',
    inputs: [y],
    outputs: ['sum'],
    name: 'sum/ReduceSum',
    attrs: { keepdims: int(0) },
  });
  return encodeModel({
    irVersion: 8,
    opset: 17,
    producerName: 'sdtt-workbench',
    producerVersion: '0.1.0',
    graph: {
      name: 'matmul_rate',
      nodes: g.nodes,
      initializers: g.inits,
      inputs: [{ name: 'shift', elemType: DataType.FLOAT, shape: [1] }],
      outputs: [{ name: 'sum', elemType: DataType.FLOAT, shape: [] }],
    },
  });
}

/** The matmul rate of onnxruntime on `choice`'s execution provider. */
export async function onnxMatmulGflops(ort: OrtModule, choice: EpChoice): Promise<number> {
  // A GPU needs a larger product before launch overheads stop dominating.
  const [m, k, n] = choice.ep === 'cpu' ? [1024, 512, 512] : [4096, 2048, 2048];
  const session = await createSessionOn(
    ort,
    matmulGraph(m, k, n),
    {
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      interOpNumThreads: 1,
      intraOpNumThreads: TRAINING_THREADS,
      logSeverityLevel: 3,
    },
    choice,
  );
  try {
    let shift = 0;
    return await rateOf(
      async () => {
        await session.run({ shift: new ort.Tensor('float32', Float32Array.of(++shift), [1]) });
      },
      m,
      k,
      n,
    );
  } finally {
    await session.release();
  }
}

/** The matmul rate of the tfjs backend 'auto' initialises. */
export async function tfjsMatmulGflops(): Promise<number> {
  await initBackend('auto');
  const [m, k, n] = [256, 512, 512];
  const a = tf.zeros([m, k]);
  const b = tf.fill([k, n], 1 / k);
  try {
    return await rateOf(
      async () => {
        const y = tf.tidy(() => tf.sum(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D)));
        await y.data();
        y.dispose();
      },
      m,
      k,
      n,
    );
  } finally {
    a.dispose();
    b.dispose();
  }
}

/** The matmul rate of what `--backend auto` trains on here (onnxruntime's chosen EP, else the tfjs backend). */
export async function autoMatmulGflops(): Promise<number> {
  const target = await onnxRuntimeFor('auto', 'auto');
  return target ? onnxMatmulGflops(target.ort, target.choice) : tfjsMatmulGflops();
}
