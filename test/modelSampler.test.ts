// ModelSampler (src/main/modelSampler.ts) against fake workers: one job at a time, the answer, a worker that dies
// (before or after 'ready') or answers with an error, and dispose() on shutdown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModelSampler } from '../src/main/modelSampler.ts';
import { FakeChild } from './helpers/fakeWorker.ts';

test('ModelSampler: one job at a time; a worker that dies says how; dispose kills a running job', async () => {
  const children: FakeChild[] = [];
  const sampler = new ModelSampler(() => {
    const c = new FakeChild();
    children.push(c);
    return c;
  }, 'entry.ts');
  const request = { checkpoint: '/r/checkpoints/4', steps: 8, samples: 2, seed: 0 };
  const ok = sampler.sample(request);
  await assert.rejects(sampler.sample(request), /another sampling job is running/);
  children[0].say({ type: 'ready' });
  assert.deepEqual(children[0].sent, [{ type: 'sample', request }]);
  const result = {
    checkpoint: '/r/checkpoints/4',
    arch: 'mdlm',
    backend: 'fake',
    device: 'none',
    steps: 8,
    topP: 1,
    seed: 0,
    texts: ['a', 'b'],
    seconds: 0.1,
  };
  children[0].say({ type: 'sampled', result });
  children[0].say({ type: 'done', status: 'done', step: 0 });
  children[0].exit(0);
  assert.deepEqual(await ok, result);
  assert.equal(sampler.busy, false);

  const early = sampler.sample(request); // dies before 'ready'
  children[1].tail = 'Error: Cannot find module tsx';
  children[1].exit(1);
  await assert.rejects(
    early,
    /^Error: launch-failed: the sampling worker ended without samples \(exit code 1\); last output: Error: Cannot find module tsx/,
  );

  const failing = sampler.sample(request); // the engine's error text is the answer
  children[2].say({ type: 'ready' });
  children[2].say({
    type: 'error',
    message: 'the prefix is 300 tokens; it must be shorter than the sequence length 128',
  });
  children[2].exit(1);
  await assert.rejects(failing, /the prefix is 300 tokens/);

  const running = sampler.sample(request);
  children[3].say({ type: 'ready' });
  sampler.dispose();
  await assert.rejects(running, /killed: the sampling worker ended without samples \(signal SIGKILL\)/);
  assert.deepEqual(children[3].killed, ['SIGKILL']);
  assert.equal(sampler.busy, false);
});
