// `sdtt distill`: SDTT rounds on an MDLM teacher (engine/distill.ts) with a progress bar over all steps, a banner per
// round, the per-round evaluation table, the final table (teacher + each round's student x eval step counts) and ONE
// JSON line with everything on stdout. Re-running the same command resumes the run from its last checkpoint
// (runLifecycle.openOrResume), in the round it was in, with that round's teacher.
// `sdtt demo`: the same on the shipped teacher/judge/corpus with defaults sized for 2 CPU cores.
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BACKENDS, describeConfigError } from '../shared/config.ts';
import { DistillConfig, DIVERGENCE_NAMES } from '../shared/distillConfig.ts';
import { runDistill } from '../engine/sdtt/distill.ts';
import { SHIPPED_JUDGE } from '../engine/sdtt/distillJudge.ts';
import type { DistillEvalResult } from '../engine/sdtt/distillEval.ts';
import { readRoundLines, readTeacherEval } from '../runs/runFolder.ts';
import { intFlag, intListFlag, numFlag, parseFlags, readJsonConfig, UsageError, type Flags } from './args.ts';
import { ProgressBar, formatDuration } from './progress.ts';
import { evalCell } from '../shared/evalFormat.ts';
import { runCliJob } from './runJob.ts';

const FLAGS: Flags = {
  teacher: { type: 'string', help: 'MDLM teacher: checkpoint folder or run folder (its EMA weights when present)' },
  data: {
    type: 'string',
    help: "text file or token shard folder (default: the data the teacher recorded); tokenizer must match the teacher's",
  },
  divergence: { type: 'string', help: DIVERGENCE_NAMES.join(' | '), default: 'kld' },
  rounds: { type: 'string', help: 'rounds (round r: teacher N0/2^r -> student N0/2^(r+1) steps)', default: '5' },
  'steps-per-round': { type: 'string', help: 'optimiser steps per round', default: '2000' },
  'start-steps': { type: 'string', help: "N0, the teacher steps of round 0 (default: the model's seqLen)" },
  'min-steps': { type: 'string', help: 'stop before a round whose student would use fewer steps', default: '4' },
  batch: { type: 'string', help: 'sequences per step', default: '32' },
  lr: { type: 'string', help: 'peak learning rate (AdamW, one warm-up)', default: '1e-4' },
  warmup: { type: 'string', help: 'linear warm-up steps (once, not per round)', default: '200' },
  'ema-decay': { type: 'string', help: 'EMA decay of the evaluated student', default: '0.998' },
  'student-dropout': { type: 'string', help: 'student dropout in training (teacher: none)', default: '0.1' },
  seed: { type: 'string', help: 'random seed (data order, noise, sampling seeds of the evaluation)', default: '0' },
  backend: { type: 'string', help: BACKENDS.join(' | '), default: 'auto' },
  threads: { type: 'string', help: 'data-parallel worker threads for the training step', default: '2' },
  'eval-samples': { type: 'string', help: 'samples per (round, steps) evaluation cell', default: '256' },
  'eval-steps': {
    type: 'string',
    help: 'sampling step counts evaluated for the teacher and each round',
    default: '128,64,32,16,8,4',
  },
  'eval-batch': { type: 'string', help: 'sequences per sampling/scoring batch in the evaluation', default: '16' },
  judge: {
    type: 'string',
    help: 'AR judge checkpoint for gen PPL (default: assets/models/judge-ar-base-5m if present)',
  },
  'log-every': { type: 'string', help: 'steps between metric lines', default: '10' },
  'checkpoint-every': {
    type: 'string',
    help: 'steps between checkpoints (every round end is one too)',
    default: '200',
  },
  'keep-checkpoints': { type: 'string', help: 'periodic checkpoints kept (rounds/<r> are never pruned)', default: '3' },
  config: { type: 'string', help: 'JSON file with a full or partial distill config (flags override it)' },
  run: {
    type: 'string',
    help: 'run id (folder under <workspace>/runs); default derived from teacher, divergence and seed',
  },
  workspace: { type: 'string', help: 'folder that holds runs/', default: '.' },
};

