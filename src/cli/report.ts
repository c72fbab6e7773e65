// `sdtt report`: finished (or running) distillation runs -> docs/results.md with, per run, the gen PPL / entropy
// table of the teacher and each round's student against N, the per-round timings and the acceptance check, plus one
// two-panel PNG per run; several runs add a comparison across divergences. Only the part of the markdown between
// the report markers is rewritten, so prose written around it survives regeneration. The PNG comes from the
// Chromium the e2e tests drive (playwright-core, loaded only here so the CLI starts without it); without one the
// SVG is written instead and the markdown links that.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { describeConfigError } from '../shared/config.ts';
import { DistillConfig } from '../shared/distillConfig.ts';
import { RunRecord } from '../shared/runState.ts';
import { writeFileAtomic } from '../node/atomicFile.ts';
import type { RoundLine } from '../engine/sdtt/distillTypes.ts';
import { readJsonLines, readRoundLines, readTeacherEval, runPaths } from '../runs/runFolder.ts';
import { readRunRecord } from '../runs/runStore.ts';
import type { DistillEvalResult } from '../engine/sdtt/distillEval.ts';
import { listFlag, parseFlags, UsageError, type Flags } from './args.ts';
import { acceptance, buildReport, plotSeries, plotTitle, spliceReport, type ReportRun } from './reportMarkdown.ts';
import { plotFigure } from './reportPlot.ts';

const FLAGS: Flags = {
  run: {
    type: 'string',
    multiple: true,
    help: 'distill run folder (or its id under runs/); repeat the flag or give a comma list for several runs',
  },
  out: {
    type: 'string',
    help: 'markdown file; only the part between the report markers is replaced',
    default: 'docs/results.md',
  },
  plots: { type: 'string', help: 'folder for the figures (one per run)', default: 'docs/results' },
  format: {
    type: 'string',
    help: 'png (rendered with Chromium; falls back to svg when it cannot) | svg',
    default: 'png',
  },
};

const SYNOPSIS =
  'usage: sdtt report --run DIR [--run DIR ...] [--out docs/results.md] [--plots docs/results] [--format png|svg]';

/** Where the e2e tests find Chromium too. */
export const CHROMIUM = process.env.SDTT_CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** A run folder that cannot be reported; the message names the file at fault. */
export class ReportError extends Error {}

/** DIR itself, or runs/DIR under the current folder when DIR is a run id. */
export function resolveRunDir(arg: string): string {
  for (const d of [arg, join('runs', arg)]) if (existsSync(runPaths.record(d))) return resolve(d);
  throw new ReportError(
    `${runPaths.record(resolve(arg))}: missing: --run must name a distill run folder (the one holding its run record and finished rounds)`,
  );
}

const ROUND_NUMBERS = ['round', 'studentSteps', 'wallS', 'evalSeconds', 'tokPerSec', 'heldoutNelbo'] as const;

/**
 * The rounds file through the runs module's reader, which skips lines it cannot parse (right for a UI polling a live run,
 * wrong for a report that would silently drop a round): every non-empty line must come back, with the fields the
 * report prints.
 */
export function readRoundsStrict(dir: string): RoundLine[] {
  const file = runPaths.rounds(dir);
  if (!existsSync(file))
    throw new ReportError(
      `${file}: missing: no round of this run has finished yet (the file is written at the end of each round)`,
    );
  const nonEmpty = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim()).length;
  const lines = readRoundLines(dir);
  if (lines.length !== nonEmpty)
    throw new ReportError(
      `${file}: corrupt: ${nonEmpty - lines.length} of ${nonEmpty} line(s) are not JSON round records`,
    );
  if (lines.length === 0) throw new ReportError(`${file}: empty: no round of this run has finished yet`);
  for (const l of lines) {
    for (const k of ROUND_NUMBERS)
      if (typeof l[k] !== 'number')
        throw new ReportError(`${file}: corrupt: the line of round ${l.round} has no number "${k}"`);
    const ev = l.eval;
    if (!Array.isArray(ev) || ev.some((r) => !r || typeof r.steps !== 'number' || typeof r.entropy !== 'number'))
      throw new ReportError(`${file}: corrupt: the line of round ${l.round} has no valid "eval" rows`);
  }
  return lines as unknown as RoundLine[];
}

