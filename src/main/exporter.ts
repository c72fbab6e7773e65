// Writes an export folder (model.safetensors + config.json + README.md model card) from a checkpoint folder,
// in float32 or float16 (half the size; every loader here widens F16 back to float32).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, rmdirSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, sep } from 'node:path';
import { describeFsError, writeFileAtomic } from '../node/atomicFile.ts';
import { ApiError, type EvalSummaryRow, type ExportDtype, type ExportFormat } from '../shared/api.ts';
import { evalCell } from '../shared/evalFormat.ts';
import type { RunRecord } from '../shared/runState.ts';
import { FORMAT_TAG, writeFileDurable, type WriteFileDurable } from '../runs/checkpoint.ts';
import { readModelWeights, type ModelWeights } from '../engine/io/modelCheckpoint.ts';
import {
  CheckpointError,
  encodeSafetensors,
  float32ToHalf,
  halfToFloat,
  type SafetensorInput,
} from '../runs/safetensors.ts';
import { normaliseRound, readJsonObject, teacherEvalRows } from '../runs/runFiles.ts';
import { officialCardSection, officialExport } from './officialExport.ts';

/** What the run measured about the exported model, for its card: its rows (a student's after its round) and, for a
 * student, the original teacher's at the same step counts. */
export interface ExportEvaluation {
  rows: EvalSummaryRow[];
  teacher?: EvalSummaryRow[];
  samples?: number;
  seed?: number;
  /** The judge's folder name; null = no judge (gen PPL not computed). */
  judge: string | null;
  /** The command that measured the rows, when it can be rerun as it is. */
  command?: string;
}

/**
 * What distillation run `rec` measured about its round `round` (-1: the original teacher), from the run folder
 * `runDir` and its rounds file's `lines`: the round's rows, a student's next to the original teacher's, and the judge
 * folder's name as the teacher's evaluation or the round's line records it. undefined when nothing was measured.
 */
export function distillEvaluation(
  rec: RunRecord,
  round: number,
  runDir: string,
  lines: Record<string, unknown>[],
): ExportEvaluation | undefined {
  if (rec.kind !== 'distill') return undefined;
  const teacher = teacherEvalRows(runDir);
  const line = lines.find((l) => l.round === round);
  const rows = round === -1 ? teacher?.rows : normaliseRound(line)?.eval;
  if (!rows?.length) return undefined;
  const cfg = rec.config as { evalSamples?: unknown; seed?: unknown };
  const judge = teacher?.judge ?? (typeof line?.judge === 'string' ? line.judge : null);
  return {
    rows,
    ...(round >= 0 && teacher ? { teacher: teacher.rows } : {}),
    samples: typeof cfg.evalSamples === 'number' ? cfg.evalSamples : undefined,
    seed: typeof cfg.seed === 'number' ? cfg.seed : undefined,
    judge: judge ? basename(judge) : null,
  };
}

/**
 * Exports checkpoint `src` (round `round` of run `rec`; -1: the pretrained model / the teacher; `rec` null: a model
 * folder outside any run) into `folder` (absolute,
 * checked by the caller with pathPolicy.checkWritePath: no broken link on the way), which must be new or empty:
 * files are written to a temporary sibling then renamed, never overwriting anything.
 * `opts.dtype` 'f16' stores floating tensors as F16 (a value f16 cannot hold is refused before anything is
 * written); `opts.workspace` is what config.json's `export.source` is relative to; `opts.evaluation` goes into the
 * model card; `opts.format` 'official' writes the official MDLM layout (officialExport.ts; float32 only);
 * `opts.write` writes each file (tests pass a failing or damaging one). What was written is read back
 * and checked before the folder gets its name. Throws ApiError (conflict | internal). Returns the file names.
 */
