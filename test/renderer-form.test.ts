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
