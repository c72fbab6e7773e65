// The judge of a distillation run's evaluations (the AR model that scores gen PPL, docs/design/sdtt.md §5.1): the
// shipped default and how runDistill (distill.ts) opens it. An explicit --judge that does not fit the teacher refuses
// the run; the shipped default that does not fit is dropped with a note, and the run evaluates without gen PPL.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DistillConfig } from '../../shared/distillConfig.ts';
import type { Tokenizer } from '../data/tokenizers.ts';
import { openModel, type Inference } from '../io/openModel.ts';
import { judgeProblem } from './distillPreflight.ts';
import type { JudgeIdentity } from './teacherEvalCache.ts';

/** The shipped AR judge, used when cfg.judge is absent and this folder exists. */
export const SHIPPED_JUDGE = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../../assets/models/judge-ar-base-5m',
);

/** SHIPPED_JUDGE when it is installed (has a config.json), else null: the default judge of distill and eval. */
export function installedShippedJudge(): string | null {
  return existsSync(join(SHIPPED_JUDGE, 'config.json')) ? SHIPPED_JUDGE : null;
}

/** The judge runDistill evaluates with, or none (judge null, judgePath null, judgeNote saying why). */
export interface DistillJudge {
  judge: Inference | null;
  /** For the teacher-evaluation cache key. */
  judgeId: JudgeIdentity | null;
  judgePath: string | null;
  judgeNote: string | undefined;
}

/** Opens cfg.judge, else the installed shipped judge; the caller disposes `judge`. */
export async function openDistillJudge(cfg: DistillConfig, tokenizer: Tokenizer, L: number): Promise<DistillJudge> {
  let judge: Inference | null = null;
  let judgeId: JudgeIdentity | null = null; // for the teacher-evaluation cache key
  let judgePath: string | null = cfg.judge ?? installedShippedJudge();
  let judgeNote: string | undefined = judgePath
    ? undefined
    : `no judge: --judge not given and the shipped judge ${SHIPPED_JUDGE} is missing; ` +
      'gen PPL not computed (entropy, held-out NELBO and self-BLEU only)';

  if (judgePath) {
    const j = await openModel(judgePath, { backend: cfg.backend, threads: cfg.threads, hashWeights: true });
    const problem = judgeProblem(j, tokenizer, L);
    if (problem && cfg.judge) {
      await j.model.dispose();
      throw new Error(`distill: ${problem}`);
    }
    if (problem) {
      // The shipped default does not fit this teacher: evaluate without gen PPL rather than refuse the run.
      await j.model.dispose();
      judgeNote = `no judge: ${problem}; gen PPL not computed (pass --judge)`;
      judgePath = null;
    } else {
      judge = j.model;
      judgePath = j.checkpointDir;
      judgeId = {
        sha256: j.weightsSha256!,
        weights: j.weights,
        config: j.config,
        backend: j.backend,
        device: j.device,
      };
    }
  }
  return { judge, judgeId, judgePath, judgeNote };
}
