// Messages that tell the truth (issue 15, items 6-8): a NaN before the first checkpoint says that none was written
// and the rerun says it starts over; a full disk gives one message naming the file, and run.json ends failed once
// there is room again (CLI hooks and the RunManager's worker path); a refused distillation (teacher, judge, data)
// creates no run folder, from the CLI or the app; a run is deleted through the API (never while a process runs it)
// and every client's store drops it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../src/node/atomicFile.ts';
import { ApiError, type RunEvent as ApiEvent } from '../src/shared/api.ts';
import { PretrainConfig } from '../src/shared/config.ts';
import type { RunRecord } from '../src/shared/runState.ts';
import { RunStore, type RunStoreWriter } from '../src/runs/runStore.ts';
import { RunManager } from '../src/main/runManager.ts';
import { ApiHost } from '../src/main/apiHost.ts';
import { listCheckpoints } from '../src/runs/checkpoint.ts';
import { main } from '../src/cli/index.ts';
import { runCliJob } from '../src/cli/runJob.ts';
import { handleEvent, useApp } from '../src/renderer/store/appStore.ts';
import { ALICE, tinyPretrainJob, tinyTeacherAndJudge } from './helpers/fixtures.ts';
import { FakeChild, tick } from './helpers/fakeWorker.ts';
import { capture } from './helpers/cliOutput.ts';

const models = () => tinyTeacherAndJudge(10, 'sdtt-truth-');

/** A RunStore whose writes fail with ENOSPC while `full(file)` says so; retries every 10 ms. */
function diskFullStore(ws: string, full: (file: string) => boolean): RunStore {
  const enospc = () =>
    Object.assign(new Error('ENOSPC: no space left on device, write'), {
      code: 'ENOSPC',
      errno: -28,
      syscall: 'write',
    });
  const writer: RunStoreWriter = {
    append: (f, t) => {
      if (full(f)) throw enospc();
      appendFileSync(f, t);
    },
    replace: (f, t) => {
      if (full(f)) throw enospc();
      writeFileAtomic(f, t);
    },
  };
  return new RunStore(ws, { writer, retryMs: 10 });
}

const onDisk = (store: RunStore, id: string): RunRecord =>
  JSON.parse(readFileSync(join(store.dir(id), 'run.json'), 'utf8'));

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// ---- item 6 ------------------------------------------------------------------------------------------------------

test('a NaN before the first checkpoint: the reason says none was written; the rerun starts over, not "resuming"', async () => {
  const { ws, teacher, judge } = await models();
  const cfgFile = join(ws, 'nan-at-2.json');
  writeFileSync(cfgFile, JSON.stringify({ debugInjectNanAtStep: 2 }));
  const args = [
    'distill',
    '--teacher',
    teacher,
    '--judge',
    judge,
    '--data',
    ALICE,
    '--config',
    cfgFile,
    '--rounds',
    '1',
    '--steps-per-round',
    '4',
    '--batch',
    '2',
    '--eval-samples',
    '1',
    '--eval-steps',
    '2',
    '--eval-batch',
    '1',
    '--threads',
    '1',
    '--backend',
    'wasm',
    '--log-every',
    '1',
    '--checkpoint-every',
    '100',
    '--workspace',
    ws,
    '--run',
    'nan',
  ];
  const a = await capture(() => main(args));
  assert.equal(a.code, 1, a.err);
  assert.match(
    a.err,
    /run nan: nan at step 1 \(non-finite loss \(NaN\) at step 2 \(round 0\); no checkpoint was written yet/,
  );
  const rec = JSON.parse(readFileSync(join(ws, 'runs', 'nan', 'run.json'), 'utf8'));
  assert.equal(rec.status, 'nan');
  assert.match(rec.reason, /no checkpoint was written yet/);
  assert.doesNotMatch(rec.reason, /last good checkpoint kept/);
  assert.deepEqual(listCheckpoints(join(ws, 'runs', 'nan', 'checkpoints')), [], 'indeed none');

  const b = await capture(() => main(args));
  assert.match(b.err, /run nan: \S+ \(no checkpoint to resume from: starting over at step 0\)/);
  assert.doesNotMatch(b.err, /resuming at step/);
});

// ---- item 7 ------------------------------------------------------------------------------------------------------

test('writeFileAtomic (run.json, samples, rounds.jsonl, teacher-eval.json) names the file it could not write', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sdtt-atomic-'));
  const file = join(dir, 'missing', 'r0-s8.json');
  assert.throws(
    () => writeFileAtomic(file, '{}'),
    (e: Error & { code?: string }) => {
      assert.equal(e.message.split(': ')[0], `writing ${file} failed`, 'the file, not its temp name');
      assert.equal(e.code, 'ENOENT', 'the fs code is kept');
      return true;
    },
  );
});