/** round -> mean loss of its last 5 logged train steps, a steadier end-of-round figure than the single last one. */
function finalLosses(dir: string): Map<number, number> {
  const byRound = new Map<number, number[]>();
  for (const m of readJsonLines(runPaths.metrics(dir))) {
    if (m.type !== 'train' || typeof m.round !== 'number' || typeof m.loss !== 'number' || !Number.isFinite(m.loss))
      continue;
    byRound.set(m.round, [...(byRound.get(m.round) ?? []), m.loss]);
  }
  const out = new Map<number, number>();
  for (const [r, xs] of byRound) {
    const tail = xs.slice(-5);
    out.set(r, tail.reduce((a, b) => a + b, 0) / tail.length);
  }
  return out;
}

/** Reads one run folder for the report; `warn` gets what is missing but not fatal (the teacher's evaluation). */
export function loadRun(dirArg: string, warn: (s: string) => void = () => {}): ReportRun {
  const dir = resolveRunDir(dirArg);
  const file = runPaths.record(dir);
  let record: RunRecord;
  try {
    record = readRunRecord(file);
  } catch (e) {
    throw new ReportError((e as Error).message);
  }
  if (record.kind !== 'distill') throw new ReportError(`${file}: a ${record.kind} run, not a distill run`);
  const cfg = DistillConfig.safeParse(record.config);
  if (!cfg.success) throw new ReportError(`${file}: config: ${describeConfigError(cfg.error)}`);
  const rounds = readRoundsStrict(dir);
  const tf = runPaths.teacherEval(dir);
  const teacher = readTeacherEval<DistillEvalResult>(dir);
  if (!teacher && existsSync(tf)) throw new ReportError(`${tf}: corrupt: not valid JSON`);
  if (teacher && !Array.isArray(teacher.rows)) throw new ReportError(`${tf}: corrupt: no "rows"`);
  if (!teacher) warn(`${tf} is missing: the report has no teacher row and no acceptance check for run ${record.id}`);
  const planned = record.totalSteps > 0 ? Math.round(record.totalSteps / cfg.data.stepsPerRound) : cfg.data.rounds;
  return {
    dir,
    id: record.id,
    status: record.status,
    backend: record.backend,
    device: record.device,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    cfg: cfg.data,
    plannedRounds: Math.max(planned, rounds.length),
    teacher,
    rounds,
    finalLoss: finalLosses(dir),
  };
}

export interface PlotJob {
  svg: string;
  width: number;
  height: number;
  /** The PNG to write. */
  file: string;
}

/**
 * Renders every SVG to its PNG in one Chromium (a 2x device scale, so the figure stays sharp on a high-DPI screen).
 * Returns null when all were written, or why none could be (nothing half-written is left to link).
 */
export async function renderPngs(jobs: PlotJob[], chromium = CHROMIUM): Promise<string | null> {
  if (!existsSync(chromium)) return `no Chromium at ${chromium} (set SDTT_CHROMIUM_PATH to another binary)`;
  let pw: typeof import('playwright-core');
  try {
    pw = await import('playwright-core');
  } catch (e) {
    return `playwright-core cannot be loaded (${(e as Error).message.split('\n')[0]}); it is a devDependency: run npm ci`;
  }
  let browser: import('playwright-core').Browser | null = null;
  try {
    browser = await pw.chromium.launch({ executablePath: chromium, args: CHROMIUM_ARGS, timeout: 60_000 });
    const pngs: Buffer[] = [];
    for (const j of jobs) {
      const page = await browser.newPage({ viewport: { width: j.width, height: j.height }, deviceScaleFactor: 2 });
      await page.setContent(`<!doctype html><html><body style="margin:0;background:#fff">${j.svg}</body></html>`);
      pngs.push(await page.screenshot({ clip: { x: 0, y: 0, width: j.width, height: j.height }, type: 'png' }));
      await page.close();
    }
    jobs.forEach((j, i) => writeFileAtomic(j.file, pngs[i]));
    return null;
  } catch (e) {
    return `Chromium at ${chromium} failed: ${(e as Error).message.split('\n')[0]}`;
  } finally {
    await browser?.close().catch(() => {});
  }
}

