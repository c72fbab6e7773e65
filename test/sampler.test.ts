import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../src/engine/rng.ts';
import { EPS_SAMPLE, subsLogProbs } from '../src/engine/model/mdlm.ts';
import {
  ancestralStep,
  revealProb,
  sampleFloat32Race,
  sampleFromLogProbs,
  sampleMdlm,
  nucleusSample,
  sequenceRng,
  timeGrid,
} from '../src/engine/sampling/sampler.ts';
import { sampleAr } from '../src/engine/sampling/arSampler.ts';
import type { ArModel, ArSession } from '../src/engine/types.ts';
import { CountingDenoiser } from './helpers/fixtures.ts';
import { rowsOnly } from './helpers/rowModels.ts';

// ---------- fake models ----------

/** Same logits row at every position, whatever the input; counts forwards. */
class FixedDenoiser extends CountingDenoiser {
  constructor(
    vocabSize: number,
    seqLen: number,
    maskId: number,
    private readonly row: number[],
  ) {
    super(vocabSize, seqLen, maskId);
  }
  protected fill(_tokens: Int32Array, batch: number, out: Float32Array): void {
    for (let p = 0; p < batch * this.seqLen; p++) out.set(this.row, p * this.vocabSize);
  }
}

/**
 * Logits that depend on the sequence (left neighbour, number of revealed tokens, position) but never on other
 * sequences of the batch — so stale logits would show up as different samples.
 */
class ContextDenoiser extends CountingDenoiser {
  protected fill(tokens: Int32Array, batch: number, out: Float32Array): void {
    const { vocabSize: V, seqLen: L, maskId } = this;
    for (let b = 0; b < batch; b++) {
      let revealed = 0;
      for (let l = 0; l < L; l++) if (tokens[b * L + l] !== maskId) revealed++;
      for (let l = 0; l < L; l++) {
        const left = l > 0 ? tokens[b * L + l - 1] : -1;
        for (let v = 0; v < V; v++) {
          let x = Math.cos(0.9 * v + 0.37 * l) + (0.2 * revealed * v) / V;
          if (left >= 0 && left !== maskId && v === (left + 1) % maskId) x += 1.5;
          out[(b * L + l) * V + v] = x;
        }
      }
    }
  }
}

const softmax = (xs: number[]) => {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
};

function chiSquare(counts: number[], probs: number[]): number {
  const n = counts.reduce((a, b) => a + b, 0);
  return counts.reduce((acc, c, i) => acc + (c - n * probs[i]) ** 2 / (n * probs[i]), 0);
}

// ---------- grid and single steps ----------

test('timeGrid: t_i = 1 - i(1-eps_s)/N from 1 down to eps_s', () => {
  for (const n of [1, 2, 7, 128]) {
    const g = timeGrid(n);
    assert.equal(g.length, n + 1);
    assert.equal(g[0], 1);
    assert.ok(Math.abs(g[n] - EPS_SAMPLE) < 1e-15);
    for (let i = 0; i <= n; i++) assert.ok(Math.abs(g[i] - (1 - (i * (1 - EPS_SAMPLE)) / n)) < 1e-15);
  }
  assert.throws(() => timeGrid(0));
  assert.throws(() => timeGrid(2.5));
});

test('revealProb = (t-s)/t, clipped to 1, and 1 for s < 0', () => {
  assert.ok(Math.abs(revealProb(0.8, 0.6) - 0.25) < 1e-15);
  assert.equal(revealProb(0.5, -0.1), 1);
  assert.equal(revealProb(0.5, 0), 1);
});

test('ancestralStep: empirical P(unmask) = (t-s)/t; unmasked positions are copied', () => {
  const L = 20000;
  const vocab = 5;
  const maskId = 4;
  const tokens = new Int32Array(L).fill(maskId);
  for (let l = 0; l < L; l += 10) tokens[l] = 2; // already revealed: must be copied, draw nothing
  const logProbs = subsLogProbs(new Float32Array(L * vocab), tokens, vocab, maskId);
  const masked = L - L / 10;
  for (const [t, s] of [
    [0.6, 0.45],
    [1, 0.99],
    [0.01, 0.002],
  ]) {
    const { tokens: out, changed } = ancestralStep(tokens, logProbs, t, s, new Rng(t * 1000), maskId);
    let revealed = 0;
    for (let l = 0; l < L; l++) {
      if (tokens[l] !== maskId) assert.equal(out[l], tokens[l]);
      else if (out[l] !== maskId) revealed++;
    }
    assert.equal(changed, revealed);
    const p = (t - s) / t;
    const se = Math.sqrt((p * (1 - p)) / masked);
    assert.ok(Math.abs(revealed / masked - p) < 4 * se, `t=${t} s=${s}: ${revealed / masked} vs ${p}`);
  }
  const all = ancestralStep(tokens, logProbs, 0.3, -0.01, new Rng(1), maskId);
  assert.ok(!all.tokens.includes(maskId), 's < 0 reveals everything');
});

