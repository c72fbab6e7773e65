// On-disk readers for a run folder (besides run.json / metrics.jsonl, owned by RunStore). Pure Node, no tfjs.
//
// On-disk shapes read here:
//   runs/<id>/rounds.jsonl   one JSON object per finished round; read leniently into RoundSummary:
//                            { round, teacherSteps, studentSteps, label?, status? ('done' if absent), firstStep?,
//                              lastStep?, eval?: [{ steps, gen_ppl, gen_ppl_se, entropy, known_words? }], heldoutNelbo?,
//                              checkpoint?: "<path>" }  (firstStep/lastStep: completed-step counts, 1-based;
//                              gen_ppl/gen_ppl_se null without a judge)
//                            `checkpoint` (relative to the run folder, or absolute inside it) names the round's
//                            student checkpoint; without it, checkpoints/<lastStep> is used.
//   runs/<id>/teacher-eval.json  a distillation's round −1 evaluation (engine/sdtt/distillEval.ts); its `rows`
//                            have the eval row shape above; read leniently, like rounds.jsonl.
//   runs/<id>/samples/*.json each file holds a JSON array of SampleCell (shared/api.ts), or one SampleCell object,
//                            or { "cells": SampleCell[] }; conventionally named <round>-<steps>.json (round -1 =
//                            the teacher). Cells that do not match the SampleCell shape are skipped with a warning.
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { z } from 'zod';
import { ApiError, type EvalSummaryRow, type MetricPoint, type RoundSummary, type SampleCell } from '../shared/api.ts';
import type { RunRecord } from '../shared/runState.ts';
import { latestCheckpoint, resolveCheckpointDir } from './checkpoint.ts';
import { brokenLinkReason } from './safetensorsFile.ts';
import { MAX_HEADER_BYTES } from './safetensors.ts';
import { readTeacherEval } from './runFolder.ts';

/** A metrics.jsonl row as an API MetricPoint. */
export function toMetricPoint(m: Record<string, unknown>): MetricPoint {
  return { ...m, type: m.type === 'eval' ? 'eval' : 'train', step: typeof m.step === 'number' ? m.step : 0 };
}

// gen_ppl / gen_ppl_se are null when the run has no judge (entropy is still computed); known_words is absent in
// runs evaluated before it existed.
const EvalRow = z.object({
  steps: z.number(),
  gen_ppl: z.number().nullable(),
  gen_ppl_se: z.number().nullable(),
  entropy: z.number(),
  known_words: z.number().nullable().optional(),
}) satisfies z.ZodType<EvalSummaryRow>;

/** The well-formed rows of an `eval` / `rows` array (others dropped); undefined when `v` is not an array. */
function evalRows(v: unknown): EvalSummaryRow[] | undefined {
  return Array.isArray(v)
    ? v.flatMap((r) => {
        const p = EvalRow.safeParse(r);
        return p.success ? [p.data] : [];
      })
    : undefined;
}

/** The teacher's well-formed rows and judge folder from the run's teacher evaluation; undefined when it is missing
 * or unreadable (a run that has not evaluated its teacher yet, or not a distillation): the grid and table still
 * work without the teacher's line. */
export function teacherEvalRows(runDir: string): { rows: EvalSummaryRow[]; judge: string | null } | undefined {
  const raw = readTeacherEval(runDir);
  const rows = raw ? evalRows(raw.rows) : undefined;
  return rows ? { rows, judge: typeof raw!.judge === 'string' ? raw!.judge : null } : undefined;
}

export function normaliseRound(
  line: Record<string, unknown> | undefined,
): (RoundSummary & { checkpoint?: string }) | null {
  if (!line || typeof line !== 'object' || typeof line.round !== 'number' || !Number.isInteger(line.round)) return null;
  const num = (v: unknown, d = 0) => (typeof v === 'number' && Number.isFinite(v) ? v : d);
  const teacherSteps = num(line.teacherSteps);
  const studentSteps = num(line.studentSteps);
  const status = line.status === 'pending' || line.status === 'running' ? line.status : 'done';
  const rows = evalRows(line.eval);
  return {
    round: line.round,
    teacherSteps,
    studentSteps,
    label: typeof line.label === 'string' ? line.label : `R${line.round}: ${teacherSteps} -> ${studentSteps} steps`,
    status,
    firstStep: num(line.firstStep),
    lastStep: num(line.lastStep),
    ...(rows ? { eval: rows } : {}),
    ...(typeof line.heldoutNelbo === 'number' && Number.isFinite(line.heldoutNelbo)
      ? { heldoutNelbo: line.heldoutNelbo }
      : {}),
    ...(typeof line.checkpoint === 'string' ? { checkpoint: line.checkpoint } : {}),
  };
}