/** Figure file stems, unique even when two workspaces both hold a run called "demo". */
export function plotStems(runs: ReportRun[]): string[] {
  const used = new Map<string, number>();
  return runs.map((r) => {
    const stem = `${r.cfg.divergence}-${r.id}`.replace(/[^A-Za-z0-9._-]/g, '_');
    const k = (used.get(stem) ?? 0) + 1;
    used.set(stem, k);
    return k === 1 ? stem : `${stem}-${k}`;
  });
}

function linkPath(from: string, to: string): string {
  return relative(dirname(from), to).split(sep).join('/');
}

export interface ReportOptions {
  runs: string[];
  out: string;
  plots: string;
  format: 'png' | 'svg';
  chromium?: string;
  warn?: (s: string) => void;
}

export interface ReportOutcome {
  out: string;
  plots: string[];
  /** Why the figures are SVG although PNG was asked for; absent otherwise. */
  pngFallback?: string;
  acceptance: { run: string; divergence: string; verdict: string }[];
}

/**
 * Writes each figure as its PNG (`format` png) or as SVG beside it (`format` svg, or when Chromium cannot render:
 * said through `warn`, the reason returned). Returns the files written.
 */
export async function writeFigures(
  jobs: PlotJob[],
  format: 'png' | 'svg',
  warn: (line: string) => void,
  chromium?: string,
): Promise<{ files: string[]; pngFallback?: string }> {
  let pngFallback: string | undefined;
  if (format === 'png') {
    const why = await renderPngs(jobs, chromium);
    if (why) {
      pngFallback = why;
      warn(`PNG figures not rendered: ${why}; writing SVG figures instead`);
    }
  }
  const files = jobs.map((j) => (format === 'svg' || pngFallback ? j.file.replace(/\.png$/, '.svg') : j.file));
  jobs.forEach((j, i) => {
    if (files[i].endsWith('.svg')) writeFileAtomic(files[i], j.svg + '\n');
  });
  return pngFallback ? { files, pngFallback } : { files };
}

/** The whole command without the flag parsing: load, plot, write. */
export async function writeReport(opts: ReportOptions): Promise<ReportOutcome> {
  const warn = opts.warn ?? ((s: string) => console.error(`warning: ${s}`));
  const runs = opts.runs.map((d) => loadRun(d, warn));
  const out = resolve(opts.out);
  const plotDir = resolve(opts.plots);
  mkdirSync(plotDir, { recursive: true });
  mkdirSync(dirname(out), { recursive: true });
  const stems = plotStems(runs);
  const jobs: PlotJob[] = runs.map((r, i) => {
    return { ...plotFigure(plotTitle(r), plotSeries(r)), file: join(plotDir, `${stems[i]}.png`) };
  });
  const { files, pngFallback } = await writeFigures(jobs, opts.format, warn, opts.chromium);
  const note = pngFallback ? `_Figures are SVG because the PNG rendering failed: ${pngFallback}._` : undefined;
  const generated = buildReport(
    runs,
    files.map((f) => linkPath(out, f)),
    process.cwd(),
    note,
  );
  const existing = existsSync(out) ? readFileSync(out, 'utf8') : null;
  writeFileSync(out, spliceReport(existing, generated, out));
  return {
    out,
    plots: files,
    ...(pngFallback ? { pngFallback } : {}),
    acceptance: runs.map((r) => ({ run: r.dir, divergence: r.cfg.divergence, verdict: acceptance(r).verdict })),
  };
}

export async function run(argv: string[]): Promise<number> {
  const f = parseFlags(argv, FLAGS, SYNOPSIS);
  if (!f) return 0;
  const runs = listFlag(f, 'run')
    .flatMap((v) => v.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  if (runs.length === 0) throw new UsageError('--run DIR is required (a distill run folder; repeat for several runs)');
  const format = String(f.format);
  if (format !== 'png' && format !== 'svg') throw new UsageError(`--format must be png or svg, got "${format}"`);
  // A ReportError names the file at fault; the dispatcher prints it as "sdtt report: error: ..." with exit code 1.
  const outcome = await writeReport({ runs, out: String(f.out), plots: String(f.plots), format });
  for (const a of outcome.acceptance) console.error(`${basename(a.run)} (${a.divergence}): acceptance ${a.verdict}`);
  console.error(`wrote ${outcome.out} and ${outcome.plots.length} figure(s) in ${dirname(outcome.plots[0])}`);
  console.log(JSON.stringify(outcome));
  return 0;
}