test('float64 token draws match an exact categorical (chi-square, 4 dof)', () => {
  const row = [1.2, -0.3, 0.5, 2.0, -1.0];
  const probs = softmax(row);
  const lp = subsLogProbs(Float32Array.from([...row, 3]), Int32Array.of(5), 6, 5);
  const rng = new Rng(21);
  const counts = [0, 0, 0, 0, 0];
  for (let i = 0; i < 50000; i++) counts[sampleFromLogProbs(lp, rng.uniform(), 5)]++;
  assert.ok(chiSquare(counts, probs) < 20, `chi2 ${chiSquare(counts, probs)}`);
  // The float32 ablation is the same distribution for moderate probabilities (it only truncates tiny ones).
  const counts32 = [0, 0, 0, 0, 0];
  for (let i = 0; i < 20000; i++) counts32[sampleFloat32Race(lp, rng, 5)]++;
  assert.ok(chiSquare(counts32, probs) < 20, `chi2 fp32 ${chiSquare(counts32, probs)}`);
});

test('sampleMdlm: token marginals match x_theta (fixed logits, N = 1)', async () => {
  const row = [0.2, 1.1, -0.7, 0.4, 5]; // MASK (id 4) has the largest logit and must get no mass
  const model = new FixedDenoiser(5, 200, 4, row);
  const { tokens } = await sampleMdlm(model, { steps: 1, batch: 50, seed: 1 });
  const counts = [0, 0, 0, 0];
  for (const x of tokens) counts[x]++;
  const probs = softmax(row.slice(0, 4));
  assert.ok(chiSquare(counts, probs) < 17, `chi2 ${chiSquare(counts, probs)}`);
});

test('sampleMdlm top-p: tokens come from the nucleus only, renormalised; top-p 1 is the exact sampler; float32 refuses it', async () => {
  // Non-MASK probs ~ [0.08, 0.20, 0.04, 0.11, 0.57]: p = 0.7 keeps {4, 1} (0.77 >= 0.7), renormalised to ~[0.26, 0.74].
  const row = [0.2, 1.1, -0.7, 0.4, 2.0, 6]; // MASK = 5 has the largest logit
  const model = new FixedDenoiser(6, 200, 5, row);
  const { tokens } = await sampleMdlm(model, { steps: 1, batch: 20, seed: 3, topP: 0.7 });
  const counts = [0, 0, 0, 0, 0];
  for (const x of tokens) counts[x]++;
  assert.deepEqual([counts[0], counts[2], counts[3]], [0, 0, 0], `outside the nucleus: ${counts}`);
  const probs = softmax(row.slice(0, 5));
  const kept = probs[1] + probs[4];
  assert.ok(chiSquare([counts[1], counts[4]], [probs[1] / kept, probs[4] / kept]) < 11, `chi2 ${counts}`);

  const exact = await sampleMdlm(new ContextDenoiser(9, 16, 8), { steps: 8, batch: 3, seed: 42 });
  const one = await sampleMdlm(new ContextDenoiser(9, 16, 8), { steps: 8, batch: 3, seed: 42, topP: 1 });
  assert.deepEqual(one.tokens, exact.tokens);
  const greedy = await sampleMdlm(new FixedDenoiser(6, 32, 5, row), { steps: 4, batch: 2, seed: 1, topP: 1e-9 });
  assert.ok(
    greedy.tokens.every((x) => x === 4),
    'a tiny top-p reveals only the most probable id',
  );
  await assert.rejects(sampleMdlm(model, { steps: 1, batch: 1, seed: 0, topP: 0.9, precision: 'float32' }), /float64/);
  await assert.rejects(sampleMdlm(model, { steps: 1, batch: 1, seed: 0, topP: 0 }), /top-p must be in \(0, 1\]/);
});

// ---------- full sampler ----------

