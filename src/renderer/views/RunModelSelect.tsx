import { useApp } from '../store/appStore.ts';

export interface RunModelChoice {
  /** The API's round: −1 = a pretraining run's latest checkpoint, or a distillation's teacher. */
  value: string;
  label: string;
  /** The sampling steps the model is made for (a student's own N; 128 otherwise). */
  steps: number;
}

/**
 * The models of a run that the export and "try it" panels offer: a pretraining run's latest checkpoint (run.json's
 * step is the last checkpointed one); a distillation's finished rounds' students, and its teacher when asked for.
 */
export function useRunModelChoices(
  id: string,
  withTeacher: boolean,
): { choices: RunModelChoice[]; pretrained: boolean } {
  const run = useApp((s) => s.runs[id]);
  const rounds = useApp((s) => s.rounds[id]) ?? [];
  const pretrained = run !== undefined && run.kind !== 'distill';
  if (pretrained)
    return {
      pretrained,
      choices:
        run.step > 0
          ? [{ value: '-1', label: `latest checkpoint · step ${run.step.toLocaleString('en-US')}`, steps: 128 }]
          : [],
    };
  const students = rounds
    .filter((r) => r.status === 'done')
    .map((r) => ({
      value: String(r.round),
      label: `R${r.round} student (${r.studentSteps} steps)`,
      steps: r.studentSteps,
    }));
  return {
    pretrained,
    choices: withTeacher
      ? [{ value: '-1', label: 'teacher', steps: rounds[0]?.teacherSteps ?? 128 }, ...students]
      : students,
  };
}

export function RunModelSelect(props: {
  label: string;
  testId: string;
  choices: RunModelChoice[];
  value: string;
  empty: string;
  onChange(value: string): void;
}) {
  return (
    <label>
      {props.label}
      <select data-testid={props.testId} value={props.value} onChange={(e) => props.onChange(e.target.value)}>
        {props.choices.length === 0 && <option value="">{props.empty}</option>}
        {props.choices.map((c) => (
          <option key={c.value} value={c.value}>
            {c.label}
          </option>
        ))}
      </select>
    </label>
  );
}
