// `sdtt report` (src/cli/report.ts, reportMarkdown.ts, reportPlot.ts) on synthetic run folders written in the
// engine's own formats (RunStore for run.json / metrics.jsonl, upsertRoundLine for rounds.jsonl, the
// DistillEvalResult shape for teacher-eval.json) with known numbers: the tables, the acceptance verdicts, prose kept
// around the markers, clear errors for missing / corrupt rounds.jsonl, one SVG line per model, and a real PNG when
// the system Chromium exists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DistillConfig } from '../src/shared/distillConfig.ts';
import { RunStore } from '../src/runs/runStore.ts';
import type { RoundLine } from '../src/engine/sdtt/distillTypes.ts';
import type { DistillEvalResult, DistillEvalRow } from '../src/engine/sdtt/distillEval.ts';
import { runPaths, upsertRoundLine } from '../src/runs/runFolder.ts';
import { CHROMIUM, loadRun, renderPngs, run, writeReport } from '../src/cli/report.ts';
import {
  BEGIN_MARKER,
  END_MARKER,
  acceptance,
  evalTableMd,
  plotSeries,
  plotTitle,
  runSection,
  spliceReport,
} from '../src/cli/reportMarkdown.ts';
import { log2Ticks, niceTicks, plotFigure } from '../src/cli/reportPlot.ts';
import { evalCell } from '../src/shared/evalFormat.ts';

const STEPS = [128, 64, 32, 16];
/** [gen PPL, s.e., entropy, known words?] per N = 128, 64, 32, 16 (runs from before the known-word rate lack it). */
type Cells = [number | null, number | null, number, number?][];

function rows(cells: Cells): DistillEvalRow[] {
  return cells.map(([gen_ppl, gen_ppl_se, entropy, known_words], i) => ({
    steps: STEPS[i],
    gen_ppl,
    gen_ppl_se,
    entropy,
    ...(known_words === undefined ? {} : { known_words }),
    samples: 16,
    nfe: STEPS[i],
    seconds: 1.5,
  }));
}

const TEACHER: Cells = [
  [187.6, 26.7, 3.867],
  [212.3, 24.0, 3.943],
  [241.3, 29.9, 3.957],
  [303.5, 37.9, 3.997],
];
const STUDENT: Cells = [
  [190.1, 20.5, 3.85],
  [195.2, 21.0, 3.86],
  [199.9, 22.0, 3.87],
  [205.4, 23.0, 3.9],
];

interface FakeRun {
  divergence?: 'kld' | 'mse' | 'tvd';
  teacher?: Cells | null;
  /** Each round's cells; R2's N = 16 cell decides the acceptance check. */
  rounds?: Cells[];
}

/** A finished 3-round distill run folder <ws>/runs/<id>, as the engine and runCliJob leave it. */
function writeRun(ws: string, id: string, spec: FakeRun = {}): string {
  const store = new RunStore(ws);
  const cfg = DistillConfig.parse({
    teacher: '/models/mdlm-base-5m',
    judge: '/models/judge-ar-base-5m',
    divergence: spec.divergence ?? 'kld',
    rounds: 3,
    stepsPerRound: 80,
    batchSize: 16,
    optim: { lr: 3e-4, warmupSteps: 20, emaDecay: 0.96 },
    evalSteps: STEPS,
    evalSamples: 16,
  });
  store.create({
    id,
    kind: 'distill',
    config: cfg as unknown as Record<string, unknown>,
    status: 'done',
    backend: 'wasm',
    device: 'CPU (wasm)',
    step: 240,
    totalSteps: 240,
    createdAt: '2026-11-27T04:00:00.000Z',
    updatedAt: '2026-11-27T04:30:00.000Z',
  });
  const dir = store.dir(id);
  if (spec.teacher !== null) {
    const t: DistillEvalResult = {
      round: -1,
      rows: rows(spec.teacher ?? TEACHER),
      heldoutNelbo: 4.3164,
      selfBleu: { computed: true, steps: 128, value: 0.0458, prompts: 4, continuations: 4, prefixTokens: 32 },
      judge: cfg.judge!,
      samplesFiles: [],
      seconds: 132.9,
    };
    writeFileSync(runPaths.teacherEval(dir), JSON.stringify(t));
  }
  (spec.rounds ?? [STUDENT, STUDENT, STUDENT]).forEach((cells, r) => {
    const line: RoundLine = {
      round: r,
      teacherSteps: 128 >> r,
      studentSteps: 64 >> r,
      label: `teacher ${128 >> r} -> student ${64 >> r}`,
      status: 'done',
      firstStep: r * 80 + 1,
      lastStep: (r + 1) * 80,
      checkpoint: join('rounds', String(r)),
      eval: rows(cells),
      heldoutNelbo: 4.2 - r / 100,
      selfBleu: {
        computed: true,
        steps: 64 >> r,
        value: 0.05 + r / 100,
        prompts: 4,
        continuations: 4,
        prefixTokens: 32,
      },
      judge: cfg.judge!,
      wallS: 400 + r,
      evalSeconds: 100,
      tokPerSec: [500, 600, 750][r] ?? 500,
    };
    upsertRoundLine(dir, line as unknown as Record<string, unknown> & { round: number });
    for (let s = line.firstStep + 1; s <= line.lastStep; s += 2)
      store.appendMetric(id, {
        type: 'train',
        step: s,
        loss: 0.02 + r,
        lr: 3e-4,
        gradNorm: 0.1,
        tokPerSec: 600,
        elapsedS: s * 5,
        round: r,
      });
  });
  return dir;
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'sdtt-report-'));
}