export function exportCheckpointFolder(
  rec: RunRecord | null,
  round: number,
  src: { dir: string; step: number },
  folder: string,
  opts: {
    workspace: string;
    dtype?: ExportDtype;
    format?: ExportFormat;
    evaluation?: ExportEvaluation;
    write?: WriteFileDurable;
  },
): string[] {
  const dtype = opts.dtype ?? 'f32';
  const official = opts.format === 'official';
  if (official && dtype === 'f16')
    throw new ApiError('the official layout is float32 (as mdlm-owt); export it with dtype f32', 'conflict');
  if (existsSync(folder)) {
    if (!statSync(folder).isDirectory())
      throw new ApiError(`${folder} exists and is not a folder; choose a new folder`, 'conflict');
    if (readdirSync(folder).length)
      throw new ApiError(
        `${folder} is not empty; exports never overwrite files: choose a new or empty folder`,
        'conflict',
      );
  }

  // The loader sample/eval use: what it refuses (foreign tensors, shapes against config.json, a tokenizer that does
  // not fit, non-finite values) is refused here before anything is written. EMA weights when the checkpoint has them.
  const source = sourceLabel(src.dir, opts.workspace);
  let loaded: ModelWeights;
  try {
    loaded = readModelWeights(src.dir);
  } catch (e) {
    throw new ApiError(`cannot export ${source}: ${(e as Error).message}`, 'conflict');
  }
  const { weights, params, layout } = loaded;
  const stored = dtype === 'f16' ? 'F16' : 'F32';
  let tensors = new Map<string, SafetensorInput>(
    layout.map((e) => [e.name, { dtype: stored, shape: e.shape, data: params.subarray(e.offset, e.offset + e.size) }]),
  );
  const provenance = {
    run: rec?.id ?? null,
    kind: rec?.kind ?? null,
    round,
    step: src.step,
    weights,
    dtype,
    source,
    exportedAt: new Date().toISOString(),
    exporter: FORMAT_TAG,
  };
  const ckConfig = readJsonObject(join(src.dir, 'config.json'));
  ckConfig.export = provenance;
  relativeProvenancePaths(ckConfig, opts.workspace);
  let config = ckConfig;
  if (official) {
    const o = officialExport(loaded.config, params, loaded.tokenizer, config, provenance);
    tensors = o.tensors;
    config = o.config;
  }
  let model: Buffer;
  try {
    model = encodeSafetensors(tensors, {
      format: 'pt',
      sdtt_format: FORMAT_TAG,
      kind: 'model',
      weights,
      ...(rec ? { run: rec.id } : {}),
      round: String(round),
      step: String(src.step),
    });
  } catch (e) {
    // Before any file exists: the only data-dependent failure is a weight float16 cannot hold, which f32 can.
    if (e instanceof CheckpointError && dtype === 'f16')
      throw new ApiError(`cannot export ${source} as f16: ${e.message}; export it as f32`, 'conflict');
    throw e;
  }
  const files: [string, string | Uint8Array][] = [
    ['model.safetensors', model],
    ['config.json', JSON.stringify(config, null, 2) + '\n'],
    [
      'README.md',
      modelCard(rec, round, src, weights, params.length, ckConfig, dtype, official) +
        (official ? officialCardSection(loaded.tokenizer) : '') +
        evaluationSection(opts.evaluation, runMeasured(round, dtype)),
    ],
  ];

  // Nothing of the export exists until the checked folder is renamed into place: parents this call creates are
  // removed again on failure, so a failed export leaves no folder behind.
  const createdParent = makeParents(dirname(folder));
  const tmp = join(dirname(folder), `.${basename(folder)}.export-${randomBytes(4).toString('hex')}.tmp`);
  try {
    mkdirSync(tmp);
    for (const [name, data] of files) (opts.write ?? writeFileDurable)(join(tmp, name), data);
    checkWrittenExport(tmp, official ? null : weights, params, dtype);
    // An empty folder the user picked is replaced; a non-empty one makes rename fail (ENOTEMPTY): never overwritten.
    if (existsSync(folder)) rmdirSync(folder);
    renameSync(tmp, folder);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (createdParent) rmSync(createdParent, { recursive: true, force: true });
    if (e instanceof ApiError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST')
      throw new ApiError(`${folder} was filled while exporting; nothing was overwritten`, 'conflict');
    throw new ApiError(
      `export to ${folder} failed: ${describeFsError(e, `writing ${tmp}`)}; nothing was exported`,
      'internal',
    );
  }
  return files.map(([n]) => n);
}

/** Creates `dir` and its missing parents; returns the topmost folder created (undefined when `dir` existed). */
function makeParents(dir: string): string | undefined {
  try {
    return mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new ApiError(`cannot export: ${describeFsError(e, `creating ${dir}`)}`, 'internal');
  }
}

/**
 * Re-opens the written folder with the loader a user's `sdtt sample` will use and checks that it holds exactly the
 * exported weights (float16: the float32 weights rounded to half precision), so a bad export is never reported as
 * a success.
 */
function checkWrittenExport(
  dir: string,
  weights: 'ema' | 'raw' | null,
  params: Float32Array,
  dtype: ExportDtype,
): void {
  let back: ModelWeights;
  try {
    back = readModelWeights(dir);
  } catch (e) {
    throw new ApiError(
      `the written export does not load back: ${(e as Error).message}; nothing was exported`,
      'internal',
    );
  }
  // The official layout has no place for the label (null): its weights are checked value by value below.
  if (weights !== null && back.weights !== weights)
    throw new ApiError(
      `the written export loads as ${back.weights} weights instead of ${weights}; nothing was exported`,
      'internal',
    );
  const want = dtype === 'f16' ? (v: number) => halfToFloat(float32ToHalf(v)) : (v: number) => v;
  const bad = back.params.findIndex((v, i) => !Object.is(v, want(params[i])));
  if (back.params.length !== params.length || bad >= 0) {
    throw new ApiError(
      `the written export does not hold the exported weights (first difference at value ${bad} of ${params.length}); nothing was exported`,
      'internal',
    );
  }
}

/**
 * A distillation checkpoint records its teacher, original teacher and data as absolute paths (`sdtt` in config.json);
 * in an exported model they become workspace-relative like `export.source`, so no local path leaves the machine.
 */
export function relativeProvenancePaths(config: Record<string, unknown>, workspace: string): void {
  const prov = config.sdtt;
  if (!prov || typeof prov !== 'object' || Array.isArray(prov)) return;
  const p = prov as Record<string, unknown>;
  for (const key of ['teacher', 'originalTeacher', 'data']) {
    const v = p[key];
    if (typeof v === 'string' && isAbsolute(v)) p[key] = sourceLabel(v, workspace);
  }
}

/**
 * config.json's `export.source` without local absolute paths: relative to the workspace (`runs/<id>/checkpoints/<step>`),
 * or for a checkpoint outside it (a shipped or external teacher) just its folder name.
 */
function sourceLabel(dir: string, workspace: string): string {
  const rel = relative(workspace, dir);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return basename(dir);
  return rel.split(sep).join('/');
}

function modelCard(
  rec: RunRecord | null,
  round: number,
  src: { dir: string; step: number },
  weights: string,
  params: number,
  config: Record<string, unknown>,
  dtype: ExportDtype,
  official: boolean,
): string {
  const sdtt = (config.sdtt ?? {}) as { teacherSteps?: unknown; studentSteps?: unknown; divergence?: unknown };
  const steps =
    typeof sdtt.teacherSteps === 'number' && typeof sdtt.studentSteps === 'number'
      ? ` (round index ${round}, counted from 0: distilled from a ${sdtt.teacherSteps}-step teacher to sample in ${sdtt.studentSteps} steps${typeof sdtt.divergence === 'string' ? `, divergence ${sdtt.divergence}` : ''})`
      : '';
  const what = !rec
    ? `the model of \`${basename(src.dir)}\``
    : round === -1
      ? rec.kind === 'distill'
        ? 'the teacher of this distillation run'
        : `the ${rec.kind} model`
      : `the student after SDTT round ${round}${steps}`;
  const origin = rec
    ? `- run: \`${rec.id}\` (${rec.kind}, status ${rec.status}${rec.backend ? `, trained on ${rec.backend}` : ''})\n- checkpoint step: ${src.step}`
    : `- source: \`${basename(src.dir)}\` (not a run's checkpoint)`;
  const keys = ['arch', 'vocabSize', 'dModel', 'nLayers', 'nHeads', 'mlpRatio', 'seqLen', 'maskId', 'eosId'];
  const rows = keys.filter((k) => k in config).map((k) => `| ${k} | ${JSON.stringify(config[k])} |`);
  return `# ${rec ? rec.id : basename(src.dir)}${round >= 0 ? ` — round ${round}` : ''}

Exported by SDTT Workbench (${FORMAT_TAG}) on ${new Date().toISOString()}: ${what}.

${origin}
- weights: ${weights === 'ema' ? 'EMA (exponential moving average) of the parameters' : 'raw parameters (the checkpoint has no EMA)'}
- parameters: ${params.toLocaleString('en-US')}

## Architecture

| key | value |
|---|---|
${rows.join('\n')}

The model is a ${config.arch === 'ar' ? 'causal (autoregressive)' : 'masked diffusion (MDLM, DiT-style denoiser)'} transformer.
${
  official
    ? 'Tensors are in the official MDLM layout (below), float32; config.json is an HF MDLM config with the provenance under `sdtt_export`.'
    : `Tensor names follow MDLM's DiT layout; matrices are stored as [out, in] (PyTorch convention), ${
        dtype === 'f16'
          ? 'float16 (rounded to nearest-even from the float32 weights; `.float()` them to compute in float32)'
          : 'float32'
      }.
\`config.json\` holds the hyper-parameters, the tokenizer mapping and the provenance (\`export\`, \`sdtt\`).`
}

