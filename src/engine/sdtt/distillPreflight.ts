// What a distillation needs before anything is written: an MDLM teacher checkpoint, training data that exists, can
// be read and fits the teacher's tokenizer, and (when one is named) an AR judge with the same tokenizer. runDistill
// opens its teacher and data through these functions, and preflightDistill runs them all before a run folder is
// created (`sdtt distill` through runLifecycle.openOrResume, the app's createRun through RunManager.create), so a
// refused distillation leaves no failed run behind. Pure Node (checkpoint files, tokenizer JSON and shard manifests;
// no tfjs, no onnxruntime): the app's main process calls it.
import { closeSync, existsSync, openSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describeFsError } from '../../node/atomicFile.ts';
import type { ModelConfig } from '../../shared/config.ts';
import type { DistillConfig } from '../../shared/distillConfig.ts';
import { loadCheckpoint, type LoadedCheckpoint } from '../../runs/checkpointLoad.ts';
import { readModelWeights } from '../io/modelCheckpoint.ts';
import { importOfficialCheckpoint, importedModel, officialFormatOf } from '../io/officialImport.ts';
import { resolveCheckpointDir } from '../../runs/checkpoint.ts';
import { paramLayout } from '../model/paramLayout.ts';
import { openTokenSource, type TokenSource } from '../data/shards.ts';
import { checkpointTokenizer, sameTokenizer, type Tokenizer } from '../data/tokenizers.ts';
import { runPaths } from '../../runs/runFolder.ts';
import { readRunRecord } from '../../runs/runStore.ts';

export interface DistillTeacher {
  /** The checkpoint folder (a run folder resolves to its latest checkpoint). */
  dir: string;
  ck: LoadedCheckpoint;
  /** The tokenizer embedded in its config.json. */
  tokenizer: Tokenizer;
}

/**
 * The teacher checkpoint (a checkpoint folder, or a run folder's latest one; an official MDLM / SDTT checkpoint is
 * imported in memory), refused unless it is an MDLM.
 */
export function openDistillTeacher(teacher: string): DistillTeacher {
  let dir: string;
  let ck: LoadedCheckpoint;
  let tokenizer: Tokenizer;
  try {
    if (officialFormatOf(teacher)) {
      const m = importedModel(teacher);
      dir = resolve(teacher);
      ck = {
        config: m.config,
        layout: paramLayout(m.config),
        params: m.params,
        extraConfig: m.extra,
        modelMetadata: {},
      };
    } else {
      dir = resolveCheckpointDir(teacher);
      ck = loadCheckpoint(dir, { layoutFor: paramLayout });
    }
    tokenizer = checkpointTokenizer(ck.extraConfig);
  } catch (e) {
    throw new Error(`distill: teacher: ${(e as Error).message}`);
  }
  if (ck.config.arch !== 'mdlm')
    throw new Error(`distill: the teacher ${dir} is a '${ck.config.arch}' model; SDTT needs an MDLM teacher`);
  return { dir, ck, tokenizer };
}

/** The training data: cfg.data, else what the teacher recorded (its sdtt.data provenance, or its run's record). */
export function resolveDistillData(
  cfg: Pick<DistillConfig, 'data' | 'teacher'>,
  teacherDir: string,
  extra: Record<string, unknown>,
): string {
  if (cfg.data) return cfg.data;
  const prov = extra.sdtt as { data?: unknown } | undefined;
  if (typeof prov?.data === 'string' && existsSync(prov.data)) return prov.data;
  const runJson = runPaths.record(join(teacherDir, '..', '..'));
  if (existsSync(runJson)) {
    try {
      const data = readRunRecord(runJson).config.data;
      if (typeof data === 'string' && existsSync(data)) return data;
    } catch {
      // not a run folder we can read
    }
  }
  throw new Error(
    `distill: no training data: pass --data (a text file or shard folder); the teacher ${teacherDir} does not record data that exists here`,
  );
}

