// Checkpoints: one FOLDER per checkpoint (docs/design/on-disk-format.md "Runs folder", "Checkpoint format").
//   model.safetensors      parameters as named tensors (names and shapes from the param layout)
//   config.json            Hugging Face style: architectures, model_type, the ModelConfig fields flat, extras
//   optimizer.safetensors  optional: AdamW moments as m.<name> / v.<name>, step count in the metadata
//   ema.safetensors        optional: EMA weights, update count in the metadata
//   state.json             optional: step, rng state, data cursor, ... (anything JSON)
// A folder is written as <dir>.tmp (files fsynced) and renamed into place, so a crash or a full disk never leaves
// a half-written checkpoint under a name that listCheckpoints/loadCheckpoint would pick up, and never damages the
// previous checkpoint of the same name.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelConfig, describeConfigError } from '../shared/config.ts';
import { describeFsError } from '../node/atomicFile.ts';
import { CheckpointError, encodeSafetensors, type SafetensorEntry, type SafetensorInput } from './safetensors.ts';
import { brokenLinkReason, hasEntry, readSafetensorsFile } from './safetensorsFile.ts';

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
const MODEL_TYPES = { mdlm: 'sdtt-mdlm', ar: 'sdtt-ar' } as const;
const ARCHITECTURES = { mdlm: 'SdttMdlmDenoiser', ar: 'SdttArLM' } as const;
const MODEL_KEYS = Object.keys(ModelConfig.shape);
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