## Loading

\`\`\`python
from safetensors.torch import load_file
import json
state = load_file("model.safetensors")
config = json.load(open("config.json"))
\`\`\`

With SDTT Workbench: \`sdtt sample --model <this folder>${sampleSteps(config, sdtt)}\`.

## Limitations

A small research model trained on the data named in the run's config; its outputs are not fact-checked text.
`;
}

/** Who measured an exported model's evaluation: the run, on the float32 weights this file may hold as float16. */
function runMeasured(round: number, dtype: ExportDtype): string {
  const when = `Measured by the distillation run ${round === -1 ? 'before its first round' : `after round ${round}`}`;
  if (dtype === 'f32') return when;
  return `${when}, on its float32 weights; this file holds them rounded to float16, whose samples differ (\`sdtt eval --model <this folder> --steps ... --card\` measures this file and rewrites this section)`;
}

/** Rewrites the Evaluation section of model folder `dir`'s README.md (created if missing); returns the file. */
export function writeCardEvaluation(dir: string, e: ExportEvaluation, measured: string): string {
  const file = join(dir, 'README.md');
  const readme = existsSync(file) ? readFileSync(file, 'utf8') : '';
  writeFileAtomic(file, withEvaluationSection(readme, evaluationSection(e, measured)));
  return file;
}