/** SampleCell as stored in runs/<id>/samples/*.json (see the header comment). */
const SampleCellSchema = z.object({
  round: z.number().int().min(-1),
  steps: z.number().int().min(0),
  seed: z.number().int(),
  text: z.string(),
  genPpl: z.number().nullable(),
  entropy: z.number(),
  latencyMs: z.number(),
  // Spans the cell cannot use are dropped, not the cell: the text is still worth showing.
  inventedWords: z
    .array(z.tuple([z.number().int().min(0), z.number().int().min(0)]))
    .optional()
    .catch(undefined),
  trajectory: z.array(z.array(z.number().int())).optional(),
  tokenTexts: z.array(z.string()).optional(),
}) satisfies z.ZodType<SampleCell>;

export function readJsonObject(file: string): Record<string, unknown> {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${file}: not a JSON object`);
  return raw as Record<string, unknown>;
}

/** Arch and parameter count of a checkpoint folder from config.json and model.safetensors' header (no weights read). */
export function describeCheckpoint(dir: string): { arch: 'mdlm' | 'ar'; params: number; label?: string } {
  const cfg = readJsonObject(join(dir, 'config.json'));
  if (cfg.arch !== 'mdlm' && cfg.arch !== 'ar')
    throw new Error(`${dir}/config.json: arch ${JSON.stringify(cfg.arch)} is neither "mdlm" nor "ar"`);
  const params = safetensorsParamCount(join(dir, 'model.safetensors'));
  const label = typeof cfg.label === 'string' ? cfg.label : typeof cfg.name === 'string' ? cfg.name : undefined;
  return { arch: cfg.arch, params, ...(label ? { label } : {}) };
}

/** Sum of the element counts in a safetensors file's header (reads only the header). */
export function safetensorsParamCount(file: string): number {
  const fd = openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    if (readSync(fd, len, 0, 8, 0) !== 8) throw new Error(`${file}: too short for a safetensors file`);
    const n = Number(len.readBigUInt64LE(0));
    if (n < 2 || n > MAX_HEADER_BYTES) throw new Error(`${file}: header length ${n} is out of range`);
    const head = Buffer.alloc(n);
    if (readSync(fd, head, 0, n, 8) !== n) throw new Error(`${file}: truncated header`);
    const header = JSON.parse(head.toString('utf8')) as Record<string, { shape?: unknown }>;
    let total = 0;
    for (const [k, v] of Object.entries(header)) {
      if (k === '__metadata__') continue;
      if (!v || !Array.isArray(v.shape) || !v.shape.every((d) => Number.isInteger(d) && d >= 0))
        throw new Error(`${file}: tensor '${k}' has no valid shape`);
      total += (v.shape as number[]).reduce((a, b) => a * b, 1);
    }
    return total;
  } finally {
    closeSync(fd);
  }
}

/** Every SampleCell in runs/<id>/samples/*.json (`dir`), sorted by round, then steps (descending), then seed. */
export function readSampleCells(dir: string, warn: (line: string) => void): SampleCell[] {
  if (!existsSync(dir)) return [];
  const cells: SampleCell[] = [];
  for (const f of readdirSync(dir)
    .filter((n) => n.endsWith('.json'))
    .sort()) {
    const file = join(dir, f);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      warn(`skipping ${file}: ${(e as Error).message}`);
      continue;
    }
    const list = Array.isArray(raw)
      ? raw
      : raw && typeof raw === 'object' && Array.isArray((raw as { cells?: unknown }).cells)
        ? (raw as { cells: unknown[] }).cells
        : [raw];
    let bad = 0;
    for (const c of list) {
      const p = SampleCellSchema.safeParse(c);
      // genPpl < 0 is the placeholder older versions wrote for "no judge": read it as null.
      if (p.success) cells.push(p.data.genPpl !== null && p.data.genPpl < 0 ? { ...p.data, genPpl: null } : p.data);
      else bad++;
    }
    if (bad) warn(`${file}: skipped ${bad} entr${bad === 1 ? 'y' : 'ies'} that are not SampleCells`);
  }
  return cells.sort((a, b) => a.round - b.round || b.steps - a.steps || a.seed - b.seed);
}

/**
 * The checkpoint folder of `round` of run `rec` (-1: a pretraining run's latest checkpoint, or a distillation's
 * teacher; r: the student of finished round r, which must lie inside the run folder). Throws ApiError
 * (not-found | conflict) naming what is missing.
 */
export function roundCheckpoint(
  rec: RunRecord,
  round: number,
  rounds: (RoundSummary & { checkpoint?: string })[],
  paths: { runDir: string; checkpointsDir: string; workspace: string },
): { dir: string; step: number } {
  const { runDir, checkpointsDir: ckDir } = paths;
  let found: { dir: string; step: number } | null = null;
  if (round === -1 && rec.kind !== 'distill') {
    found = latestCheckpoint(ckDir);
    if (!found) throw new ApiError(`run "${rec.id}" has no checkpoint yet`, 'not-found');
  } else if (round === -1) {
    const teacher = typeof rec.config.teacher === 'string' ? resolve(paths.workspace, rec.config.teacher) : '';
    let dir: string;
    try {
      if (!teacher) throw new Error('no teacher');
      dir = resolveCheckpointDir(teacher);
    } catch {
      throw new ApiError(
        `run "${rec.id}": its teacher checkpoint (${String(rec.config.teacher)}) cannot be found`,
        'not-found',
      );
    }
    found = { dir, step: 0 };
  } else {
    const r = rounds.find((x) => x.round === round);
    if (!r || r.status !== 'done')
      throw new ApiError(
        `run "${rec.id}" has no finished round ${round}${
          rounds.length
            ? ` (finished: ${
                rounds
                  .filter((x) => x.status === 'done')
                  .map((x) => x.round)
                  .join(', ') || 'none'
              })`
            : ''
        }`,
        'not-found',
      );
    const dir = r.checkpoint ? resolve(runDir, r.checkpoint) : join(ckDir, String(r.lastStep));
    const rel = relative(runDir, dir);
    if (rel.startsWith('..') || isAbsolute(rel))
      throw new ApiError(`run "${rec.id}" round ${round}: checkpoint ${dir} lies outside the run folder`, 'conflict');
    refuseBrokenLinks(dir);
    if (!existsSync(join(dir, 'model.safetensors')))
      throw new ApiError(
        `run "${rec.id}" round ${round}: its checkpoint ${dir} is no longer on disk (only the last keepCheckpoints are kept)`,
        'not-found',
      );
    found = { dir, step: r.lastStep };
  }
  refuseBrokenLinks(found.dir);
  if (!existsSync(join(found.dir, 'config.json')) || !existsSync(join(found.dir, 'model.safetensors'))) {
    throw new ApiError(`${found.dir} is not a complete checkpoint (config.json + model.safetensors)`, 'not-found');
  }
  return found;
}

/** A checkpoint whose config.json or model.safetensors is a broken link is refused saying so (existsSync says only no). */
function refuseBrokenLinks(dir: string): void {
  for (const f of ['config.json', 'model.safetensors']) {
    const broken = brokenLinkReason(join(dir, f));
    if (broken) throw new ApiError(`${dir} is not a usable checkpoint: ${broken}`, 'conflict');
  }
}

/**
 * The training text of the model in `checkpointDir` of run `rec`, when it exists on this machine: the run's own
 * `data` (relative paths against the workspace), else the data a distilled checkpoint records (config.json
 * `sdtt.data`). undefined when neither names an existing path: the caller goes without the word check.
 */
export function trainingDataOf(rec: RunRecord, checkpointDir: string, workspace: string): string | undefined {
  const own = (rec.config as { data?: unknown }).data;
  if (typeof own === 'string' && own && existsSync(resolve(workspace, own))) return resolve(workspace, own);
  try {
    const prov = readJsonObject(join(checkpointDir, 'config.json')).sdtt as { data?: unknown } | undefined;
    if (typeof prov?.data === 'string' && isAbsolute(prov.data) && existsSync(prov.data)) return prov.data;
  } catch {
    // no readable config.json: no recorded data
  }
  return undefined;
}