/** What loadCheckpoint returns: CheckpointData, with extraConfig always present. */
export interface LoadedCheckpoint extends Omit<CheckpointData, 'extraConfig'> {
  /** config.json keys other than architectures, model_type and the ModelConfig fields (tokenizer, sdtt, ...). */
  extraConfig: Record<string, unknown>;
  /** model.safetensors' metadata (an export records `weights: ema` there: its parameters are EMA weights). */
  modelMetadata: Record<string, string>;
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

function checkLayout(layout: ParamLayout, n: number, what: string): void {
  let total = 0;
  for (const e of layout) {
    const count = e.shape.reduce((a, b) => a * b, 1);
    if (count !== e.size) throw new CheckpointError(`layout entry '${e.name}': shape [${e.shape.join(', ')}] has ${count} elements but size is ${e.size}`);
    if (e.offset < 0 || e.offset + e.size > n) throw new CheckpointError(`layout entry '${e.name}' [${e.offset}, ${e.offset + e.size}) lies outside the ${n} ${what}`);
    total += e.size;
  }
  if (total !== n) throw new CheckpointError(`layout covers ${total} elements but there are ${n} ${what}`);
}

function tensorsFromFlat(layout: ParamLayout, flat: Float32Array, prefix = ''): Map<string, SafetensorInput> {
  const m = new Map<string, SafetensorInput>();
  for (const e of layout) m.set(prefix + e.name, { dtype: 'F32', shape: e.shape, data: flat.subarray(e.offset, e.offset + e.size) });
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
  if (!parsed.success) throw new CheckpointError(`cannot save checkpoint ${dir}: invalid model config\n${describeConfigError(parsed.error, 'config')}`);
  const n = ck.params.length;
  checkLayout(ck.layout, n, 'parameters');
  if (ck.ema && ck.ema.length !== n) throw new CheckpointError(`cannot save checkpoint ${dir}: EMA has ${ck.ema.length} values for ${n} parameters`);
  if (ck.optimizer && (ck.optimizer.m.length !== n || ck.optimizer.v.length !== n)) {
    throw new CheckpointError(`cannot save checkpoint ${dir}: optimizer moments have ${ck.optimizer.m.length}/${ck.optimizer.v.length} values for ${n} parameters`);
  }
  const clash = Object.keys(ck.extraConfig ?? {}).filter((k) => RESERVED_KEYS.has(k));
  if (clash.length) throw new CheckpointError(`cannot save checkpoint ${dir}: extraConfig must not set ${clash.join(', ')}`);

  // Serialise everything before touching the disk, so a bad value (e.g. a BigInt in state) fails without side effects.
  const cfg = parsed.data;
  const files: [string, Uint8Array | string][] = [];
  files.push(['model.safetensors', encodeSafetensors(tensorsFromFlat(ck.layout, ck.params), { format: 'pt', sdtt_format: FORMAT_TAG, kind: 'model' })]);
  const configJson = { architectures: [ARCHITECTURES[cfg.arch]], model_type: MODEL_TYPES[cfg.arch], ...cfg, ...ck.extraConfig };
  files.push(['config.json', JSON.stringify(configJson, null, 2) + '\n']);
  if (ck.optimizer) {
    const t = new Map([...tensorsFromFlat(ck.layout, ck.optimizer.m, 'm.'), ...tensorsFromFlat(ck.layout, ck.optimizer.v, 'v.')]);
    files.push(['optimizer.safetensors', encodeSafetensors(t, { format: 'pt', sdtt_format: FORMAT_TAG, kind: 'adamw', step: String(ck.optimizer.step) })]);
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
      throw new CheckpointError(`cannot save checkpoint ${dir}: state is not JSON-serialisable (${(e as Error).message})`);
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
    throw new CheckpointError(`checkpoint ${dir} not saved (previous one left as it was): ${describeFsError(err, action)}`);
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
    throw new CheckpointError(`checkpoint ${dir} not saved (previous one left as it was): ${describeFsError(err, action)}`);
  }
  fs.rmSync(old, { recursive: true, force: true });
  fsyncDir(path.dirname(dir));
}

// ------------------------------------------------------------------------------------------------------------ load

function listing(dir: string): string {
  const names = fs.readdirSync(dir);
  return names.length ? names.join(', ') : 'nothing (empty folder)';
}

function sample(names: string[], max = 8): string {
  return names.slice(0, max).join(', ') + (names.length > max ? `, ... (${names.length} in all)` : '');
}

/**
 * Non-finite values per tensor, or "" when every value is finite. Weights with a NaN or an infinity produce empty or
 * meaningless samples and NaN losses far from their cause, so every loader refuses them here, naming the tensors.
 */
function nonFiniteReport(tensors: Map<string, SafetensorEntry>, names: Iterable<string>): string {
  const bad: string[] = [];
  for (const name of names) {
    const data = tensors.get(name)?.data;
    if (!(data instanceof Float32Array || data instanceof Float64Array)) continue;
    let nan = 0;
    let inf = 0;
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v - v !== 0) Number.isNaN(v) ? nan++ : inf++;
    }
    if (nan || inf) bad.push(`'${name}' (${[nan ? `${nan} NaN` : '', inf ? `${inf} Inf` : ''].filter(Boolean).join(', ')} of ${data.length} values)`);
  }
  if (!bad.length) return '';
  return `non-finite weights in ${bad.length} tensor${bad.length > 1 ? 's' : ''}: ${sample(bad, 4)} (a diverged run or a corrupt file; not loaded)`;
}

