import { useMemo, useState } from 'react';
import { MetricChart, PALETTE } from '../components/MetricChart.tsx';
import { StatusBadge } from '../components/StatusBadge.tsx';
import { configDiff } from '../lib/configDiff.ts';
import { useApp } from '../store/appStore.ts';

export function CompareView() {
  const runs = useApp((s) => s.runs);
  const compareIds = useApp((s) => s.compareIds);
  const toggle = useApp((s) => s.toggleCompare);
  const [smoothing, setSmoothing] = useState(0.8);
  const [log, setLog] = useState(false);
  const [onlyDiff, setOnlyDiff] = useState(true);
  const list = Object.values(runs).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const chosen = compareIds.filter((id) => runs[id]);
  const chartRuns = chosen.map((id, i) => ({ id, label: id, color: PALETTE[i % PALETTE.length]! }));
  const rows = useMemo(() => configDiff(chosen.map((id) => runs[id]!.config)), [chosen.join('|'), runs]); // eslint-disable-line react-hooks/exhaustive-deps
  const shown = onlyDiff ? rows.filter((r) => r.differs) : rows;
  return (
    <div className="compare" data-testid="compare-view">
      <section className="panel">
        <div className="panel-head">
          <h2>Compare runs</h2>
          <span className="muted">choose two or more</span>
        </div>
        <div className="compare-pick">
          {list.map((r) => {
            const i = chosen.indexOf(r.id);
            return (
              <label key={r.id} className={`pick${i >= 0 ? ' on' : ''}`}>
                <input
                  type="checkbox"
                  checked={i >= 0}
                  onChange={() => toggle(r.id)}
                  data-testid={`compare-pick-${r.id}`}
                />
                {i >= 0 && <span className="swatch" style={{ background: PALETTE[i % PALETTE.length] }} />}
                <span className="mono">{r.id}</span>
                <StatusBadge status={r.status} />
              </label>
            );
          })}
        </div>
      </section>
      {chosen.length >= 2 ? (
        <>
          <section className="panel">
            <div className="panel-head">
              <h3>Loss</h3>
              <div className="legend">
                {chartRuns.map((r) => (
                  <span key={r.id}>
                    <span className="swatch" style={{ background: r.color }} /> {r.id}
                  </span>
                ))}
              </div>
              <div className="chart-controls">
                <label>
                  smoothing
                  <input
                    type="range"
                    min={0}
                    max={0.99}
                    step={0.01}
                    value={smoothing}
                    onChange={(e) => setSmoothing(Number(e.target.value))}
                  />
                  <span className="mono">{smoothing.toFixed(2)}</span>
                </label>
                <label>
                  <input type="checkbox" checked={log} onChange={(e) => setLog(e.target.checked)} /> log scale
                </label>
              </div>
            </div>
            <MetricChart
              runs={chartRuns}
              field="loss"
              smoothing={smoothing}
              log={log}
              height={300}
              testId="compare-chart"
            />
          </section>
          <section className="panel">
            <div className="panel-head">
              <h3>Config</h3>
              <span className="muted">{rows.filter((r) => r.differs).length} keys differ</span>
              <div className="spacer" />
              <label>
                <input type="checkbox" checked={onlyDiff} onChange={(e) => setOnlyDiff(e.target.checked)} /> only
                differences
              </label>
            </div>
            <table className="config-diff" data-testid="config-diff">
              <thead>
                <tr>
                  <th>key</th>
                  {chosen.map((id, i) => (
                    <th key={id}>
                      <span className="swatch" style={{ background: PALETTE[i % PALETTE.length] }} /> {id}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {shown.map((r) => (
                  <tr key={r.key} className={r.differs ? 'differs' : ''} data-differs={r.differs} data-key={r.key}>
                    <td className="mono">{r.key}</td>
                    {r.values.map((v, i) => (
                      <td key={i} className="mono">
                        {v}
                      </td>
                    ))}
                  </tr>
                ))}
                {shown.length === 0 && (
                  <tr>
                    <td colSpan={chosen.length + 1} className="muted">
                      the configs are identical
                    </td>
                  </tr>
                )}
              </tbody>
            </table>
          </section>
        </>
      ) : (
        <section className="panel muted">
          Pick at least two runs to overlay their loss curves and diff their configs.
        </section>
      )}
    </div>
  );
}
