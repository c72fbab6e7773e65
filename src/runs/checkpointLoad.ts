// Loading a checkpoint folder (docs/design/on-disk-format.md "Checkpoint format"): the read side of checkpoint.ts,
// kept apart because it is the larger half and the one that must explain every way a folder can be wrong (not a
// checkpoint, a misspelt config key, a tensor missing or of the wrong shape, non-finite weights, bad metadata).
// The format constants and the layout check it shares with the save side live in checkpoint.ts.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelConfig, describeConfigError } from '../shared/config.ts';
import { CheckpointError, type SafetensorEntry } from './safetensors.ts';
import { brokenLinkReason, hasEntry, readSafetensorsFile } from './safetensorsFile.ts';
import { MODEL_KEYS, MODEL_TYPES, checkLayout, type CheckpointData, type ParamLayout } from './checkpoint.ts';

/** What loadCheckpoint returns: CheckpointData, with extraConfig always present. */
export interface LoadedCheckpoint extends Omit<CheckpointData, 'extraConfig'> {
  /** config.json keys other than architectures, model_type and the ModelConfig fields (tokenizer, sdtt, ...). */
  extraConfig: Record<string, unknown>;
  /** model.safetensors' metadata (an export records `weights: ema` there: its parameters are EMA weights). */
  modelMetadata: Record<string, string>;
}

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
    if (nan || inf) {
      const counts = [nan ? `${nan} NaN` : '', inf ? `${inf} Inf` : ''].filter(Boolean).join(', ');
      bad.push(`'${name}' (${counts} of ${data.length} values)`);
    }
  }
  if (!bad.length) return '';
  return (
    `non-finite weights in ${bad.length} tensor${bad.length > 1 ? 's' : ''}: ${sample(bad, 4)} ` +
    '(a diverged run or a corrupt file; not loaded)'
  );
}

/** Reassembles a flat array from named tensors; every layout tensor must exist with its exact shape, and nothing else. */
function flatFromTensors(
  file: string,
  tensors: Map<string, SafetensorEntry>,
  layout: ParamLayout,
  n: number,
  prefixes: string[],
): Float32Array[] {
  const expected = new Set<string>();
  for (const p of prefixes) for (const e of layout) expected.add(p + e.name);
  const found = [...tensors.keys()];
  const missing = [...expected].filter((k) => !tensors.has(k));
  const unknown = found.filter((k) => !expected.has(k));
  if (missing.length === expected.size && found.length > 0) {
    throw new CheckpointError(
      `${file}: not an SDTT workbench checkpoint: it holds ${found.length} tensor${found.length === 1 ? '' : 's'} ` +
        `(${sample(found, 5)}) and none of the ${expected.size} expected (${sample([...expected], 5)})`,
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
        throw new CheckpointError(
          `${file}: tensor '${p + e.name}' has shape [${t.shape.join(', ')}] ` +
            `but the config needs [${e.shape.join(', ')}]`,
        );
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
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new CheckpointError(`${file}: metadata '${key}' = ${JSON.stringify(raw)} is not a non-negative integer`);
  }
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
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory())
    throw new CheckpointError(`no checkpoint folder at ${dir}`);
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
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new CheckpointError(`${configFile}: not a JSON object`);
  const obj = raw as Record<string, unknown>;
  const modelType = obj.model_type;
  if (typeof modelType !== 'string' || !Object.values(MODEL_TYPES).includes(modelType as never)) {
    throw new CheckpointError(
      `${dir} is not an SDTT workbench checkpoint: config.json has model_type ${JSON.stringify(modelType)} ` +
        `(expected ${Object.values(MODEL_TYPES).join(' or ')}); found: ${listing(dir)}`,
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
  if (problems.length || !parsed.success)
    throw new CheckpointError(`invalid checkpoint config: ${problems.join('; ')}`);
  const config = parsed.data;
  if (MODEL_TYPES[config.arch] !== modelType) {
    throw new CheckpointError(`${configFile}: model_type '${modelType}' contradicts arch '${config.arch}'`);
  }
  if (opts.expectConfig) {
    const want = ModelConfig.parse(opts.expectConfig);
    const diffs = MODEL_KEYS.filter(
      (k) => (want as Record<string, unknown>)[k] !== (config as Record<string, unknown>)[k],
    ).map(
      (k) =>
        `${k}: checkpoint ${JSON.stringify((config as Record<string, unknown>)[k])}, ` +
        `expected ${JSON.stringify((want as Record<string, unknown>)[k])}`,
    );
    if (diffs.length)
      throw new CheckpointError(`checkpoint ${dir} was made for a different model:\n${diffs.join('\n')}`);
  }

  const layout = opts.layoutFor(config);
  const n = layout.reduce((a, e) => a + e.size, 0);
  checkLayout(layout, n, 'parameters');

  const modelFile = path.join(dir, 'model.safetensors');
  if (!hasEntry(modelFile))
    throw new CheckpointError(`${dir}: config.json present but no model.safetensors (found: ${listing(dir)})`);
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
    if (state === null || typeof state !== 'object' || Array.isArray(state))
      throw new CheckpointError(`${stateFile}: not a JSON object`);
    out.state = state as Record<string, unknown>;
  }
  return out;
}