const quiet = () => {};

test('the eval table has the teacher and each round with gen PPL ± s.e. / entropy per N', () => {
  const ws = tmp();
  const r = loadRun(
    writeRun(ws, 'demo', {
      rounds: [
        STUDENT,
        STUDENT,
        [
          [150, 10, 3.8],
          [160, 11, 3.81],
          [170, 12, 3.82],
          [180.25, 13.5, 3.951],
        ],
      ],
    }),
    quiet,
  );
  const md = evalTableMd(r);
  const lines = md.split('\n');
  assert.equal(lines[0], '| model | N = 128 | N = 64 | N = 32 | N = 16 |');
  assert.equal(
    lines[2],
    '| teacher | 187.6 ± 26.7 / 3.867 | 212.3 ± 24.0 / 3.943 | 241.3 ± 29.9 / 3.957 | 303.5 ± 37.9 / 3.997 |',
  );
  assert.equal(
    lines[3],
    '| R0 student (64 steps) | 190.1 ± 20.5 / 3.850 | 195.2 ± 21.0 / 3.860 | 199.9 ± 22.0 / 3.870 | 205.4 ± 23.0 / 3.900 |',
  );
  assert.equal(
    lines[5],
    '| R2 student (16 steps) | 150.0 ± 10.0 / 3.800 | 160.0 ± 11.0 / 3.810 | 170.0 ± 12.0 / 3.820 | 180.3 ± 13.5 / 3.951 |',
  );
  assert.equal(lines.length, 6);
});

test('an eval cell from a damaged file reads "–" where a number is missing, never throws', () => {
  assert.equal(evalCell({ steps: 8 } as never), '– / –');
  assert.equal(evalCell({ steps: 8, gen_ppl: 210.44, entropy: 4.4 } as never), '210.4 / 4.400');
  assert.equal(evalCell({ steps: 8, gen_ppl: null, gen_ppl_se: null, entropy: NaN, known_words: null }), '– / –');
  assert.equal(evalCell(undefined), '');
});

