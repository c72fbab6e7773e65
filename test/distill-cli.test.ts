// `sdtt distill` (src/cli/distill.ts), in-process: round banners, the final table, ONE JSON line on stdout, and
// re-running the same command resumes the run instead of starting over; `sdtt demo` names a missing model folder;
// `sdtt eval` (shipped judge by default, --plot) and `sdtt sample` on tiny models.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PretrainConfig } from '../src/shared/config.ts';
import { MODEL_PRESETS } from '../src/shared/presets.ts';
import { runPretrain } from '../src/engine/training/train.ts';
import { latestCheckpoint } from '../src/runs/checkpoint.ts';
import { ByteTokenizer } from '../src/engine/data/tokenizer.ts';
import { openTokenSource } from '../src/engine/data/shards.ts';
import { DEMO_JUDGE, DEMO_TEACHER, defaultDistillRunId, run, runDemo } from '../src/cli/distill.ts';
import { run as evalRun } from '../src/cli/evaluate.ts';
import { run as sampleRun } from '../src/cli/sample.ts';
import { tinyTeacherAndJudge, trainTinyRun } from './helpers/fixtures.ts';
import { capture } from './helpers/cliOutput.ts';

const DATA = 'test/fixtures/alice.txt';

test('sdtt distill: banners, final table, one JSON line; the same command resumes', async () => {
  const ws = mkdtempSync(join(tmpdir(), 'sdtt-distill-cli-'));
  const tok = new ByteTokenizer();
  const ckDir = join(ws, 'teacher-run', 'checkpoints');
  const p = PretrainConfig.parse({
    kind: 'pretrain',
    model: { ...MODEL_PRESETS.tiny, arch: 'mdlm', vocabSize: tok.vocabSize, eosId: tok.eosId, maskId: tok.maskId },
    optim: { lr: 3e-3, warmupSteps: 2 },
    data: DATA,
    tokenizer: 'byte',
    batchSize: 4,
    steps: 20,
    evalEvery: 1000,
    checkpointEvery: 20,
    backend: 'wasm',
    threads: 1,
  });
  assert.equal((await runPretrain(p, ckDir)).status, 'done');
  const teacher = latestCheckpoint(ckDir)!.dir;
  assert.equal(defaultDistillRunId({ teacher, divergence: 'kld', seed: 1 }), 'distill-teacher-run-kld-seed1');

  const args = [
    '--teacher',
    teacher,
    '--data',
    DATA,
    '--rounds',
    '2',
    '--steps-per-round',
    '3',
    '--batch',
    '4',
    '--eval-samples',
    '2',
    '--eval-steps',
    '8,4',
    '--eval-batch',
    '2',
    '--threads',
    '1',
    '--backend',
    'wasm',
    '--seed',
    '1',
    '--log-every',
    '1',
    '--checkpoint-every',
    '2',
    '--workspace',
    ws,
    '--run',
    'c',
  ];
  const a = await capture(() => run(args));
  assert.equal(a.code, 0, a.err);
  assert.match(a.err, /round 1\/2: teacher 32 -> student 16/);
  assert.match(a.err, /round 2\/2: teacher 16 -> student 8/);
  assert.match(a.err, /gen PPL ± s\.e\. \/ unigram entropy \/ known words/);
  // no judge fits this byte-level teacher: "–" for gen PPL, then entropy and the known-word rate of each cell
  assert.match(a.err, /^teacher\s+– \/ \d\.\d{3} \/ \d+\.\d %\s+– \/ \d\.\d{3} \/ \d+\.\d %$/m);
  assert.match(a.err, /^R1 student \(8\)\s+– \/ \d\.\d{3} \/ \d+\.\d %\s+/m);
  const lines = a.out.trim().split('\n');
  assert.equal(lines.length, 1);
  const j = JSON.parse(lines[0]);
  assert.equal(j.status, 'done');
  assert.equal(j.step, 6);
  assert.deepEqual(
    j.rounds.map((r: { round: number }) => r.round),
    [0, 1],
  );
  assert.ok(j.teacherEval.rows.length === 2);
  const record = JSON.parse(readFileSync(join(ws, 'runs', 'c', 'run.json'), 'utf8'));
  assert.equal(record.status, 'done');
  assert.equal(record.totalSteps, 6);

  // Same command, one more round: resumes at step 6 (rounds may grow), does not redo rounds 0 and 1.
  const b = await capture(() => run([...args, '--rounds', '3']));
  assert.equal(b.code, 0, b.err);
  assert.match(b.err, /resuming at step 6/);
  assert.doesNotMatch(b.err, /round 1\/3/);
  assert.match(b.err, /round 3\/3: teacher 8 -> student 4/);
  const jb = JSON.parse(b.out.trim());
  assert.equal(jb.step, 9);
  assert.deepEqual(
    jb.rounds.map((r: { round: number }) => r.round),
    [0, 1, 2],
  );

  // A different config under the same run name is refused.
  await assert.rejects(
    capture(() => run([...args, '--lr', '5e-4'])),
    /different config.*optim\.lr/,
  );
});

