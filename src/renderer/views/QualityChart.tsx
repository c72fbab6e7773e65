import { useMemo, useState } from 'react';
import { CartesianGrid, ErrorBar, Line, LineChart, ResponsiveContainer, XAxis, YAxis } from 'recharts';
import { PALETTE, VALUE_AXIS } from '../components/MetricChart.tsx';
import { niceTicks } from '../lib/downsample.ts';
import { QUALITY_METRICS, availableMetrics, qualitySeries, type QualityMetric } from '../lib/quality.ts';
import { useApp } from '../store/appStore.ts';

const TEACHER_COLOR = '#6b7280';
const NO_ROUNDS: never[] = [];

/** Teacher and students against sampling steps N (log2 axis): does the round-r student at N/2 match its teacher at N? */
export function QualityChart({ id }: { id: string }) {
  const teacher = useApp((s) => s.teacherEval[id]);
  const rounds = useApp((s) => s.rounds[id]) ?? NO_ROUNDS;
  const metrics = useMemo(() => availableMetrics(teacher, rounds), [teacher, rounds]);
  const [picked, setPicked] = useState<QualityMetric>('gen_ppl');
  const metric = metrics.includes(picked) ? picked : metrics[0];
  const series = useMemo(() => (metric ? qualitySeries(teacher, rounds, metric) : []), [teacher, rounds, metric]);
  const colorOf = (i: number, isTeacher: boolean) => (isTeacher ? TEACHER_COLOR : PALETTE[i % PALETTE.length]!);
  const studentIndex = (k: number) => k - (series[0]?.teacher ? 1 : 0);

  const ns = [...new Set(series.flatMap((s) => s.points.map((p) => p.n)))].sort((a, b) => a - b);
  const ys = series.flatMap((s) => s.points.flatMap((p) => [p.y - p.se, p.y + p.se]));
  const yTicks = ys.length ? niceTicks(Math.min(...ys), Math.max(...ys), 5) : [];
  const yDomain: [number, number] = yTicks.length
    ? [Math.min(yTicks[0]!, ...ys), Math.max(yTicks[yTicks.length - 1]!, ...ys)]
    : [0, 1];
  const xDomain: [number, number] = ns.length ? [ns[0]! / 1.25, ns[ns.length - 1]! * 1.25] : [1, 2];
  const info = metric ? QUALITY_METRICS[metric] : undefined;

  return (
    <section className="panel">
      <div className="panel-head">
        <h3>Quality vs sampling steps</h3>
        <span className="muted">
          the teacher and each round's student, same seeds{info ? `; ${info.label} ${info.better}` : ''}
        </span>
        <div className="spacer" />
        {metrics.length > 1 && (
          <div className="segmented" role="radiogroup" aria-label="metric">
            {metrics.map((m) => (
              <button
                key={m}
                type="button"
                role="radio"
                aria-checked={m === metric}
                className={m === metric ? 'on' : ''}
                onClick={() => setPicked(m)}
                data-testid={`quality-metric-${m}`}
              >
                {QUALITY_METRICS[m].label}
              </button>
            ))}
          </div>
        )}
      </div>
      <div className="chart" data-testid="quality-chart" data-series={series.length} data-metric={metric ?? ''}>
        {series.length === 0 ? (
          <div className="chart-empty" style={{ height: 220 }}>
            the teacher's line appears after its evaluation, a student's after its round
          </div>
        ) : (
          <ResponsiveContainer width="100%" height={240}>
            <LineChart margin={{ top: 14, right: 16, bottom: 14, left: 0 }}>
              <CartesianGrid stroke="var(--grid)" strokeDasharray="2 3" />
              <XAxis
                type="number"
                dataKey="n"
                scale="log"
                domain={xDomain}
                ticks={ns}
                allowDataOverflow
                tick={{ fontSize: 10 }}
                stroke="var(--axis)"
                label={{
                  value: 'sampling steps N',
                  position: 'insideBottom',
                  offset: -8,
                  fontSize: 10,
                  fill: 'var(--muted)',
                }}
              />
              <YAxis {...VALUE_AXIS} domain={yDomain} ticks={yTicks} />
              {series.map((s, k) => (
                <Line
                  key={s.key}
                  data={s.points}
                  dataKey="y"
                  type="linear"
                  stroke={colorOf(studentIndex(k), s.teacher)}
                  strokeWidth={s.teacher ? 2 : 1.6}
                  strokeDasharray={s.teacher ? '5 3' : undefined}
                  dot={{ r: 3, fill: colorOf(studentIndex(k), s.teacher) }}
                  activeDot={false}
                  isAnimationActive={false}
                >
                  {metric === 'gen_ppl' && (
                    <ErrorBar
                      dataKey="se"
                      direction="y"
                      width={3}
                      stroke={colorOf(studentIndex(k), s.teacher)}
                      isAnimationActive={false}
                    />
                  )}
                </Line>
              ))}
            </LineChart>
          </ResponsiveContainer>
        )}
      </div>
      {series.length > 0 && (
        <div className="chart-legend" data-testid="quality-legend">
          {series.map((s, k) => (
            <span key={s.key} className="legend-item">
              <span
                className={`swatch${s.teacher ? ' dashed' : ''}`}
                style={{ background: colorOf(studentIndex(k), s.teacher) }}
              />
              {s.label}
            </span>
          ))}
          {metric === 'gen_ppl' && <span className="muted">bars: ± 1 s.e.</span>}
        </div>
      )}
    </section>
  );
}
