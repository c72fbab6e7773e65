// Checkpoints: one FOLDER per checkpoint (docs/design/on-disk-format.md "Runs folder", "Checkpoint format").
//   model.safetensors      parameters as named tensors (names and shapes from the param layout)
//   config.json            Hugging Face style: architectures, model_type, the ModelConfig fields flat, extras
//   optimizer.safetensors  optional: AdamW moments as m.<name> / v.<name>, step count in the metadata
//   ema.safetensors        optional: EMA weights, update count in the metadata
//   state.json             optional: step, rng state, data cursor, ... (anything JSON)
// A folder is written as <dir>.tmp (files fsynced) and renamed into place, so a crash or a full disk never leaves
// a half-written checkpoint under a name that listCheckpoints/loadCheckpoint would pick up, and never damages the
// previous checkpoint of the same name.
// This file holds the format (its types and constants), the save side and the runs/<id>/checkpoints listing;
// loading and validating a folder is checkpointLoad.ts.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelConfig, describeConfigError } from '../shared/config.ts';
import { describeFsError } from '../node/atomicFile.ts';
import { CheckpointError, encodeSafetensors, type SafetensorInput } from './safetensors.ts';
import { brokenLinkReason, hasEntry } from './safetensorsFile.ts';
import { runPaths } from './runFolder.ts';

export { CheckpointError } from './safetensors.ts';

/** One parameter tensor inside the flat parameter array (same layout for moments and EMA). */
export interface ParamLayoutEntry {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}
export type ParamLayout = ParamLayoutEntry[];

/** Written into every safetensors file's metadata. `format: 'pt'` is what transformers demands to load a file. */
export const FORMAT_TAG = 'sdtt-workbench/1';
export const MODEL_TYPES = { mdlm: 'sdtt-mdlm', ar: 'sdtt-ar' } as const;
const ARCHITECTURES = { mdlm: 'SdttMdlmDenoiser', ar: 'SdttArLM' } as const;
export const MODEL_KEYS = Object.keys(ModelConfig.shape);
const RESERVED_KEYS = new Set(['architectures', 'model_type', ...MODEL_KEYS]);

export interface CheckpointData {
  config: ModelConfig;
  layout: ParamLayout;
  params: Float32Array;
  ema?: Float32Array;
  /** Number of EMA updates so far (needed to resume the EMA warm-up); stored in ema.safetensors' metadata. */
  emaUpdates?: number;
  optimizer?: { m: Float32Array; v: Float32Array; step: number };
  state?: Record<string, unknown>;
  /** More top-level config.json keys, e.g. `tokenizer` and `sdtt` (provenance). Must not shadow model keys. */
  extraConfig?: Record<string, unknown>;
}

/** The one place files are written, so tests can simulate a full disk. Must write all of `data` and fsync. */
export type WriteFileDurable = (file: string, data: Uint8Array | string) => void;

export const writeFileDurable: WriteFileDurable = (file, data) => {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
};

/** Makes a rename durable. Directories cannot be opened for fsync on Windows; there it is skipped. */
function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // best effort: not supported on this platform / file system
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Throws unless `layout` tiles exactly `n` values (shared by the save and the load side). */
export function checkLayout(layout: ParamLayout, n: number, what: string): void {
  let total = 0;
  for (const e of layout) {
    const count = e.shape.reduce((a, b) => a * b, 1);
    if (count !== e.size) {
      throw new CheckpointError(
        `layout entry '${e.name}': shape [${e.shape.join(', ')}] has ${count} elements but size is ${e.size}`,
      );
    }
    if (e.offset < 0 || e.offset + e.size > n) {
      throw new CheckpointError(
        `layout entry '${e.name}' [${e.offset}, ${e.offset + e.size}) lies outside the ${n} ${what}`,
      );
    }
    total += e.size;
  }
  if (total !== n) throw new CheckpointError(`layout covers ${total} elements but there are ${n} ${what}`);
}