test(
  'sdtt demo names the missing shipped model folder',
  {
    skip:
      existsSync(join(DEMO_TEACHER, 'config.json')) && existsSync(join(DEMO_JUDGE, 'config.json'))
        ? 'the shipped models are installed, so there is no missing folder to name'
        : false,
  },
  async () => {
    await assert.rejects(runDemo([]), (e: Error) =>
      /needs the shipped (teacher|judge) model folder .*assets\/models\/(mdlm|judge)/.test(e.message),
    );
  },
);

test(
  'sdtt eval --steps without --judge scores with the shipped judge',
  { skip: existsSync(join(DEMO_JUDGE, 'config.json')) ? false : 'the shipped judge is not installed' },
  async () => {
    const ws = mkdtempSync(join(tmpdir(), 'sdtt-eval-cli-'));
    const ck = await trainTinyRun(ws, 'tiny', 'pretrain', 2);
    // The tiny model is byte-tokenised and the shipped judge is not: reaching the tokenizer check means the shipped
    // judge was opened (without a default the command stops at "--steps needs --judge").
    await assert.rejects(
      evalRun(['--model', ck, '--steps', '2', '--samples', '2']),
      /the judge's tokenizer \(compact-gpt2, 4096 ids\) differs from the model's \(byte/,
    );
  },
);

test('sdtt eval --plot draws the table: the model against N, the judge samples and real text as reference lines', async () => {
  const { ws, teacher, judge } = await tinyTeacherAndJudge(10, 'sdtt-eval-plot-');
  const file = join(ws, 'table.svg');
  const res = await capture(() =>
    evalRun([
      '--model',
      teacher,
      '--judge',
      judge,
      '--steps',
      '4,2',
      '--samples',
      '2',
      '--batch',
      '2',
      '--data',
      DATA,
      '--batches',
      '1',
      '--plot',
      file,
    ]),
  );
  assert.equal(res.code, 0, res.err);
  const j = JSON.parse(res.out.trim());
  assert.equal(j.plot, file);
  const svg = readFileSync(file, 'utf8');
  // --data gives every row and baseline its known-word rate: a third panel draws it
  for (const panel of ['ppl', 'entropy', 'known']) {
    assert.deepEqual(
      [...svg.matchAll(new RegExp(`<polyline class="series" data-panel="${panel}" data-model="([^"]+)"`, 'g'))].map(
        (m) => m[1],
      ),
      ['MDLM, ancestral sampler'],
    );
    assert.deepEqual(
      [...svg.matchAll(new RegExp(`<line class="ref" data-panel="${panel}" data-ref="([^"]+)"`, 'g'))].map((m) => m[1]),
      ['AR judge samples, p=0.95', 'AR judge samples, p=1.0', 'real text (floor)'],
    );
  }
  // The real-text line sits at its gen PPL on the panel's scale: inside the frame, and each MDLM point (drawn in
  // order of N) lies above it exactly when its gen PPL is higher (SVG y grows downwards).
  const pplPanel = /<g class="panel" data-panel="ppl">[\s\S]*?<\/g>/.exec(svg)![0];
  const frame = /<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)"/.exec(pplPanel)!;
  const [top, bottom] = [Number(frame[1]), Number(frame[1]) + Number(frame[2])];
  const refY = Number(
    /<line class="ref" data-panel="ppl" data-ref="real text \(floor\)" x1="[\d.]+" x2="[\d.]+" y1="([\d.]+)"/.exec(
      pplPanel,
    )![1],
  );
  assert.ok(refY > top && refY < bottom, `reference line at y ${refY} inside the frame ${top}..${bottom}`);
  const realText = j.baselines.find((b: { source: string }) => b.source === 'validation-text').gen_ppl;
  const pointYs = [...pplPanel.matchAll(/<circle cx="[\d.]+" cy="([\d.]+)"/g)].map((m) => Number(m[1]));
  const byN = [...j.results].sort((a: { steps: number }, b: { steps: number }) => a.steps - b.steps);
  assert.deepEqual(
    pointYs.map((y) => y < refY),
    byN.map((r: { gen_ppl: number }) => r.gen_ppl > realText),
  );
  // With --data every row carries its known-word rate: real held-out text has more training-set words than the
  // samples of a model trained for 10 steps.
  const knownWords = Object.fromEntries([
    ...j.results.map((r: { steps: number; known_words: number }) => [`N=${r.steps}`, r.known_words]),
    ...j.baselines.map((r: { source: string; known_words: number }) => [r.source, r.known_words]),
  ]);
  for (const n of ['N=4', 'N=2'])
    assert.ok(knownWords[n] >= 0 && knownWords[n] < knownWords['validation-text'], JSON.stringify(knownWords));
  assert.match(res.err, /steps .* known words\n/);
  await assert.rejects(
    evalRun(['--model', teacher, '--judge', judge, '--data', DATA, '--plot', file]),
    /--plot draws the generative-perplexity table: give --steps LIST/,
  );
  await assert.rejects(
    evalRun(['--model', teacher, '--judge', judge, '--steps', '2', '--plot', join(ws, 'table.gif')]),
    /must end in \.png or \.svg/,
  );
});