/** `readme` with its "## Evaluation" section (up to the next "## " heading or the end) replaced by `section`. */
export function withEvaluationSection(readme: string, section: string): string {
  const at = readme.search(/\n## Evaluation\n/);
  if (at < 0) return readme.replace(/\n*$/, '\n') + section;
  const next = readme.slice(at + 1).search(/\n## (?!Evaluation\n)/);
  return readme.slice(0, at).replace(/\n*$/, '\n') + section + (next < 0 ? '' : readme.slice(at + 1 + next));
}

/** The card's sampling command's steps: a student's own step count, an MDLM's sequence length, none for AR. */
function sampleSteps(config: Record<string, unknown>, sdtt: { studentSteps?: unknown }): string {
  if (config.arch === 'ar') return '';
  const steps = typeof sdtt.studentSteps === 'number' ? sdtt.studentSteps : config.seqLen;
  return typeof steps === 'number' ? ` --steps ${steps}` : '';
}

/**
 * The card's "Evaluation" section ("" without measurements): gen PPL ± s.e. / entropy / known words per step count.
 * `measured` says on what and by whom, e.g. "Measured by the distillation run after round 2".
 */
export function evaluationSection(e: ExportEvaluation | undefined, measured: string): string {
  if (!e || e.rows.length === 0) return '';
  const steps = [...new Set([...e.rows, ...(e.teacher ?? [])].map((r) => r.steps))].sort((a, b) => b - a);
  const cell = (rows: EvalSummaryRow[] | undefined, n: number) => evalCell(rows?.find((r) => r.steps === n)) || '–';
  const head = e.teacher
    ? '| sampling steps N | this model | original teacher |\n|---|---|---|'
    : '| sampling steps N | this model |\n|---|---|';
  const body = steps.map((n) => `| ${n} | ${cell(e.rows, n)} |${e.teacher ? ` ${cell(e.teacher, n)} |` : ''}`);
  const known = e.rows.some((r) => typeof r.known_words === 'number');
  const setup = [
    e.samples !== undefined ? `${e.samples} samples per cell` : null,
    e.seed !== undefined ? `seed ${e.seed} (the same samples' seeds for every model)` : null,
    e.judge
      ? `judge \`${e.judge}\``
      : e.rows.some((r) => r.gen_ppl !== null)
        ? 'judge not recorded'
        : 'no judge (gen PPL not computed)',
    'float64 ancestral sampling',
  ]
    .filter(Boolean)
    .join(', ');
  const cmd = e.command ? `\n\nReproduce: \`${e.command}\`` : '';
  return `
## Evaluation

${measured}: ${setup}. Cells: judge generative
perplexity ± 1 s.e. / unigram entropy of the samples (nats)${known ? " / known words (share of the samples' words found in the training text)" : ''}.${cmd}

${head}
${body.join('\n')}
`;
}
