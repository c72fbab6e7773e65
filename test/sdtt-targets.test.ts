import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../src/engine/rng.ts';
import { EPS_SAMPLE, SUBS_NEG_INF, subsLogProbs } from '../src/engine/model/mdlm.ts';
import { ancestralStep } from '../src/engine/sampling/sampler.ts';
import { divergence } from '../src/engine/sdtt/divergences.ts';
import { subStepTimes, teacherTargets } from '../src/engine/sdtt/targets.ts';
import type { Denoiser } from '../src/engine/types.ts';
import { CountingDenoiser, compactMaskedRows } from './helpers/fixtures.ts';
import { rowsOnly } from './helpers/rowModels.ts';

/**
 * Deterministic teacher: logits of (b, l, v) are a fixed function of the position, the left neighbour's token and
 * the number of MASKs left in the same sequence (never of other sequences), so a later sub-step sees different
 * logits than the first one.
 */
class FakeTeacher extends CountingDenoiser {
  protected fill(tokens: Int32Array, batch: number, out: Float32Array): void {
    const { vocabSize: V, seqLen: L } = this;
    for (let b = 0; b < batch; b++) {
      let masks = 0;
      for (let l = 0; l < L; l++) if (tokens[b * L + l] === this.maskId) masks++;
      for (let l = 0; l < L; l++) {
        const left = l > 0 ? tokens[b * L + l - 1] : -1;
        for (let v = 0; v < V; v++)
          out[(b * L + l) * V + v] = 2.5 * Math.sin(0.9 * v + 1.7 * l + 0.31 * left + 0.23 * masks + 0.05 * v * v);
      }
    }
  }
}

const V = 7;
const MASK = V - 1;

function makeBatch(batch: number, L: number, t: Float32Array, seed: number): Int32Array {
  const rng = new Rng(seed);
  const z = new Int32Array(batch * L);
  for (let b = 0; b < batch; b++)
    for (let l = 0; l < L; l++) z[b * L + l] = rng.uniform() < t[b] ? MASK : rng.int(MASK);
  return z;
}

/** Straightforward transcription of docs/design/sdtt.md §4.1 with full float64 SUBS arrays, same RNG order. */
async function referenceTargets(
  teacher: Denoiser,
  zt: Int32Array,
  t: Float32Array,
  delta: number,
  K: number,
  rng: Rng,
  legacy = false,
) {
  const B = t.length;
  const L = zt.length / B;
  const target = new Float64Array(zt.length * V);
  const revealed = new Int8Array(zt.length).fill(-1);
  let z = zt.slice();
  let logp: Float64Array = new Float64Array(0);
  for (let i = 0; i < K; i++) {
    logp = subsLogProbs(await teacher.logits(z, B), z, V, MASK);
    const next = z.slice();
    for (let b = 0; b < B; b++) {
      const tau = subStepTimes(t[b], delta, K, legacy)[i];
      const seq = z.subarray(b * L, (b + 1) * L);
      const res = ancestralStep(seq, logp.subarray(b * L * V, (b + 1) * L * V), tau, tau - delta, rng, MASK);
      next.set(res.tokens, b * L);
    }
    for (let p = 0; p < z.length; p++) {
      if (next[p] !== z[p]) {
        target.set(logp.subarray(p * V, (p + 1) * V), p * V);
        revealed[p] = i;
      }
    }
    z = next;
  }
  for (let p = 0; p < z.length; p++)
    if (z[p] === MASK && revealed[p] < 0) target.set(logp.subarray(p * V, (p + 1) * V), p * V);
  return { target, revealed, final: z };
}

