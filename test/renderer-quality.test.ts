import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableMetrics, qualitySeries } from '../src/renderer/lib/quality.ts';
import type { EvalSummaryRow, RoundSummary } from '../src/shared/api.ts';

const row = (
  steps: number,
  gen_ppl: number | null,
  entropy: number,
  known_words?: number | null,
  gen_ppl_se: number | null = gen_ppl === null ? null : 2,
): EvalSummaryRow => ({ steps, gen_ppl, gen_ppl_se, entropy, ...(known_words === undefined ? {} : { known_words }) });
const round = (r: number, evalRows?: EvalSummaryRow[]): RoundSummary => ({
  round: r,
  teacherSteps: 32 >> r,
  studentSteps: 16 >> r,
  label: '',
  status: evalRows ? 'done' : 'running',
  firstStep: 1,
  lastStep: 2,
  ...(evalRows ? { eval: evalRows } : {}),
});

test('quality series: the teacher, then each evaluated round, points ascending in N; known words as %', () => {
  const teacher = [row(16, 210, 4.4, 0.86), row(4, 400, 4.6, 0.7)];
  const rounds = [
    round(1, [row(4, 250, 4.5, 0.8)]),
    round(0, [row(16, 205, 4.4, 0.87), row(4, 300, 4.5, 0.75)]),
    round(2),
  ];
  const ppl = qualitySeries(teacher, rounds, 'gen_ppl');
  assert.deepEqual(
    ppl.map((s) => [s.key, s.label, s.teacher]),
    [
      ['teacher', 'teacher', true],
      ['R0', 'R0 student (16)', false],
      ['R1', 'R1 student (8)', false],
    ],
  );
  assert.deepEqual(ppl[0]!.points, [
    { n: 4, y: 400, se: 2 },
    { n: 16, y: 210, se: 2 },
  ]);
  assert.deepEqual(
    qualitySeries(teacher, rounds, 'known_words')[1]!.points.map((p) => [p.n, Math.round(p.y * 10) / 10, p.se]),
    [
      [4, 75, 0],
      [16, 87, 0],
    ],
  );
  assert.deepEqual(qualitySeries(teacher, rounds, 'entropy')[2]!.points, [{ n: 4, y: 4.5, se: 0 }]);
});

test('quality metrics: gen PPL only with a judge, known words only where computed; bad rows left out', () => {
  // no judge, run from before the known-word rate: entropy is all there is
  const old = [row(8, null, 3.2), row(4, null, 3.1)];
  assert.deepEqual(availableMetrics(old, [round(0, old)]), ['entropy']);
  assert.deepEqual(qualitySeries(old, [], 'gen_ppl'), []);
  // NaN known words (a sample without words) is skipped; a missing s.e. draws no bar
  const t = [row(8, 50, 3.2, null), row(4, 60, 3.1, 0.5, null)];
  assert.deepEqual(availableMetrics(t, []), ['gen_ppl', 'entropy', 'known_words']);
  assert.deepEqual(qualitySeries(t, [], 'known_words')[0]!.points, [{ n: 4, y: 50, se: 0 }]);
  assert.deepEqual(
    qualitySeries(t, [], 'gen_ppl')[0]!.points.map((p) => p.se),
    [0, 2],
  );
  assert.deepEqual(qualitySeries([row(0, 10, 1), row(8, Infinity, 1)], [], 'gen_ppl'), []);
  assert.deepEqual(availableMetrics(undefined, []), []);
});
