// The new-run form as plain strings, turned into a DistillConfig input and validated with the shared schema on
// every change; each zod issue lands on the form field it belongs to.
import { DistillConfig, DIVERGENCE_NAMES, type DivergenceName } from '../../shared/distillConfig.ts';
import { BACKENDS } from '../../shared/config.ts';

export const FORM_FIELDS = [
  'teacher',
  'divergence',
  'rounds',
  'stepsPerRound',
  'lr',
  'batchSize',
  'seed',
  'backend',
  'startSteps',
  'evalSamples',
  'judge',
  'evalSteps',
] as const;
export type FormField = (typeof FORM_FIELDS)[number];
export type FormValues = Record<FormField, string>;

export const DIVERGENCE_HELP: Record<DivergenceName, string> = {
  kld: 'Reverse KL, KL(student‖teacher): the paper default; mode-seeking.',
  'kl-fwd': 'Forward KL, KL(teacher‖student): mass-covering, tends to blur.',
  mse: 'Mean squared difference of log-probabilities.',
  tvd: 'Total variation: ½·L1 between the probability vectors (paper).',
  'tvd-log-l1': 'L1 between log-probabilities, no ½ (the released code\'s "tvd").',
};
export { DIVERGENCE_NAMES, BACKENDS };

export function defaultFormValues(teacher = ''): FormValues {
  // judge '' = absent (the shipped default judge when installed, else no gen PPL); evalSteps '' = the schema default.
  return {
    teacher,
    divergence: 'kld',
    rounds: '5',
    stepsPerRound: '2000',
    lr: '1e-4',
    batchSize: '32',
    seed: '0',
    backend: 'auto',
    startSteps: '',
    evalSamples: '256',
    judge: '',
    evalSteps: '',
  };
}

/** zod issue path -> form field. */
const PATH_TO_FIELD: Record<string, FormField> = {
  teacher: 'teacher',
  divergence: 'divergence',
  rounds: 'rounds',
  stepsPerRound: 'stepsPerRound',
  'optim.lr': 'lr',
  optim: 'lr',
  batchSize: 'batchSize',
  seed: 'seed',
  backend: 'backend',
  startSteps: 'startSteps',
  evalSamples: 'evalSamples',
  judge: 'judge',
  evalSteps: 'evalSteps',
};

/** "128, 64 32" -> [128, 64, 32] ('' -> undefined = the schema default; garbage entries -> NaN, which zod rejects). */
export function parseStepList(s: string): number[] | undefined {
  const parts = s.split(/[\s,]+/).filter((p) => p !== '');
  return parts.length === 0 ? undefined : parts.map((p) => Number(p));
}

/** A numeric text field: '' = absent (schema default), otherwise Number() (NaN for garbage, which zod rejects). */
function num(s: string): number | undefined {
  const t = s.trim();
  return t === '' ? undefined : Number(t);
}

export function formToInput(v: FormValues): Record<string, unknown> {
  const input: Record<string, unknown> = {
    kind: 'distill',
    teacher: v.teacher.trim(),
    divergence: v.divergence,
    rounds: num(v.rounds),
    stepsPerRound: num(v.stepsPerRound),
    optim: { lr: num(v.lr) },
    batchSize: num(v.batchSize),
    seed: num(v.seed),
    backend: v.backend,
    startSteps: num(v.startSteps),
    evalSamples: num(v.evalSamples),
    judge: v.judge.trim() === '' ? undefined : v.judge.trim(),
    evalSteps: parseStepList(v.evalSteps),
  };
  for (const k of Object.keys(input)) if (input[k] === undefined) delete input[k];
  if ((input.optim as { lr?: number }).lr === undefined) input.optim = {};
  return input;
}

export interface FormValidation {
  ok: boolean;
  config?: DistillConfig;
  errors: Partial<Record<FormField, string>>;
  /** Issues that belong to no field of the form. */
  other: string[];
}

export function validateForm(v: FormValues): FormValidation {
  const r = DistillConfig.safeParse(formToInput(v));
  if (r.success) return { ok: true, config: r.data, errors: {}, other: [] };
  const errors: Partial<Record<FormField, string>> = {};
  const other: string[] = [];
  for (const issue of r.error.issues) {
    const key = issue.path.join('.');
    // evalSteps.<i>: a problem with one entry of the list
    const field = PATH_TO_FIELD[key] ?? (issue.path[0] === 'evalSteps' ? 'evalSteps' : undefined);
    let msg = issue.message;
    if (field === 'teacher' && v.teacher.trim() === '') msg = 'choose a teacher model or type a checkpoint path';
    else if (field === 'evalSteps' && issue.path.length > 1) {
      const i = Number(issue.path[1]);
      const entry = v.evalSteps.split(/[\s,]+/).filter((p) => p !== '')[i] ?? '';
      msg = Number.isNaN(Number(entry)) ? `"${entry}" is not a number` : `"${entry}": ${humanize(msg)}`;
    } else if (
      /received NaN|expected number/i.test(msg) &&
      field &&
      v[field].trim() !== '' &&
      Number.isNaN(Number(v[field]))
    )
      msg = 'not a number';
    msg = humanize(msg);
    if (field) errors[field] ??= msg;
    else other.push(`${key || '(config)'}: ${msg}`);
  }
  return { ok: false, errors, other };
}

/** zod's default messages, shortened for a form field. */
export function humanize(msg: string): string {
  return msg
    .replace(/^Too small: expected number to be >=?(\S+)$/, (_, n) => `must be ≥ ${n}`)
    .replace(/^Too small: expected number to be >(\S+)$/, (_, n) => `must be > ${n}`)
    .replace(/^Too big: expected number to be <=?(\S+)$/, (_, n) => `must be ≤ ${n}`)
    .replace(/^Too big: expected number to be <(\S+)$/, (_, n) => `must be < ${n}`)
    .replace(/^Invalid input: expected int, received number$/, 'must be a whole number')
    .replace(/^Invalid option: expected one of (.*)$/, (_, o) => `choose one of ${o}`);
}