test('subStepTimes: paper and legacy grids, clamped at eps_s', () => {
  assert.deepEqual(Array.from(subStepTimes(0.5, 0.1, 2)), [0.5, 0.4]);
  assert.deepEqual(Array.from(subStepTimes(0.05, 0.1, 2)), [0.05, EPS_SAMPLE]);
  const t = 0.5,
    d = 0.1;
  const leg = subStepTimes(t, d, 2, true);
  assert.ok(Math.abs(leg[0] - (t + (1 - t) * (t - 2 * d))) < 1e-15);
  assert.ok(Math.abs(leg[1] - (1 - t) * (t - 2 * d)) < 1e-15);
  assert.equal(subStepTimes(0.1, 0.1, 2, true)[1], EPS_SAMPLE);
  assert.deepEqual(
    Array.from(subStepTimes(0.9, 0.2, 3)).map((x) => +x.toFixed(12)),
    [0.9, 0.7, 0.5],
  );
});

test('matches a direct transcription of docs/design/sdtt.md §4.1 exactly (K = 2 and 3, paper and legacy grids)', async () => {
  const B = 6,
    L = 24;
  const t = new Float32Array([0.9, 0.55, 0.3, 0.12, 0.04, 1]);
  const zt = makeBatch(B, L, t, 1);
  for (const [K, legacy, delta] of [
    [2, false, 0.1],
    [3, false, 0.05],
    [2, true, 0.1],
  ] as const) {
    const teacher = new FakeTeacher(V, L, MASK);
    const got = await teacherTargets(teacher, zt, t, delta, {
      K,
      rng: new Rng(42),
      maskId: MASK,
      legacyTimeGrid: legacy,
    });
    const ref = await referenceTargets(new FakeTeacher(V, L, MASK), zt, t, delta, K, new Rng(42), legacy);
    let revealedCount = 0;
    for (let p = 0; p < zt.length; p++) {
      assert.equal(got.masked[p], zt[p] === MASK ? 1 : 0);
      assert.equal(got.revealedAt[p], ref.revealed[p], `revealedAt at ${p} (K=${K}, legacy=${legacy})`);
      if (got.revealedAt[p] >= 0) {
        revealedCount++;
        assert.equal(zt[p], MASK, 'only positions masked in z_t can be revealed');
        assert.ok(got.revealedAt[p] < K);
      }
      if (zt[p] !== MASK) continue;
      for (let v = 0; v < V; v++)
        assert.equal(got.targets[p * V + v], Math.fround(ref.target[p * V + v]), `target (${p}, ${v})`);
    }
    assert.ok(revealedCount > 0);
    assert.equal(got.nfe, K);
    // layout 'masked' (what distillation uses): exactly the masked rows of the full layout, same random draws
    const compact = await teacherTargets(new FakeTeacher(V, L, MASK), zt, t, delta, {
      K,
      rng: new Rng(42),
      maskId: MASK,
      legacyTimeGrid: legacy,
      layout: 'masked',
    });
    assert.deepEqual(compact.targets, compactMaskedRows(got.targets, got.masked, V));
    assert.deepEqual(compact.revealedAt, got.revealedAt);
  }
});

test('the teacher is read by row: never whole logits, at most one sequence per read, the same targets', async () => {
  const B = 5,
    L = 20;
  const t = new Float32Array([0.95, 0.6, 0.3, 0.08, 0.5]);
  const zt = makeBatch(B, L, t, 4);
  for (const [K, delta] of [
    [2, 0.1],
    [3, 0.4],
  ] as const) {
    for (const layout of ['masked', 'full'] as const) {
      const opts = { K, maskId: MASK, layout };
      const whole = await teacherTargets(new FakeTeacher(V, L, MASK), zt, t, delta, { ...opts, rng: new Rng(9) });
      const teacher = rowsOnly(new FakeTeacher(V, L, MASK));
      const rows = await teacherTargets(teacher, zt, t, delta, { ...opts, rng: new Rng(9) });
      assert.deepEqual(rows.targets, whole.targets);
      assert.deepEqual(rows.revealedAt, whole.revealedAt);
      assert.equal(rows.nfe, whole.nfe);
      assert.equal(teacher.rowReads.forwards, rows.nfe);
      assert.ok(teacher.rowReads.maxRows <= L, `a read asked for ${teacher.rowReads.maxRows} rows`);
    }
  }
});

