// `sdtt runs`: one line per run with status, progress, backend and where it stands (last validation, rounds done);
// a run whose process is gone reads as stopped, with why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunStore } from '../src/main/runStore.ts';
import { run } from '../src/cli/runs.ts';

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
    store.appendRound('kld', { round: 0 });
    store.appendRound('kld', { round: 1 });
    let out = '';
    const log = console.log;
    console.log = (...a: unknown[]) => void (out += a.join(' ') + '\n');
    try {
      assert.equal(await run(['--workspace', ws]), 0);
    } finally {
      console.log = log;
    }
    const line = (id: string) => out.split('\n').find((l) => l.startsWith(`${id} `)) ?? '';
    assert.match(line('teacher'), new RegExp(`pretrain +stopped +40/100 \\(40%\\)  onnx  validation NELBO ppl 110\\.0 at step 40  interrupted: its process \\(pid ${gone}\\)`));
    assert.match(line('judge'), /pretrain-ar +done +100\/100 \(100%\)  +validation NLL ppl 44\.7 at step 100$/);
    assert.match(line('kld'), /distill +done +100\/100 \(100%\)  +2 rounds done$/);
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});
