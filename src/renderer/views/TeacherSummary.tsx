// What the chosen teacher is and what a step with it would cost (inspectModel), shown under the new-run form's teacher
// field before "Create & start". The host reads config.json and at most a safetensors header, so it is cheap, but
// the form asks only once the path and batch size have settled: not once per keystroke.
import { useEffect, useState } from 'react';
import type { ModelSummary } from '../../shared/api.ts';
import { summaryText } from '../lib/modelSummaryText.ts';
import { api } from '../store/appStore.ts';

/** `value`, once it has stayed the same for `ms`. */
export function useSettled<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return settled;
}

type Lookup = { key: string; summary?: ModelSummary; error?: string };

/** `path` '' shows nothing; `batchSize` null (not a valid number) keeps the model's facts but drops the estimate. */
export function TeacherSummary({ path, batchSize }: { path: string; batchSize: number | null }) {
  const [lastBatch, setLastBatch] = useState(batchSize ?? 32);
  const batch = batchSize ?? lastBatch;
  useEffect(() => {
    if (batchSize !== null) setLastBatch(batchSize);
  }, [batchSize]);
  const key = JSON.stringify([path, batch]);
  const [got, setGot] = useState<Lookup | null>(null);
  useEffect(() => {
    if (path === '') return;
    let current = true;
    api()
      .inspectModel({ path, batchSize: batch })
      .then(
        (summary) => current && setGot({ key, summary }),
        (e: unknown) => current && setGot({ key, error: (e as Error).message }),
      );
    return () => {
      current = false;
    };
  }, [key, path, batch]);

  if (path === '') return null;
  // An answer for another path stays up (dimmed) until this one arrives, so the form does not jump while typing.
  const stale = got?.key !== key;
  if (!got)
    return (
      <div className="teacher-summary muted" data-testid="teacher-summary-loading">
        reading the model…
      </div>
    );
  if (got.error)
    return (
      <div className={`field-error${stale ? ' stale' : ''}`} data-testid="teacher-summary-error" role="alert">
        {got.error}
      </div>
    );
  const s = got.summary!;
  const t = summaryText(s);
  return (
    <div
      className={`teacher-summary${stale ? ' stale' : ''}`}
      data-testid="teacher-summary"
      data-layout={s.layout}
      data-stale={stale ? 'true' : undefined}
    >
      <div>
        <span data-testid="teacher-summary-layout">{t.layout}</span> ·{' '}
        <span data-testid="teacher-summary-params">{t.params}</span> · <span className="muted">{t.shape}</span>
      </div>
      <div>
        <span data-testid="teacher-summary-vocab">{t.vocabulary}</span> ·{' '}
        <span data-testid="teacher-summary-seqlen">{t.sequence}</span>
      </div>
      {batchSize !== null ? (
        <>
          <div data-testid="teacher-summary-estimate">{t.time}</div>
          <div data-testid="teacher-summary-memory">{t.memory}</div>
        </>
      ) : (
        <div className="muted">fix the batch size for an estimate of a step's time and memory</div>
      )}
      {s.problems.map((p) => (
        <div key={p} className="field-error" data-testid="teacher-summary-problem" role="alert">
          {p}
        </div>
      ))}
    </div>
  );
}