export async function run(
  argv: string[],
  synopsis = 'usage: sdtt distill --teacher DIR [--data PATH] [options]',
): Promise<number> {
  const f = parseFlags(argv, FLAGS, synopsis);
  if (!f) return 0;
  const fileConfig = f.config ? readJsonConfig(String(f.config)) : {};
  if (!f.teacher && !fileConfig.teacher) throw new UsageError('--teacher DIR is required');
  const given = (k: string) => argv.some((a) => a === `--${k}` || a.startsWith(`--${k}=`));
  // Flags override the file; defaults fill only what the file leaves out.
  const pick = <T>(k: string, v: T | undefined, fileKey: string): Record<string, T> =>
    v !== undefined && (given(k) || !(fileKey in fileConfig)) ? { [fileKey]: v } : {};
  const fileOptim = (fileConfig.optim as Record<string, unknown> | undefined) ?? {};
  const optimPick = (k: string, v: number | undefined, key: string) =>
    v !== undefined && (given(k) || !(key in fileOptim)) ? { [key]: v } : {};
  const candidate = {
    ...fileConfig,
    kind: 'distill',
    ...pick('teacher', f.teacher as string | undefined, 'teacher'),
    ...pick('data', f.data as string | undefined, 'data'),
    ...pick('judge', f.judge as string | undefined, 'judge'),
    ...pick('divergence', f.divergence as string, 'divergence'),
    ...pick('rounds', intFlag(f, 'rounds', 1), 'rounds'),
    ...pick('steps-per-round', intFlag(f, 'steps-per-round', 1), 'stepsPerRound'),
    ...pick('start-steps', intFlag(f, 'start-steps', 2), 'startSteps'),
    ...pick('min-steps', intFlag(f, 'min-steps', 1), 'minSteps'),
    ...pick('batch', intFlag(f, 'batch', 1), 'batchSize'),
    ...pick('student-dropout', numFlag(f, 'student-dropout'), 'studentDropout'),
    ...pick('seed', intFlag(f, 'seed'), 'seed'),
    ...pick('backend', f.backend as string, 'backend'),
    ...pick('threads', intFlag(f, 'threads', 1), 'threads'),
    ...pick('eval-samples', intFlag(f, 'eval-samples', 1), 'evalSamples'),
    ...pick('eval-steps', intListFlag(f, 'eval-steps'), 'evalSteps'),
    ...pick('eval-batch', intFlag(f, 'eval-batch', 1), 'evalBatch'),
    ...pick('log-every', intFlag(f, 'log-every', 1), 'logEvery'),
    ...pick('checkpoint-every', intFlag(f, 'checkpoint-every', 1), 'checkpointEvery'),
    ...pick('keep-checkpoints', intFlag(f, 'keep-checkpoints', 1), 'keepCheckpoints'),
    optim: {
      ...fileOptim,
      ...optimPick('lr', numFlag(f, 'lr'), 'lr'),
      ...optimPick('warmup', intFlag(f, 'warmup'), 'warmupSteps'),
      ...optimPick('ema-decay', numFlag(f, 'ema-decay'), 'emaDecay'),
    },
  };
  const parsed = DistillConfig.safeParse(candidate);
  if (!parsed.success) throw new UsageError(describeConfigError(parsed.error));
  const cfg = parsed.data;

  let nRounds = 0;
  let startInfo: Record<string, unknown> = {};
  return runCliJob(
    {
      workspace: String(f.workspace),
      id: f.run ? String(f.run) : defaultDistillRunId(cfg),
      kind: 'distill',
      cfg,
      label: 'distill',
      formatLoss: (x) => x.toPrecision(4),
    },
    (run) =>
      runDistill(cfg, run.runDir, {
        onStart: (info) => {
          run.started(info, { totalSteps: info.totalSteps });
          run.bar = new ProgressBar('distill', info.totalSteps, info.startStep);
          nRounds = info.schedule.length;
          startInfo = {
            teacher: info.teacher,
            teacherWeights: info.teacherWeights,
            teacherRuntime: info.teacherRuntime,
            judge: info.judge,
            backend: info.backend,
            device: info.device,
            params: info.params,
          };
          run.bar.log(
            `backend ${info.backend} | device ${info.device} | teacher inference ${info.teacherRuntime} | ${(info.params / 1e6).toFixed(2)}M params | train ${info.trainTokens} tokens, validation ${info.valTokens}`,
          );
          run.bar.log(
            `teacher ${info.teacher} (${info.teacherWeights} weights) | judge ${info.judge ?? 'none'}${info.judgeNote ? ` (${info.judgeNote})` : ''} | ${info.schedule.length} rounds, ${info.totalSteps} steps`,
          );
          if (info.resumedFrom) run.bar.log(`resumed from ${info.resumedFrom}`);
        },
        onRoundStart: (r, resumed) =>
          run.bar.log(
            `round ${r.round + 1}/${nRounds}: teacher ${r.teacherSteps} -> student ${r.studentSteps}${resumed ? ' (resumed)' : ''}`,
          ),
        onTeacher: (t) =>
          run.bar.log(
            `teacher for the next steps: ${t.round < 0 ? 'the original' : `round ${t.round}'s raw student`} (${t.dir}, ${t.weights}, checksum ${t.checksum})`,
          ),
        onStep: (m) => run.trainStep(m, `R${m.round} loss ${m.loss.toPrecision(4)} ${Math.round(m.tokPerSec)} tok/s`),
        onEval: run.evalMetric,
        onEvalProgress: (what) => run.bar.log(`eval: ${what}`),
        onTeacherEval: (res) =>
          run.bar.log(`teacher (round -1):\n${evalTable([{ label: 'teacher', res }], cfg.evalSteps)}`),
        onRound: (line) => {
          run.bar.log(
            `round ${line.round} done (${line.label}) in ${formatDuration(line.wallS)} + eval ${formatDuration(line.evalSeconds)}, ${Math.round(line.tokPerSec)} tok/s, held-out NELBO ${line.heldoutNelbo.toFixed(4)}, self-BLEU ${line.selfBleu.computed ? line.selfBleu.value.toFixed(3) : 'not computed'}`,
          );
          run.bar.log(evalTable([{ label: `R${line.round} student`, res: { rows: line.eval } }], cfg.evalSteps));
        },
        onCheckpoint: run.checkpointed,
        shouldStop: run.shouldStop,
        beforeStep: run.beforeStep,
      }),
    (result, { id, runDir }) => {
      const teacherEval = readTeacherEval<DistillEvalResult>(runDir);
      const rounds = readRoundLines(runDir);
      const rows = [
        ...(teacherEval ? [{ label: 'teacher', res: teacherEval }] : []),
        ...rounds.map((l) => ({
          label: `R${l.round} student (${l.studentSteps})`,
          res: l as unknown as Pick<DistillEvalResult, 'rows'> & { eval?: DistillEvalResult['rows'] },
        })),
      ];
      console.error(
        `\ngen PPL ± s.e. / unigram entropy / known words (columns: sampling steps)\n${evalTable(rows, cfg.evalSteps)}`,
      );
      console.log(
        JSON.stringify({
          run: id,
          runDir,
          status: result.status,
          step: result.step,
          reason: result.reason,
          lastCheckpoint: result.lastCheckpoint,
          roundsDone: result.roundsDone,
          ...startInfo,
          config: cfg,
          teacherEval,
          rounds,
        }),
      );
    },
  );
}