/** Opens the data with the teacher's tokenizer (a shard folder must have been written with that very tokenizer). */
export function openDistillData(dataPath: string, tokenizer: Tokenizer): TokenSource {
  let source: TokenSource;
  try {
    source = openTokenSource(dataPath, { tokenizer });
  } catch (e) {
    throw new Error(
      `distill: data ${dataPath} does not fit the teacher's embedded tokenizer (${tokenizer.kind}, ${tokenizer.vocabSize} ids): ${(e as Error).message}`,
    );
  }
  if (!sameTokenizer(source.tokenizer, tokenizer))
    throw new Error(
      `distill: the data's tokenizer (${source.tokenizer.kind}, ${source.tokenizer.vocabSize} ids) differs from the teacher's (${tokenizer.kind}, ${tokenizer.vocabSize} ids)`,
    );
  return source;
}

/**
 * The cheap part of opening training data, for any job before its run folder exists: the path exists and can be
 * read (a text file that is not empty, or a shard folder with its manifest). Nothing is tokenized here.
 */
export function checkDataReadable(dataPath: string, job: 'distill' | 'pretrain'): void {
  if (!existsSync(dataPath)) throw new Error(`${job}: data ${dataPath} does not exist`);
  if (statSync(dataPath).isDirectory()) {
    if (!existsSync(join(dataPath, 'manifest.json')))
      throw new Error(`${job}: data ${dataPath} is a folder without manifest.json (not a token shard folder)`);
    return;
  }
  try {
    closeSync(openSync(dataPath, 'r'));
  } catch (e) {
    throw new Error(`${job}: data: ${describeFsError(e, `reading ${dataPath}`)}`);
  }
  if (statSync(dataPath).size === 0) throw new Error(`${job}: data ${dataPath} is an empty file`);
}

/** checkDataReadable, and a shard folder's manifest and tokenizer against the teacher's (shards are read later). */
export function checkDistillData(dataPath: string, tokenizer: Tokenizer): void {
  checkDataReadable(dataPath, 'distill');
  if (statSync(dataPath).isDirectory()) openDistillData(dataPath, tokenizer);
}

/** Why an AR judge cannot score this teacher's samples, or null when it can. */
export function judgeProblem(
  judge: { config: ModelConfig; tokenizer: Tokenizer; checkpointDir: string },
  tokenizer: Tokenizer,
  seqLen: number,
): string | null {
  if (judge.config.arch !== 'ar')
    return `the judge ${judge.checkpointDir} is a '${judge.config.arch}' model, not an AR model`;
  if (!sameTokenizer(judge.tokenizer, tokenizer))
    return `the judge ${judge.checkpointDir} uses a different tokenizer (${judge.tokenizer.kind}, ${judge.tokenizer.vocabSize} ids) than the teacher (${tokenizer.kind}, ${tokenizer.vocabSize} ids)`;
  if (judge.config.seqLen < seqLen)
    return `the judge's seqLen ${judge.config.seqLen} is shorter than the teacher's ${seqLen}`;
  return null;
}

/** A named judge (cfg.judge) must load and fit the teacher; the shipped default is checked by runDistill, which falls back to no judge. */
export function checkDistillJudge(judgePath: string, tokenizer: Tokenizer, seqLen: number): void {
  let judge: ReturnType<typeof readModelWeights>;
  try {
    judge = readModelWeights(judgePath);
  } catch (e) {
    throw new Error(`distill: judge: ${(e as Error).message}`);
  }
  const problem = judgeProblem(judge, tokenizer, seqLen);
  if (problem) throw new Error(`distill: ${problem}`);
}

/** Everything above, for a distillation about to get a run folder: throws the first problem, writes nothing. */
export function preflightDistill(cfg: Pick<DistillConfig, 'teacher' | 'data' | 'judge'>): void {
  const teacher = openDistillTeacher(cfg.teacher);
  checkDistillData(resolveDistillData(cfg, teacher.dir, teacher.ck.extraConfig), teacher.tokenizer);
  if (cfg.judge) checkDistillJudge(cfg.judge, teacher.tokenizer, teacher.ck.config.seqLen);
}

/**
 * An official teacher is imported into the run's own folder (`<run>/teacher`) once, so the run, its resume and its
 * exports read a workbench checkpoint that stays put even if the official folder moves. Returns the config to run.
 */
export function withImportedTeacher(cfg: DistillConfig, runDir: string): DistillConfig {
  if (!officialFormatOf(cfg.teacher)) return cfg;
  const dir = join(runDir, 'teacher');
  if (!existsSync(join(dir, 'config.json'))) importOfficialCheckpoint(cfg.teacher, dir);
  return { ...cfg, teacher: dir };
}
