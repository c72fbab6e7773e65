import { useMemo, useState } from 'react';
import { ActivityLine } from '../components/ActivityLine.tsx';
import { MetricChart } from '../components/MetricChart.tsx';
import { ProgressBar } from '../components/ProgressBar.tsx';
import { StatusBadge } from '../components/StatusBadge.tsx';
import { fmtNum, fmtRate } from '../lib/format.ts';
import { stepRate } from '../lib/series.ts';
import { control, deleteRun, useApp } from '../store/appStore.ts';
import { useMetrics } from '../store/metricsStore.ts';
import { ExportPanel } from './ExportPanel.tsx';
import { QualityChart } from './QualityChart.tsx';
import { RoundTimeline } from './RoundTimeline.tsx';
import { SamplesGrid } from './SamplesGrid.tsx';
import { TryPanel } from './TryPanel.tsx';

export function RunView({ id }: { id: string }) {
  const run = useApp((s) => s.runs[id]);
  const rounds = useApp((s) => s.rounds[id]);
  const detailError = useApp((s) => s.detailError[id]);
  const activity = useApp((s) => s.activity[id]);
  const version = useMetrics((s) => s.version);
  const loadState = useMetrics((s) => s.load.get(id));
  const metricsError = useMetrics((s) => s.errors.get(id));
  const [smoothing, setSmoothing] = useState(0.6);
  const [log, setLog] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState<string | null>(null);

  const live = useMemo(() => {
    const s = useMetrics.getState().series.get(id);
    if (!s) return { rate: NaN, tok: NaN, loss: NaN, lr: NaN, gradNorm: NaN, n: 0, step: 0 };
    return {
      step: s.train.length ? s.train.lastStep() : 0,
      rate: stepRate(s),
      tok: s.train.cols.tokPerSec.last(),
      loss: s.train.cols.loss.last(),
      lr: s.train.cols.lr.last(),
      gradNorm: s.train.cols.gradNorm.last(),
      n: s.train.length,
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [version, id]);

  if (!run)
    return <div className="panel muted">{detailError ? `could not open ${id}: ${detailError}` : `loading ${id}…`}</div>;
  const active = run.status === 'running' || run.status === 'paused' || run.status === 'queued';
  // The record's step only moves on status events (start, checkpoints, pause…); metric points arrive every logEvery
  // steps, so while the run is live the progress bar follows the latest logged step when that is further along.
  const step = active ? Math.min(run.totalSteps, Math.max(run.step, live.step)) : run.step;
  const etaS = run.status === 'running' && live.rate > 0 ? (run.totalSteps - step) / live.rate : NaN;
  const chartRun = [{ id, label: id, color: '#2563eb' }];

  return (
    <div className="run-view">
      <section className="panel run-head">
        <div className="run-title">
          <h2>{run.id}</h2>
          <StatusBadge status={run.status} title={run.reason} />
          <span className="chip">{run.kind}</span>
          <span className="chip" title="backend · device of this run">
            {run.backend ?? 'backend pending'}
            {run.device ? ` · ${run.device}` : ''}
          </span>
          <div className="spacer" />
          {run.status === 'queued' && (
            <button type="button" className="primary" data-testid="btn-start" onClick={() => void control(id, 'start')}>
              ▶ Start
            </button>
          )}
          <button
            type="button"
            data-testid="btn-pause"
            disabled={run.status !== 'running'}
            onClick={() => void control(id, 'pause')}
          >
            ❚❚ Pause
          </button>
          <button
            type="button"
            data-testid="btn-resume"
            disabled={run.status !== 'paused'}
            onClick={() => void control(id, 'resume')}
          >
            ▶ Resume
          </button>
          <button
            type="button"
            className="danger"
            data-testid="btn-stop"
            disabled={!active}
            onClick={() => void control(id, 'stop')}
          >
            ■ Stop
          </button>
          <button
            type="button"
            className="danger"
            data-testid="btn-delete"
            disabled={run.status === 'running' || run.status === 'paused' || confirmDelete === id}
            title={
              run.status === 'running' || run.status === 'paused'
                ? 'stop the run before deleting it'
                : 'delete this run and all its files'
            }
            onClick={() => setConfirmDelete(id)}
          >
            🗑 Delete
          </button>
        </div>
        {confirmDelete === id && (
          <div className="confirm-line" role="alertdialog" data-testid="confirm-delete">
            Delete run <span className="mono">{run.id}</span> and everything in its folder (checkpoints, rounds,
            samples, metrics)? This cannot be undone.
            <button
              type="button"
              className="danger"
              data-testid="btn-delete-confirm"
              onClick={() => void deleteRun(id).finally(() => setConfirmDelete(null))}
            >
              Delete
            </button>
            <button type="button" data-testid="btn-delete-cancel" onClick={() => setConfirmDelete(null)}>
              Cancel
            </button>
          </div>
        )}
        {run.reason && (run.status === 'failed' || run.status === 'nan' || run.status === 'stopped') && (
          <div className={`reason reason-${run.status}`} data-testid="run-reason">
            {run.reason}
          </div>
        )}
        <ProgressBar step={step} total={run.totalSteps} etaS={etaS} />
        <ActivityLine status={run.status} text={activity} />
        <div className="stats">
          <Stat label="loss" value={fmtNum(live.loss)} />
          <Stat label="lr" value={fmtNum(live.lr, 3)} />
          <Stat label="grad norm" value={fmtNum(live.gradNorm, 3)} />
          <Stat label="throughput" value={fmtRate(live.tok)} testId="throughput" />
          <Stat label="steps/s" value={Number.isFinite(live.rate) ? fmtNum(live.rate, 3) : '—'} testId="steps-per-s" />
          <Stat label="points" value={live.n.toLocaleString()} />
        </div>
        {metricsError && <div className="error-line">metrics: {metricsError}</div>}
      </section>

      <section className="panel">
        <div className="panel-head">
          <h3>Loss</h3>
          <div className="chart-controls">
            <label title="EMA weight (0 = raw)">
              smoothing
              <input
                type="range"
                min={0}
                max={0.99}
                step={0.01}
                value={smoothing}
                onChange={(e) => setSmoothing(Number(e.target.value))}
                data-testid="smoothing-slider"
              />
              <span className="mono">{smoothing.toFixed(2)}</span>
            </label>
            <label>
              <input
                type="checkbox"
                checked={log}
                onChange={(e) => setLog(e.target.checked)}
                data-testid="log-toggle"
              />{' '}
              log scale
            </label>
          </div>
        </div>
        {loadState === 'loading' && live.n === 0 ? <div className="chart-empty">loading metrics…</div> : null}
        {/* A distill run's eval points are the held-out NELBO, on another scale than the distillation loss (it would
            flatten the curve): they are shown per round in the round cards instead. */}
        <MetricChart
          runs={chartRun}
          field="loss"
          smoothing={smoothing}
          log={log}
          bands={rounds}
          showEval={run.kind !== 'distill'}
          height={260}
          testId="loss-chart"
        />
        <div className="small-charts">
          <div>
            <h4>learning rate</h4>
            <MetricChart runs={chartRun} field="lr" height={120} target={300} testId="lr-chart" />
          </div>
          <div>
            <h4>gradient norm</h4>
            <MetricChart
              runs={chartRun}
              field="gradNorm"
              smoothing={smoothing}
              height={120}
              target={300}
              testId="gradnorm-chart"
            />
          </div>
          <div>
            <h4>throughput (tok/s)</h4>
            <MetricChart runs={chartRun} field="tokPerSec" height={120} target={300} testId="throughput-chart" />
          </div>
        </div>
      </section>

      {run.kind === 'distill' && <RoundTimeline id={id} />}
      {run.kind === 'distill' && <QualityChart id={id} />}
      {run.kind === 'distill' && <SamplesGrid id={id} />}
      <TryPanel id={id} />
      <ExportPanel id={id} />
    </div>
  );
}

function Stat({ label, value, testId }: { label: string; value: string; testId?: string }) {
  return (
    <div className="stat" data-testid={testId}>
      <span className="stat-label">{label}</span>
      <span className="stat-value">{value}</span>
    </div>
  );
}
