import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Column, RunSeries, stepRate } from '../src/renderer/lib/series.ts';
import { backoffDelay } from '../src/renderer/lib/backoff.ts';
import { configDiff, flatten } from '../src/renderer/lib/configDiff.ts';
import { gridAxes, inventedSegments, replayTokens, showMasks } from '../src/renderer/lib/samples.ts';
import { fmtDuration, fmtNum } from '../src/renderer/lib/format.ts';
import type { SampleCell } from '../src/shared/api.ts';

test('Column grows past its capacity and views only the filled part', () => {
  const c = new Column(16);
  for (let i = 0; i < 1000; i++) c.push(i);
  assert.equal(c.length, 1000);
  assert.equal(c.view().length, 1000);
  assert.equal(c.view()[999], 999);
  assert.equal(c.last(), 999);
});

test('RunSeries: train/eval split, missing fields are NaN, duplicate or older steps dropped', () => {
  const s = new RunSeries();
  s.append([
    { type: 'train', step: 10, loss: 2, lr: 1e-4, gradNorm: 1, tokPerSec: 500, elapsedS: 1 },
    { type: 'eval', step: 10, valLoss: 2.5, valPpl: 12, elapsedS: 1 },
    { type: 'train', step: 20, loss: NaN, lr: 1e-4, gradNorm: 1, tokPerSec: 500, elapsedS: 2 },
  ]);
  const added = s.append([
    { type: 'train', step: 20, loss: 9, lr: 0, gradNorm: 0, tokPerSec: 0, elapsedS: 0 },
    { type: 'train', step: 30, loss: 1.5, lr: 1e-4, gradNorm: 1, tokPerSec: 500, elapsedS: 3 },
  ]);
  assert.equal(added, 1);
  assert.equal(s.train.length, 3);
  assert.equal(s.eval.length, 1);
  assert.ok(Number.isNaN(s.train.cols.loss.view()[1]!));
  assert.ok(Number.isNaN(s.train.cols.round.view()[0]!));
  assert.equal(stepRate(s), 10);
});

test('backoff doubles up to the cap, with bounded jitter', () => {
  const mid = () => 0.5;
  assert.equal(backoffDelay(0, 500, 10_000, mid), 500);
  assert.equal(backoffDelay(1, 500, 10_000, mid), 1000);
  assert.equal(backoffDelay(3, 500, 10_000, mid), 4000);
  assert.equal(backoffDelay(10, 500, 10_000, mid), 10_000);
  assert.equal(backoffDelay(1000, 500, 10_000, mid), 10_000);
  assert.equal(
    backoffDelay(0, 500, 10_000, () => 0),
    400,
  );
  assert.equal(
    backoffDelay(0, 500, 10_000, () => 0.999999),
    600,
  );
});

test('configDiff flattens nested keys and puts differing keys first', () => {
  assert.deepEqual(flatten({ a: 1, optim: { lr: 1e-4 }, steps: [1, 2] }), {
    a: '1',
    'optim.lr': '0.0001',
    steps: '[1,2]',
  });
  const rows = configDiff([
    { teacher: 't', divergence: 'kld', optim: { lr: 1e-4 } },
    { teacher: 't', divergence: 'mse', optim: { lr: 1e-4 }, extra: true },
  ]);
  assert.deepEqual(
    rows.map((r) => [r.key, r.differs]),
    [
      ['divergence', true],
      ['extra', true],
      ['optim.lr', false],
      ['teacher', false],
    ],
  );
  assert.deepEqual(rows[1]!.values, ['', 'true']);
});

test('samples: masks shown as ░, grid axes, replay marks masked and freshly revealed tokens', () => {
  assert.equal(showMasks('a [MASK] b <mask>'), 'a ░ b ░');
  const M = 99;
  const cell: SampleCell = {
    round: 0,
    steps: 2,
    seed: 7,
    text: 'x y z',
    genPpl: 10,
    entropy: 4,
    latencyMs: 3,
    trajectory: [
      [M, M, M],
      [M, 5, M],
      [4, 5, 6],
    ],
    tokenTexts: ['x', ' y', ' z'],
  };
  assert.deepEqual(
    replayTokens(cell, 1).map((t) => [t.text, t.masked, t.fresh]),
    [
      ['░', true, false],
      [' y', false, true],
      ['░', true, false],
    ],
  );
  assert.deepEqual(
    replayTokens(cell, 2).map((t) => [t.text, t.fresh]),
    [
      ['x', true],
      [' y', false],
      [' z', true],
    ],
  );
  // tokenTexts as a vocabulary table (indexed by id)
  const vocab = Array.from({ length: 100 }, (_, i) => `<${i}>`);
  assert.equal(replayTokens({ ...cell, tokenTexts: vocab }, 2)[0]!.text, '<4>');
  const { rounds, steps } = gridAxes([cell, { ...cell, round: -1, steps: 8 }, { ...cell, round: 1, steps: 4 }]);
  assert.deepEqual(rounds, [-1, 0, 1]);
  assert.deepEqual(steps, [8, 4, 2]);
});

test('invented-word segments: the marked words of a sample, robust to spans from a foreign or damaged file', () => {
  const text = 'the catsit on inquentified mats';
  const segs = inventedSegments(text, [
    [14, 26],
    [4, 10],
  ]);
  assert.deepEqual(segs, [
    { text: 'the ', invented: false },
    { text: 'catsit', invented: true },
    { text: ' on ', invented: false },
    { text: 'inquentified', invented: true },
    { text: ' mats', invented: false },
  ]);
  // overlapping, out-of-range, empty and non-integer spans: clipped or skipped, the text always survives whole
  for (const spans of [
    [
      [2, 6],
      [4, 8],
    ],
    [[25, 99]],
    [[-5, 3]],
    [
      [7, 7],
      [9, 3],
    ],
    [[1.5, 4]],
  ] as [number, number][][]) {
    const got = inventedSegments(text, spans);
    assert.equal(got.map((g) => g.text).join(''), text, JSON.stringify(spans));
    assert.ok(got.every((g) => g.text.length > 0));
  }
  assert.deepEqual(
    inventedSegments(text, [
      [2, 6],
      [4, 8],
    ])
      .filter((g) => g.invented)
      .map((g) => g.text),
    ['e ca', 'ts'],
  );
  assert.deepEqual(inventedSegments('', undefined), [{ text: '', invented: false }]);
  assert.deepEqual(inventedSegments(text, undefined), [{ text, invented: false }]);
});

test('formatting', () => {
  assert.equal(fmtNum(NaN), 'NaN');
  assert.equal(fmtNum(1e-5), '1.00e-5');
  assert.equal(fmtNum(3.14159), '3.142');
  assert.equal(fmtDuration(3725), '1h 02m');
  assert.equal(fmtDuration(NaN), '—');
});
