// The layout of a run folder, runs/<id>/ (docs/design/on-disk-format.md "Runs folder"): every file name in it is
// spelled here and nowhere else, with the readers and writers of its line files. The engine (which writes rounds,
// samples and the teacher's evaluation while it runs), main and the CLI all go through this module. Node only.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../node/atomicFile.ts';

/** Where each part of a run lives, from the run's folder. */
export const runPaths = {
  /** The run record: config, status, step, backend (RunStore reads and writes it). */
  record: (runDir: string) => join(runDir, 'run.json'),
  /** One JSON line per logged training / evaluation metric, appended. */
  metrics: (runDir: string) => join(runDir, 'metrics.jsonl'),
  /** One JSON line per finished distillation round, rewritten whole (upsertRoundLine). */
  rounds: (runDir: string) => join(runDir, 'rounds.jsonl'),
  /** A distillation's round −1 evaluation of its original teacher. */
  teacherEval: (runDir: string) => join(runDir, 'teacher-eval.json'),
  /** Sample cells, <round>-<steps>.json. */
  samples: (runDir: string) => join(runDir, 'samples'),
  /** Resumable checkpoints, one folder per step (checkpoint.ts). */
  checkpoints: (runDir: string) => join(runDir, 'checkpoints'),
  /** A distillation's student after round r, kept for good (never pruned). */
  roundCheckpoint: (runDir: string, round: number) => join(runDir, 'rounds', String(round)),
  /** The same, relative to the run folder, as a rounds line records it. */
  roundCheckpointName: (round: number) => join('rounds', String(round)),
};

/** The file name of a teacher evaluation inside another folder (the teacher-evaluation cache keeps a copy). */
export const TEACHER_EVAL_NAME = 'teacher-eval.json';

/** The JSON objects of a JSON-lines file; a torn line (process killed mid-write) is skipped, not fatal. */
export function readJsonLines(file: string): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  const out: Record<string, unknown>[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const v = JSON.parse(line);
      if (v && typeof v === 'object' && !Array.isArray(v)) out.push(v);
    } catch {
      // torn line from a killed writer
    }
  }
  return out;
}

/** The rounds file's lines that name a numeric round (torn or foreign lines skipped). */
export function readRoundLines(runDir: string): Record<string, unknown>[] {
  return readJsonLines(runPaths.rounds(runDir)).filter((l) => typeof l.round === 'number');
}

/**
 * Writes one round's line into the rounds file, replacing an earlier line of the same round (a run resumed from a
 * checkpoint before a round boundary redoes that round's end), lines ordered by round; temp + rename.
 */
export function upsertRoundLine(runDir: string, line: Record<string, unknown> & { round: number }): void {
  const lines = readRoundLines(runDir).filter((l) => l.round !== line.round);
  lines.push(line);
  lines.sort((a, b) => (a.round as number) - (b.round as number));
  writeFileAtomic(runPaths.rounds(runDir), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
}

/** The teacher evaluation as written (a JSON object), or null when it is missing or unreadable. */
export function readTeacherEval<T extends object = Record<string, unknown>>(runDir: string): T | null {
  const f = runPaths.teacherEval(runDir);
  if (!existsSync(f)) return null;
  try {
    const v = JSON.parse(readFileSync(f, 'utf8')) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as T) : null;
  } catch {
    return null; // torn or foreign
  }
}