/** Reassembles a flat array from named tensors; every layout tensor must exist with its exact shape, and nothing else. */
function flatFromTensors(file: string, tensors: Map<string, SafetensorEntry>, layout: ParamLayout, n: number, prefixes: string[]): Float32Array[] {
  const expected = new Set<string>();
  for (const p of prefixes) for (const e of layout) expected.add(p + e.name);
  const found = [...tensors.keys()];
  const missing = [...expected].filter((k) => !tensors.has(k));
  const unknown = found.filter((k) => !expected.has(k));
  if (missing.length === expected.size && found.length > 0) {
    throw new CheckpointError(
      `${file}: not an SDTT workbench checkpoint: it holds ${found.length} tensor${found.length === 1 ? '' : 's'} (${sample(found, 5)}) and none of the ${expected.size} expected (${sample([...expected], 5)})`,
    );
  }
  if (missing.length || unknown.length) {
    const parts = [];
    if (missing.length) parts.push(`missing tensors: ${sample(missing)}`);
    if (unknown.length) parts.push(`unexpected tensors: ${sample(unknown)}`);
    throw new CheckpointError(`${file} does not match config.json: ${parts.join('; ')}`);
  }
  const nonFinite = nonFiniteReport(tensors, expected);
  if (nonFinite) throw new CheckpointError(`${file}: ${nonFinite}`);
  return prefixes.map((p) => {
    const flat = new Float32Array(n);
    for (const e of layout) {
      const t = tensors.get(p + e.name)!;
      if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) {
        throw new CheckpointError(`${file}: tensor '${p + e.name}' has shape [${t.shape.join(', ')}] but the config needs [${e.shape.join(', ')}]`);
      }
      // F64/BF16/F16 (e.g. a PyTorch export) are widened or narrowed to float32; integer tensors make no sense here.
      if (!(t.data instanceof Float32Array || t.data instanceof Float64Array)) {
        throw new CheckpointError(`${file}: tensor '${p + e.name}' has dtype ${t.dtype}; weights must be a float type`);
      }
      flat.set(t.data, e.offset);
    }
    return flat;
  });
}

function metaInt(file: string, meta: Record<string, string>, key: string, required: boolean): number | undefined {
  const raw = meta[key];
  if (raw === undefined) {
    if (required) throw new CheckpointError(`${file}: metadata lacks '${key}'`);
    return undefined;
  }
  const v = Number(raw);
  if (!Number.isSafeInteger(v) || v < 0) throw new CheckpointError(`${file}: metadata '${key}' = ${JSON.stringify(raw)} is not a non-negative integer`);
  return v;
}

/** Normalised key for spotting near misses such as n_layers / nlayers for nLayers. */
const squash = (k: string) => k.toLowerCase().replace(/[_-]/g, '');

/**
 * Reads and validates a checkpoint folder. `layoutFor` maps a config to its parameter layout (passed in so this file
 * does not depend on the model). With `expectConfig`, a checkpoint for a different model is refused.
 */
