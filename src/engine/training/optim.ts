// Host-side optimisation on flat Float32Arrays (parameters, gradients, moments and EMA share one layout).
// Plain loops with float64 intermediates: the update is memory-bound and cheap next to the forward/backward pass,
// and doing it on the host keeps it bit-for-bit reproducible across compute backends.
//
// Every formula follows the PyTorch reference (docs/design/sdtt.md §4.5; pretraining §1.5, distillation §4.6):
// torch.optim.AdamW, torch.nn.utils.clip_grad_norm_, transformers.get_constant_schedule_with_warmup and the
// ExponentialMovingAverage used by MDLM / SDTT.

import type { OptimConfig } from '../../shared/config.ts';

/**
 * Learning rate for the update that follows `step` completed updates (0-based): linear warmup from 0 to `lr` over
 * `warmupSteps`, then constant. Matches `get_constant_schedule_with_warmup` (lr * step / warmup while
 * step < warmup), so the very first update runs with lr 0, exactly as in the reference runs.
 */
export function lrAt(step: number, optim: Pick<OptimConfig, 'lr' | 'warmupSteps'>): number {
  if (optim.warmupSteps <= 0 || step >= optim.warmupSteps) return optim.lr;
  return (optim.lr * Math.max(0, step)) / optim.warmupSteps;
}

/**
 * Learning-rate multiplier of a cooldown ("warmup-stable-decay"): 1 until the last `decaySteps` of `totalSteps`,
 * then linear towards 0 (1/decaySteps at the last step). decaySteps 0 = constant. A run can be continued past its
 * end from a checkpoint taken before the cooldown began.
 */
export function cooldownFactor(step: number, totalSteps: number, decaySteps: number): number {
  if (decaySteps <= 0) return 1;
  return Math.max(0, Math.min(1, (totalSteps - step) / decaySteps));
}

/** L2 norm over all gradient elements (one array or several), accumulated in float64. Non-finite in -> non-finite out. */
export function globalNorm(grads: Float32Array | Float32Array[]): number {
  const list = Array.isArray(grads) ? grads : [grads];
  let sum = 0;
  for (const g of list) {
    for (let i = 0; i < g.length; i++) sum += g[i] * g[i];
  }
  return Math.sqrt(sum);
}

/**
 * Scales gradients in place so their global norm is at most `maxNorm`, as clip_grad_norm_ does
 * (coefficient maxNorm / (norm + 1e-6), applied only when below 1). Returns the norm before clipping.
 * A non-finite norm leaves the gradients untouched: the caller must check it and skip the step (a run that
 * produced NaN gradients is reported, not silently "clipped" into NaN weights).
 */
export function clipGradients(grads: Float32Array | Float32Array[], maxNorm: number): number {
  const norm = globalNorm(grads);
  if (!Number.isFinite(norm)) return norm;
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) {
    for (const g of Array.isArray(grads) ? grads : [grads]) {
      for (let i = 0; i < g.length; i++) g[i] *= coef;
    }
  }
  return norm;
}

/** True when no element is NaN or ±Infinity. x*0 is 0 for finite x and NaN otherwise, so one sum decides. */
export function allFinite(arr: Float32Array | Float64Array): boolean {
  let s = 0;
  for (let i = 0; i < arr.length; i++) s += arr[i] * 0;
  return s === 0;
}

/**
 * Why a training step stopped on a non-finite loss or gradient (`at`: "step 12", "step 12 (round 1)"), and what a
 * rerun does: resume from the last good checkpoint, or start over when none was written yet.
 */
export function nonFiniteStepReason(loss: number, at: string, lastCheckpoint: string | undefined): string {
  const rerun = lastCheckpoint
    ? 'last good checkpoint kept'
    : 'no checkpoint was written yet: running it again starts over';
  return `non-finite ${Number.isFinite(loss) ? 'gradient' : `loss (${loss})`} at ${at}; ${rerun}`;
}

export type AdamWConfig = Pick<OptimConfig, 'beta1' | 'beta2' | 'eps' | 'weightDecay'>;

/** What a checkpoint stores of the optimiser: first/second moments and the number of updates done. */
export interface AdamWState {
  m: Float32Array;
  v: Float32Array;
  t: number;
}

/**
 * AdamW exactly as torch.optim.AdamW (default, non-amsgrad): decoupled weight decay p -= lr*wd*p, then the
 * bias-corrected Adam step p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
 */