test('every masked position has a proper target row; unmasked positions hold the carry-over row', async () => {
  const B = 8,
    L = 32;
  const t = new Float32Array(B).map((_, b) => 0.1 + 0.11 * b);
  const zt = makeBatch(B, L, t, 2);
  const res = await teacherTargets(new FakeTeacher(V, L, MASK), zt, t, 1 / 16, { rng: new Rng(3), maskId: MASK });
  for (let p = 0; p < zt.length; p++) {
    const row = res.targets.subarray(p * V, (p + 1) * V);
    if (zt[p] === MASK) {
      let mass = 0;
      for (let v = 0; v < V; v++) if (v !== MASK) mass += Math.exp(row[v]);
      assert.ok(Math.abs(mass - 1) < 1e-5, `row ${p} mass ${mass}`);
      assert.ok(row[MASK] < -1e5, 'MASK column ≈ −1e6');
      for (let v = 0; v < V; v++) if (v !== MASK) assert.ok(Number.isFinite(row[v]) && row[v] > -50);
    } else {
      assert.equal(res.revealedAt[p], -1);
      for (let v = 0; v < V; v++) assert.equal(row[v], v === zt[p] ? 0 : SUBS_NEG_INF);
    }
  }
});

test('sub-step-0 positions get exactly SUBS(teacher(z_t)); a student equal to the teacher has 0 loss there', async () => {
  const B = 8,
    L = 32;
  const t = new Float32Array(B).map((_, b) => 0.2 + 0.1 * b);
  const zt = makeBatch(B, L, t, 4);
  const teacher = new FakeTeacher(V, L, MASK);
  const res = await teacherTargets(teacher, zt, t, 0.08, { rng: new Rng(5), maskId: MASK });
  const student = subsLogProbs(await teacher.logits(zt, B), zt, V, MASK);
  const s0 = new Uint8Array(zt.length);
  const s1 = new Uint8Array(zt.length);
  for (let p = 0; p < zt.length; p++) {
    if (res.revealedAt[p] === 0) {
      s0[p] = 1;
      for (let v = 0; v < V; v++) assert.equal(res.targets[p * V + v], Math.fround(student[p * V + v]));
    } else if (res.masked[p]) s1[p] = 1;
  }
  assert.ok(s0.some((x) => x === 1) && s1.some((x) => x === 1));
  const studentF32 = Float64Array.from(student, (x) => Math.fround(x));
  assert.equal(divergence('kld', studentF32, res.targets, V, s0), 0);
  // later positions saw more context: the loss there is positive
  assert.ok(divergence('kld', studentF32, res.targets, V, s1) > 0);
});

test('t < Δ_r: the first sub-step reveals everything, targets = teacher(z_t), one forward', async () => {
  const B = 5,
    L = 40;
  const delta = 0.25;
  const t = new Float32Array([0.2, 0.1, 0.05, 0.01, 1e-5]);
  const zt = makeBatch(B, L, new Float32Array(B).fill(0.6), 6); // plenty of masks regardless of t
  const teacher = new FakeTeacher(V, L, MASK);
  const res = await teacherTargets(teacher, zt, t, delta, { rng: new Rng(7), maskId: MASK });
  assert.equal(res.nfe, 1);
  const ref = subsLogProbs(await new FakeTeacher(V, L, MASK).logits(zt, B), zt, V, MASK);
  for (let p = 0; p < zt.length; p++) {
    assert.equal(res.revealedAt[p], zt[p] === MASK ? 0 : -1);
    for (let v = 0; v < V; v++) assert.equal(res.targets[p * V + v], Math.fround(ref[p * V + v]));
  }
});