const job = (over: Record<string, unknown> = {}) => PretrainConfig.parse(tinyPretrainJob({ data: ALICE, ...over }));

test('disk full on a metrics append: one message naming metrics.jsonl; run.json marked failed once there is room', async () => {
  const ws = mkdtempSync(join(tmpdir(), 'sdtt-enospc-'));
  let full = false;
  const store = diskFullStore(ws, () => full);
  const res = await capture(async () => {
    await assert.rejects(
      runCliJob(
        { workspace: ws, id: 'm', kind: 'pretrain', cfg: job(), label: 'pretrain', formatLoss: String, store },
        async (run) => {
          run.started({ backend: 'cpu', device: 'test', startStep: 0 });
          full = true;
          run.trainStep({ step: 1, loss: 2 }, '');
          return { status: 'done' as const, step: 1 };
        },
      ),
      (e: Error) => {
        assert.match(
          e.message,
          /^disk full while writing \S+\/runs\/m\/metrics\.jsonl; run\.json is not marked failed yet \(disk full while writing \S+\/runs\/m\/run\.json\)/,
        );
        assert.doesNotMatch(e.message, /ENOSPC/);
        assert.equal(e.message.split('\n').length, 1, 'one line');
        return true;
      },
    );
    return 0;
  });
  assert.doesNotMatch(res.err, /ENOSPC/);
  assert.equal(onDisk(store, 'm').status, 'running', 'no room yet');
  assert.equal(store.read('m').status, 'failed', 'this process already knows');
  full = false;
  await until('run.json to say failed', () => onDisk(store, 'm').status === 'failed');
  const rec = onDisk(store, 'm');
  assert.match(rec.reason!, /^disk full while writing \S+metrics\.jsonl$/);
  assert.equal(rec.pid, undefined);
  assert.deepEqual(store.pendingIds(), []);
});

test('disk full on a run.json write: one message naming run.json; it says failed once the disk has room', async () => {
  const ws = mkdtempSync(join(tmpdir(), 'sdtt-enospc-'));
  let full = false;
  const store = diskFullStore(ws, (f) => full && f.endsWith('run.json'));
  await capture(async () => {
    await assert.rejects(
      runCliJob(
        { workspace: ws, id: 'j', kind: 'pretrain', cfg: job(), label: 'pretrain', formatLoss: String, store },
        async (run) => {
          run.started({ backend: 'cpu', device: 'test', startStep: 0 });
          run.trainStep({ step: 1, loss: 2 }, '');
          full = true;
          run.checkpointed(1);
          return { status: 'done' as const, step: 1 };
        },
      ),
      /^Error: disk full while writing \S+\/runs\/j\/run\.json; run\.json is not marked failed yet: retried until this process exits/,
    );
    return 0;
  });
  assert.equal(onDisk(store, 'j').status, 'running');
  full = false;
  await until('run.json to say failed', () => onDisk(store, 'j').status === 'failed');
  assert.match(onDisk(store, 'j').reason!, /^disk full while writing \S+run\.json$/);
  assert.equal(store.readMetrics('j').length, 1, 'the metrics written before the disk filled are kept');
});

test('RunManager: a worker whose metrics meet a full disk ends failed naming the file, on disk once there is room', async () => {
  const ws = mkdtempSync(join(tmpdir(), 'sdtt-enospc-'));
  let full = false;
  const store = diskFullStore(ws, () => full);
  const children: FakeChild[] = [];
  const warnings: string[] = [];
  const statuses: string[] = [];
  const mgr = new RunManager(store, {
    exitGraceMs: 50,
    onWarning: (l) => warnings.push(l),
    spawn: () => (children.push(new FakeChild()), children.at(-1)!),
  });
  mgr.subscribe((e) => void (e.type === 'status' && statuses.push(e.record.status)));
  mgr.create('pretrain', job(), { id: 'w' });
  mgr.start('w');
  children[0].boot();
  full = true;
  children[0].say({
    type: 'metrics',
    points: [{ step: 1, loss: 2, lr: 1e-3, gradNorm: 1, tokPerSec: 10, elapsedS: 1 }],
  });
  await tick();
  await tick();
  assert.deepEqual(children[0].killed, ['SIGKILL'], 'the job cannot be recorded: it is ended');
  assert.equal(mgr.get('w').status, 'failed');
  assert.match(mgr.get('w').reason!, /^cannot record the run: disk full while writing \S+\/runs\/w\/metrics\.jsonl$/);
  assert.equal(statuses.at(-1), 'failed', 'clients hear it now');
  assert.equal(onDisk(store, 'w').status, 'running', 'no room yet');
  assert.ok(
    warnings.some((w) => /cannot record its end \(failed\) yet: disk full while writing \S+run\.json; retried/.test(w)),
    warnings.join('\n'),
  );
  full = false;
  await until('run.json to say failed', () => onDisk(store, 'w').status === 'failed');
  assert.match(onDisk(store, 'w').reason!, /disk full while writing \S+metrics\.jsonl/);
  assert.equal(onDisk(store, 'w').pid, undefined);
});

