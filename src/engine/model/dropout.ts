// Train-mode dropout masks, drawn on the host from the seeded RNG so that a step's masks are reproducible and the
// same on every engine: the tfjs forward (model.ts blockFwd) uploads them as tensors, the onnx training engine
// (onnx/trainSession.ts) feeds the raw values. Split out of model.ts so both engines share one definition.
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../rng.ts';
import type { T2 } from './kernels.ts';

/** A dropout mask [n, d] of {0, 1/(1-p)} from the host RNG (also the onnx training engine's masks). */
export function dropoutMaskValues(n: number, d: number, p: number, rng: Rng): Float32Array {
  const a = new Float32Array(n * d);
  const keep = 1 / (1 - p);
  const thr = p * 4294967296;
  for (let i = 0; i < a.length; i++) a[i] = rng.nextU32() < thr ? 0 : keep;
  return a;
}

/** The same mask as a [n, d] tensor (the tfjs forward pass). */
export function dropoutMask(n: number, d: number, p: number, rng: Rng): T2 {
  return tf.tensor2d(dropoutMaskValues(n, d, p, rng), [n, d]);
}
