// `sdtt runs`: one line per run with status, progress, backend and where it stands (last validation, rounds done);
// a run whose process is gone reads as stopped, with why. `sdtt runs rm ID` deletes a run unless a live process
// runs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunStore } from '../src/runs/runStore.ts';
import { run } from '../src/cli/runs.ts';
import { main } from '../src/cli/index.ts';
import { upsertRoundLine } from '../src/runs/runFolder.ts';

async function captured(fn: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => void (out += a.join(' ') + '\n');
  console.error = (...a: unknown[]) => void (err += a.join(' ') + '\n');
  try {
    return { code: await fn(), out, err };
  } finally {
    [console.log, console.error] = [log, error];
  }
}

test('sdtt runs: status, progress, last validation or rounds done; a dead process reads as interrupted', async () => {
  const ws = mkdtempSync(join(tmpdir(), 'sdtt-runs-cli-'));
  try {
    const store = new RunStore(ws);
    const now = new Date().toISOString();
    const base = { config: {}, step: 0, totalSteps: 100, createdAt: now, updatedAt: now };
    const gone = spawnSync(process.execPath, ['-e', '']).pid!;
    store.create({ ...base, id: 'teacher', kind: 'pretrain', status: 'running', pid: gone, step: 40, backend: 'onnx' });
    store.appendMetric('teacher', { type: 'eval', step: 20, valLoss: 5, valPpl: 148.4 });
    store.appendMetric('teacher', { type: 'train', step: 40, loss: 4.8 });
    store.appendMetric('teacher', { type: 'eval', step: 40, valLoss: 4.7, valPpl: 109.95 });
    store.create({ ...base, id: 'judge', kind: 'pretrain-ar', status: 'done', step: 100 });
    store.appendMetric('judge', { type: 'eval', step: 100, valLoss: 3.8, valPpl: 44.7 });
    store.create({ ...base, id: 'kld', kind: 'distill', status: 'done', step: 100 });
    upsertRoundLine(store.dir('kld'), { round: 0 });
    upsertRoundLine(store.dir('kld'), { round: 1 });
    let out = '';
    const log = console.log;
    console.log = (...a: unknown[]) => void (out += a.join(' ') + '\n');
    try {
      assert.equal(await run(['--workspace', ws]), 0);
    } finally {
      console.log = log;
    }
    const line = (id: string) => out.split('\n').find((l) => l.startsWith(`${id} `)) ?? '';
    assert.match(
      line('teacher'),
      new RegExp(
        `pretrain +stopped +40/100 \\(40%\\)  onnx  validation NELBO ppl 110\\.0 at step 40  interrupted: its process \\(pid ${gone}\\)`,
      ),
    );
    assert.match(line('judge'), /pretrain-ar +done +100\/100 \(100%\)  +validation NLL ppl 44\.7 at step 100$/);
    assert.match(line('kld'), /distill +done +100\/100 \(100%\)  +2 rounds done$/);
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});

test('sdtt runs rm: removes a stopped run and says what went; refuses a live one and a missing one', async () => {
  const ws = mkdtempSync(join(tmpdir(), 'sdtt-runs-rm-'));
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
  try {
    const store = new RunStore(ws);
    const now = new Date().toISOString();
    const base = { kind: 'pretrain' as const, config: {}, step: 10, totalSteps: 100, createdAt: now, updatedAt: now };
    store.create({ ...base, id: 'old', status: 'stopped' });
    store.appendMetric('old', { type: 'train', step: 10, loss: 4 });
    writeFileSync(join(store.checkpointsDir('old'), 'x.bin'), Buffer.alloc(2000));
    store.create({ ...base, id: 'busy', status: 'running', pid: other.pid });

    const rm = await captured(() => main(['runs', 'rm', 'old', '--workspace', ws]));
    assert.equal(rm.code, 0, rm.err);
    assert.match(
      rm.out,
      new RegExp(
        `^removed run old \\(pretrain, stopped at step 10/100\\): ${store.dir('old').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, 3 files, 2\\.\\d kB$`,
        'm',
      ),
    );
    assert.ok(!existsSync(store.dir('old')));

    const busy = await captured(() => main(['runs', 'rm', 'busy', '--workspace', ws]));
    assert.equal(busy.code, 1);
    assert.match(
      busy.err,
      new RegExp(
        `^sdtt runs: error: run "busy" is running in process ${other.pid}: stop it first \\(Ctrl-C in its terminal, kill -TERM ${other.pid}`,
        'm',
      ),
    );
    assert.ok(existsSync(join(store.dir('busy'), 'run.json')), 'a live run is left alone');

    const missing = await captured(() => main(['runs', 'rm', 'old', '--workspace', ws]));
    assert.equal(missing.code, 1);
    assert.match(missing.err, /sdtt runs: error: no run "old" in /);
    assert.equal((await captured(() => main(['runs', 'rm', '--workspace', ws]))).code, 2, 'no id: a usage error');
  } finally {
    other.kill('SIGKILL');
    rmSync(ws, { recursive: true, force: true });
  }
});
