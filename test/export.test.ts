// Exports (src/main/exporter.ts through ApiHost.exportRound and `sdtt export`): float32 and float16 files of a
// tiny trained checkpoint load back through openModel with nearly the same logits, f16 at about half the size;
// config.json records the dtype and a workspace-relative source; a weight f16 cannot hold fails, naming the
// tensor, before anything is written.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ApiHost } from '../src/main/apiHost.ts';
import { exportCheckpointFolder, relativeProvenancePaths } from '../src/main/exporter.ts';
import { RunManager } from '../src/main/runManager.ts';
import { RunStore } from '../src/runs/runStore.ts';
import { run as exportCli } from '../src/cli/export.ts';
import { UsageError } from '../src/cli/args.ts';
import { ApiError } from '../src/shared/api.ts';
import { loadCheckpoint } from '../src/runs/checkpointLoad.ts';
import { openModel } from '../src/engine/io/openModel.ts';
import { paramLayout } from '../src/engine/model/paramLayout.ts';
import { decodeSafetensors, encodeSafetensors, type SafetensorInput } from '../src/runs/safetensors.ts';
import { maxAbsDiff, randomTokens, tinyTeacherAndJudge, trainTinyRun } from './helpers/fixtures.ts';
import { capture } from './helpers/cliOutput.ts';
import { run as evalCli } from '../src/cli/evaluate.ts';
import { run as sampleCli } from '../src/cli/sample.ts';
import { upsertRoundLine } from '../src/runs/runFolder.ts';

let ws = '';
let ckDir = '';
let host: ApiHost;

before(async () => {
  ws = mkdtempSync(join(tmpdir(), 'sdtt-export-'));
  ckDir = await trainTinyRun(ws, 'tiny', 'pretrain', 6);
  host = new ApiHost({
    manager: new RunManager(new RunStore(ws)),
    workspace: ws,
    host: 'browser',
    probeBackend: null,
    assetsModelsDir: join(ws, 'no-models'),
  });
});
after(() => rmSync(ws, { recursive: true, force: true }));

const exportConfig = (folder: string) =>
  JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')) as { export: Record<string, unknown> };

