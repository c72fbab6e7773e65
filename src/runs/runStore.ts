// RunStore: the runs folder as a set of runs, one directory each (layout: runFolder.ts). It creates, lists and
// deletes run folders and is the writer of each run's record (run.json: config + status) and metrics log; the
// engine writes the rounds, samples, teacher evaluation and checkpoints of a run itself, through runFolder.ts and
// checkpoint.ts. The folder is the source of truth and survives crashes, so every write here is either an append of
// whole lines or a write-to-temp-then-rename. A write that fails throws a FileWriteError naming the file ("disk full
// while writing .../metrics.jsonl"); a run's final status that cannot be written (the disk is full) is kept and
// written as soon as the disk lets it (updateEventually).
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { FileWriteError, appendFileLines, writeFileAtomic } from '../node/atomicFile.ts';
import { join, resolve } from 'node:path';
import { readJsonLines, runPaths } from './runFolder.ts';
import { RunId } from '../shared/messages.ts';
import { RunRecord, type RunStatus } from '../shared/runState.ts';

export class RunStoreError extends Error {}

/** The file writes a RunStore makes; injectable so that tests can simulate a full disk. */
export interface RunStoreWriter {
  /** Appends whole lines. */
  append(file: string, text: string): void;
  /** Replaces the file whole (temp + rename). */
  replace(file: string, text: string): void;
}

const NODE_WRITER: RunStoreWriter = { append: appendFileLines, replace: writeFileAtomic };

export interface RunStoreOptions {
  writer?: RunStoreWriter;
  /** How often a run.json patch that could not be written is tried again (updateEventually). Default 2000 ms. */
  retryMs?: number;
}

export class RunStore {
  readonly root: string;
  private readonly writer: RunStoreWriter;
  private readonly retryMs: number;
  /** run.json patches not written yet (disk full), by run id: merged into the next write, retried on a timer and at exit. */
  private readonly pending = new Map<string, Partial<RunRecord>>();
  private retryTimer: ReturnType<typeof setInterval> | null = null;
  private readonly flushAtExit = () => this.retryPending();

  constructor(workspace: string, opts: RunStoreOptions = {}) {
    this.root = resolve(workspace, 'runs');
    this.writer = opts.writer ?? NODE_WRITER;
    this.retryMs = opts.retryMs ?? 2000;
  }

  dir(id: string): string {
    if (!RunId.safeParse(id).success)
      throw new RunStoreError(`invalid run id "${id}": use letters, digits, '.', '_' and '-' (max 128)`);
    return join(this.root, id);
  }

  exists(id: string): boolean {
    return existsSync(runPaths.record(this.dir(id)));
  }

  create(record: RunRecord): RunRecord {
    const dir = this.dir(record.id);
    if (existsSync(runPaths.record(dir))) throw new RunStoreError(`run "${record.id}" already exists in ${this.root}`);
    try {
      mkdirSync(runPaths.checkpoints(dir), { recursive: true });
      mkdirSync(runPaths.samples(dir), { recursive: true });
    } catch (e) {
      throw FileWriteError.of(`creating ${dir}`, e);
    }
    this.write(record);
    return record;
  }