test('sdtt sample: MDLM and AR samples with a prefix, the JSON file, and a prefix too long named as a usage error', async () => {
  const { ws, teacher, judge } = await tinyTeacherAndJudge(10, 'sdtt-eval-plot-');
  const file = join(ws, 'samples.json');
  const res = await capture(() =>
    sampleRun(['--model', teacher, '--steps', '4', '--samples', '2', '--seed', '1', '--prefix', 'Al', '--json', file]),
  );
  assert.equal(res.code, 0, res.err);
  const j = JSON.parse(readFileSync(file, 'utf8'));
  assert.deepEqual([j.arch, j.steps, j.seed, j.texts.length], ['mdlm', 4, 1, 2]);
  assert.ok(
    j.texts.every((t: string) => t.startsWith('Al')),
    JSON.stringify(j.texts),
  );
  assert.ok(j.nfe >= 1 && j.nfe <= 4);
  for (const t of j.texts) assert.ok(res.out.includes(t), 'each sample is printed');
  assert.match(res.err, /model .* \(mdlm, (ema|raw) weights\) \| backend \S+ \| device /);
  const ar = await capture(() => sampleRun(['--model', judge, '--samples', '1', '--prefix', 'Al']));
  assert.equal(ar.code, 0, ar.err);
  assert.match(ar.out, /--- sample 0 ---\nAl/);
  // --data: each sample's invented words (not in the training text), the same words the JSON lists, and the rate
  const withData = await capture(() =>
    sampleRun(['--model', teacher, '--steps', '4', '--samples', '2', '--seed', '1', '--data', DATA, '--json', file]),
  );
  assert.equal(withData.code, 0, withData.err);
  const jd = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(jd.invented.length, 2);
  const bytes = new ByteTokenizer();
  const training = bytes.decode(openTokenSource(DATA, bytes).split('train')).toLowerCase();
  for (const [b, words] of jd.invented.entries()) {
    assert.match(
      withData.out,
      new RegExp(
        `--- sample ${b} ---\n[\\s\\S]*?\\(invented: ${(words as string[]).length ? (words as string[]).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join(', ') : 'none'}\\)`,
      ),
    );
    // an invented word is a letter run that the training text never has as a word
    for (const w of words as string[])
      assert.ok(
        !new RegExp(`(^|[^\\p{L}'])${w.toLowerCase()}($|[^\\p{L}'])`, 'u').test(training),
        `"${w}" occurs in the train split of ${DATA}`,
      );
  }
  assert.ok(jd.known_words >= 0 && jd.known_words <= 1);
  assert.match(withData.err, /known words \d+\.\d %: share of the samples' words found in the training text/);
  // a --data that cannot be read costs the word check, never the samples
  const badData = await capture(() =>
    sampleRun(['--model', teacher, '--steps', '4', '--samples', '1', '--data', join(ws, 'missing-corpus')]),
  );
  assert.equal(badData.code, 0, badData.err);
  assert.match(badData.err, /warning: --data .*missing-corpus: .*; the samples follow without the word check/);
  assert.match(badData.out, /--- sample 0 ---\n/);
  assert.doesNotMatch(badData.out, /invented:/);
  await assert.rejects(
    sampleRun(['--model', teacher, '--prefix', 'x'.repeat(300)]),
    /--prefix: the prefix is 300 tokens; it must be shorter than the sequence length/,
  );
});