test('expected reveals per step = L(1-eps_s)/N', async () => {
  const L = 64;
  const steps = 16;
  const batch = 64;
  const model = new FixedDenoiser(6, L, 5, [0, 0, 0, 0, 0, 0]);
  const { trajectory } = await sampleMdlm(model, { steps, batch, seed: 9, recordTrajectory: true });
  assert.ok(trajectory && trajectory.length === steps + 1);
  const masks = trajectory.map((tk) => tk.reduce((n, x) => n + (x === 5 ? 1 : 0), 0));
  assert.equal(masks[0], batch * L);
  const expected = (batch * L * (1 - EPS_SAMPLE)) / steps; // P(masked at t_i) = t_i, so E[reveals] = B·L·Δ
  for (let i = 0; i < steps; i++) {
    const reveals = masks[i] - masks[i + 1];
    assert.ok(Math.abs(reveals - expected) < 5 * Math.sqrt(expected), `step ${i}: ${reveals} vs ${expected}`);
  }
});

test('caching on/off gives byte-identical samples; nfe(cache) <= N, and << N for N >> L', async () => {
  for (const steps of [3, 16, 64, 512]) {
    for (const precision of ['float64', 'float32'] as const) {
      const off = new ContextDenoiser(9, 16, 8);
      const on = new ContextDenoiser(9, 16, 8);
      const a = await sampleMdlm(off, { steps, batch: 3, seed: 42, caching: false, precision });
      const b = await sampleMdlm(on, { steps, batch: 3, seed: 42, caching: true, precision });
      assert.deepEqual(b.tokens, a.tokens, `steps ${steps} ${precision}`);
      assert.equal(a.nfe, off.calls);
      assert.equal(b.nfe, on.calls);
      assert.ok(a.nfe === steps || a.nfe === steps + 1);
      assert.ok(b.nfe <= a.nfe);
      if (steps === 512) assert.ok(b.nfe <= 3 * 16 + 1, `nfe ${b.nfe} with caching at N=512, L=16`);
    }
  }
});

test('no MASK remains for any N', async () => {
  for (const steps of [1, 2, 7, 128, 512]) {
    const model = new ContextDenoiser(7, 32, 6);
    const { tokens } = await sampleMdlm(model, { steps, batch: 4, seed: steps });
    assert.equal(tokens.length, 4 * 32);
    assert.ok(!tokens.includes(6), `MASK left at N=${steps}`);
    for (const x of tokens) assert.ok(x >= 0 && x < 6);
  }
});

test('final pass: leftover MASKs after N steps get the argmax over non-MASK ids', async () => {
  // P(a position is still masked at eps_s) = 1e-5: search seeds until one leaves a MASK behind.
  const row = [0.1, 0.9, 0.3, 0.2, 9]; // argmax over non-MASK ids is 1; sampled tokens are mostly not 1
  let found = false;
  for (let seed = 0; seed < 200 && !found; seed++) {
    const model = new FixedDenoiser(5, 256, 4, row);
    const out = await sampleMdlm(model, { steps: 1, batch: 64, seed, recordTrajectory: true });
    const before = out.trajectory![1];
    if (!before.includes(4)) {
      assert.equal(out.nfe, 1);
      continue;
    }
    found = true;
    assert.equal(out.nfe, 2);
    for (let i = 0; i < before.length; i++) {
      if (before[i] === 4) assert.equal(out.tokens[i], 1);
      else assert.equal(out.tokens[i], before[i]);
    }
  }
  assert.ok(found, 'no seed left a MASK');
});

test('once revealed a token never changes; trajectory starts all-MASK', async () => {
  const model = new ContextDenoiser(9, 24, 8);
  const { trajectory, tokens } = await sampleMdlm(model, { steps: 10, batch: 2, seed: 3, recordTrajectory: true });
  assert.ok(trajectory![0].every((x) => x === 8));
  for (let i = 1; i < trajectory!.length; i++) {
    for (let p = 0; p < tokens.length; p++)
      if (trajectory![i - 1][p] !== 8) assert.equal(trajectory![i][p], trajectory![i - 1][p]);
  }
});

test('prefix is preserved (shared and per-sequence)', async () => {
  const model = new ContextDenoiser(9, 20, 8);
  const shared = Int32Array.of(3, 1, 4, 1, 5);
  const a = await sampleMdlm(model, { steps: 8, batch: 3, seed: 5, prefix: shared, recordTrajectory: true });
  for (const tk of [a.tokens, ...a.trajectory!]) {
    for (let b = 0; b < 3; b++) assert.deepEqual(tk.subarray(b * 20, b * 20 + 5), shared);
  }
  const per = [Int32Array.of(0), Int32Array.of(7, 7), Int32Array.of(2, 6, 5)];
  const c = await sampleMdlm(model, { steps: 8, batch: 3, seed: 5, prefix: per });
  per.forEach((p, b) => assert.deepEqual(c.tokens.subarray(b * 20, b * 20 + p.length), p));
  await assert.rejects(sampleMdlm(model, { steps: 2, batch: 1, seed: 0, prefix: Int32Array.of(8) }));
});

