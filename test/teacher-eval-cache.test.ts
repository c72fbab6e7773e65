// The teacher-evaluation cache (engine/teacherEvalCache.ts): distillation runs of one workspace that differ only in
// the divergence reuse the round −1 evaluation (same teacher-eval.json, byte-identical samples files); a changed
// evalSamples or seed misses; a damaged entry is reported, dropped and recomputed with the same results; concurrent
// writers of one key leave one valid entry; runs/.cache is never listed as a run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { DistillConfig, type DistillConfigInput } from '../src/shared/distillConfig.ts';
import { runDistill } from '../src/engine/sdtt/distill.ts';
import type { DistillEvalResult } from '../src/engine/sdtt/distillEval.ts';
import { cachedTeacherEval, teacherEvalCacheRoot, teacherEvalKey } from '../src/engine/sdtt/teacherEvalCache.ts';
import { ByteTokenizer } from '../src/engine/data/tokenizer.ts';
import { RunStore } from '../src/runs/runStore.ts';
import { tinyModel, tinyTeacherAndJudge } from './helpers/fixtures.ts';

const models = () => tinyTeacherAndJudge(10, 'sdtt-tecache-');

function config(teacher: string, judge: string, over: Partial<DistillConfigInput> = {}): DistillConfig {
  return DistillConfig.parse({
    teacher,
    judge,
    data: 'test/fixtures/alice.txt',
    divergence: 'kld',
    rounds: 1,
    startSteps: 4,
    minSteps: 1,
    stepsPerRound: 1,
    batchSize: 2,
    seed: 5,
    optim: { lr: 1e-3, warmupSteps: 1, emaDecay: 0.9 },
    evalSteps: [4, 2],
    evalSamples: 4,
    evalBatch: 4,
    evalHeldoutBatches: 1,
    samplesPerCell: 2,
    selfBleuPrompts: 1,
    logEvery: 1,
    checkpointEvery: 1,
    keepCheckpoints: 1,
    backend: 'wasm',
    threads: 1,
    ...over,
  });
}

/** Runs a distillation into <ws>/runs/<id>; returns its progress lines and its teacher evaluation files. */
async function distill(ws: string, id: string, cfg: DistillConfig) {
  const dir = join(ws, 'runs', id);
  const progress: string[] = [];
  const r = await runDistill(cfg, dir, { onEvalProgress: (w) => progress.push(w) });
  assert.equal(r.status, 'done', r.reason);
  const te = JSON.parse(readFileSync(join(dir, 'teacher-eval.json'), 'utf8')) as DistillEvalResult;
  const samples = new Map(
    readdirSync(join(dir, 'samples'))
      .filter((f) => f.startsWith('-1-'))
      .map((f) => [f, readFileSync(join(dir, 'samples', f))]),
  );
  return {
    dir,
    progress,
    te,
    samples,
    sampled: progress.some((p) => p.startsWith('round -1: sampling')),
    reused: progress.find((p) => p.startsWith('teacher evaluation: reused from cache')),
  };
}

/** The result without the paths and timings (what a recomputation must reproduce exactly). */
function numbers(te: DistillEvalResult) {
  return {
    ...te,
    samplesFiles: te.samplesFiles.map((f) => basename(f)),
    seconds: 0,
    reusedFrom: undefined,
    rows: te.rows.map((r) => ({ ...r, seconds: 0 })),
  };
}
function sampleTexts(samples: Map<string, Buffer>) {
  return [...samples].map(([f, b]) => [
    f,
    JSON.parse(b.toString()).map((c: Record<string, unknown>) => ({ ...c, latencyMs: 0 })),
  ]);
}
const entries = (ws: string) =>
  readdirSync(join(ws, 'runs', '.cache', 'teacher-eval'))
    .filter((n) => !n.startsWith('.'))
    .sort();

