// New distillation run. The form is validated with the shared DistillConfig schema on every change; each problem
// is shown at its field (aria-invalid + message). Submit = createRun, then controlRun start.
import { useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import {
  BACKENDS,
  DIVERGENCE_HELP,
  DIVERGENCE_NAMES,
  defaultFormValues,
  validateForm,
  type FormField,
  type FormValues,
} from '../lib/distillForm.ts';
import { DEFAULT_EVAL_STEPS } from '../../shared/distillConfig.ts';
import { fmtParams } from '../lib/format.ts';
import { api, refreshRuns, useApp } from '../store/appStore.ts';
import { RunId } from '../../shared/messages.ts';
import { TeacherSummary, useSettled } from './TeacherSummary.tsx';
import { FolderBrowser } from './FolderBrowser.tsx';

const CUSTOM = '__custom__';
/** How long a typed path or batch size must stay unchanged before the form asks the host about it. */
const SETTLE_MS = 600;

/** The batch size the estimate is for: the field's number, the schema default when empty, null when invalid. */
function estimateBatch(text: string): number | null {
  const t = text.trim();
  if (t === '') return 32;
  const n = Number(t);
  return Number.isInteger(n) && n >= 1 && n <= 4096 ? n : null;
}

export function NewRunForm() {
  const models = useApp((s) => s.models);
  const modelsError = useApp((s) => s.modelsError);
  const info = useApp((s) => s.info);
  const teachers = useMemo(
    () =>
      models
        .filter((m) => m.arch === 'mdlm')
        .sort((a, b) => (a.source === b.source ? a.label.localeCompare(b.label) : a.source === 'shipped' ? -1 : 1)),
    [models],
  );
  const judges = useMemo(
    () =>
      models
        .filter((m) => m.arch === 'ar')
        .sort((a, b) => (a.source === b.source ? a.label.localeCompare(b.label) : a.source === 'shipped' ? -1 : 1)),
    [models],
  );
  const [values, setValues] = useState<FormValues>(() => defaultFormValues(teachers[0]?.path ?? ''));
  const [teacherChoice, setTeacherChoice] = useState<string>(teachers[0]?.path ?? '');
  const [runId, setRunId] = useState('');
  const [busy, setBusy] = useState(false);
  const [submitError, setSubmitError] = useState<string>();
  // A typed path is inspected once it settles, or at once when the field loses focus.
  const typed = values.teacher.trim();
  const settledTyped = useSettled(typed, SETTLE_MS);
  const [blurredPath, setBlurredPath] = useState<string | null>(null);
  // "Browse…" for the typed path: open or not, and the folder the last pick came from (reopened next time).
  const [browsing, setBrowsing] = useState(false);
  const [browseFrom, setBrowseFrom] = useState<string>();
  const browseButton = useRef<HTMLButtonElement>(null);
  // Focus goes back to the button when the panel closes, so a keyboard user is not left on a vanished element.
  const closeBrowser = () => {
    setBrowsing(false);
    browseButton.current?.focus();
  };
  const inspectPath = teacherChoice === CUSTOM ? (blurredPath === typed ? typed : settledTyped) : teacherChoice;
  const inspectBatch = estimateBatch(useSettled(values.batchSize, SETTLE_MS));

  // Models arrive after the form mounts: default to the first (shipped) teacher unless the user chose already.
  useEffect(() => {
    const first = teachers[0];
    if (teacherChoice === '' && first) {
      setTeacherChoice(first.path);
      setValues((cur) => (cur.teacher === '' ? { ...cur, teacher: first.path } : cur));
    }
  }, [teachers, teacherChoice]);

  const v = useMemo(() => validateForm(values), [values]);
  const set = (f: FormField) => (e: { target: { value: string } }) => {
    setValues((cur) => ({ ...cur, [f]: e.target.value }));
  };
  const idError =
    runId !== '' && !RunId.safeParse(runId).success
      ? 'letters, digits, ".", "_" or "-" (max 128), starting with a letter or digit'
      : undefined;

  async function submit(e: { preventDefault(): void }) {
    e.preventDefault();
    if (!v.ok || !v.config || idError) return;
    setBusy(true);
    setSubmitError(undefined);
    try {
      const rec = await api().createRun({ kind: 'distill', config: v.config, ...(runId ? { id: runId } : {}) });
      useApp.setState((s) => ({ runs: { ...s.runs, [rec.id]: rec } }));
      try {
        const started = await api().controlRun({ id: rec.id, action: 'start' });
        useApp.setState((s) => ({ runs: { ...s.runs, [rec.id]: started } }));
      } catch (err) {
        useApp.getState().notify(`run ${rec.id} was created but did not start: ${(err as Error).message}`);
      }
      useApp.getState().select(rec.id);
      void refreshRuns();
    } catch (err) {
      setSubmitError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  const err = (f: FormField) => v.errors[f];
  const field = (f: FormField, label: string, input: ReactNode, help?: ReactNode) => (
    <div className={`field${err(f) ? ' invalid' : ''}`}>
      <label htmlFor={`f-${f}`}>{label}</label>
      {input}
      {err(f) ? (
        <div className="field-error" id={`f-${f}-error`} data-testid={`field-error-${f}`} role="alert">
          {err(f)}
        </div>
      ) : help ? (
        <div className="field-help">{help}</div>
      ) : null}
    </div>
  );
  const inputProps = (f: FormField, extra: Record<string, unknown> = {}) => ({
    id: `f-${f}`,
    name: f,
    'data-testid': `field-${f}`,
    value: values[f],
    onChange: set(f),
    'aria-invalid': err(f) ? true : undefined,
    'aria-describedby': err(f) ? `f-${f}-error` : undefined,
    ...extra,
  });

  const totalSteps = v.config ? v.config.rounds * v.config.stepsPerRound : undefined;

  return (
    <form className="panel new-run" data-testid="new-run-form" onSubmit={submit} noValidate>
      <div className="panel-head">
        <h2>New distillation run</h2>
        <span className="muted">teacher N steps → student N/2, repeated each round</span>
      </div>
      <div className="form-grid">
        <div className={`field wide${err('teacher') ? ' invalid' : ''}`}>
          <label htmlFor="f-teacher">Teacher</label>
          <div className="row">
            <select
              id="f-teacher"
              data-testid="field-teacher"
              value={teacherChoice}
              aria-invalid={err('teacher') ? true : undefined}
              aria-describedby={err('teacher') ? 'f-teacher-error' : undefined}
              onChange={(e) => {
                setTeacherChoice(e.target.value);
                setValues((cur) => ({ ...cur, teacher: e.target.value === CUSTOM ? '' : e.target.value }));
                if (e.target.value !== CUSTOM) setBrowsing(false);
              }}
            >
              {teacherChoice === '' && <option value="">{modelsError ? 'no models listed' : 'loading models…'}</option>}
              {teachers.map((m) => (
                <option key={m.id} value={m.path}>
                  {m.label} · {fmtParams(m.params)} params · {m.source === 'shipped' ? 'shipped' : 'from a run'}
                </option>
              ))}
              <option value={CUSTOM}>Path: a checkpoint, run or official MDLM / SDTT folder…</option>
            </select>
            {teacherChoice === CUSTOM && (
              <input
                className="grow"
                data-testid="field-teacher-path"
                placeholder="/path/to/model: a workbench checkpoint or run folder, an HF MDLM or SDTT folder, a .ckpt"
                value={values.teacher}
                onChange={set('teacher')}
                onBlur={() => setBlurredPath(values.teacher.trim())}
                aria-label="teacher checkpoint path"
                aria-invalid={err('teacher') ? true : undefined}
              />
            )}
            {teacherChoice === CUSTOM && (
              <button
                ref={browseButton}
                type="button"
                data-testid="teacher-browse"
                aria-expanded={browsing}
                onClick={() => setBrowsing((b) => !b)}
              >
                Browse…
              </button>
            )}
          </div>
          {browsing && teacherChoice === CUSTOM && (
            <FolderBrowser
              start={browseFrom}
              onClose={closeBrowser}
              onPick={(path, folder) => {
                // As if typed and left: the summary asks about it at once, without waiting for it to settle.
                setValues((cur) => ({ ...cur, teacher: path }));
                setBlurredPath(path.trim());
                setBrowseFrom(folder);
                closeBrowser();
              }}
            />
          )}
          {err('teacher') ? (
            <div className="field-error" id="f-teacher-error" data-testid="field-error-teacher" role="alert">
              {err('teacher')}
            </div>
          ) : (
            <div className="field-help">
              {modelsError
                ? `could not list models: ${modelsError}`
                : 'An MDLM: a workbench checkpoint or run folder, or an official MDLM / SDTT checkpoint (imported into the run); the student starts as a copy of it.'}
            </div>
          )}
          <TeacherSummary path={inspectPath} batchSize={inspectBatch} />
        </div>

        {field(
          'divergence',
          'Divergence',
          <select {...inputProps('divergence')}>
            {DIVERGENCE_NAMES.map((d) => (
              <option key={d} value={d}>
                {d}
                {d === 'kld' ? ' (default)' : ''}
              </option>
            ))}
          </select>,
          DIVERGENCE_HELP[values.divergence as keyof typeof DIVERGENCE_HELP],
        )}
        {field(
          'backend',
          'Backend',
          <select {...inputProps('backend')}>
            {BACKENDS.map((b) => (
              <option key={b} value={b}>
                {b}
                {b === 'auto' && info ? ` (now: ${info.backend})` : ''}
              </option>
            ))}
          </select>,
          info ? `auto → ${info.backend} · ${info.device}` : 'auto picks the fastest available',
        )}
        {field(
          'rounds',
          'Rounds',
          <input {...inputProps('rounds', { inputMode: 'numeric' })} />,
          'each round halves the step count',
        )}
        {field(
          'stepsPerRound',
          'Steps per round',
          <input {...inputProps('stepsPerRound', { inputMode: 'numeric' })} />,
          'optimiser steps (paper: 10k)',
        )}
        {field(
          'lr',
          'Learning rate',
          <input {...inputProps('lr', { inputMode: 'decimal' })} />,
          'AdamW; 200 warmup steps',
        )}
        {field('batchSize', 'Batch size', <input {...inputProps('batchSize', { inputMode: 'numeric' })} />)}
        {field(
          'seed',
          'Seed',
          <input {...inputProps('seed', { inputMode: 'numeric' })} />,
          'also the sampling seed of every grid cell',
        )}
        {field(
          'startSteps',
          'Start steps N₀',
          <input {...inputProps('startSteps', { inputMode: 'numeric', placeholder: "model's seqLen" })} />,
          'teacher steps of round 0; empty = seqLen',
        )}
        {field(
          'evalSamples',
          'Eval samples',
          <input {...inputProps('evalSamples', { inputMode: 'numeric' })} />,
          'samples per evaluation point',
        )}
        {field(
          'judge',
          'Judge (gen PPL)',
          <select {...inputProps('judge')}>
            <option value="">none / shipped default</option>
            {judges.map((m) => (
              <option key={m.id} value={m.path}>
                {m.label} · {fmtParams(m.params)} params · {m.source === 'shipped' ? 'shipped' : 'from a run'}
              </option>
            ))}
            {values.judge !== '' && !judges.some((m) => m.path === values.judge) && (
              <option value={values.judge}>{values.judge}</option>
            )}
          </select>,
          'autoregressive model scoring the samples; without one, rounds report entropy and held-out NELBO only',
        )}
        {field(
          'evalSteps',
          'Eval step counts',
          <input {...inputProps('evalSteps', { placeholder: DEFAULT_EVAL_STEPS.join(', ') })} />,
          'comma-separated sampling step counts; empty = default',
        )}
        <div className={`field${idError ? ' invalid' : ''}`}>
          <label htmlFor="f-id">Run id (optional)</label>
          <input
            id="f-id"
            data-testid="field-id"
            value={runId}
            placeholder="generated"
            onChange={(e) => setRunId(e.target.value.trim())}
            aria-invalid={idError ? true : undefined}
          />
          {idError ? (
            <div className="field-error" data-testid="field-error-id" role="alert">
              {idError}
            </div>
          ) : null}
        </div>
      </div>
      {v.other.length > 0 && (
        <ul className="form-errors" data-testid="form-errors">
          {v.other.map((o) => (
            <li key={o}>{o}</li>
          ))}
        </ul>
      )}
      {submitError && (
        <div className="error-line" data-testid="submit-error" role="alert">
          {submitError}
        </div>
      )}
      <div className="form-actions">
        <span className="muted">
          {totalSteps !== undefined
            ? `${totalSteps.toLocaleString()} optimiser steps at most`
            : 'fix the marked fields'}
        </span>
        <button type="submit" className="primary" data-testid="submit-run" disabled={!v.ok || !!idError || busy}>
          {busy ? 'Starting…' : 'Create & start'}
        </button>
      </div>
    </form>
  );
}
