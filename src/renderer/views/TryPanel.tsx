import { useEffect, useState } from 'react';
import { fmtKnownWords } from '../../shared/evalFormat.ts';
import { SAMPLE_LIMITS } from '../../shared/messages.ts';
import { InventedLegend, MarkedText } from '../components/MarkedText.tsx';
import { trySample, useApp } from '../store/appStore.ts';
import { RunModelSelect, useRunModelChoices } from './RunModelSelect.tsx';

const STEP_CHOICES = [128, 64, 32, 16, 8, 4, 2, 1];
const MAX_KEPT = 6;
/** '' = the model's default (MDLM p = 1, the exact sampler; AR the usual 0.95, so AR offers 1 instead); a p < 1
 *  reads better but is biased. */
const MDLM_TOP_P = ['', '0.95', '0.9', '0.8'];
const AR_TOP_P = ['', '1', '0.9', '0.8'];

/**
 * "Try it": fresh samples from one of the run's models (a pretraining run's latest checkpoint; a distillation's
 * teacher or a finished round's student) at any step count, seed and prefix. The latest results stay listed, newest
 * first, so the same seed at two step counts or from two models can be read one above the other.
 */
export function TryPanel({ id }: { id: string }) {
  const isAr = useApp((s) => s.runs[id]?.kind === 'pretrain-ar');
  const { choices, pretrained } = useRunModelChoices(id, true);
  const [picked, setPicked] = useState('');
  const [steps, setSteps] = useState<number | null>(null);
  const [samples, setSamples] = useState(2);
  const [seed, setSeed] = useState(0);
  const [prefix, setPrefix] = useState('');
  const [topP, setTopP] = useState('');
  const busy = useApp((s) => s.tryBusy);
  const drawn = useApp((s) => s.tryResults[id]) ?? [];
  const error = useApp((s) => s.tryErrors[id]);
  const [now, setNow] = useState(0);
  const choice = choices.find((c) => c.value === picked) ?? choices[choices.length - 1];
  // The step count follows the model (a student's own N) until the user picks one.
  const n = steps ?? choice?.steps ?? 128;

  useEffect(() => {
    if (busy === null) return;
    setNow(Date.now());
    const t = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(t);
  }, [busy]);

  const draw = () =>
    choice &&
    void trySample(
      id,
      choice.label,
      {
        round: Number(choice.value),
        steps: n,
        samples,
        seed,
        ...(prefix ? { prefix } : {}),
        ...(topP ? { topP: Number(topP) } : {}),
      },
      MAX_KEPT,
    );

  return (
    <section className="panel" data-testid="try-panel">
      <div className="panel-head">
        <h3>Try it</h3>
        <span className="muted">
          fresh samples from {pretrained ? 'the model as trained so far' : 'the teacher or a student'}, at any step
          count
        </span>
      </div>
      <div className="export-row">
        <RunModelSelect
          label="model"
          testId="try-model"
          choices={choices}
          value={choice?.value ?? ''}
          empty="no checkpoint yet"
          onChange={setPicked}
        />
        {!isAr && (
          <label>
            steps N
            <select data-testid="try-steps" value={n} onChange={(e) => setSteps(Number(e.target.value))}>
              {[...new Set([n, ...STEP_CHOICES])]
                .sort((a, b) => b - a)
                .map((s) => (
                  <option key={s} value={s}>
                    {s}
                  </option>
                ))}
            </select>
          </label>
        )}
        <label>
          samples
          <select data-testid="try-samples" value={samples} onChange={(e) => setSamples(Number(e.target.value))}>
            {[1, 2, 4, 8].map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </label>
        <label>
          seed
          <input
            data-testid="try-seed"
            type="number"
            min={0}
            value={seed}
            style={{ width: 80 }}
            onChange={(e) => setSeed(Math.min(2 ** 31 - 1, Math.max(0, Math.floor(Number(e.target.value) || 0))))}
          />
        </label>
        <label title="nucleus sampling: draw each token from the smallest set of most probable ones holding p of the mass">
          top-p
          <select data-testid="try-top-p" value={topP} onChange={(e) => setTopP(e.target.value)}>
            {(isAr ? AR_TOP_P : MDLM_TOP_P).map((p) => (
              <option key={p} value={p}>
                {p === '' ? (isAr ? '0.95 (default)' : '1 (exact)') : p}
              </option>
            ))}
          </select>
        </label>
        <label className="grow">
          prefix (optional)
          <input
            data-testid="try-prefix"
            value={prefix}
            maxLength={SAMPLE_LIMITS.maxPrefixChars}
            placeholder="text every sample starts with"
            onChange={(e) => setPrefix(e.target.value)}
          />
        </label>
        <button
          type="button"
          className="primary"
          data-testid="try-submit"
          disabled={!choice || busy !== null}
          onClick={draw}
        >
          {busy === null
            ? 'Sample'
            : `Sampling${busy.runId === id ? '' : ` (${busy.runId})`}… ${Math.max(0, Math.round((now - busy.since) / 1000))} s`}
        </button>
      </div>
      {drawn.some((d) => d.result.wordCheck) && <InventedLegend />}
      {error && (
        <div className="error-line" data-testid="try-error" role="alert">
          {error}
        </div>
      )}
      {drawn.map((d) => (
        <div key={d.key} className="try-result" data-testid="try-result">
          <div className="sample-stats">
            <b>{d.model}</b>
            <span>{d.result.steps !== null ? `${d.result.steps} steps` : 'AR'}</span>
            {(d.result.steps === null || d.result.topP < 1) && <span>nucleus p={d.result.topP}</span>}
            <span>seed {d.result.seed}</span>
            {d.prefix && <span>prefix "{d.prefix.length > 40 ? `${d.prefix.slice(0, 40)}…` : d.prefix}"</span>}
            {d.result.wordCheck && (
              <span title="share of the samples' words found in the training text" data-testid="try-known-words">
                known words {fmtKnownWords({ known_words: d.result.wordCheck.knownWords }) || '—'}
              </span>
            )}
            <span>
              {d.result.seconds.toFixed(1)} s{d.result.nfe !== undefined ? ` · ${d.result.nfe} forward passes` : ''} ·{' '}
              {d.result.backend}
            </span>
          </div>
          {d.result.texts.map((t, i) => (
            <pre key={i} className="try-text" data-testid="try-text">
              <MarkedText text={t} invented={d.result.wordCheck?.invented[i]} />
            </pre>
          ))}
        </div>
      ))}
    </section>
  );
}
