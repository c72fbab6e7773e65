// Who holds a run: a run whose process died reads as stopped ("interrupted") and resumes; one held by another live
// process cannot be paused or stopped from here (the error says where and how); a queued run carries no pid; a pid
// reused by an unrelated program holds nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from '../src/main/runLifecycle.ts';
import { tinyPretrainJob as cfg } from './helpers/fixtures.ts';
import { setupManager as setup, tick } from './helpers/fakeWorker.ts';

test('a run held by another live process is refused with where it runs; one whose process is gone reads as stopped and resumes', async () => {
  const { mgr, store, children, cleanup } = setup();
  mgr.create('pretrain', cfg(), { id: 'r' });
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
  store.update('r', { status: 'paused', pid: other.pid });
  assert.equal(mgr.get('r').status, 'paused', 'another live process holds it: as run.json says');
  assert.throws(
    () => mgr.stop('r'),
    new RegExp(
      `it is paused in another process \\(pid ${other.pid}\\), not in this one: stop it there \\(Ctrl-C in its terminal, or kill -TERM ${other.pid}`,
    ),
  );
  assert.throws(() => mgr.pause('r'), /pause it there/);
  assert.throws(() => mgr.start('r'), /already paused in another process/);
  assert.equal(store.read('r').status, 'paused', 'nothing was rewritten');
  other.kill('SIGKILL');
  const gone = spawnSync(process.execPath, ['-e', '']).pid!; // exited: its pid names no process now
  store.update('r', { status: 'running', pid: gone, step: 40 });
  const seen = mgr.get('r');
  assert.equal(seen.status, 'stopped');
  assert.match(
    seen.reason ?? '',
    new RegExp(`interrupted: its process \\(pid ${gone}\\) ended while the run was running`),
  );
  assert.deepEqual(
    mgr.list().map((r) => r.status),
    ['stopped'],
  );
  assert.equal(
    JSON.parse(readFileSync(join(store.dir('r'), 'run.json'), 'utf8')).status,
    'running',
    'run.json is left to its owner',
  );
  assert.equal((await mgr.wait('r')).status, 'stopped', 'nobody waits forever on a dead run');
  mgr.start('r');
  await tick();
  assert.equal(children.length, 1, 'starting it again launches a worker (it resumes from its checkpoint)');
  assert.equal(mgr.get('r').pid, children[0].pid);
  cleanup();
});

test('a run started or paused while it waits for a slot carries no pid, so no old or reused pid can hold it', async () => {
  const { mgr, store, children, cleanup } = setup({ concurrency: 1 });
  mgr.create('pretrain', cfg(), { id: 'a' });
  mgr.create('pretrain', cfg(), { id: 'r' });
  mgr.start('a');
  await tick();
  store.update('r', { status: 'running', pid: spawnSync(process.execPath, ['-e', '']).pid! });
  assert.deepEqual([mgr.start('r').status, store.read('r').pid], ['queued', undefined]);
  assert.deepEqual([mgr.pause('r').status, store.read('r').pid], ['paused', undefined]);
  assert.equal(mgr.get('r').status, 'paused', 'paused in the queue, not "interrupted"');
  assert.equal(mgr.stop('r').status, 'stopped');
  assert.equal(children.length, 1);
  cleanup();
});

test(
  'isAlive: a live Node process is; an exited one, or a pid held by an unrelated program (Linux /proc), is not',
  { skip: existsSync('/proc/self/cmdline') ? false : 'no /proc here' },
  async () => {
    const node = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    const other = spawn('sleep', ['60']);
    try {
      // Wait for the event, not a fixed time: 'spawn' is emitted once libuv's spawn has returned, and libuv returns only
      // after the child's exec succeeded (its CLOEXEC error pipe closed), so /proc/<pid>/cmdline names the new program,
      // not the forked copy of this one. A failed exec emits 'error' instead, and once() rejects with it.
      await Promise.all([once(node, 'spawn'), once(other, 'spawn')]);
      assert.equal(isAlive(node.pid!), true);
      assert.equal(isAlive(other.pid!), false, 'sleep is not a process that runs jobs');
      assert.equal(isAlive(spawnSync(process.execPath, ['-e', '']).pid!), false);
    } finally {
      node.kill('SIGKILL');
      other.kill('SIGKILL');
    }
  },
);