// ---- item 8: refused distillations ---------------------------------------------------------------------------------

test('sdtt distill refuses a bad teacher, judge or data, and sdtt pretrain bad data, before it creates a run folder', async () => {
  const { ws: modelsWs, teacher, judge } = await models();
  const ws = mkdtempSync(join(tmpdir(), 'sdtt-refused-'));
  const empty = join(ws, 'empty');
  mkdirSync(empty);
  const base = ['--eval-samples', '1', '--eval-steps', '2', '--threads', '1', '--backend', 'wasm', '--workspace', ws];
  const cases: [string[], RegExp][] = [
    [
      ['--teacher', empty, '--data', ALICE],
      /^sdtt distill: error: distill: teacher: \S+empty is neither a checkpoint folder/m,
    ],
    [['--teacher', join(ws, 'missing'), '--data', ALICE], /^sdtt distill: error: distill: teacher: /m],
    [
      ['--teacher', judge, '--data', ALICE],
      /^sdtt distill: error: distill: the teacher \S+ is a 'ar' model; SDTT needs an MDLM teacher/m,
    ],
    [
      ['--teacher', teacher, '--judge', teacher, '--data', ALICE],
      /^sdtt distill: error: distill: the judge \S+ is a 'mdlm' model, not an AR model/m,
    ],
    [
      ['--teacher', teacher, '--judge', empty, '--data', ALICE],
      /^sdtt distill: error: distill: judge: \S+empty is neither a checkpoint folder/m,
    ],
    [
      ['--teacher', teacher, '--judge', judge, '--data', join(ws, 'no-such-corpus.txt')],
      /^sdtt distill: error: distill: data \S+no-such-corpus\.txt does not exist/m,
    ],
  ];
  for (const [args, re] of cases) {
    const r = await capture(() => main(['distill', ...args, ...base]));
    assert.ok(
      !existsSync(join(ws, 'runs')) || readdirSync(join(ws, 'runs')).length === 0,
      `no run folder for ${args.join(' ')}: ${existsSync(join(ws, 'runs')) ? readdirSync(join(ws, 'runs')) : ''}`,
    );
    assert.equal(r.code, 1, `${args.join(' ')}\n${r.err}`);
    assert.match(r.err, re);
  }
  // pretraining too: missing, empty or manifest-less data creates nothing
  writeFileSync(join(ws, 'empty.txt'), '');
  for (const [data, re] of [
    [join(ws, 'no-such.txt'), /^sdtt pretrain: error: pretrain: data \S+no-such\.txt does not exist$/m],
    [join(ws, 'empty.txt'), /^sdtt pretrain: error: pretrain: data \S+empty\.txt is an empty file$/m],
    [empty, /^sdtt pretrain: error: (pretrain: )?data: ?\S+empty is a (folder|directory) without manifest\.json/m],
  ] as const) {
    const r = await capture(() =>
      main(['pretrain', '--model', 'tiny', '--steps', '2', '--data', data, '--workspace', ws, '--run', 'p']),
    );
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, re);
    assert.ok(!existsSync(join(ws, 'runs', 'p')), `no run folder for pretrain --data ${data}`);
  }
  assert.ok(existsSync(modelsWs));
});