async function expectApiError(p: Promise<unknown>, code: ApiError['code'], re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ApiError, `expected an ApiError, got ${e}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, re);
    return true;
  });
}

test('f16 export: half the file, F16 tensors, loads through openModel with logits close to the f32 export', async () => {
  const f32 = await host.exportRound({ id: 'tiny', round: -1, folder: 'exports/f32' });
  const f16 = await host.exportRound({ id: 'tiny', round: -1, folder: 'exports/f16', dtype: 'f16' });
  const size = (d: string) => statSync(join(d, 'model.safetensors')).size;
  const ratio = size(f16.folder) / size(f32.folder);
  assert.ok(ratio > 0.49 && ratio < 0.53, `f16 / f32 size ratio ${ratio}`);
  const tensors = decodeSafetensors(readFileSync(join(f16.folder, 'model.safetensors'))).tensors;
  assert.deepEqual(new Set([...tensors.values()].map((t) => t.dtype)), new Set(['F16']));

  // provenance: the dtype, and the source relative to the workspace (no local absolute path anywhere)
  const step = basename(ckDir);
  for (const [folder, dtype] of [
    [f32.folder, 'f32'],
    [f16.folder, 'f16'],
  ]) {
    const ex = exportConfig(folder).export;
    assert.equal(ex.dtype, dtype);
    assert.equal(ex.source, `runs/tiny/checkpoints/${step}`);
    for (const f of ['config.json', 'README.md'])
      assert.ok(!readFileSync(join(folder, f), 'utf8').includes(ws), `${f} of the ${dtype} export leaks ${ws}`);
  }
  assert.match(
    readFileSync(join(f16.folder, 'README.md'), 'utf8'),
    /\(PyTorch convention\), float16 \(rounded to nearest-even/,
  );
  assert.match(readFileSync(join(f32.folder, 'README.md'), 'utf8'), /\(PyTorch convention\), float32\./);

  // the loaded weights are the checkpoint's EMA weights to f16 precision (all well inside the normal range or tiny)
  const src = loadCheckpoint(ckDir, { layoutFor: paramLayout });
  const want = src.ema ?? src.params;
  const got = loadCheckpoint(f16.folder, { layoutFor: paramLayout }).params;
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= Math.max(2 ** -11 * Math.abs(want[i]), 2 ** -25)))
      assert.fail(`weight ${i}: ${want[i]} -> ${got[i]}`);
  }

  const m32 = await openModel(f32.folder, { backend: 'wasm' });
  const m16 = await openModel(f16.folder, { backend: 'wasm' });
  try {
    const { seqLen, maskId, vocabSize } = m32.config;
    const tokens = randomTokens(2 * seqLen, vocabSize, 5);
    for (let i = 0; i < tokens.length; i += 3) tokens[i] = maskId; // a third masked, as in sampling
    const a = await m32.model.logits(tokens, 2);
    const b = await m16.model.logits(tokens, 2);
    const scale = Math.max(...a.map(Math.abs));
    const diff = maxAbsDiff(a, b);
    assert.ok(diff > 0, 'f16 weights should perturb the logits a little');
    assert.ok(diff < 2e-3 * Math.max(1, scale), `max |logit difference| ${diff} (logit scale ${scale})`);
  } finally {
    await m32.model.dispose();
    await m16.model.dispose();
  }
});

test('a weight float16 cannot hold fails the f16 export naming the tensor, and leaves no folder behind', async () => {
  // a copy of the run whose EMA weights hold one value above 65504
  const store = new RunStore(ws);
  store.create({ ...store.read('tiny'), id: 'big' });
  cpSync(store.checkpointsDir('tiny'), store.checkpointsDir('big'), { recursive: true });
  const ema = join(store.checkpointsDir('big'), basename(ckDir), 'ema.safetensors');
  const { tensors, metadata } = decodeSafetensors(readFileSync(ema));
  const [name, t] = [...tensors].find(([, e]) => e.data.length > 3)!;
  (t.data as Float32Array)[3] = 70000;
  writeFileSync(ema, encodeSafetensors(tensors as Map<string, SafetensorInput>, metadata));

  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  await expectApiError(
    host.exportRound({ id: 'big', round: -1, folder: 'exports/big16', dtype: 'f16' }),
    'conflict',
    new RegExp(`as f16: tensor '${escaped}': element 3 \\(70000\\).*exceeds.*65504.*export it as f32`),
  );
  assert.ok(!existsSync(join(ws, 'exports', 'big16')), 'no export folder');
  assert.ok(
    !readdirSync(ws)
      .concat(existsSync(join(ws, 'exports')) ? readdirSync(join(ws, 'exports')) : [])
      .some((n) => n.endsWith('.tmp')),
    'no temp folder',
  );
  // the same weights export fine as f32
  await host.exportRound({ id: 'big', round: -1, folder: 'exports/big32' });
  assert.equal(loadCheckpoint(join(ws, 'exports', 'big32'), { layoutFor: paramLayout }).params.includes(70000), true);
});

test('the API validates dtype; `sdtt export --dtype` passes it through and refuses other values', async () => {
  await expectApiError(
    host.exportRound({ id: 'tiny', round: -1, folder: 'exports/bad', dtype: 'bf16' as never }),
    'invalid-request',
    /exportRound: dtype/,
  );
  assert.ok(!existsSync(join(ws, 'exports', 'bad')));

  const out = join(ws, 'exports', 'cli16');
  const log = console.log;
  const err = console.error;
  console.log = console.error = () => {};
  try {
    assert.equal(await exportCli(['--run', 'tiny', '--out', out, '--dtype', 'f16', '--workspace', ws]), 0);
    await assert.rejects(
      exportCli(['--run', 'tiny', '--out', join(ws, 'exports', 'cli64'), '--dtype', 'f64', '--workspace', ws]),
      (e: unknown) => e instanceof UsageError && /--dtype must be f32 or f16, got "f64"/.test(e.message),
    );
  } finally {
    console.log = log;
    console.error = err;
  }
  assert.equal(exportConfig(out).export.dtype, 'f16');
  assert.ok(!existsSync(join(ws, 'exports', 'cli64')));
});

test('a distilled student exported carries no absolute path of this machine in its provenance', () => {
  const cfg: Record<string, unknown> = {
    arch: 'mdlm',
    sdtt: {
      round: 2,
      teacher: join(ws, 'runs', 'kld', 'rounds', '1'),
      originalTeacher: '/opt/models/mdlm-base-5m',
      data: join(ws, 'data', 'corpus'),
      divergence: 'kld',
    },
  };
  relativeProvenancePaths(cfg, ws);
  assert.deepEqual(cfg.sdtt, {
    round: 2,
    teacher: 'runs/kld/rounds/1',
    originalTeacher: 'mdlm-base-5m',
    data: 'data/corpus',
    divergence: 'kld',
  });
  const untouched = { sdtt: { teacher: 'runs/x', data: 7 } };
  relativeProvenancePaths(untouched, ws);
  assert.deepEqual(untouched, { sdtt: { teacher: 'runs/x', data: 7 } });
});

test("a distilled student's model card has the run's evaluation next to the original teacher's, per step count", async () => {
  const store = new RunStore(ws);
  store.create({
    id: 'dist',
    kind: 'distill',
    config: { evalSamples: 64, seed: 0 },
    status: 'done',
    step: 20,
    totalSteps: 20,
    createdAt: '2026-11-27T04:00:00.000Z',
    updatedAt: '2026-11-27T04:30:00.000Z',
  });
  const dir = store.dir('dist');
  cpSync(ckDir, join(dir, 'rounds', '0'), { recursive: true });
  upsertRoundLine(store.dir('dist'), {
    round: 0,
    teacherSteps: 32,
    studentSteps: 16,
    firstStep: 1,
    lastStep: 20,
    checkpoint: 'rounds/0',
    eval: [
      { steps: 16, gen_ppl: 205.41, gen_ppl_se: 8.2, entropy: 4.388, known_words: 0.8712 },
      { steps: 32, gen_ppl: 190.1, gen_ppl_se: 7.9, entropy: 4.4, known_words: 0.88 },
    ],
  });
  // before the teacher's evaluation exists (or when its file is torn): the student's rows alone
  writeFileSync(join(dir, 'teacher-eval.json'), '{"rows": [');
  const alone = readFileSync(
    join((await host.exportRound({ id: 'dist', round: 0, folder: 'exports/dist-alone' })).folder, 'README.md'),
    'utf8',
  );
  assert.match(
    alone,
    /## Evaluation\n\nMeasured by the distillation run after round 0: 64 samples per cell, seed 0 .*, judge not recorded/,
  );
  assert.match(
    alone,
    /\| sampling steps N \| this model \|\n\|---\|---\|\n\| 32 \| 190.1 ± 7.9 \/ 4.400 \/ 88.0 % \|\n\| 16 \| 205.4 ± 8.2 \/ 4.388 \/ 87.1 % \|\n/,
  );

  writeFileSync(
    join(dir, 'teacher-eval.json'),
    JSON.stringify({
      round: -1,
      judge: join(ws, 'models', 'judge-ar-base-5m'),
      rows: [
        { steps: 16, gen_ppl: 329.6, gen_ppl_se: 12.0, entropy: 4.476, known_words: 0.854 },
        { steps: 128, gen_ppl: 235.0, gen_ppl_se: 9.3, entropy: 4.416, known_words: 0.861 },
      ],
    }),
  );
  const card = readFileSync(
    join((await host.exportRound({ id: 'dist', round: 0, folder: 'exports/dist' })).folder, 'README.md'),
    'utf8',
  );
  assert.match(card, /judge `judge-ar-base-5m`/);
  assert.ok(!card.includes(ws), 'no local path in the card');
  assert.match(
    card,
    /\| sampling steps N \| this model \| original teacher \|\n\|---\|---\|---\|\n\| 128 \| – \| 235.0 ± 9.3 \/ 4.416 \/ 86.1 % \|\n\| 32 \| 190.1 ± 7.9 \/ 4.400 \/ 88.0 % \| – \|\n\| 16 \| 205.4 ± 8.2 \/ 4.388 \/ 87.1 % \| 329.6 ± 12.0 \/ 4.476 \/ 85.4 % \|\n/,
  );
  // a pretraining run's export has no such section
  assert.doesNotMatch(
    readFileSync(
      join((await host.exportRound({ id: 'tiny', round: -1, folder: 'exports/tiny-card' })).folder, 'README.md'),
      'utf8',
    ),
    /## Evaluation/,
  );
});

test('an export is read back before it is reported: a damaged or truncated write fails and leaves no folder', () => {
  const rec = new RunStore(ws).read('tiny');
  const src = { dir: ckDir, step: Number(basename(ckDir)) };
  const damage = (how: 'flip' | 'truncate') => (file: string, data: Uint8Array | string) => {
    const bytes = Buffer.from(typeof data === 'string' ? Buffer.from(data) : data);
    if (file.endsWith('model.safetensors')) {
      if (how === 'flip') bytes[bytes.length - 3] ^= 0x40; // one weight's exponent bit: still finite, another value
      writeFileSync(file, how === 'truncate' ? bytes.subarray(0, bytes.length - 4) : bytes);
    } else writeFileSync(file, bytes);
  };
  const folder = join(ws, 'exports', 'new-parent', 'damaged');
  assert.throws(
    () => exportCheckpointFolder(rec, -1, src, folder, { workspace: ws, write: damage('flip') }),
    (e: unknown) =>
      e instanceof ApiError &&
      /does not hold the exported weights \(first difference at value \d+ of \d+\); nothing was exported/.test(
        e.message,
      ),
  );
  assert.throws(
    () => exportCheckpointFolder(rec, -1, src, folder, { workspace: ws, write: damage('truncate') }),
    (e: unknown) =>
      e instanceof ApiError &&
      /the written export does not load back: .*model\.safetensors: .*nothing was exported/.test(e.message),
  );
  assert.ok(!existsSync(join(ws, 'exports', 'new-parent')), 'the parent folder the failed export created is gone too');
});

test("a student's model card samples at the student's own step count and says when its numbers are not this file's", async () => {
  const store = new RunStore(ws);
  store.create({
    id: 'steps',
    kind: 'distill',
    config: { evalSamples: 8, seed: 0 },
    status: 'done',
    step: 6,
    totalSteps: 6,
    createdAt: '2026-12-03T10:00:00.000Z',
    updatedAt: '2026-12-03T10:00:00.000Z',
  });
  const round = join(store.dir('steps'), 'rounds', '0');
  cpSync(ckDir, round, { recursive: true });
  const cfgFile = join(round, 'config.json');
  writeFileSync(
    cfgFile,
    JSON.stringify({
      ...JSON.parse(readFileSync(cfgFile, 'utf8')),
      sdtt: { round: 0, teacherSteps: 64, studentSteps: 32, divergence: 'kld' },
    }),
  );
  upsertRoundLine(store.dir('steps'), {
    round: 0,
    teacherSteps: 64,
    studentSteps: 32,
    firstStep: 1,
    lastStep: 6,
    checkpoint: 'rounds/0',
    eval: [{ steps: 32, gen_ppl: 200, gen_ppl_se: 8, entropy: 4.4 }],
  });
  const card = (dtype: 'f32' | 'f16') =>
    readFileSync(
      join(
        exportCheckpointFolder(store.read('steps'), 0, { dir: round, step: 6 }, join(ws, 'exports', `steps-${dtype}`), {
          workspace: ws,
          dtype,
          evaluation: { rows: [{ steps: 32, gen_ppl: 200, gen_ppl_se: 8, entropy: 4.4 }], judge: 'j' },
        }) && join(ws, 'exports', `steps-${dtype}`),
        'README.md',
      ),
      'utf8',
    );
  const f32 = card('f32');
  assert.match(f32, /`sdtt sample --model <this folder> --steps 32`/);
  assert.match(f32, /Measured by the distillation run after round 0: /);
  assert.doesNotMatch(f32, /float32 weights; this file/);
  assert.match(
    card('f16'),
    /Measured by the distillation run after round 0, on its float32 weights; this file holds them rounded to float16, whose samples differ \(`sdtt eval --model <this folder> --steps \.\.\. --card`/,
  );
});

test('sdtt eval --card measures the file and its original teacher alike and rewrites only the Evaluation section', async () => {
  const { teacher, judge } = await tinyTeacherAndJudge(4, 'sdtt-export-card-');
  const student = join(ws, 'card-student');
  cpSync(teacher, student, { recursive: true });
  const cfgFile = join(student, 'config.json');
  writeFileSync(
    cfgFile,
    JSON.stringify({
      ...JSON.parse(readFileSync(cfgFile, 'utf8')),
      sdtt: { round: 0, studentSteps: 2, originalTeacher: teacher },
    }),
  );
  writeFileSync(
    join(student, 'README.md'),
    '# card\n\nintro\n\n## Evaluation\n\nold numbers\n\n## Limitations\n\nsmall\n',
  );
  const r = await capture(() =>
    evalCli([
      '--model',
      student,
      '--judge',
      judge,
      '--steps',
      '4,2',
      '--samples',
      '2',
      '--batch',
      '2',
      '--no-baselines',
      '--card',
    ]),
  );
  assert.equal(r.code, 0, r.err);
  const card = readFileSync(join(student, 'README.md'), 'utf8');
  assert.match(
    card,
    /^# card\n\nintro\n\n## Evaluation\n\nMeasured on this file's EMA weights by `sdtt eval --card`: 2 samples per cell, seed 0/,
  );
  assert.match(
    card,
    /Reproduce: `sdtt eval --model \S+card-student --judge \S+ --steps 4,2 --samples 2 --batch 2 --no-baselines --card`/,
  );
  assert.match(
    card,
    /\| sampling steps N \| this model \| original teacher \|\n\|---\|---\|---\|\n\| 4 \| [\d.]+ ± [\d.]+ \/ [\d.]+ \| [\d.]+ ± [\d.]+ \/ [\d.]+ \|\n\| 2 \| /,
  );
  assert.doesNotMatch(card, /old numbers/);
  assert.match(card, /\n## Limitations\n\nsmall\n$/);
  // the student is the teacher's copy: the same seeds give the same cells in both columns
  const rows = card.match(/^\| [42] \| (.+) \| (.+) \|$/gm)!;
  for (const row of rows) assert.equal(row.split(' | ')[1], row.split(' | ')[2].replace(/ \|$/, ''));
});

test('sdtt sample and eval name the weights an export holds as its metadata says (EMA), not "raw"', async () => {
  const { folder } = await host.exportRound({ id: 'tiny', round: -1, folder: 'exports/weights-label' });
  assert.ok(!existsSync(join(folder, 'ema.safetensors')), 'an export holds one set of weights');
  const s = await capture(() => sampleCli(['--model', folder, '--steps', '2', '--samples', '1', '--backend', 'wasm']));
  assert.equal(s.code, 0, s.err);
  assert.match(s.err, /\(mdlm, ema weights\)/);
  const e = await capture(() =>
    evalCli([
      '--model',
      folder,
      '--data',
      'test/fixtures/alice.txt',
      '--batches',
      '1',
      '--batch',
      '1',
      '--backend',
      'wasm',
    ]),
  );
  assert.equal(e.code, 0, e.err);
  assert.match(e.err, /\(mdlm, ema\)/);
  await assert.rejects(
    openModel(folder, { weights: 'raw', backend: 'wasm' }),
    /holds only EMA weights \(its model.safetensors says so\); use --weights ema/,
  );
});