/** Same command -> same run: derived from the teacher's name (its run folder for a checkpoints/<step> path). */
export function defaultDistillRunId(cfg: Pick<DistillConfig, 'teacher' | 'divergence' | 'seed'>): string {
  const p = resolve(cfg.teacher);
  const name =
    /^\d+$/.test(basename(p)) && basename(dirname(p)) === 'checkpoints' ? basename(dirname(dirname(p))) : basename(p);
  return `distill-${name.replace(/[^A-Za-z0-9._-]/g, '_')}-${cfg.divergence}-seed${cfg.seed}`
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 128);
}

type Row = { label: string; res: { rows?: DistillEvalResult['rows']; eval?: DistillEvalResult['rows'] } };

/** Rows x eval step counts; cells as the report's (gen PPL ± s.e. / entropy / known words). */
export function evalTable(rows: Row[], steps: number[]): string {
  const head = ['', ...steps.map((s) => `${s} steps`)];
  const body = rows.map(({ label, res }) => {
    const evalRows = res.rows ?? res.eval ?? [];
    return [label, ...steps.map((s) => evalCell(evalRows.find((r) => r.steps === s)))];
  });
  const widths = head.map((_, c) => Math.max(...[head, ...body].map((r) => r[c].length)));
  return [head, ...body]
    .map((r) => r.map((x, c) => (c === 0 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join('  '))
    .join('\n');
}

// ---- sdtt demo ------------------------------------------------------------------------------------------------

/** The repository (the shipped assets/ and data/ live here). */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DEMO_TEACHER = join(REPO, 'assets/models/mdlm-base-5m');
export const DEMO_JUDGE = SHIPPED_JUDGE;
export const DEMO_DATA = join(REPO, 'data/corpus');
/**
 * Sized for <= 30 min on 2 cores (base-5m, batch 16, threads 2): 3 rounds (128 -> 64 -> 32 -> 16) x 80 steps = 240
 * steps, and 4 evaluations (teacher + 3 students) of 16 samples at 128/64/32/16 steps with self-BLEU. Measured with
 * a pretraining job sharing the 2 cores: 22 min 41 s in all (teacher eval 2:13; rounds 5:40, 4:53, 4:45 of training
 * at ~540 tok/s + 2:04, 1:32, 1:28 of evaluation). lr 3e-4 (not the 1e-4 default: 80-step rounds), EMA 0.96 (time
 * constant ~1/3 round, docs/design/sdtt.md §7).
 */
export const DEMO_DEFAULTS = [
  '--rounds',
  '3',
  '--steps-per-round',
  '80',
  '--batch',
  '16',
  '--lr',
  '3e-4',
  '--warmup',
  '20',
  '--ema-decay',
  '0.96',
  '--eval-samples',
  '16',
  '--eval-steps',
  '128,64,32,16',
  '--checkpoint-every',
  '20',
  '--log-every',
  '2',
  '--run',
  'demo',
];

export async function runDemo(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h'))
    return run(
      ['--help'],
      `usage: sdtt demo [distill options]\n\ndistils ${DEMO_TEACHER} on ${DEMO_DATA} (judge ${DEMO_JUDGE}); defaults: ${DEMO_DEFAULTS.join(' ')}`,
    );
  for (const [what, dir] of [
    ['teacher', DEMO_TEACHER],
    ['judge', DEMO_JUDGE],
  ] as const) {
    if (!existsSync(join(dir, 'config.json')))
      throw new Error(
        `sdtt demo needs the shipped ${what} model folder ${dir} (config.json + model.safetensors), which is missing; the shipped models are not installed yet — run \`sdtt distill --teacher DIR --data PATH\` with your own teacher meanwhile`,
      );
  }
  if (!existsSync(join(DEMO_DATA, 'manifest.json'))) {
    console.error(`building the corpus shards in ${DEMO_DATA} first ...`);
    const { buildCorpus } = await import('../engine/data/corpus.ts');
    await buildCorpus(DEMO_DATA);
  }
  // Later flags win in parseArgs, so user options override the defaults.
  return run(
    ['--teacher', DEMO_TEACHER, '--judge', DEMO_JUDGE, '--data', DEMO_DATA, ...DEMO_DEFAULTS, ...argv],
    'usage: sdtt demo [distill options]',
  );
}