test('a model with all mass on token k yields all-k samples, even if the MASK logit is huge', async () => {
  const row = [-1e4, -1e4, -1e4, 0, -1e4, 1e4];
  const model = new FixedDenoiser(6, 40, 5, row);
  for (const precision of ['float64', 'float32'] as const) {
    const { tokens } = await sampleMdlm(model, { steps: 5, batch: 3, seed: 0, precision });
    assert.ok(tokens.every((x) => x === 3));
  }
});

test('sample b does not depend on the batch size (per-sequence streams)', async () => {
  const model = new ContextDenoiser(9, 16, 8);
  const big = await sampleMdlm(model, { steps: 12, batch: 4, seed: 77 });
  for (let b = 0; b < 4; b++) {
    const one = await sampleMdlm(model, { steps: 12, batch: 1, seed: 77, sequenceOffset: b });
    assert.deepEqual(one.tokens, big.tokens.subarray(b * 16, (b + 1) * 16));
  }
  const other = await sampleMdlm(model, { steps: 12, batch: 4, seed: 78 });
  assert.notDeepEqual(other.tokens, big.tokens);
});

test('sampleMdlm reads logits by row: never whole logits, at most one sequence per read, the same samples', async () => {
  // steps 1 reveals every position at once and leaves MASKs for the final pass at some seeds; 512 >> L caches.
  for (const opts of [
    { steps: 1, batch: 4, seed: 3 },
    { steps: 8, batch: 3, seed: 42, prefix: Int32Array.of(1, 2) },
    { steps: 512, batch: 2, seed: 5 },
    { steps: 6, batch: 3, seed: 7, precision: 'float32' as const },
    { steps: 6, batch: 3, seed: 7, topP: 0.8 },
  ]) {
    const whole = await sampleMdlm(new ContextDenoiser(9, 16, 8), opts);
    const byRow = rowsOnly(new ContextDenoiser(9, 16, 8));
    const rows = await sampleMdlm(byRow, opts);
    assert.deepEqual(rows.tokens, whole.tokens, JSON.stringify(opts));
    assert.equal(rows.nfe, whole.nfe);
    assert.equal(byRow.rowReads.forwards, rows.nfe);
    assert.ok(byRow.rowReads.maxRows <= 16, `a read asked for ${byRow.rowReads.maxRows} rows`);
  }
});

test('sequenceRng streams differ across indices and seeds, and are reproducible', () => {
  const first = (seed: number, i: number) => sequenceRng(seed, i).nextU32();
  assert.equal(first(1, 2), first(1, 2));
  const seen = new Set<number>();
  for (let seed = 0; seed < 20; seed++) for (let i = 0; i < 20; i++) seen.add(first(seed, i));
  assert.equal(seen.size, 400);
});

test('onStep reports every step with the running nfe', async () => {
  const model = new ContextDenoiser(9, 8, 8);
  const seen: number[] = [];
  const out = await sampleMdlm(model, { steps: 6, batch: 2, seed: 1, onStep: (i) => seen.push(i.step * 100 + i.nfe) });
  assert.deepEqual(
    seen.map((x) => Math.floor(x / 100)),
    [1, 2, 3, 4, 5, 6],
  );
  assert.ok(seen.every((x) => x % 100 <= out.nfe));
});

// ---------- AR sampler ----------

const AR_TABLE = [
  // logits of the next token given the previous one (vocab 5, EOS = 4)
  [0.1, 2.0, 0.5, -1.0, 0.0],
  [1.5, 0.2, 1.0, 0.3, -2.0],
  [0.0, 0.0, 3.0, 0.1, 0.2],
  [2.2, 0.4, -0.5, 0.0, 0.1],
  [0.3, 0.1, 1.9, 1.0, -3.0],
];

