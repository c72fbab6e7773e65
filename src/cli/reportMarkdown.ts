// The markdown of `sdtt report` as pure functions of the loaded runs (report.ts reads the run folders, renders the
// plots and writes the file): per run the config line, the gen PPL / entropy table (teacher + each round's student x
// N), the per-round timing table, the totals and the acceptance check; across runs the best student per N. Nothing
// here touches the disk, so the tests build ReportRuns by hand.
import type { DistillConfig } from '../shared/distillConfig.ts';
import type { RoundLine } from '../engine/sdtt/distillTypes.ts';
import type { DistillEvalResult, DistillEvalRow, SelfBleuResult } from '../engine/sdtt/distillEval.ts';
import type { PlotSeries } from './reportPlot.ts';
import { evalCell, fmtPpl, fmtPplSe } from '../shared/evalFormat.ts';
import { TEACHER_EVAL_NAME } from '../runs/runFolder.ts';

export const BEGIN_MARKER = '<!-- report:begin -->';
export const END_MARKER = '<!-- report:end -->';

/** One distillation run folder as the report sees it. */
export interface ReportRun {
  dir: string;
  id: string;
  status: string;
  backend?: string;
  device?: string;
  createdAt: string;
  updatedAt: string;
  cfg: DistillConfig;
  /** Rounds the run was scheduled for (the schedule can stop before cfg.rounds, see minSteps). */
  plannedRounds: number;
  teacher: DistillEvalResult | null;
  rounds: RoundLine[];
  /** round -> mean train loss of its last logged steps (the run's metrics log); absent when none were logged. */
  finalLoss: Map<number, number>;
}

/**
 * The issue's acceptance criterion: the student after round 3 (index 2) sampling with 16 steps matches the teacher
 * sampling with 128: gen PPL no higher, unigram entropy within 0.3 nats (entropy guards against a student that lowers
 * gen PPL by repeating itself).
 */
export const ACCEPTANCE = { round: 2, studentSteps: 16, teacherSteps: 128, entropyTol: 0.3 } as const;

export function fmtSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '–';
  if (s < 60) return `${s.toFixed(1)} s`;
  const t = Math.round(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  return h > 0 ? `${h} h ${String(m).padStart(2, '0')} min` : `${m} min ${String(sec).padStart(2, '0')} s`;
}

/** What the cells of `runs`' tables hold, for the sentence above a table. */
function cellLegend(runs: ReportRun[]): string {
  const rows = runs.flatMap((r) => [...(r.teacher?.rows ?? []), ...r.rounds.flatMap((l) => l.eval)]);
  const known = rows.some((x) => typeof x.known_words === 'number');
  return `gen PPL ± 1 s.e. / unigram entropy (nats)${known ? " / known words (share of the samples' words found in the training text)" : ''}`;
}

function fmtSelfBleu(b: SelfBleuResult | undefined): string {
  if (!b) return '–';
  return b.computed ? `${b.value.toFixed(3)} (N = ${b.steps})` : `not computed (${b.reason})`;
}

export function divergenceTitle(d: string): string {
  return d.toUpperCase();
}

export function studentLabel(l: Pick<RoundLine, 'round' | 'studentSteps'>): string {
  return `R${l.round} student (${l.studentSteps} steps)`;
}

/** The models of a run in table order: the teacher (when its evaluation exists), then each round's student. */
export function modelRows(run: ReportRun): { label: string; rows: DistillEvalRow[] }[] {
  return [
    ...(run.teacher ? [{ label: 'teacher', rows: run.teacher.rows }] : []),
    ...run.rounds.map((l) => ({ label: studentLabel(l), rows: l.eval })),
  ];
}

/** The evaluated step counts: the config's order first, then any others the files hold (largest first). */
export function stepColumns(run: ReportRun): number[] {
  const seen = new Set(run.cfg.evalSteps);
  const extra = [...new Set(modelRows(run).flatMap((m) => m.rows.map((r) => r.steps)))]
    .filter((s) => !seen.has(s))
    .sort((a, b) => b - a);
  return [...run.cfg.evalSteps, ...extra];
}