async function fractionRevealedAtZero(t: number, delta: number, legacy: boolean): Promise<number> {
  const B = 100,
    L = 64;
  const tt = new Float32Array(B).fill(t);
  const zt = makeBatch(B, L, tt, 8);
  const res = await teacherTargets(new FakeTeacher(V, L, MASK), zt, tt, delta, {
    rng: new Rng(9),
    maskId: MASK,
    legacyTimeGrid: legacy,
  });
  let masked = 0,
    first = 0;
  for (let p = 0; p < zt.length; p++) {
    if (!res.masked[p]) continue;
    masked++;
    if (res.revealedAt[p] === 0) first++;
  }
  assert.ok(masked > 2000);
  return first / masked;
}

test('paper grid: fraction revealed in sub-step 0 ≈ Δ_r / t', async () => {
  const t = Math.fround(0.5),
    delta = 0.1;
  const f = await fractionRevealedAtZero(t, delta, false);
  assert.ok(Math.abs(f - delta / t) < 0.03, `fraction ${f} vs ${delta / t}`);
});

test('legacy grid: fraction revealed in sub-step 0 = Δ/τ_0 ≈ Δ/(t(2−t)) (fewer than the paper grid)', async () => {
  const t = Math.fround(0.5),
    delta = 0.1;
  const f = await fractionRevealedAtZero(t, delta, true);
  const tau0 = t + (1 - t) * (t - 2 * delta);
  assert.ok(Math.abs(f - delta / tau0) < 0.03, `fraction ${f} vs ${delta / tau0}`);
  assert.ok(Math.abs(f - delta / (t * (2 - t))) < 0.04, `fraction ${f} vs approx ${delta / (t * (2 - t))}`);
  assert.ok(f < delta / t - 0.03);
});

test('reproducible with the same seed; different seeds differ; per-sequence rngs make a sequence batch-independent', async () => {
  const B = 4,
    L = 32;
  const t = new Float32Array([0.8, 0.6, 0.4, 0.3]);
  const zt = makeBatch(B, L, t, 10);
  const run = (seed: number) =>
    teacherTargets(new FakeTeacher(V, L, MASK), zt, t, 0.1, { rng: new Rng(seed), maskId: MASK });
  const a = await run(11),
    b = await run(11),
    c = await run(12);
  assert.deepEqual(a.targets, b.targets);
  assert.deepEqual(a.revealedAt, b.revealedAt);
  assert.notDeepEqual(a.revealedAt, c.revealedAt);

  const all = await teacherTargets(new FakeTeacher(V, L, MASK), zt, t, 0.1, {
    rng: [0, 1, 2, 3].map((b) => new Rng(100 + b)),
    maskId: MASK,
  });
  const one = await teacherTargets(new FakeTeacher(V, L, MASK), zt.slice(2 * L, 3 * L), t.slice(2, 3), 0.1, {
    rng: [new Rng(102)],
    maskId: MASK,
  });
  assert.deepEqual(all.revealedAt.slice(2 * L, 3 * L), one.revealedAt);
  assert.deepEqual(all.targets.slice(2 * L * V, 3 * L * V), one.targets);
});

test('no MASK in z_t: no forward, carry-over targets; input validation', async () => {
  const L = 8;
  const zt = new Int32Array([0, 1, 2, 3, 4, 5, 0, 1]);
  const teacher = new FakeTeacher(V, L, MASK);
  const res = await teacherTargets(teacher, zt, new Float32Array([0.5]), 0.1, { rng: new Rng(1), maskId: MASK });
  assert.equal(res.nfe, 0);
  assert.equal(teacher.calls, 0);
  assert.equal(
    res.masked.reduce((a, x) => a + x, 0),
    0,
  );
  await assert.rejects(teacherTargets(teacher, zt, new Float32Array([0.5]), 0.1, { rng: new Rng(1), maskId: 0 }));
  await assert.rejects(
    teacherTargets(teacher, zt, new Float32Array([0.5]), 0.1, { rng: new Rng(1), maskId: MASK, K: 0 }),
  );
  await assert.rejects(
    teacherTargets(teacher, zt, new Float32Array([0.5, 0.5]), 0.1, { rng: new Rng(1), maskId: MASK }),
  );
});