class TableAr implements ArModel {
  readonly vocabSize = 5;
  readonly seqLen = 64;
  readonly eosId = 4;
  appends = 0;
  constructor(private readonly table = AR_TABLE) {}
  async logits(tokens: Int32Array, batch: number, len: number): Promise<Float32Array> {
    const out = new Float32Array(batch * len * 5);
    for (let i = 0; i < batch * len; i++) out.set(this.table[tokens[i]], i * 5);
    return out;
  }
  session(batch: number): ArSession {
    const model = this;
    let length = 0;
    return {
      get length() {
        return length;
      },
      async append(tokens: Int32Array, len: number) {
        model.appends++;
        length += len;
        const out = new Float32Array(batch * 5);
        for (let b = 0; b < batch; b++) out.set(model.table[tokens[b * len + len - 1]], b * 5);
        return out;
      },
      dispose() {},
    };
  }
}

const greedyChain = (start: number, n: number) => {
  const out = [start];
  for (let i = 1; i < n; i++) {
    const row = AR_TABLE[out[i - 1]];
    out.push(row.indexOf(Math.max(...row)));
  }
  return out;
};

test('AR: tiny top-p and near-zero temperature both give the greedy chain; BOS = EOS by default', async () => {
  const expected = greedyChain(4, 12);
  for (const opts of [{ topP: 1e-6 }, { temperature: 1e-3 }, { temperature: 0 }]) {
    const tokens = await sampleAr(new TableAr(), { batch: 3, length: 12, seed: 1, ...opts });
    for (let b = 0; b < 3; b++) assert.deepEqual(Array.from(tokens.subarray(b * 12, (b + 1) * 12)), expected);
  }
});

test('AR nucleus keeps exactly the smallest set reaching p, renormalised', () => {
  const logits = Float32Array.from([0.5, 0.3, 0.15, 0.05].map(Math.log));
  const counts = [0, 0, 0, 0];
  const n = 10000;
  for (let i = 0; i < n; i++) counts[nucleusSample(logits, 1, 0.75, (i + 0.5) / n)]++;
  assert.equal(counts[2] + counts[3], 0);
  assert.ok(Math.abs(counts[0] / n - 0.625) < 1e-3);
  const rng = new Rng(4);
  const full = [0, 0, 0, 0];
  for (let i = 0; i < 40000; i++) full[nucleusSample(logits, 1, 1, rng.uniform())]++;
  assert.ok(chiSquare(full, [0.5, 0.3, 0.15, 0.05]) < 17);
});

test('nucleus sampling over a large vocabulary picks what a full sort of the vocabulary picks', () => {
  // Reference: sort every id by probability, keep the smallest prefix reaching p, invert the CDF over it.
  const reference = (logits: Float32Array, topP: number, u: number): number => {
    const max = Math.max(...logits);
    const probs = Array.from(logits, (x) => Math.exp(x - max));
    const total = probs.reduce((a, b) => a + b, 0);
    const order = probs.map((_, v) => v).sort((a, b) => probs[b] - probs[a] || a - b);
    let kept = 0;
    let mass = 0;
    while (kept < order.length && (kept === 0 || mass < topP * total)) mass += probs[order[kept++]];
    let cum = 0;
    for (let k = 0; k < kept; k++) {
      cum += probs[order[k]];
      if (cum > u * mass) return order[k];
    }
    return order[kept - 1];
  };
  const rng = new Rng(11);
  for (const [vocab, spread] of [
    [4096, 1],
    [4096, 6],
    [300, 0.1],
  ] as const) {
    const logits = Float32Array.from({ length: vocab }, () => spread * rng.normal());
    for (const topP of [0.5, 0.9, 0.99]) {
      for (let i = 0; i < 200; i++) {
        const u = rng.uniform();
        assert.equal(
          nucleusSample(logits, 1, topP, u),
          reference(logits, topP, u),
          `vocab ${vocab} spread ${spread} p ${topP} u ${u}`,
        );
      }
    }
  }
});

test('AR: prefix kept, per-sequence streams, stopAtEos pads with EOS', async () => {
  const prefix = Int32Array.of(1, 2, 3);
  const tokens = await sampleAr(new TableAr(), { batch: 4, length: 20, seed: 9, prefix });
  for (let b = 0; b < 4; b++) assert.deepEqual(tokens.subarray(b * 20, b * 20 + 3), prefix);
  const one = await sampleAr(new TableAr(), { batch: 1, length: 20, seed: 9, prefix, sequenceOffset: 2 });
  assert.deepEqual(one, tokens.subarray(40, 60));

  const eosTable = AR_TABLE.map(() => [0, 0, 0, 0, 50]);
  const model = new TableAr(eosTable);
  const stopped = await sampleAr(model, { batch: 2, length: 10, seed: 0, stopAtEos: true });
  assert.ok(stopped.every((x) => x === 4));
  assert.equal(model.appends, 1, 'no further forwards once every sequence ended');
});
