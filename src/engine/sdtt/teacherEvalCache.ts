// Content-addressed cache of the round −1 teacher evaluation (distillEval.ts), shared by the runs of one workspace:
//   <runs folder>/.cache/teacher-eval/<key>/ entry.json, the teacher evaluation (TEACHER_EVAL_NAME), samples/-1-<steps>.json
// where <runs folder> is the parent of the run folder. Runs that differ only in what does not touch the teacher's
// evaluation (divergence, learning rate, rounds, ...) reuse it instead of re-sampling the teacher for minutes.
//
// key = sha256 over a canonical JSON (sorted keys) of EVERYTHING the result depends on: the cache format version
// (bump TEACHER_EVAL_CACHE_VERSION whenever the evaluation code changes its numbers or files), the sha256 of the
// teacher's float32 weights actually evaluated + its model config, the tokenizer (texts in the samples files), the
// judge's weights sha256 + config + runtime/device (or "none"), the teacher's inference runtime/device (onnx vs tfjs,
// onnxruntime version, threads: they give slightly different numbers), evalSteps, evalSamples, evalBatch,
// samplesPerCell, seed, selfBleuPrompts, the self-BLEU step count, evalHeldoutBatches and the sha256 of the
// validation and training token arrays (the known-word rate checks samples against the training text's words). The judge's folder and the no-judge note are not results: a hit takes them from the run.
//
// Entries appear atomically (written into a temp folder, then renamed; when the entry already exists another
// writer won and ours is discarded) and entry.json lists the sha256 of every file, so a torn, edited or otherwise
// damaged entry is detected, reported, removed and recomputed: the cache can cost a recomputation, never a run.
// Every cache failure is reported through onProgress and otherwise ignored. SDTT_NO_TEACHER_EVAL_CACHE=1 turns it off.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { ModelConfig } from '../../shared/config.ts';
import type { DistillConfig } from '../../shared/distillConfig.ts';
import { writeFileAtomic } from '../../node/atomicFile.ts';
import type { DistillEvalResult } from './distillEval.ts';
import { sha256Hex } from '../data/tokenizerFiles.ts';
import type { TokenArray } from '../data/batches.ts';
import { weightsSha256 } from '../io/openModel.ts';
import type { Tokenizer } from '../data/tokenizers.ts';
import { TEACHER_EVAL_NAME, runPaths } from '../../runs/runFolder.ts';

// 2: rows carry known_words, sample cells inventedWords.
export const TEACHER_EVAL_CACHE_VERSION = 2;

/** The judge as the key sees it: its weights hash, config and runtime; null = no judge. */
export interface JudgeIdentity {
  sha256: string;
  weights: 'ema' | 'raw';
  config: ModelConfig;
  backend: string;
  device: string;
}

export interface TeacherEvalKeyInput {
  teacherParams: Float32Array;
  teacherConfig: ModelConfig;
  /** The runtime the teacher is evaluated on (createModelRuntime's backend and device). */
  runtime: { backend: string; device: string };
  tokenizer: Tokenizer;
  judge: JudgeIdentity | null;
  valTokens: TokenArray;
  trainTokens: TokenArray;
  selfBleuSteps: number;
  cfg: Pick<
    DistillConfig,
    'evalSteps' | 'evalSamples' | 'evalBatch' | 'samplesPerCell' | 'seed' | 'selfBleuPrompts' | 'evalHeldoutBatches'
  >;
}

export interface TeacherEvalKey {
  key: string;
  /** What was hashed (stored in entry.json for inspection). */
  parts: Record<string, unknown>;
}