function tensorsFromFlat(layout: ParamLayout, flat: Float32Array, prefix = ''): Map<string, SafetensorInput> {
  const m = new Map<string, SafetensorInput>();
  for (const e of layout)
    m.set(prefix + e.name, { dtype: 'F32', shape: e.shape, data: flat.subarray(e.offset, e.offset + e.size) });
  return m;
}

/**
 * Writes a checkpoint folder atomically: everything goes to `<dir>.tmp` first; an existing `dir` is replaced only
 * once the new folder is complete (dir -> dir.old, tmp -> dir, remove dir.old). On any error the existing `dir`
 * is untouched, the temp folder is removed, and a CheckpointError explains what went wrong.
 */
export function saveCheckpoint(dir: string, ck: CheckpointData, write: WriteFileDurable = writeFileDurable): void {
  dir = path.resolve(dir);
  const parsed = ModelConfig.safeParse(ck.config);
  if (!parsed.success) {
    throw new CheckpointError(
      `cannot save checkpoint ${dir}: invalid model config\n${describeConfigError(parsed.error, 'config')}`,
    );
  }
  const n = ck.params.length;
  checkLayout(ck.layout, n, 'parameters');
  if (ck.ema && ck.ema.length !== n) {
    throw new CheckpointError(`cannot save checkpoint ${dir}: EMA has ${ck.ema.length} values for ${n} parameters`);
  }
  if (ck.optimizer && (ck.optimizer.m.length !== n || ck.optimizer.v.length !== n)) {
    throw new CheckpointError(
      `cannot save checkpoint ${dir}: optimizer moments have ` +
        `${ck.optimizer.m.length}/${ck.optimizer.v.length} values for ${n} parameters`,
    );
  }
  const clash = Object.keys(ck.extraConfig ?? {}).filter((k) => RESERVED_KEYS.has(k));
  if (clash.length)
    throw new CheckpointError(`cannot save checkpoint ${dir}: extraConfig must not set ${clash.join(', ')}`);

  // Serialise everything before touching the disk, so a bad value (e.g. a BigInt in state) fails without side effects.
  const cfg = parsed.data;
  const files: [string, Uint8Array | string][] = [];
  const modelMeta = { format: 'pt', sdtt_format: FORMAT_TAG, kind: 'model' };
  files.push(['model.safetensors', encodeSafetensors(tensorsFromFlat(ck.layout, ck.params), modelMeta)]);
  const configJson = {
    architectures: [ARCHITECTURES[cfg.arch]],
    model_type: MODEL_TYPES[cfg.arch],
    ...cfg,
    ...ck.extraConfig,
  };
  files.push(['config.json', JSON.stringify(configJson, null, 2) + '\n']);
  if (ck.optimizer) {
    const t = new Map([
      ...tensorsFromFlat(ck.layout, ck.optimizer.m, 'm.'),
      ...tensorsFromFlat(ck.layout, ck.optimizer.v, 'v.'),
    ]);
    const meta = { format: 'pt', sdtt_format: FORMAT_TAG, kind: 'adamw', step: String(ck.optimizer.step) };
    files.push(['optimizer.safetensors', encodeSafetensors(t, meta)]);
  }
  if (ck.ema) {
    const meta: Record<string, string> = { format: 'pt', sdtt_format: FORMAT_TAG, kind: 'ema' };
    if (ck.emaUpdates !== undefined) meta.updates = String(ck.emaUpdates);
    files.push(['ema.safetensors', encodeSafetensors(tensorsFromFlat(ck.layout, ck.ema), meta)]);
  }
  if (ck.state) {
    let text: string;
    try {
      text = JSON.stringify(ck.state, null, 2) + '\n';
    } catch (e) {
      throw new CheckpointError(
        `cannot save checkpoint ${dir}: state is not JSON-serialisable (${(e as Error).message})`,
      );
    }
    files.push(['state.json', text]);
  }

  const tmp = dir + '.tmp';
  const old = dir + '.old';
  let action = `preparing ${tmp}`;
  try {
    fs.rmSync(tmp, { recursive: true, force: true }); // leftover of an earlier crash
    fs.mkdirSync(tmp, { recursive: true });
    for (const [name, data] of files) {
      action = `writing ${path.join(tmp, name)}`;
      write(path.join(tmp, name), data);
    }
    fsyncDir(tmp);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new CheckpointError(
      `checkpoint ${dir} not saved (previous one left as it was): ${describeFsError(err, action)}`,
    );
  }

  // Swap: the old folder stays complete until the new one has its final name.
  let movedOld = false;
  try {
    action = `replacing ${dir}`;
    fs.rmSync(old, { recursive: true, force: true });
    if (fs.existsSync(dir)) {
      fs.renameSync(dir, old);
      movedOld = true;
    }
    fs.renameSync(tmp, dir);
  } catch (err) {
    if (movedOld && !fs.existsSync(dir)) fs.renameSync(old, dir);
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new CheckpointError(
      `checkpoint ${dir} not saved (previous one left as it was): ${describeFsError(err, action)}`,
    );
  }
  fs.rmSync(old, { recursive: true, force: true });
  fsyncDir(path.dirname(dir));
}

