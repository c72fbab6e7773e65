import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultFormValues, formToInput, validateForm } from '../src/renderer/lib/distillForm.ts';

test('default form values with a teacher validate to the schema defaults', () => {
  const v = validateForm(defaultFormValues('assets/models/mdlm-small'));
  assert.equal(v.ok, true);
  assert.equal(v.config!.divergence, 'kld');
  assert.equal(v.config!.optim.lr, 1e-4);
  assert.equal(v.config!.rounds, 5);
  assert.equal(v.config!.startSteps, undefined);
});

test('errors land on the field they belong to', () => {
  const v = validateForm({ ...defaultFormValues(''), rounds: '0', lr: 'abc', batchSize: '2.5', seed: '-1' });
  assert.equal(v.ok, false);
  assert.match(v.errors.teacher!, /teacher/);
  assert.ok(v.errors.rounds);
  assert.equal(v.errors.lr, 'not a number');
  assert.ok(v.errors.batchSize);
  assert.ok(v.errors.seed);
  assert.equal(v.errors.divergence, undefined);
});

test('cross-field problems (startSteps vs rounds) go to startSteps', () => {
  const v = validateForm({ ...defaultFormValues('t'), startSteps: '100', rounds: '3' });
  assert.equal(v.ok, false);
  assert.match(v.errors.startSteps!, /divisible/);
});

test('empty optional numbers are omitted so schema defaults apply', () => {
  const input = formToInput({ ...defaultFormValues('t'), lr: '', startSteps: '' });
  assert.deepEqual(input.optim, {});
  assert.equal('startSteps' in input, false);
  assert.equal(validateForm({ ...defaultFormValues('t'), lr: '' }).config!.optim.lr, 1e-4);
});

test('judge and evalSteps: optional, parsed and validated with the schema', () => {
  const base = defaultFormValues('t');
  const none = validateForm(base);
  assert.equal(none.config!.judge, undefined, 'empty judge = absent (shipped default)');
  assert.deepEqual(none.config!.evalSteps, [128, 64, 32, 16, 8, 4], 'empty evalSteps = the schema default');
  const set = validateForm({ ...base, judge: 'runs/j/checkpoints/60', evalSteps: ' 32, 16 8,' });
  assert.equal(set.ok, true);
  assert.equal(set.config!.judge, 'runs/j/checkpoints/60');
  assert.deepEqual(set.config!.evalSteps, [32, 16, 8]);
  const bad = validateForm({ ...base, evalSteps: '32, x' });
  assert.equal(bad.ok, false);
  assert.match(bad.errors.evalSteps!, /"x" is not a number/);
  const zero = validateForm({ ...base, evalSteps: '16, 0' });
  assert.match(zero.errors.evalSteps!, /"0": must be ≥ 1/);
  assert.ok(validateForm({ ...base, evalSteps: '2.5' }).errors.evalSteps);
  assert.deepEqual(zero.other, []);
});