function table(head: string[], body: string[][], align: ('l' | 'r')[]): string {
  return [
    `| ${head.join(' | ')} |`,
    `|${align.map((a) => (a === 'r' ? '---:' : '---')).join('|')}|`,
    ...body.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

export function evalTableMd(run: ReportRun): string {
  const cols = stepColumns(run);
  return table(
    ['model', ...cols.map((n) => `N = ${n}`)],
    modelRows(run).map((m) => [m.label, ...cols.map((n) => evalCell(m.rows.find((r) => r.steps === n)))]),
    ['l', ...cols.map(() => 'r' as const)],
  );
}

export function roundTableMd(run: ReportRun): string {
  const body: string[][] = [];
  const t = run.teacher;
  if (t)
    body.push([
      'teacher (round −1)',
      '–',
      '–',
      t.reusedFrom ? `reused from cache (${fmtSeconds(t.seconds)} when computed)` : fmtSeconds(t.seconds),
      '–',
      '–',
      t.heldoutNelbo.toFixed(4),
      fmtSelfBleu(t.selfBleu),
    ]);
  for (const l of run.rounds) {
    const loss = run.finalLoss.get(l.round);
    body.push([
      `R${l.round}`,
      `${l.teacherSteps ?? '?'} → ${l.studentSteps}`,
      fmtSeconds(l.wallS),
      fmtSeconds(l.evalSeconds),
      Math.round(l.tokPerSec).toString(),
      loss === undefined ? '–' : loss.toPrecision(4),
      l.heldoutNelbo.toFixed(4),
      fmtSelfBleu(l.selfBleu),
    ]);
  }
  return table(
    [
      'round',
      'teacher → student steps',
      'train wall time',
      'eval time',
      'train tokens/s',
      'final train loss',
      'held-out NELBO',
      'self-BLEU',
    ],
    body,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

/** Training tokens/s over the whole run: rounds weighted by their step counts (a harmonic mean of the rates). */
export function meanThroughput(rounds: RoundLine[]): number | null {
  let steps = 0;
  let secsPerToken = 0;
  for (const l of rounds) {
    const n = Math.max(1, (l.lastStep ?? 0) - (l.firstStep ?? 1) + 1);
    if (!(l.tokPerSec > 0)) continue;
    steps += n;
    secsPerToken += n / l.tokPerSec;
  }
  return steps > 0 ? steps / secsPerToken : null;
}

export interface RunTotals {
  train: number;
  evaluation: number;
  total: number;
  throughput: number | null;
  /** run.json createdAt -> updatedAt: includes pauses and restarts, so only an upper bound. */
  elapsed: number;
}

export function runTotals(run: ReportRun): RunTotals {
  const train = run.rounds.reduce((a, l) => a + l.wallS, 0);
  // A teacher evaluation reused from the cache cost this run nothing (its seconds are the computing run's).
  const evaluation =
    run.rounds.reduce((a, l) => a + l.evalSeconds, 0) +
    (run.teacher && !run.teacher.reusedFrom ? run.teacher.seconds : 0);
  const elapsed = (Date.parse(run.updatedAt) - Date.parse(run.createdAt)) / 1000;
  return { train, evaluation, total: train + evaluation, throughput: meanThroughput(run.rounds), elapsed };
}

export interface Acceptance {
  verdict: 'pass' | 'fail' | 'not applicable';
  text: string;
}

export function acceptance(run: ReportRun): Acceptance {
  const A = ACCEPTANCE;
  const na = (why: string): Acceptance => ({ verdict: 'not applicable', text: why });
  const t = run.teacher?.rows.find((r) => r.steps === A.teacherSteps);
  const line = run.rounds.find((l) => l.round === A.round);
  const s = line?.eval.find((r) => r.steps === A.studentSteps);
  if (!run.teacher) return na(`no teacher evaluation (${TEACHER_EVAL_NAME} missing)`);
  if (!t) return na(`the teacher was not evaluated at N = ${A.teacherSteps}`);
  if (!line) return na(`round ${A.round} (the third) has not finished (${run.rounds.length} round(s) finished)`);
  if (!s) return na(`the R${A.round} student was not evaluated at N = ${A.studentSteps}`);
  if (t.gen_ppl === null || s.gen_ppl === null) return na('no judge: gen PPL not computed');
  const dPpl = s.gen_ppl - t.gen_ppl;
  const dH = s.entropy - t.entropy;
  const pplOk = s.gen_ppl <= t.gen_ppl;
  const hOk = Math.abs(dH) <= A.entropyTol;
  const sign = (x: number, f: (v: number) => string) => `${x >= 0 ? '+' : '−'}${f(Math.abs(x))}`;
  // With 16-256 samples per cell the s.e. is large: say how many combined s.e. the PPL gap is, so a FAIL by noise
  // reads as such (the verdict itself stays the criterion's, on the point estimates).
  const seBoth = Math.hypot(s.gen_ppl_se ?? 0, t.gen_ppl_se ?? 0);
  const inSe = seBoth > 0 ? `, ${(Math.abs(dPpl) / seBoth).toFixed(2)} combined s.e.` : '';
  const facts = `gen PPL ${fmtPplSe(s.gen_ppl, s.gen_ppl_se)} vs ${fmtPplSe(t.gen_ppl, t.gen_ppl_se)} (Δ ${sign(dPpl, fmtPpl)}${inSe}), entropy ${s.entropy.toFixed(3)} vs ${t.entropy.toFixed(3)} nats (Δ ${sign(dH, (v) => v.toFixed(3))})`;
  const failed = [
    ...(pplOk ? [] : ["gen PPL above the teacher's"]),
    ...(hOk ? [] : [`|Δ entropy| > ${A.entropyTol} nats`]),
  ];
  return pplOk && hOk ? { verdict: 'pass', text: facts } : { verdict: 'fail', text: `${facts}: ${failed.join(', ')}` };
}

export function acceptanceLine(run: ReportRun): string {
  const A = ACCEPTANCE;
  const a = acceptance(run);
  return `**Acceptance check** (R${A.round} student, i.e. after round 3, at N = ${A.studentSteps} vs the teacher at N = ${A.teacherSteps}; pass = gen PPL ≤ the teacher's and |Δ entropy| ≤ ${A.entropyTol} nats): **${a.verdict.toUpperCase()}**: ${a.text}.`;
}

function shortPath(p: string | undefined, cwd: string): string {
  if (!p) return 'none';
  const rel = p.startsWith(cwd + '/') ? p.slice(cwd.length + 1) : p;
  return `\`${rel}\``;
}

export function configLine(run: ReportRun, cwd: string): string {
  const c = run.cfg;
  const judge = run.teacher?.judge ?? run.rounds[0]?.judge ?? c.judge;
  const progress =
    run.rounds.length < run.plannedRounds ? ` (${run.rounds.length} of ${run.plannedRounds} rounds finished)` : '';
  return [
    `teacher ${shortPath(c.teacher, cwd)}`,
    `judge ${shortPath(judge ?? undefined, cwd)}`,
    `${run.plannedRounds} rounds × ${c.stepsPerRound} steps`,
    `batch ${c.batchSize}`,
    `lr ${c.optim.lr} (warm-up ${c.optim.warmupSteps})`,
    `EMA ${c.optim.emaDecay}`,
    `K = ${c.teacherSubsteps} teacher sub-steps`,
    `${c.evalSamples} samples per cell`,
    `seed ${c.seed}`,
    `backend ${run.backend ?? '?'}${run.device ? ` (${run.device})` : ''}`,
    `status ${run.status}${progress}`,
  ].join(' · ');
}

export function plotSeries(run: ReportRun): PlotSeries[] {
  return modelRows(run).map((m) => ({
    label: m.label,
    points: m.rows.map((r) => ({
      n: r.steps,
      ppl: r.gen_ppl,
      se: r.gen_ppl_se,
      entropy: r.entropy,
      known: r.known_words,
    })),
  }));
}

export function plotTitle(run: ReportRun): string {
  return `${divergenceTitle(run.cfg.divergence)} (run ${run.id}): teacher and each round's student, ${run.cfg.evalSamples} samples per point`;
}

/** One run's section; `plot` = the figure's path relative to the markdown file (null: none). */
export function runSection(run: ReportRun, plot: string | null, cwd: string): string {
  const t = runTotals(run);
  const lines = [
    `## ${divergenceTitle(run.cfg.divergence)}: run \`${run.id}\``,
    '',
    configLine(run, cwd),
    '',
    `Run folder: ${shortPath(run.dir, cwd)}.`,
    '',
    `Judge ${cellLegend([run])} of the samples, by sampling steps N:`,
    '',
    evalTableMd(run),
    '',
    ...(plot ? [`![${divergenceTitle(run.cfg.divergence)}: gen PPL and entropy against N](${plot})`, ''] : []),
    'Per round (wall times of the training and of the evaluation measured separately):',
    '',
    roundTableMd(run),
    '',
    `Total wall time ${fmtSeconds(t.total)} (training ${fmtSeconds(t.train)} + evaluation ${fmtSeconds(t.evaluation)}, ${run.teacher?.reusedFrom ? "the teacher's reused from the cache" : "the teacher's included"}); ` +
      `mean training throughput ${t.throughput === null ? '–' : `${Math.round(t.throughput)} tokens/s`}; run.json created → last updated ${fmtSeconds(t.elapsed)} (includes start-up, pauses and restarts).`,
    '',
    acceptanceLine(run),
  ];
  return lines.join('\n');
}

/** Best student per N and divergence (lowest gen PPL over the rounds), next to each distinct teacher. */
export function comparisonMd(runs: ReportRun[]): string {
  const cols = [...new Set(runs.flatMap(stepColumns))].sort((a, b) => b - a);
  const body: string[][] = [];
  const teachers = new Map<string, ReportRun>();
  // Runs that share teacher, judge, samples and seed evaluated the same teacher samples: one row for all of them.
  for (const r of runs) {
    const key = r.teacher ? `${r.cfg.teacher}|${r.teacher.judge}|${r.cfg.evalSamples}|${r.cfg.seed}` : null;
    if (key && !teachers.has(key)) teachers.set(key, r);
  }
  for (const r of teachers.values())
    body.push([
      teachers.size === 1 ? 'teacher' : `teacher (run \`${r.id}\`)`,
      ...cols.map((n) => evalCell(r.teacher!.rows.find((x) => x.steps === n))),
    ]);
  for (const r of runs) {
    body.push([
      `${divergenceTitle(r.cfg.divergence)} best student (run \`${r.id}\`)`,
      ...cols.map((n) => {
        let best: { l: RoundLine; row: DistillEvalRow } | null = null;
        for (const l of r.rounds) {
          const row = l.eval.find((x) => x.steps === n);
          if (row && row.gen_ppl !== null && (!best || row.gen_ppl < (best.row.gen_ppl as number))) best = { l, row };
        }
        return best ? `${evalCell(best.row)} (R${best.l.round})` : '–';
      }),
    ]);
  }
  const summary = runs.map((r) => {
    const t = runTotals(r);
    return [
      divergenceTitle(r.cfg.divergence),
      `\`${r.id}\``,
      `${r.rounds.length} / ${r.plannedRounds}`,
      fmtSeconds(t.total),
      t.throughput === null ? '–' : Math.round(t.throughput).toString(),
      acceptance(r).verdict,
    ];
  });
  return [
    '## Comparison across divergences',
    '',
    `Best student per N (lowest gen PPL over the rounds; the round in brackets), ${cellLegend(runs)}:`,
    '',
    table(['model', ...cols.map((n) => `N = ${n}`)], body, ['l', ...cols.map(() => 'r' as const)]),
    '',
    table(['divergence', 'run', 'rounds', 'total wall time', 'mean train tokens/s', 'acceptance'], summary, [
      'l',
      'l',
      'r',
      'r',
      'r',
      'l',
    ]),
  ].join('\n');
}

/** The generated part (between the markers). `plots[i]` = run i's figure relative to the markdown, or null. */
export function buildReport(runs: ReportRun[], plots: (string | null)[], cwd: string, note?: string): string {
  const parts = [
    `_Generated by \`sdtt report\` from ${runs.length} run(s); the text between the report markers is replaced when the report is regenerated._`,
  ];
  if (note) parts.push(note);
  if (runs.length > 1) parts.push(comparisonMd(runs));
  runs.forEach((r, i) => parts.push(runSection(r, plots[i], cwd)));
  return parts.join('\n\n');
}

/**
 * The file's new text: `generated` between the markers, everything else as it was (hand-written prose survives);
 * a file without markers gets them appended; a new file gets a short header. Malformed markers are an error rather
 * than a guess that could eat prose.
 */
export function spliceReport(existing: string | null, generated: string, file: string): string {
  const block = `${BEGIN_MARKER}\n${generated}\n${END_MARKER}`;
  if (existing === null)
    return `# Results\n\nSDTT distillation results. Write notes outside the report markers: \`sdtt report\` regenerates only the part between them.\n\n${block}\n`;
  const b = existing.indexOf(BEGIN_MARKER);
  const e = existing.indexOf(END_MARKER);
  const count = (m: string) => existing.split(m).length - 1;
  if (b < 0 && e < 0) return `${existing.replace(/\n*$/, '')}\n\n${block}\n`;
  if (count(BEGIN_MARKER) !== 1 || count(END_MARKER) !== 1 || e < b) {
    throw new Error(
      `${file}: expected exactly one "${BEGIN_MARKER}" followed by one "${END_MARKER}" (found ${count(BEGIN_MARKER)} and ${count(END_MARKER)}${e < b && b >= 0 && e >= 0 ? ', in the wrong order' : ''}); fix the markers by hand`,
    );
  }
  return existing.slice(0, b) + block + existing.slice(e + END_MARKER.length);
}