test("the app's createRun refuses the same distillations and creates nothing; good inputs still create a queued run", async () => {
  const { teacher, judge } = await models();
  const ws = mkdtempSync(join(tmpdir(), 'sdtt-refused-app-'));
  const store = new RunStore(ws);
  const manager = new RunManager(store, { spawn: () => assert.fail('no worker here'), onWarning: () => {} });
  const host = new ApiHost({
    manager,
    workspace: ws,
    host: 'browser',
    probeBackend: null,
    assetsModelsDir: join(ws, 'no-models'),
    warn: () => {},
  });
  const refused = async (config: Record<string, unknown>, re: RegExp) => {
    await assert.rejects(
      host.createRun({ kind: 'distill', id: 'd', config: { kind: 'distill', ...config } as never }),
      (e: unknown) => {
        assert.ok(e instanceof ApiError, String(e));
        assert.equal(e.code, 'conflict');
        assert.match(e.message, re);
        return true;
      },
    );
    assert.deepEqual(store.list(), []);
    assert.ok(!existsSync(store.dir('d')), 'no run folder');
  };
  await refused(
    { teacher: join(ws, 'nowhere'), data: ALICE },
    /^cannot create the distillation run: distill: teacher: \S+nowhere is neither a checkpoint folder/,
  );
  await refused({ teacher: judge, data: ALICE }, /SDTT needs an MDLM teacher/);
  await refused({ teacher, judge: teacher, data: ALICE }, /the judge \S+ is a 'mdlm' model, not an AR model/);
  await refused({ teacher, data: join(ws, 'gone.txt') }, /distill: data \S+gone\.txt does not exist/);
  const rec = await host.createRun({
    kind: 'distill',
    id: 'd',
    config: { kind: 'distill', teacher, judge, data: ALICE } as never,
  });
  assert.equal(rec.status, 'queued');
});

// ---- item 8: deleting runs -----------------------------------------------------------------------------------------

test('deleteRun removes a stopped run and tells every client; refuses a live one (here or in another process)', async () => {
  const ws = mkdtempSync(join(tmpdir(), 'sdtt-delete-'));
  const store = new RunStore(ws);
  const children: FakeChild[] = [];
  const manager = new RunManager(store, {
    exitGraceMs: 50,
    onWarning: () => {},
    spawn: () => (children.push(new FakeChild()), children.at(-1)!),
  });
  const host = new ApiHost({
    manager,
    workspace: ws,
    host: 'browser',
    probeBackend: null,
    assetsModelsDir: join(ws, 'no-models'),
    warn: () => {},
  });
  const events: ApiEvent[] = [];
  host.subscribe((e) => events.push(e));
  const rejects = async (p: Promise<unknown>, code: ApiError['code'], re: RegExp) =>
    assert.rejects(p, (e: unknown) => e instanceof ApiError && e.code === code && re.test(e.message));

  await host.createRun({ kind: 'pretrain', id: 'old', config: job() as never });
  store.update('old', { status: 'stopped' });
  store.appendMetric('old', { type: 'train', step: 1, loss: 2 });
  const r = await host.deleteRun({ id: 'old' });
  assert.deepEqual([r.id, r.folder, r.files > 0, r.bytes > 0], ['old', store.dir('old'), true, true]);
  assert.ok(!existsSync(store.dir('old')));
  assert.deepEqual(
    events.filter((e) => e.type === 'deleted'),
    [{ type: 'deleted', runId: 'old' }],
  );
  await rejects(host.deleteRun({ id: 'old' }), 'not-found', /no run "old"/);
  await rejects(host.deleteRun({ id: '../x' }), 'invalid-request', /deleteRun: id/);

  // running in this app: conflict, nothing removed
  await host.createRun({ kind: 'pretrain', id: 'live', config: job() as never });
  await host.controlRun({ id: 'live', action: 'start' });
  children[0].boot();
  await rejects(host.deleteRun({ id: 'live' }), 'conflict', /run "live" is running in this app: stop it first/);
  assert.ok(existsSync(join(store.dir('live'), 'run.json')));
  children[0].finish('stopped', 3);
  await manager.wait('live');

  // held by another live process (a CLI): conflict, with where it runs
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
  try {
    store.update('live', { status: 'running', pid: other.pid });
    await rejects(
      host.deleteRun({ id: 'live' }),
      'conflict',
      new RegExp(`run "live" is running in process ${other.pid}: stop it first`),
    );
    assert.ok(existsSync(join(store.dir('live'), 'run.json')));
  } finally {
    other.kill('SIGKILL');
  }
});

test("the renderer store drops a deleted run, its details and its compare slot on the 'deleted' event", () => {
  const rec = (id: string, createdAt: string): RunRecord => ({
    id,
    kind: 'pretrain',
    config: {},
    status: 'stopped',
    step: 0,
    totalSteps: 10,
    createdAt,
    updatedAt: createdAt,
  });
  handleEvent({ type: 'status', record: rec('keep', '2026-01-01T00:00:00Z') });
  handleEvent({ type: 'status', record: rec('gone', '2026-01-02T00:00:00Z') });
  useApp.setState({ compareIds: ['keep', 'gone'], rounds: { gone: [] }, view: 'compare' });
  handleEvent({ type: 'deleted', runId: 'gone' });
  const s = useApp.getState();
  assert.deepEqual(Object.keys(s.runs), ['keep']);
  assert.deepEqual(s.compareIds, ['keep']);
  assert.equal('gone' in s.rounds, false);
});