test('same teacher and eval settings, other divergence: the teacher evaluation comes from the cache; evalSamples or seed changed: recomputed', async () => {
  const { ws, teacher, judge } = await models();
  const a = await distill(ws, 'a-kld', config(teacher, judge));
  assert.ok(a.sampled && !a.reused, a.progress.join('\n'));
  assert.ok(
    a.progress.some((p) => /^teacher evaluation: stored in cache [0-9a-f]{8}$/.test(p)),
    a.progress.join('\n'),
  );
  assert.equal(entries(ws).length, 1);
  const key = entries(ws)[0];
  assert.match(key, /^[0-9a-f]{64}$/);

  const b = await distill(ws, 'b-mse', config(teacher, judge, { divergence: 'mse' }));
  assert.equal(b.reused, `teacher evaluation: reused from cache ${key.slice(0, 8)}`);
  assert.ok(!b.sampled, 'a hit samples nothing');
  // identical content; samplesFiles name this run's own (existing, identical) files
  assert.deepEqual(
    { ...b.te, samplesFiles: [], reusedFrom: undefined },
    { ...a.te, samplesFiles: [], reusedFrom: undefined },
  );
  assert.equal(b.te.reusedFrom, key, 'the reuse is recorded (the report leaves its time out of the run)');
  assert.equal(a.te.reusedFrom, undefined);
  assert.deepEqual(
    b.te.samplesFiles,
    a.te.samplesFiles.map((f) => join(b.dir, 'samples', basename(f))),
  );
  assert.deepEqual(
    b.te.samplesFiles.map((f) => basename(f)),
    ['-1-4.json', '-1-2.json'],
  );
  assert.deepEqual([...b.samples.keys()].sort(), ['-1-2.json', '-1-4.json']);
  for (const [f, bytes] of a.samples) assert.ok(bytes.equals(b.samples.get(f)!), `samples/${f} differs`);
  assert.ok(!readdirSync(join(b.dir, 'samples')).some((f) => /\.tmp(-\d+)?$/.test(f)));
  // the students' own rounds are computed as usual
  assert.ok(existsSync(join(b.dir, 'samples', '0-4.json')) && existsSync(join(b.dir, 'rounds.jsonl')));

  const c = await distill(ws, 'c-samples', config(teacher, judge, { divergence: 'mse', evalSamples: 3 }));
  assert.ok(c.sampled && !c.reused, c.progress.join('\n'));
  assert.equal(c.te.rows[0].samples, 3);
  const d = await distill(ws, 'd-seed', config(teacher, judge, { divergence: 'mse', seed: 6 }));
  assert.ok(d.sampled && !d.reused, d.progress.join('\n'));
  assert.equal(entries(ws).length, 3);

  // runs/.cache is not a run: RunStore (sdtt runs, the UI list) shows the tiny teacher and judge only
  const store = new RunStore(ws);
  assert.deepEqual(
    store.list().map((r) => r.id),
    ['judge', 'teacher'],
  );
  assert.throws(() => store.exists('.cache'));
});

test('a damaged cache entry is reported, dropped and recomputed with the same results', async () => {
  const { ws, teacher, judge } = await models();
  const cfg = (over: Partial<DistillConfigInput> = {}) => config(teacher, judge, { seed: 9, ...over });
  const first = await distill(ws, 'e-kld', cfg());
  const key = first.progress.map((p) => /stored in cache ([0-9a-f]{8})/.exec(p)?.[1]).find(Boolean)!;
  const dir = join(
    teacherEvalCacheRoot(first.dir),
    entries(ws).find((k) => k.startsWith(key))!,
  );
  const damage = [
    () => writeFileSync(join(dir, 'samples', '-1-4.json'), '[{"round":-1,"text":"edited"}]\n'), // edited samples file
    () =>
      writeFileSync(join(dir, 'teacher-eval.json'), readFileSync(join(dir, 'teacher-eval.json'), 'utf8').slice(0, 40)), // torn
    () => rmSync(join(dir, 'entry.json')), // partial entry
  ];
  for (const [i, hurt] of damage.entries()) {
    hurt();
    const run = await distill(ws, `f-tvd-${i}`, cfg({ divergence: 'tvd' }));
    assert.ok(
      run.progress.some((p) => p.startsWith(`teacher evaluation: cache entry ${key} is damaged`)),
      run.progress.join('\n'),
    );
    assert.ok(run.sampled && !run.reused);
    assert.deepEqual(numbers(run.te), numbers(first.te));
    assert.deepEqual(sampleTexts(run.samples), sampleTexts(first.samples));
    assert.ok(run.progress.includes(`teacher evaluation: stored in cache ${key}`), 'the entry is written again');
  }
  const again = await distill(ws, 'g-mse', cfg({ divergence: 'mse' }));
  assert.ok(again.reused && !again.sampled);
  assert.deepEqual(numbers(again.te), numbers(first.te));
});