export function loadCheckpoint(
  dir: string,
  opts: { layoutFor: (cfg: ModelConfig) => ParamLayout; expectConfig?: ModelConfig },
): LoadedCheckpoint {
  dir = path.resolve(dir);
  const brokenDir = brokenLinkReason(dir);
  if (brokenDir) throw new CheckpointError(`no checkpoint folder at ${dir}: ${brokenDir}`);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new CheckpointError(`no checkpoint folder at ${dir}`);
  const configFile = path.join(dir, 'config.json');
  const brokenConfig = brokenLinkReason(configFile);
  if (brokenConfig) throw new CheckpointError(`${dir}: cannot read config.json: ${brokenConfig}`);
  if (!fs.existsSync(configFile)) {
    throw new CheckpointError(`${dir} is not an SDTT workbench checkpoint: no config.json (found: ${listing(dir)})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`${configFile}: not valid JSON (${(e as Error).message})`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new CheckpointError(`${configFile}: not a JSON object`);
  const obj = raw as Record<string, unknown>;
  const modelType = obj.model_type;
  if (typeof modelType !== 'string' || !Object.values(MODEL_TYPES).includes(modelType as never)) {
    throw new CheckpointError(
      `${dir} is not an SDTT workbench checkpoint: config.json has model_type ${JSON.stringify(modelType)} (expected ${Object.values(MODEL_TYPES).join(' or ')}); found: ${listing(dir)}`,
    );
  }

  const modelPart: Record<string, unknown> = {};
  const extraConfig: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [k, v] of Object.entries(obj)) {
    if (MODEL_KEYS.includes(k)) modelPart[k] = v;
    else if (k === 'architectures' || k === 'model_type') continue;
    else {
      // Unknown keys are allowed (HF configs carry extras), but a misspelt model key would silently get its default.
      const near = MODEL_KEYS.find((m) => squash(m) === squash(k));
      if (near) problems.push(`${configFile}: ${k}: unknown key, did you mean '${near}'?`);
      extraConfig[k] = v;
    }
  }
  const parsed = ModelConfig.safeParse(modelPart);
  if (!parsed.success) problems.push(describeConfigError(parsed.error, configFile));
  if (problems.length || !parsed.success) throw new CheckpointError(`invalid checkpoint config: ${problems.join('; ')}`);
  const config = parsed.data;
  if (MODEL_TYPES[config.arch] !== modelType) {
    throw new CheckpointError(`${configFile}: model_type '${modelType}' contradicts arch '${config.arch}'`);
  }
  if (opts.expectConfig) {
    const want = ModelConfig.parse(opts.expectConfig);
    const diffs = MODEL_KEYS.filter((k) => (want as Record<string, unknown>)[k] !== (config as Record<string, unknown>)[k]).map(
      (k) => `${k}: checkpoint ${JSON.stringify((config as Record<string, unknown>)[k])}, expected ${JSON.stringify((want as Record<string, unknown>)[k])}`,
    );
    if (diffs.length) throw new CheckpointError(`checkpoint ${dir} was made for a different model:\n${diffs.join('\n')}`);
  }

  const layout = opts.layoutFor(config);
  const n = layout.reduce((a, e) => a + e.size, 0);
  checkLayout(layout, n, 'parameters');

  const modelFile = path.join(dir, 'model.safetensors');
  if (!hasEntry(modelFile)) throw new CheckpointError(`${dir}: config.json present but no model.safetensors (found: ${listing(dir)})`);
  const model = readSafetensorsFile(modelFile);
  const [params] = flatFromTensors(modelFile, model.tensors, layout, n, ['']);
  const out: LoadedCheckpoint = { config, layout, params, extraConfig, modelMetadata: model.metadata };

  const emaFile = path.join(dir, 'ema.safetensors');
  if (hasEntry(emaFile)) {
    const d = readSafetensorsFile(emaFile);
    [out.ema] = flatFromTensors(emaFile, d.tensors, layout, n, ['']);
    const updates = metaInt(emaFile, d.metadata, 'updates', false);
    if (updates !== undefined) out.emaUpdates = updates;
  }
  const optFile = path.join(dir, 'optimizer.safetensors');
  if (hasEntry(optFile)) {
    const d = readSafetensorsFile(optFile);
    const [m, v] = flatFromTensors(optFile, d.tensors, layout, n, ['m.', 'v.']);
    out.optimizer = { m, v, step: metaInt(optFile, d.metadata, 'step', true)! };
  }
  const stateFile = path.join(dir, 'state.json');
  if (hasEntry(stateFile)) {
    const broken = brokenLinkReason(stateFile);
    if (broken) throw new CheckpointError(broken);
    let state: unknown;
    try {
      state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
    } catch (e) {
      throw new CheckpointError(`${stateFile}: not valid JSON (${(e as Error).message})`);
    }
    if (state === null || typeof state !== 'object' || Array.isArray(state)) throw new CheckpointError(`${stateFile}: not a JSON object`);
    out.state = state as Record<string, unknown>;
  }
  return out;
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
    .filter((e) => e.isDirectory() && /^\d+$/.test(e.name) && hasEntry(path.join(runCheckpointsDir, e.name, 'model.safetensors')))
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

/** Deletes all but the newest `keep` checkpoints; returns the steps removed. */
export function pruneCheckpoints(runCheckpointsDir: string, keep: number): number[] {
  if (!Number.isInteger(keep) || keep < 1) throw new Error(`pruneCheckpoints: keep must be an integer >= 1, got ${keep}`);
  const steps = listCheckpoints(runCheckpointsDir);
  const doomed = steps.slice(0, Math.max(0, steps.length - keep));
  for (const s of doomed) fs.rmSync(checkpointDir(runCheckpointsDir, s), { recursive: true, force: true });
  return doomed;
}