test('with the known-word rate the cells and their legend show it; runs evaluated before it existed are shown without', () => {
  const ws = tmp();
  const withWords: Cells = [
    [187.6, 26.7, 3.867, 0.861],
    [212.3, 24.0, 3.943, 0.85],
    [241.3, 29.9, 3.957, 0.8345],
    [303.5, 37.9, 3.997, 0.8],
  ];
  const r = loadRun(writeRun(ws, 'words', { teacher: withWords, rounds: [withWords, withWords, withWords] }), quiet);
  assert.equal(
    evalTableMd(r).split('\n')[2],
    '| teacher | 187.6 ± 26.7 / 3.867 / 86.1 % | 212.3 ± 24.0 / 3.943 / 85.0 % | 241.3 ± 29.9 / 3.957 / 83.5 % | 303.5 ± 37.9 / 3.997 / 80.0 % |',
  );
  assert.match(
    runSection(r, null, ws),
    /unigram entropy \(nats\) \/ known words \(share of the samples' words found in the training text\) of the samples/,
  );
  const old = loadRun(writeRun(ws, 'old'), quiet);
  assert.doesNotMatch(runSection(old, null, ws), /known words/);
});

test('the report file: sections, per-round table, totals, comparison; prose outside the markers survives', async () => {
  const ws = tmp();
  const kld = writeRun(ws, 'a-kld');
  const mse = writeRun(ws, 'a-mse', {
    divergence: 'mse',
    rounds: [
      STUDENT,
      STUDENT,
      [
        [100, 5, 3.9],
        [110, 5, 3.9],
        [120, 5, 3.9],
        [130, 5, 3.9],
      ],
    ],
  });
  const out = join(ws, 'docs', 'results.md');
  const plots = join(ws, 'docs', 'results');
  const o = await writeReport({ runs: [kld, mse], out, plots, format: 'svg', warn: quiet });
  let md = readFileSync(out, 'utf8');
  assert.match(md, /^# Results\n/);
  assert.match(md, /## KLD: run `a-kld`/);
  assert.match(md, /## MSE: run `a-mse`/);
  assert.match(
    md,
    /3 rounds × 80 steps · batch 16 · lr 0\.0003 \(warm-up 20\) · EMA 0\.96 · K = 2 teacher sub-steps · 16 samples per cell/,
  );
  assert.match(md, /\| R1 \| 64 → 32 \| 6 min 41 s \| 1 min 40 s \| 600 \| 1\.020 \| 4\.1900 \| 0\.060 \(N = 32\) \|/);
  assert.match(md, /\| teacher \(round −1\) \| – \| – \| 2 min 13 s \| – \| – \| 4\.3164 \| 0\.046 \(N = 128\) \|/);
  // 1203 s of training + 300 s of round evaluations + 132.9 s of teacher evaluation; 3 x 80 steps at 500/600/750 tok/s.
  assert.match(md, /Total wall time 27 min 16 s \(training 20 min 03 s \+ evaluation 7 min 13 s/);
  // a run whose teacher evaluation came from the cache: not counted, and said so
  const reused = join(ws, 'runs', 'reused');
  writeRun(ws, 'reused');
  const te = JSON.parse(readFileSync(runPaths.teacherEval(reused), 'utf8'));
  writeFileSync(runPaths.teacherEval(reused), JSON.stringify({ ...te, reusedFrom: 'ab'.repeat(32) }));
  const rmd = runSection(await loadRun(reused), null, ws);
  assert.match(
    rmd,
    /Total wall time 25 min 03 s \(training 20 min 03 s \+ evaluation 5 min 00 s, the teacher's reused from the cache\)/,
  );
  assert.match(rmd, /\| teacher \(round −1\) \| – \| – \| reused from cache \(2 min 13 s when computed\) \|/);
  assert.match(
    rmd,
    /Run folder: `runs\/reused`\./,
    'a run inside the working folder is named relative to it (no machine paths in docs)',
  );
  assert.match(md, /mean training throughput 600 tokens\/s/);
  assert.match(md, /## Comparison across divergences/);
  assert.match(md, /\| MSE best student \(run `a-mse`\) \| 100\.0 ± 5\.0 \/ 3\.900 \(R2\) \|/);
  assert.match(md, /\| KLD \| `a-kld` \| 3 \/ 3 \| 27 min 16 s \| 600 \| fail \|/);
  assert.match(md, /!\[KLD: gen PPL and entropy against N\]\(results\/kld-a-kld\.svg\)/);
  assert.deepEqual(
    o.plots.map((p) => existsSync(p)),
    [true, true],
  );
  assert.deepEqual(
    o.acceptance.map((a) => a.verdict),
    ['fail', 'pass'],
  );

  // Hand-written prose before and after the block stays; the block follows the new numbers.
  md = md.replace('# Results\n', '# Results\n\nPROSE BEFORE: read me.\n') + '\nPROSE AFTER: the conclusions.\n';
  writeFileSync(out, md);
  // The MSE run now has only its first round (as if regenerated from another run folder).
  const first = readFileSync(join(mse, 'rounds.jsonl'), 'utf8').split('\n')[0];
  writeFileSync(join(mse, 'rounds.jsonl'), first + '\n');
  await writeReport({ runs: [mse], out, plots, format: 'svg', warn: quiet });
  const md2 = readFileSync(out, 'utf8');
  assert.match(md2, /PROSE BEFORE: read me\./);
  assert.match(md2, /PROSE AFTER: the conclusions\.\n$/);
  assert.doesNotMatch(md2, /## KLD/);
  assert.doesNotMatch(md2, /Comparison across divergences/);
  assert.match(md2, /MSE: run `a-mse`[\s\S]*status done \(1 of 3 rounds finished\)/);
  assert.equal(md2.split(BEGIN_MARKER).length, 2);
  assert.equal(md2.split(END_MARKER).length, 2);
});

test('spliceReport: new file, file without markers, malformed markers', () => {
  assert.match(
    spliceReport(null, 'GEN', 'f.md'),
    new RegExp(`# Results[\\s\\S]*${BEGIN_MARKER}\\nGEN\\n${END_MARKER}\\n$`),
  );
  assert.equal(
    spliceReport('# Mine\n\ntext\n', 'GEN', 'f.md'),
    `# Mine\n\ntext\n\n${BEGIN_MARKER}\nGEN\n${END_MARKER}\n`,
  );
  assert.equal(
    spliceReport(`a\n${BEGIN_MARKER}\nOLD\n${END_MARKER}\nb\n`, 'NEW', 'f.md'),
    `a\n${BEGIN_MARKER}\nNEW\n${END_MARKER}\nb\n`,
  );
  assert.throws(
    () => spliceReport(`${END_MARKER}\n${BEGIN_MARKER}\n`, 'x', 'docs/r.md'),
    /docs\/r\.md: expected exactly one .* wrong order/,
  );
  assert.throws(
    () => spliceReport(`${BEGIN_MARKER}\nonly the start\n`, 'x', 'docs/r.md'),
    /docs\/r\.md: expected exactly one/,
  );
});

test('acceptance: R2 student at N = 16 vs the teacher at N = 128', () => {
  const ws = tmp();
  const withR2 = (ppl: number | null, entropy: number): Cells[] => [
    STUDENT,
    STUDENT,
    [
      [1, 1, 1],
      [1, 1, 1],
      [1, 1, 1],
      [ppl, ppl === null ? null : 5, entropy],
    ],
  ];
  const verdict = (id: string, spec: FakeRun) => acceptance(loadRun(writeRun(ws, id, spec), quiet));
  // The teacher at 128: 187.6 / 3.867.
  const pass = verdict('pass', { rounds: withR2(187.6, 3.867 + 0.29) });
  assert.equal(pass.verdict, 'pass', pass.text);
  assert.match(
    pass.text,
    /gen PPL 187\.6 ± 5\.0 vs 187\.6 ± 26\.7 \(Δ \+0\.00, 0\.00 combined s\.e\.\), entropy 4\.157 vs 3\.867 nats \(Δ \+0\.290\)/,
  );
  const ppl = verdict('ppl', { rounds: withR2(190, 3.9) });
  assert.equal(ppl.verdict, 'fail');
  assert.match(ppl.text, /gen PPL above the teacher's/);
  assert.doesNotMatch(ppl.text, /entropy\| >/);
  const ent = verdict('entropy', { rounds: withR2(150, 3.867 - 0.31) });
  assert.equal(ent.verdict, 'fail');
  assert.match(ent.text, /\|Δ entropy\| > 0\.3 nats/);
  assert.match(ent.text, /Δ −0\.310/);
  const two = verdict('two-rounds', { rounds: [STUDENT, STUDENT] });
  assert.equal(two.verdict, 'not applicable');
  assert.match(two.text, /round 2 \(the third\) has not finished \(2 round\(s\)/);
  assert.equal(verdict('no-judge', { rounds: withR2(null, 3.9) }).verdict, 'not applicable');
  assert.match(verdict('no-judge2', { rounds: withR2(null, 3.9) }).text, /no judge/);
  const noTeacher = verdict('no-teacher', { teacher: null });
  assert.equal(noTeacher.verdict, 'not applicable');
  assert.match(noTeacher.text, /teacher-eval\.json missing/);
});

test('a missing or corrupt rounds.jsonl (or run.json) is an error naming the file', async () => {
  const ws = tmp();
  const dir = writeRun(ws, 'x');
  const file = join(dir, 'rounds.jsonl');
  writeFileSync(file, readFileSync(file, 'utf8').replace(/\n$/, '\n{"round": 3, "eval": [tor\n'));
  assert.throws(
    () => loadRun(dir),
    (e: Error) => e.message.startsWith(`${file}: corrupt: 1 of 4 line(s)`),
  );
  writeFileSync(file, '{"round": 0, "studentSteps": 64}\n');
  assert.throws(
    () => loadRun(dir),
    (e: Error) => e.message.startsWith(`${file}: corrupt: the line of round 0 has no number "wallS"`),
  );
  rmSync(file);
  assert.throws(
    () => loadRun(dir),
    (e: Error) => e.message.startsWith(`${file}: missing`),
  );
  assert.throws(() => loadRun(join(ws, 'nowhere')), /nowhere\/run\.json: missing/);
  writeFileSync(join(dir, 'run.json'), '{"id": "x"');
  assert.throws(
    () => loadRun(dir),
    (e: Error) => e.message.startsWith(`${join(dir, 'run.json')}: cannot read`),
  );

  // Through the command: exit code 1 (via the dispatcher) with the file named, and no output written.
  const { main } = await import('../src/cli/index.ts');
  const err = await captureStderr(() =>
    main(['report', '--run', dir, '--out', join(ws, 'r.md'), '--plots', join(ws, 'p'), '--format', 'svg']),
  );
  assert.equal(err.code, 1);
  assert.match(err.text, /sdtt report: error: .*run\.json: cannot read/);
  assert.equal(existsSync(join(ws, 'r.md')), false);
});

async function captureStderr(fn: () => Promise<number>): Promise<{ code: number; text: string }> {
  let text = '';
  const write = process.stderr.write.bind(process.stderr);
  const error = console.error;
  console.error = (...a: unknown[]) => void (text += a.join(' ') + '\n');
  process.stderr.write = ((s: string | Uint8Array) => ((text += String(s)), true)) as typeof process.stderr.write;
  try {
    return { code: await fn(), text };
  } finally {
    process.stderr.write = write;
    console.error = error;
  }
}

test('the SVG has one line per model in each panel, a legend, labels and a title', () => {
  const ws = tmp();
  const r = loadRun(writeRun(ws, 'svg', { rounds: [STUDENT, STUDENT, STUDENT] }), quiet);
  const series = plotSeries(r);
  const fig = plotFigure(plotTitle(r), series);
  const svg = fig.svg;
  // two panels (no known-word rate in these runs), the size the SVG says it has
  assert.deepEqual([fig.width, fig.height], [1000, 44 + 380 + 22 + 12]);
  assert.ok(svg.includes(`width="${fig.width}" height="${fig.height}"`));
  assert.doesNotMatch(svg, /data-panel="known"/);
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"') && svg.trimEnd().endsWith('</svg>'));
  for (const panel of ['ppl', 'entropy']) {
    const models = [
      ...svg.matchAll(new RegExp(`<polyline class="series" data-panel="${panel}" data-model="([^"]+)"`, 'g')),
    ].map((m) => m[1]);
    assert.deepEqual(models, ['teacher', 'R0 student (64 steps)', 'R1 student (32 steps)', 'R2 student (16 steps)']);
  }
  // 4 models x 4 N, each point with an error bar in the PPL panel only.
  assert.equal(svg.match(/<path d="M/g)?.length, 16);
  assert.match(svg, /sampling steps N \(log2 scale\)/);
  assert.match(svg, /gen PPL \(lower is better\)/);
  assert.match(svg, /entropy \(nats\)/);
  assert.match(svg, /KLD \(run svg\)/);
  assert.match(svg, /<g class="legend">[\s\S]*R2 student \(16 steps\)/);
  // Without a judge the PPL panel says so instead of drawing nothing silently.
  const noJudge = plotFigure('t', [{ label: 'teacher', points: [{ n: 16, ppl: null, se: null, entropy: 3 }] }]).svg;
  assert.match(noJudge, /gen PPL not computed \(no judge\)/);
  // With the known-word rate (of a model or a reference) a third panel draws it in %, the figure grows by a panel.
  const known = plotFigure(
    't',
    [
      {
        label: 'teacher',
        points: [
          { n: 16, ppl: 200, se: 5, entropy: 4, known: 0.86 },
          { n: 8, ppl: 300, se: 6, entropy: 4.1, known: null },
        ],
      },
    ],
    [{ label: 'real text', ppl: 40, entropy: 4.3, known: 0.99 }],
  );
  assert.equal(known.width, 1500);
  assert.equal(
    [...known.svg.matchAll(/<polyline class="series" data-panel="known"[^>]*points="([^"]+)"/g)]
      .map((m) => m[1].split(' ').length)
      .join(),
    '1',
  );
  assert.match(known.svg, /<line class="ref" data-panel="known" data-ref="real text"/);
  assert.match(known.svg, /known words \(%\)/);
  assert.deepEqual(log2Ticks([128, 64, 32, 16]), [16, 32, 64, 128]);
  assert.deepEqual(niceTicks(0, 10), [0, 2, 4, 6, 8, 10]);
});

test('sdtt report --run A,B --run C: comma lists and repeats; one JSON line; --format checked', async () => {
  const ws = tmp();
  const dirs = ['k', 'm', 't'].map((id, i) => writeRun(ws, id, { divergence: (['kld', 'mse', 'tvd'] as const)[i] }));
  const out = join(ws, 'results.md');
  let stdout = '';
  const log = console.log;
  console.log = (...a: unknown[]) => void (stdout += a.join(' ') + '\n');
  let res: { code: number; text: string };
  try {
    res = await captureStderr(() =>
      run([
        '--run',
        `${dirs[0]},${dirs[1]}`,
        '--run',
        dirs[2],
        '--out',
        out,
        '--plots',
        join(ws, 'plots'),
        '--format',
        'svg',
      ]),
    );
  } finally {
    console.log = log;
  }
  assert.equal(res.code, 0, res.text);
  const j = JSON.parse(stdout.trim());
  assert.equal(j.plots.length, 3);
  assert.deepEqual(
    j.acceptance.map((a: { divergence: string }) => a.divergence),
    ['kld', 'mse', 'tvd'],
  );
  assert.match(readFileSync(out, 'utf8'), /## TVD: run `t`/);
  await assert.rejects(() => run(['--run', dirs[0], '--format', 'gif']), /--format must be png or svg/);
  await assert.rejects(() => run([]), /--run DIR is required/);
});

test('PNG via Chromium, and the SVG fallback when there is none', async (t) => {
  const ws = tmp();
  const dir = writeRun(ws, 'png');
  mkdirSync(join(ws, 'docs'), { recursive: true });
  const warnings: string[] = [];
  const fb = await writeReport({
    runs: [dir],
    out: join(ws, 'docs', 'fb.md'),
    plots: join(ws, 'docs', 'fb'),
    format: 'png',
    chromium: join(ws, 'no-chromium'),
    warn: (s) => warnings.push(s),
  });
  assert.match(fb.pngFallback ?? '', /no Chromium at .*no-chromium/);
  assert.match(
    warnings.join('\n'),
    /PNG figures not rendered: no Chromium at .*no-chromium.*writing SVG figures instead/,
  );
  assert.ok(fb.plots[0].endsWith('kld-png.svg') && existsSync(fb.plots[0]));
  const fbMd = readFileSync(join(ws, 'docs', 'fb.md'), 'utf8');
  assert.match(fbMd, /\]\(fb\/kld-png\.svg\)/);
  assert.match(fbMd, /Figures are SVG because the PNG rendering failed: no Chromium at/);

  if (!existsSync(CHROMIUM))
    return t.skip(`no Chromium at ${CHROMIUM} (set SDTT_CHROMIUM_PATH): PNG rendering not tested`);
  try {
    await import('playwright-core');
  } catch (e) {
    return t.skip(`playwright-core is not installed (${(e as Error).message.split('\n')[0]})`);
  }
  const o = await writeReport({
    runs: [dir],
    out: join(ws, 'docs', 'results.md'),
    plots: join(ws, 'docs', 'results'),
    format: 'png',
    warn: (s) => warnings.push(s),
  });
  assert.equal(o.pngFallback, undefined, o.pngFallback);
  const png = readFileSync(o.plots[0]);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  // IHDR width: the 1000-px SVG at a device scale of 2.
  assert.equal(png.readUInt32BE(16), 2000);
  assert.match(readFileSync(join(ws, 'docs', 'results.md'), 'utf8'), /\]\(results\/kld-png\.png\)/);
  assert.equal(
    await renderPngs([], join(ws, 'missing')),
    `no Chromium at ${join(ws, 'missing')} (set SDTT_CHROMIUM_PATH to another binary)`,
  );
});