  read(id: string): RunRecord {
    const record = readRunRecord(runPaths.record(this.dir(id)));
    // The folder name is the id: a run folder copied or renamed (runs/demo -> runs/demo-old) is that folder's run,
    // not a second "demo" whose files would be looked for in runs/demo. A patch still waiting for disk space is
    // part of the record as this process knows it.
    return { ...record, ...this.pending.get(id), id };
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

  /** Merges `patch` into run.json atomically and returns the new record (with any patch still pending: see updateEventually). */
  update(id: string, patch: Partial<RunRecord>): RunRecord {
    const next = { ...this.read(id), ...patch, updatedAt: new Date().toISOString() };
    this.write(next);
    this.settlePending(id);
    return next;
  }

  /**
   * update(), for a patch that must not be lost (a run's final status): when the write fails (disk full), the patch
   * is kept (read() already shows it) and written with this store's next run.json write for the run, every retryMs
   * and at process exit, until one succeeds. Never throws for a failed write: returns null when written now, else the
   * write's error (what to tell the user).
   */
  updateEventually(id: string, patch: Partial<RunRecord>): FileWriteError | null {
    try {
      this.update(id, patch);
      return null;
    } catch (e) {
      if (!(e instanceof FileWriteError)) throw e;
      this.pending.set(id, { ...this.pending.get(id), ...patch });
      if (!this.retryTimer) {
        this.retryTimer = setInterval(() => this.retryPending(), this.retryMs);
        this.retryTimer.unref?.(); // never what keeps a process alive
        process.once('exit', this.flushAtExit);
      }
      return e;
    }
  }

  /** Run ids whose run.json still lacks a patch that could not be written (see updateEventually). */
  pendingIds(): string[] {
    return [...this.pending.keys()];
  }

  /** Tries to write every pending patch now (also done on the timer and at exit). */
  retryPending(): void {
    for (const id of [...this.pending.keys()]) {
      try {
        this.update(id, {});
      } catch {
        // still no space (or the run is gone): the next try
      }
    }
  }

  private settlePending(id: string): void {
    if (!this.pending.delete(id) || this.pending.size || !this.retryTimer) return;
    clearInterval(this.retryTimer);
    this.retryTimer = null;
    process.off('exit', this.flushAtExit);
  }

  setStatus(id: string, status: RunStatus, reason?: string): RunRecord {
    return this.update(id, { status, reason });
  }

  appendMetric(id: string, metric: Record<string, unknown>): void {
    this.put('append', runPaths.metrics(this.dir(id)), JSON.stringify(metric) + '\n');
  }

  /** Metrics lines; a torn last line (process killed mid-write) is skipped, not fatal. */
  readMetrics(id: string): Record<string, unknown>[] {
    return readJsonLines(runPaths.metrics(this.dir(id)));
  }

  readRounds(id: string): Record<string, unknown>[] {
    return readJsonLines(runPaths.rounds(this.dir(id)));
  }

  /** Drops metric lines logged after `step` (they came from work lost in a crash and will be redone). */
  truncateMetricsAfter(id: string, step: number): void {
    const file = runPaths.metrics(this.dir(id));
    if (!existsSync(file)) return;
    const kept = readJsonLines(file).filter((m) => typeof m.step !== 'number' || m.step <= step);
    this.put('replace', file, kept.map((m) => JSON.stringify(m) + '\n').join(''));
  }

  /**
   * Deletes the run folder and everything in it (checkpoints, rounds, samples, metrics). The caller checks that no
   * process runs it (runLifecycle.assertRemovable). Returns what was removed.
   */
  remove(id: string): { dir: string; files: number; bytes: number } {
    const dir = this.dir(id);
    if (!this.exists(id)) throw new RunStoreError(`no run "${id}" in ${this.root}`);
    const counted = countFiles(dir);
    rmSync(dir, { recursive: true, force: true });
    this.settlePending(id); // nothing left to record
    return { dir, ...counted };
  }

  checkpointsDir(id: string): string {
    return runPaths.checkpoints(this.dir(id));
  }

  samplesDir(id: string): string {
    return runPaths.samples(this.dir(id));
  }

  private write(record: RunRecord): void {
    const checked = RunRecord.parse(record);
    this.put('replace', runPaths.record(this.dir(record.id)), JSON.stringify(checked, null, 2) + '\n');
  }

  /** Every file write goes here: a failure is a FileWriteError naming the file, whatever the writer threw. */
  private put(how: 'append' | 'replace', file: string, text: string): void {
    try {
      this.writer[how](file, text);
    } catch (e) {
      throw FileWriteError.of(`writing ${file}`, e);
    }
  }
}

/** Files and bytes under `dir` (symbolic links counted, never followed). */
function countFiles(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      const sub = countFiles(p);
      files += sub.files;
      bytes += sub.bytes;
    } else {
      files++;
      try {
        bytes += lstatSync(p).size;
      } catch {
        // gone meanwhile
      }
    }
  }
  return { files, bytes };
}

/** Reads and validates a run record file (run.json); throws RunStoreError naming the file. */
export function readRunRecord(file: string): RunRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new RunStoreError(`${file}: cannot read: ${(e as Error).message}`);
  }
  const parsed = RunRecord.safeParse(raw);
  if (!parsed.success)
    throw new RunStoreError(
      `${file}: not a valid run record: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  return parsed.data;
}
