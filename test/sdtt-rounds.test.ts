import { test } from 'node:test';
import assert from 'node:assert/strict';
import { roundAt, roundSchedule, scheduleSteps } from '../src/engine/sdtt/rounds.ts';
import { DEFAULT_EVAL_STEPS, DistillConfig, distillStartSteps } from '../src/shared/distillConfig.ts';
import { describeConfigError } from '../src/shared/config.ts';

test('N0 = 128, 5 rounds: 128->64 … 8->4, Δ_r = (1−1e-5)·2^r/128, contiguous step ranges', () => {
  const s = roundSchedule({ startSteps: 128, rounds: 5, minSteps: 4, stepsPerRound: 1000, epsS: 1e-5 });
  assert.deepEqual(
    s.map((r) => r.label),
    [
      'teacher 128 -> student 64',
      'teacher 64 -> student 32',
      'teacher 32 -> student 16',
      'teacher 16 -> student 8',
      'teacher 8 -> student 4',
    ],
  );
  s.forEach((r, i) => {
    assert.equal(r.round, i);
    assert.equal(r.teacherSteps, 128 / 2 ** i);
    assert.equal(r.studentSteps, 64 / 2 ** i);
    assert.equal(r.deltaTeacher, ((1 - 1e-5) * 2 ** i) / 128);
    // completed-step numbers (1-based), like metric steps: round 0 = steps 1..1000
    assert.equal(r.firstStep, i * 1000 + 1);
    assert.equal(r.lastStep, (i + 1) * 1000);
    if (i > 0) assert.equal(r.firstStep, s[i - 1].lastStep + 1);
  });
  assert.equal(scheduleSteps(s), 5000);
  // student step 2Δ_r equals the teacher step of the next round
  assert.equal(2 * s[0].deltaTeacher, s[1].deltaTeacher);
});

test('minSteps cuts the schedule short; default epsS and minSteps', () => {
  const s = roundSchedule({ startSteps: 128, rounds: 5, minSteps: 16, stepsPerRound: 10 });
  assert.deepEqual(
    s.map((r) => r.studentSteps),
    [64, 32, 16],
  );
  assert.equal(s[0].deltaTeacher, (1 - 1e-5) / 128);
  assert.deepEqual(
    roundSchedule({ startSteps: 128, rounds: 10, stepsPerRound: 1 }).map((r) => r.studentSteps),
    [64, 32, 16, 8, 4, 2, 1],
  );
  assert.deepEqual(roundSchedule({ startSteps: 128, rounds: 5, minSteps: 128, stepsPerRound: 1 }), []);
  // paper scale: 1024 -> … -> 4 (8 rounds) with minSteps 4
  assert.equal(
    roundSchedule({ startSteps: 1024, rounds: 8, minSteps: 4, stepsPerRound: 10_000 }).at(-1)!.label,
    'teacher 8 -> student 4',
  );
});

test('roundAt maps optimiser step indices (0-based, = steps done before it) to rounds; null after the end', () => {
  const s = roundSchedule({ startSteps: 128, rounds: 3, minSteps: 1, stepsPerRound: 100 });
  assert.deepEqual([s[0].firstStep, s[0].lastStep, s[1].firstStep, s[2].lastStep], [1, 100, 101, 300]);
  // the step at index i completes step i + 1, which lies in [firstStep, lastStep] of the round returned
  for (const i of [0, 99, 100, 199, 200, 299]) {
    const r = roundAt(s, i)!;
    assert.ok(r.firstStep <= i + 1 && i + 1 <= r.lastStep, `index ${i}`);
  }
  assert.equal(roundAt(s, 0)!.round, 0);
  assert.equal(roundAt(s, 99)!.round, 0);
  assert.equal(roundAt(s, 100)!.round, 1);
  assert.equal(roundAt(s, 299)!.round, 2);
  assert.equal(roundAt(s, 300), null);
  assert.throws(() => roundAt(s, -1));
});

test('invalid schedules throw', () => {
  assert.throws(() => roundSchedule({ startSteps: 96, rounds: 6, minSteps: 1, stepsPerRound: 1 }), /divisible/);
  assert.deepEqual(
    roundSchedule({ startSteps: 96, rounds: 6, minSteps: 3, stepsPerRound: 1 }).map((r) => r.studentSteps),
    [48, 24, 12, 6, 3],
  );
  assert.throws(() => roundSchedule({ startSteps: 128, rounds: 2, stepsPerRound: 0 }));
});

test('DistillConfig: defaults (docs/design/sdtt.md §7), optim defaults, strictness, startSteps checks', () => {
  const c = DistillConfig.parse({ teacher: 'runs/teacher' });
  assert.equal(c.kind, 'distill');
  assert.equal(c.divergence, 'kld');
  assert.equal(c.teacherSubsteps, 2);
  assert.equal(c.startSteps, undefined);
  assert.equal(distillStartSteps(c, 128), 128);
  assert.equal(c.minSteps, 4);
  assert.equal(c.rounds, 5);
  assert.equal(c.legacyTimeGrid, false);
  assert.equal(c.resetOptimizerEachRound, false);
  assert.equal(c.resetEmaEachRound, false);
  assert.equal(c.batchSize, 32);
  assert.equal(c.epsT, 1e-5);
  assert.deepEqual(c.evalSteps, DEFAULT_EVAL_STEPS);
  assert.equal(c.studentDropout, 0.1);
  assert.equal(c.optim.lr, 1e-4);
  assert.equal(c.optim.warmupSteps, 200);
  assert.equal(c.optim.emaDecay, 0.998);
  assert.equal(c.optim.gradClip, 1);
  const c2 = DistillConfig.parse({ teacher: 't', optim: { lr: 6e-5 }, divergence: 'tvd-log-l1', startSteps: 256 });
  assert.equal(c2.optim.lr, 6e-5);
  assert.equal(c2.optim.warmupSteps, 200);
  assert.equal(c2.divergence, 'tvd-log-l1');
  for (const bad of [
    {},
    { teacher: 't', divergence: 'kl' },
    { teacher: 't', bogus: 1 },
    { teacher: 't', optim: { bogus: 1 } },
    { teacher: 't', startSteps: 96, rounds: 6, minSteps: 1 },
    { teacher: 't', startSteps: 4, minSteps: 4 },
  ]) {
    const r = DistillConfig.safeParse(bad);
    assert.equal(r.success, false, JSON.stringify(bad));
    assert.ok(describeConfigError(r.error!).length > 0);
  }
  assert.throws(() => distillStartSteps(c, 6), /no round|divisible/);
});