const bytesOf = (a: TokenArray | Float32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

const tokensIdentity = (t: TokenArray) => ({
  sha256: sha256Hex(bytesOf(t)),
  dtype: t.constructor.name,
  tokens: t.length,
});

/** JSON with object keys sorted at every level: the same value always hashes the same. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export function teacherEvalKey(i: TeacherEvalKeyInput): TeacherEvalKey {
  const c = i.cfg;
  const parts = {
    format: `sdtt-teacher-eval/${TEACHER_EVAL_CACHE_VERSION}`,
    teacher: { sha256: weightsSha256(i.teacherParams), params: i.teacherParams.length, config: i.teacherConfig },
    tokenizer: sha256Hex(JSON.stringify(i.tokenizer.toJSON())),
    runtime: { backend: i.runtime.backend, device: i.runtime.device },
    judge: i.judge ?? 'none',
    eval: {
      evalSteps: c.evalSteps,
      evalSamples: c.evalSamples,
      evalBatch: c.evalBatch,
      samplesPerCell: c.samplesPerCell,
      seed: c.seed,
      selfBleuPrompts: c.selfBleuPrompts,
      selfBleuSteps: i.selfBleuSteps,
      evalHeldoutBatches: c.evalHeldoutBatches,
    },
    validation: tokensIdentity(i.valTokens),
    training: tokensIdentity(i.trainTokens),
  };
  return { key: sha256Hex(canonicalJson(parts)), parts };
}

/** <runs folder>/.cache/teacher-eval: the parent of the run folder holds the cache. */
export function teacherEvalCacheRoot(runDir: string): string {
  return join(dirname(resolve(runDir)), '.cache', 'teacher-eval');
}

interface Entry {
  version: number;
  key: string;
  parts: Record<string, unknown>;
  /** Path inside the entry -> sha256 of its bytes. */
  files: Record<string, string>;
}

const SAMPLE_FILE = /^samples\/-1-\d+\.json$/;

/** A verified entry: the cached result (samplesFiles relative to the entry) and the samples files' bytes; throws when damaged. */
function readEntry(
  dir: string,
  key: string,
  evalSteps: number[],
): { result: DistillEvalResult; samples: Map<string, Buffer> } {
  const entry = JSON.parse(readFileSync(join(dir, 'entry.json'), 'utf8')) as Entry;
  if (
    entry?.version !== TEACHER_EVAL_CACHE_VERSION ||
    entry.key !== key ||
    sha256Hex(canonicalJson(entry.parts)) !== key
  )
    throw new Error('entry.json does not describe this key');
  if (!entry.files || typeof entry.files !== 'object') throw new Error('entry.json lists no files');
  const bytes = new Map<string, Buffer>();
  for (const [rel, want] of Object.entries(entry.files)) {
    if (rel !== TEACHER_EVAL_NAME && !SAMPLE_FILE.test(rel)) throw new Error(`unexpected file ${rel}`);
    const b = readFileSync(join(dir, rel));
    if (sha256Hex(b) !== want) throw new Error(`${rel} does not match its sha256`);
    bytes.set(rel, b);
  }
  const te = bytes.get(TEACHER_EVAL_NAME);
  if (!te) throw new Error(`no ${TEACHER_EVAL_NAME}`);
  const result = JSON.parse(te.toString('utf8')) as DistillEvalResult;
  if (result.round !== -1 || !Array.isArray(result.rows) || !Array.isArray(result.samplesFiles))
    throw new Error(`${TEACHER_EVAL_NAME} is not a round -1 evaluation`);
  if (result.rows.map((r) => r.steps).join(',') !== evalSteps.join(','))
    throw new Error(`${TEACHER_EVAL_NAME} has other eval steps`);
  const samples = new Map<string, Buffer>();
  for (const rel of result.samplesFiles) {
    const b = bytes.get(rel);
    if (!b || !SAMPLE_FILE.test(rel)) throw new Error(`samples file ${rel} missing from the entry`);
    samples.set(rel, b);
  }
  return { result, samples };
}

/** Removes a folder under the cache root: renamed aside first, so the key is free at once even if the removal fails. */
function discard(root: string, dir: string): void {
  const aside = join(root, `.trash-${basename(dir).slice(0, 16)}-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    renameSync(dir, aside);
    rmSync(aside, { recursive: true, force: true });
  } catch {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Leftovers of killed writers (.tmp-*, .trash-*) older than a day. */
function sweep(root: string): void {
  for (const name of readdirSync(root)) {
    if (!/^\.(tmp|trash)-/.test(name)) continue;
    const p = join(root, name);
    try {
      if (Date.now() - statSync(p).mtimeMs > 86_400_000) rmSync(p, { recursive: true, force: true });
    } catch {
      // someone else removed it
    }
  }
}

function store(root: string, k: TeacherEvalKey, result: DistillEvalResult): 'stored' | 'exists' {
  mkdirSync(root, { recursive: true });
  sweep(root);
  const final = join(root, k.key);
  if (existsSync(final)) return 'exists';
  const tmp = join(root, `.tmp-${k.key.slice(0, 16)}-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    mkdirSync(join(tmp, 'samples'), { recursive: true });
    const files: Record<string, string> = {};
    const rels: string[] = [];
    for (const f of result.samplesFiles) {
      const rel = `samples/${basename(f)}`;
      const b = readFileSync(f);
      writeFileSync(join(tmp, rel), b);
      files[rel] = sha256Hex(b);
      rels.push(rel);
    }
    const te = JSON.stringify({ ...result, samplesFiles: rels }) + '\n';
    writeFileSync(join(tmp, TEACHER_EVAL_NAME), te);
    files[TEACHER_EVAL_NAME] = sha256Hex(te);
    const entry: Entry = { version: TEACHER_EVAL_CACHE_VERSION, key: k.key, parts: k.parts, files };
    writeFileSync(join(tmp, 'entry.json'), JSON.stringify(entry, null, 1) + '\n');
    try {
      renameSync(tmp, final);
    } catch (e) {
      if (existsSync(final)) return 'exists'; // a concurrent writer of the same key won; ours goes (finally)
      throw e;
    }
    return 'stored';
  } finally {
    if (existsSync(tmp)) rmSync(tmp, { recursive: true, force: true });
  }
}

export interface TeacherEvalCacheOptions {
  runDir: string;
  key: TeacherEvalKey;
  evalSteps: number[];
  /** The run's own judge folder and no-judge note (distillEval.evalJudgeFields): not part of the key. */
  judgeFields: Pick<DistillEvalResult, 'judge' | 'note'>;
  onProgress?: (what: string) => void;
}

/**
 * The teacher evaluation for the run in `runDir`: on a hit, the cached samples files are copied into
 * <runDir>/samples (each atomically) and the cached result returned with this run's paths; on a miss `compute()`
 * runs (it writes the samples files itself, as today) and its result is stored. The caller writes the run's teacher evaluation.
 */
export async function cachedTeacherEval(
  o: TeacherEvalCacheOptions,
  compute: () => Promise<DistillEvalResult>,
): Promise<DistillEvalResult> {
  const enabled = !process.env.SDTT_NO_TEACHER_EVAL_CACHE;
  const root = teacherEvalCacheRoot(o.runDir);
  const dir = join(root, o.key.key);
  const tag = o.key.key.slice(0, 8);
  if (enabled && existsSync(dir)) {
    let hit: ReturnType<typeof readEntry> | null = null;
    try {
      hit = readEntry(dir, o.key.key, o.evalSteps);
    } catch (e) {
      o.onProgress?.(`teacher evaluation: cache entry ${tag} is damaged (${(e as Error).message}); recomputing`);
      try {
        discard(root, dir);
      } catch {
        // left for the next writer to find damaged again
      }
    }
    if (hit) {
      const samplesDir = runPaths.samples(o.runDir);
      mkdirSync(samplesDir, { recursive: true });
      const samplesFiles: string[] = [];
      for (const [rel, bytes] of hit.samples) {
        const file = join(samplesDir, basename(rel));
        writeFileAtomic(file, bytes);
        samplesFiles.push(file);
      }
      const r = hit.result;
      o.onProgress?.(`teacher evaluation: reused from cache ${tag}`);
      // Field order as evaluateRound writes it, so the run's teacher evaluation reads the same as a computed one.
      return {
        round: r.round,
        rows: r.rows,
        heldoutNelbo: r.heldoutNelbo,
        selfBleu: r.selfBleu,
        judge: o.judgeFields.judge,
        ...(o.judgeFields.note !== undefined ? { note: o.judgeFields.note } : {}),
        samplesFiles,
        seconds: r.seconds,
        reusedFrom: o.key.key,
      };
    }
  }
  const result = await compute();
  if (enabled) {
    try {
      if (store(root, o.key, result) === 'stored') o.onProgress?.(`teacher evaluation: stored in cache ${tag}`);
    } catch (e) {
      o.onProgress?.(`teacher evaluation: not cached (${(e as Error).message})`);
    }
  }
  return result;
}
