// End-to-end through the `sdtt` CLI: a pretraining run produces a run folder, checkpoints that `sdtt sample`
// loads, and after SIGKILL the same command resumes from the last checkpoint and reproduces the losses of an
// uninterrupted run exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLI = join(import.meta.dirname, '..', 'bin', 'sdtt.js');
const COMMON = [
  '--model',
  'tiny',
  '--data',
  'test/fixtures/alice.txt',
  '--batch',
  '4',
  '--steps',
  '40',
  '--log-every',
  '1',
  '--eval-every',
  '20',
  '--checkpoint-every',
  '10',
  '--warmup',
  '5',
  '--lr',
  '1e-3',
  '--threads',
  '1',
  '--backend',
  'wasm',
  '--seed',
  '7',
];

function sdtt(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, CI: '1' } });
}

function trainLosses(runDir: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const line of readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').split('\n')) {
    if (!line) continue;
    const m = JSON.parse(line);
    if (m.type === 'train') out.set(m.step, m.loss);
  }
  return out;
}

test('pretrain writes a run folder and checkpoints that sample loads', () => {
  const ws = mkdtempSync(join(tmpdir(), 'sdtt-cli-'));
  const r = sdtt(['pretrain', ...COMMON, '--workspace', ws, '--run', 'a']);
  assert.equal(r.status, 0, r.stderr);
  const runDir = join(ws, 'runs', 'a');
  const record = JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8'));
  assert.equal(record.status, 'done');
  assert.equal(record.step, 40);
  assert.match(record.backend, /wasm/);
  assert.deepEqual(readdirSync(join(runDir, 'checkpoints')).sort(), ['20', '30', '40']);
  const losses = trainLosses(runDir);
  assert.equal(losses.size, 40);
  assert.ok([...losses.values()].every(Number.isFinite));

  const s = sdtt(['sample', '--model', runDir, '--steps', '8', '--samples', '2', '--backend', 'wasm']);
  assert.equal(s.status, 0, s.stderr);
  assert.equal((s.stdout.match(/--- sample \d ---/g) ?? []).length, 2);
  assert.doesNotMatch(s.stdout, /░/, 'no MASK placeholder survives sampling');
});

test('SIGKILL mid-run, then the same command resumes and matches an uninterrupted run', async () => {
  const ws = mkdtempSync(join(tmpdir(), 'sdtt-resume-'));
  const full = sdtt(['pretrain', ...COMMON, '--workspace', ws, '--run', 'full']);
  assert.equal(full.status, 0, full.stderr);
  const reference = trainLosses(join(ws, 'runs', 'full'));

  const args = [CLI, 'pretrain', ...COMMON, '--workspace', ws, '--run', 'killed'];
  const child = spawn(process.execPath, args, { stdio: 'ignore', env: { ...process.env, CI: '1' } });
  const ckDir = join(ws, 'runs', 'killed', 'checkpoints');
  const deadline = Date.now() + 60_000;
  while (!(existsSync(join(ckDir, '10', 'model.safetensors')) && existsSync(join(ckDir, '10', 'state.json')))) {
    assert.ok(Date.now() < deadline, 'no checkpoint within 60 s');
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const killedRecord = JSON.parse(readFileSync(join(ws, 'runs', 'killed', 'run.json'), 'utf8'));
  assert.equal(killedRecord.status, 'running', 'a killed run is left as it was');

  const again = sdtt(['pretrain', ...COMMON, '--workspace', ws, '--run', 'killed']);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /resumed from .*checkpoints/);
  const resumed = trainLosses(join(ws, 'runs', 'killed'));
  assert.equal(resumed.size, 40, 'every step logged once, none twice');
  for (const [step, loss] of reference) assert.equal(resumed.get(step), loss, `loss at step ${step}`);
});

test('a resumed run with a different config is refused and nothing is changed', () => {
  const ws = mkdtempSync(join(tmpdir(), 'sdtt-conflict-'));
  assert.equal(sdtt(['pretrain', ...COMMON, '--steps', '10', '--workspace', ws, '--run', 'x']).status, 0);
  const before = readFileSync(join(ws, 'runs', 'x', 'run.json'), 'utf8');
  const r = sdtt(['pretrain', ...COMMON, '--steps', '10', '--lr', '5e-4', '--workspace', ws, '--run', 'x']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /different config \(optim\.lr: 0\.001 -> 0\.0005\)/);
  assert.equal(readFileSync(join(ws, 'runs', 'x', 'run.json'), 'utf8'), before);
});

test('--decay-steps resumes a constant-rate run with a cooldown: the rate falls linearly to the last step', () => {
  const ws = mkdtempSync(join(tmpdir(), 'sdtt-cooldown-'));
  const base = [...COMMON, '--warmup', '0', '--workspace', ws, '--run', 'c'];
  assert.equal(sdtt(['pretrain', ...base, '--steps', '10']).status, 0);
  const r = sdtt(['pretrain', ...base, '--steps', '14', '--decay-steps', '4']);
  assert.equal(r.status, 0, r.stderr);
  const lrs = new Map<number, number>();
  for (const line of readFileSync(join(ws, 'runs', 'c', 'metrics.jsonl'), 'utf8').split('\n')) {
    const m = line ? JSON.parse(line) : null;
    if (m?.type === 'train') lrs.set(m.step, m.lr);
  }
  // step n is logged with the rate it used (step index n - 1): 1e-3 up to step 10, then 3/4, 1/2, 1/4 of it
  assert.deepEqual(
    [9, 10, 11, 12, 13, 14].map((s) => lrs.get(s)),
    [1e-3, 1e-3, 1e-3, 7.5e-4, 5e-4, 2.5e-4],
  );
});

test('bad flags fail with exit code 2 and name the flag', () => {
  const r = sdtt(['pretrain', '--steps', 'ten']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--steps must be an integer/);
  const u = sdtt(['pretrain', '--model', 'huge']);
  assert.equal(u.status, 2);
  assert.match(u.stderr, /unknown --model "huge"/);
});

test('SIGTERM stops an in-process run (threads 1) after a checkpoint, with status stopped', async () => {
  const ws = mkdtempSync(join(tmpdir(), 'sdtt-term-'));
  const child = spawn(
    process.execPath,
    [CLI, 'pretrain', ...COMMON, '--steps', '100000', '--workspace', ws, '--run', 't'],
    { stdio: 'ignore', env: { ...process.env, CI: '1' } },
  );
  const ckDir = join(ws, 'runs', 't', 'checkpoints');
  const deadline = Date.now() + 60_000;
  while (!existsSync(join(ckDir, '10', 'state.json'))) {
    assert.ok(Date.now() < deadline, 'no checkpoint within 60 s');
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGTERM');
  const code = await new Promise((r) => child.once('exit', r));
  assert.equal(code, 0);
  const record = JSON.parse(readFileSync(join(ws, 'runs', 't', 'run.json'), 'utf8'));
  assert.equal(record.status, 'stopped');
  assert.ok(record.step >= 10 && record.step < 1000, `stopped promptly (step ${record.step})`);
  assert.ok(existsSync(join(ckDir, String(record.step), 'model.safetensors')), 'a checkpoint at the stop step');
});