test('concurrent writers of one key leave one valid entry and no temp folders', async () => {
  const ws = mkdtempSync(join(tmpdir(), 'sdtt-tecache-unit-'));
  const key = teacherEvalKey({
    teacherParams: new Float32Array([1, 2, 3]),
    teacherConfig: tinyModel(),
    runtime: { backend: 'cpu', device: 'CPU' },
    tokenizer: new ByteTokenizer(),
    judge: null,
    valTokens: new Uint16Array([1, 2, 3, 4]),
    trainTokens: new Uint16Array([5, 6, 7, 8]),
    selfBleuSteps: 4,
    cfg: {
      evalSteps: [4],
      evalSamples: 2,
      evalBatch: 2,
      samplesPerCell: 1,
      seed: 0,
      selfBleuPrompts: 0,
      evalHeldoutBatches: 1,
    },
  });
  const fake = (runDir: string, value: number) => async (): Promise<DistillEvalResult> => {
    mkdirSync(join(runDir, 'samples'), { recursive: true });
    const file = join(runDir, 'samples', '-1-4.json');
    writeFileSync(file, JSON.stringify([{ round: -1, steps: 4, value }]) + '\n');
    await new Promise((r) => setTimeout(r, value === 1 ? 30 : 0));
    return {
      round: -1,
      rows: [
        {
          steps: 4,
          gen_ppl: null,
          gen_ppl_se: null,
          entropy: value,
          known_words: null,
          samples: 2,
          nfe: 4,
          seconds: 0,
        },
      ],
      heldoutNelbo: 1,
      selfBleu: { computed: false, reason: 'x' },
      judge: null,
      note: 'n',
      samplesFiles: [file],
      seconds: 0,
    };
  };
  const opts = (runDir: string) => ({ runDir, key, evalSteps: [4], judgeFields: { judge: null, note: 'n' } });
  const [r1, r2] = await Promise.all([
    cachedTeacherEval(opts(join(ws, 'runs', 'x')), fake(join(ws, 'runs', 'x'), 1)),
    cachedTeacherEval(opts(join(ws, 'runs', 'y')), fake(join(ws, 'runs', 'y'), 2)),
  ]);
  assert.equal(r1.rows[0].entropy, 1);
  assert.equal(r2.rows[0].entropy, 2);
  assert.deepEqual(readdirSync(join(ws, 'runs', '.cache', 'teacher-eval')), [key.key]);
  // the winner (the first to finish) is served to the next run, with that run's paths
  const progress: string[] = [];
  const r3 = await cachedTeacherEval({ ...opts(join(ws, 'runs', 'z')), onProgress: (p) => progress.push(p) }, () =>
    assert.fail('a hit computes nothing'),
  );
  assert.deepEqual(progress, [`teacher evaluation: reused from cache ${key.key.slice(0, 8)}`]);
  assert.equal(r3.rows[0].entropy, 2);
  assert.deepEqual(r3.samplesFiles, [join(ws, 'runs', 'z', 'samples', '-1-4.json')]);
  assert.equal(JSON.parse(readFileSync(r3.samplesFiles[0], 'utf8'))[0].value, 2);
});

test('the key changes with the training tokens (the known-word rate checks samples against their words), and only with what it hashes', () => {
  const input = {
    teacherParams: new Float32Array([1, 2, 3]),
    teacherConfig: tinyModel(),
    runtime: { backend: 'cpu', device: 'CPU' },
    tokenizer: new ByteTokenizer(),
    judge: null,
    valTokens: new Uint16Array([1, 2, 3, 4]),
    trainTokens: new Uint16Array([5, 6, 7, 8]),
    selfBleuSteps: 4,
    cfg: {
      evalSteps: [4],
      evalSamples: 2,
      evalBatch: 2,
      samplesPerCell: 1,
      seed: 0,
      selfBleuPrompts: 0,
      evalHeldoutBatches: 1,
    },
  };
  const key = teacherEvalKey(input).key;
  assert.equal(teacherEvalKey({ ...input, trainTokens: new Uint16Array([5, 6, 7, 8]) }).key, key);
  assert.notEqual(teacherEvalKey({ ...input, trainTokens: new Uint16Array([5, 6, 7, 9]) }).key, key);
  assert.notEqual(teacherEvalKey({ ...input, valTokens: new Uint16Array([1, 2, 3, 5]) }).key, key);
});