export class AdamW {
  readonly n: number;
  readonly cfg: AdamWConfig;
  m: Float32Array;
  v: Float32Array;
  /** Number of updates applied so far (PyTorch's `step`), used for the bias correction. */
  t = 0;

  constructor(n: number, cfg: AdamWConfig) {
    this.n = n;
    this.cfg = { beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps, weightDecay: cfg.weightDecay };
    this.m = new Float32Array(n);
    this.v = new Float32Array(n);
  }

  step(params: Float32Array, grads: Float32Array, lr: number): void {
    if (params.length !== this.n || grads.length !== this.n) {
      throw new Error(
        `AdamW.step: expected ${this.n} parameters and gradients, got ${params.length} and ${grads.length}`,
      );
    }
    this.t += 1;
    const { beta1: b1, beta2: b2, eps, weightDecay: wd } = this.cfg;
    const stepSize = lr / (1 - b1 ** this.t);
    const sqrtBc2 = Math.sqrt(1 - b2 ** this.t);
    const decay = 1 - lr * wd;
    const m = this.m;
    const v = this.v;
    const c1 = 1 - b1;
    const c2 = 1 - b2;
    for (let i = 0; i < params.length; i++) {
      const g = grads[i];
      const mi = b1 * m[i] + c1 * g;
      const vi = b2 * v[i] + c2 * g * g;
      m[i] = mi;
      v[i] = vi;
      params[i] = params[i] * decay - (stepSize * mi) / (Math.sqrt(vi) / sqrtBc2 + eps);
    }
  }

  /** The moments are returned by reference (checkpoint writers copy them into the file anyway). */
  state(): AdamWState {
    return { m: this.m, v: this.v, t: this.t };
  }

  /** Restores moments (copied) and step count, e.g. from a checkpoint. */
  load(s: AdamWState): void {
    if (s.m.length !== this.n || s.v.length !== this.n) {
      throw new Error(`AdamW.load: state has ${s.m.length}/${s.v.length} moments for ${this.n} parameters`);
    }
    if (!Number.isInteger(s.t) || s.t < 0) throw new Error(`AdamW.load: invalid step count ${s.t}`);
    this.m = Float32Array.from(s.m);
    this.v = Float32Array.from(s.v);
    this.t = s.t;
  }
}

export interface EmaState {
  values: Float32Array;
  decay: number;
  warmup: boolean;
  updates: number;
}

/**
 * Exponential moving average of the parameters (docs/design/sdtt.md §4.5): values <- d*values + (1-d)*params with
 * d = min(decay, (1+n)/(10+n)) where n counts updates including the current one (the MDLM/SDTT
 * ExponentialMovingAverage increments num_updates before computing d, so the first update uses n = 1).
 * The warm-up keeps early EMA weights from being dominated by the initial ones.
 */
export class Ema {
  values: Float32Array;
  readonly decay: number;
  readonly warmup: boolean;
  updates = 0;

  /** `params` is copied: the EMA starts at the current (e.g. teacher) weights. */
  constructor(params: Float32Array, decay: number, warmup = true) {
    if (!(decay >= 0 && decay < 1)) throw new Error(`Ema: decay must be in [0, 1), got ${decay}`);
    this.values = Float32Array.from(params);
    this.decay = decay;
    this.warmup = warmup;
  }

  /** The decay that the next update will use. */
  nextDecay(): number {
    const n = this.updates + 1;
    return this.warmup ? Math.min(this.decay, (1 + n) / (10 + n)) : this.decay;
  }

  update(params: Float32Array): void {
    if (params.length !== this.values.length)
      throw new Error(`Ema.update: expected ${this.values.length} parameters, got ${params.length}`);
    const d = this.nextDecay();
    const c = 1 - d;
    const e = this.values;
    // e - (1-d)(e - p): the form PyTorch uses, one fused expression per element.
    for (let i = 0; i < e.length; i++) e[i] = e[i] - c * (e[i] - params[i]);
    this.updates += 1;
  }

  state(): EmaState {
    return { values: this.values, decay: this.decay, warmup: this.warmup, updates: this.updates };
  }

  static fromState(s: EmaState): Ema {
    if (!Number.isInteger(s.updates) || s.updates < 0)
      throw new Error(`Ema.fromState: invalid update count ${s.updates}`);
    const ema = new Ema(s.values, s.decay, s.warmup);
    ema.updates = s.updates;
    return ema;
  }
}
