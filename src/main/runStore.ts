// RunStore owns the runs folder: one directory per run with run.json (config + status), metrics.jsonl,
// rounds.jsonl, samples/ and checkpoints/. The folder is the source of truth and survives crashes, so every
// write here is either an append of whole lines or a write-to-temp-then-rename.
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { writeFileAtomic } from '../shared/atomicFile.ts';
import { join, resolve } from 'node:path';
import { RunRecord, type RunStatus } from '../shared/runState.ts';

export class RunStoreError extends Error {}

export class RunStore {
  readonly root: string;

  constructor(workspace: string) {
    this.root = resolve(workspace, 'runs');
  }

  dir(id: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(id)) throw new RunStoreError(`invalid run id "${id}": use letters, digits, '.', '_' and '-' (max 128)`);
    return join(this.root, id);
  }

  exists(id: string): boolean {
    return existsSync(join(this.dir(id), 'run.json'));
  }

  create(record: RunRecord): RunRecord {
    const dir = this.dir(record.id);
    if (existsSync(join(dir, 'run.json'))) throw new RunStoreError(`run "${record.id}" already exists in ${this.root}`);
    mkdirSync(join(dir, 'checkpoints'), { recursive: true });
    mkdirSync(join(dir, 'samples'), { recursive: true });
    this.write(record);
    return record;
  }

  read(id: string): RunRecord {
    const file = join(this.dir(id), 'run.json');
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new RunStoreError(`cannot read ${file}: ${(e as Error).message}`);
    }
    const parsed = RunRecord.safeParse(raw);
    if (!parsed.success) throw new RunStoreError(`${file} is not a valid run record: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    // The folder name is the id: a run folder copied or renamed (runs/demo -> runs/demo-old) is that folder's run,
    // not a second "demo" whose files would be looked for in runs/demo.
    return { ...parsed.data, id };
  }

  list(): RunRecord[] {
    if (!existsSync(this.root)) return [];
    const out: RunRecord[] = [];
    for (const id of readdirSync(this.root).sort()) {
      try {
        out.push(this.read(id));
      } catch {
        // A folder that is not a run (or a half-created one) is not listed; it is never deleted either. Run ids never
        // start with '.', so the workspace caches in runs/.cache (e.g. engine/teacherEvalCache.ts) are never runs.
      }
    }
    return out;
  }

  /** Merges `patch` into run.json atomically and returns the new record. */
  update(id: string, patch: Partial<RunRecord>): RunRecord {
    const next = { ...this.read(id), ...patch, updatedAt: new Date().toISOString() };
    this.write(next);
    return next;
  }

  setStatus(id: string, status: RunStatus, reason?: string): RunRecord {
    return this.update(id, { status, reason });
  }

  appendMetric(id: string, metric: Record<string, unknown>): void {
    appendFileSync(join(this.dir(id), 'metrics.jsonl'), JSON.stringify(metric) + '\n');
  }

  appendRound(id: string, round: Record<string, unknown>): void {
    appendFileSync(join(this.dir(id), 'rounds.jsonl'), JSON.stringify(round) + '\n');
  }

  /** Metrics lines; a torn last line (process killed mid-write) is skipped, not fatal. */
  readMetrics(id: string): Record<string, unknown>[] {
    return readJsonLines(join(this.dir(id), 'metrics.jsonl'));
  }

  readRounds(id: string): Record<string, unknown>[] {
    return readJsonLines(join(this.dir(id), 'rounds.jsonl'));
  }

  /** Drops metric lines logged after `step` (they came from work lost in a crash and will be redone). */
  truncateMetricsAfter(id: string, step: number): void {
    const file = join(this.dir(id), 'metrics.jsonl');
    if (!existsSync(file)) return;
    const kept = readJsonLines(file).filter((m) => typeof m.step !== 'number' || m.step <= step);
    writeFileAtomic(file, kept.map((m) => JSON.stringify(m) + '\n').join(''));
  }

  checkpointsDir(id: string): string {
    return join(this.dir(id), 'checkpoints');
  }

  samplesDir(id: string): string {
    return join(this.dir(id), 'samples');
  }

  private write(record: RunRecord): void {
    const checked = RunRecord.parse(record);
    writeFileAtomic(join(this.dir(record.id), 'run.json'), JSON.stringify(checked, null, 2) + '\n');
  }
}

export function readJsonLines(file: string): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  const out: Record<string, unknown>[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // torn line from a killed writer
    }
  }
  return out;
}