// ------------------------------------------------------------------------------------------------ runs/<id>/checkpoints

/** Folder of the checkpoint for `step` inside a run's checkpoints folder. */
export function checkpointDir(runCheckpointsDir: string, step: number): string {
  return path.join(runCheckpointsDir, String(step));
}

/**
 * Steps that have a complete checkpoint, ascending. Only folders named by a plain integer count (so `.tmp` and `.old`
 * leftovers of an interrupted save never show up), and only if they hold a model.safetensors (a broken link counts:
 * loading it says what is wrong, rather than an older checkpoint being taken in silence).
 */
export function listCheckpoints(runCheckpointsDir: string): number[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(runCheckpointsDir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return entries
    .filter(
      (e) =>
        e.isDirectory() && /^\d+$/.test(e.name) && hasEntry(path.join(runCheckpointsDir, e.name, 'model.safetensors')),
    )
    .map((e) => Number(e.name))
    .sort((a, b) => a - b);
}

/** The newest complete checkpoint, or null when there is none. */
export function latestCheckpoint(runCheckpointsDir: string): { step: number; dir: string } | null {
  const steps = listCheckpoints(runCheckpointsDir);
  if (!steps.length) return null;
  const step = steps[steps.length - 1];
  return { step, dir: checkpointDir(runCheckpointsDir, step) };
}

/**
 * Resolves a user-given path to a checkpoint folder (one holding config.json + model.safetensors): the folder
 * itself, or a run folder's (or a checkpoints folder's) latest checkpoint. Throws CheckpointError saying why not.
 */
export function resolveCheckpointDir(given: string): string {
  const p = path.resolve(given);
  const broken = brokenLinkReason(p);
  if (broken) throw new CheckpointError(`${given} is not a model folder: ${broken}`);
  if (fs.existsSync(path.join(p, 'config.json'))) return p;
  const ckDir = fs.existsSync(runPaths.checkpoints(p)) ? runPaths.checkpoints(p) : p;
  let latest: ReturnType<typeof latestCheckpoint>;
  try {
    latest = latestCheckpoint(ckDir);
  } catch (e) {
    throw new CheckpointError(
      `${given}: cannot list ${ckDir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): not a checkpoint folder or a run folder`,
    );
  }
  if (latest) return latest.dir;
  throw new CheckpointError(
    `${given} is neither a checkpoint folder (config.json + model.safetensors) nor a run folder with checkpoints`,
  );
}

/** Deletes all but the newest `keep` checkpoints; returns the steps removed. */
export function pruneCheckpoints(runCheckpointsDir: string, keep: number): number[] {
  if (!Number.isInteger(keep) || keep < 1)
    throw new Error(`pruneCheckpoints: keep must be an integer >= 1, got ${keep}`);
  const steps = listCheckpoints(runCheckpointsDir);
  const doomed = steps.slice(0, Math.max(0, steps.length - keep));
  for (const s of doomed) fs.rmSync(checkpointDir(runCheckpointsDir, s), { recursive: true, force: true });
  return doomed;
}
