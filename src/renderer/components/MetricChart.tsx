// A metric line chart over steps. Data comes from the typed-array series (metricsStore) and is recomputed only
// when the store's version moves (<= 4 Hz); every line is MIN/MAX-downsampled to ~1000 points, so a 100k-step run
// draws as fast as a short one. Raw points stay visible (faint) under the EMA-smoothed curve.
import { useDeferredValue, useMemo } from 'react';
import {
  CartesianGrid,
  Line,
  LineChart,
  ReferenceArea,
  ReferenceLine,
  ResponsiveContainer,
  XAxis,
  YAxis,
} from 'recharts';
import type { RoundSummary } from '../../shared/api.ts';
import { emaSmooth, firstNonFinite, meanDownsample, minMaxDownsample, niceTicks, toRows } from '../lib/downsample.ts';
import { fmtNum, roundLabel } from '../lib/format.ts';
import type { TrainField } from '../lib/series.ts';
import { useMetrics } from '../store/metricsStore.ts';

export interface ChartRun {
  id: string;
  label: string;
  color: string;
}

/** The value (y) axis every chart of the app draws: numeric, 3 significant digits, small grey ticks. */
export const VALUE_AXIS = {
  type: 'number',
  allowDataOverflow: true,
  width: 52,
  tickFormatter: (v: number) => fmtNum(v, 3),
  tick: { fontSize: 10 },
  stroke: 'var(--axis)',
} as const;

export const PALETTE = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#db2777', '#0891b2', '#65a30d'];

interface Props {
  runs: ChartRun[];
  field: TrainField;
  /** EMA weight in [0, 1); 0 draws the raw series only (at full strength). */
  smoothing?: number;
  /** Draw the raw (unsmoothed) series, faint, under the smoothed one. */
  showRaw?: boolean;
  log?: boolean;
  bands?: RoundSummary[];
  /** Overlay eval valLoss points (first run only). */
  showEval?: boolean;
  height?: number;
  target?: number;
  testId?: string;
}

interface Line_ {
  key: string;
  rows: { x: number; y: number }[];
  color: string;
  opacity: number;
  width: number;
  dashed?: boolean;
}

export function MetricChart({
  runs,
  field,
  smoothing = 0,
  showRaw = true,
  log = false,
  bands,
  showEval = false,
  height = 220,
  target = 1000,
  testId,
}: Props) {
  // Deferred: the store bump re-renders this at low priority (interruptible), so 4 Hz streaming with ~100k points
  // never blocks input; the urgent render reuses the memoised chart element below.
  const version = useDeferredValue(useMetrics((s) => s.version));
  const runKey = runs.map((r) => `${r.id}:${r.color}`).join('|');
  const data = useMemo(() => {
    const lines: Line_[] = [];
    let xMin = Infinity;
    let xMax = -Infinity;
    let yMin = Infinity;
    let yMax = -Infinity;
    let points = 0;
    let nanStep: number | undefined;
    const series = useMetrics.getState().series;
    const take = (rows: { x: number; y: number }[]) => {
      for (const r of rows) {
        if (r.x < xMin) xMin = r.x;
        if (r.x > xMax) xMax = r.x;
        if (r.y < yMin) yMin = r.y;
        if (r.y > yMax) yMax = r.y;
      }
    };
    for (const run of runs) {
      const s = series.get(run.id);
      if (!s || s.train.length === 0) continue;
      const n = s.train.length;
      points += n;
      const x = s.train.step.view();
      const y = s.train.cols[field].view();
      if (x[0]! < xMin) xMin = x[0]!;
      if (x[n - 1]! > xMax) xMax = x[n - 1]!;
      const bad = firstNonFinite(y, n);
      if (bad >= 0 && nanStep === undefined) nanStep = x[bad]!;
      const smooth = smoothing > 0;
      if (!smooth || showRaw) {
        const raw = toRows(minMaxDownsample(x, y, n, target, log)) as { x: number; y: number }[];
        take(raw);
        lines.push({
          key: `${run.id}-raw`,
          rows: raw,
          color: run.color,
          opacity: smooth ? 0.22 : 1,
          width: smooth ? 1 : 1.5,
        });
      }
      if (smooth) {
        const sm = toRows(meanDownsample(x, emaSmooth(y, smoothing, n), n, Math.ceil(target / 2), log)) as {
          x: number;
          y: number;
        }[];
        take(sm);
        lines.push({ key: `${run.id}-ema`, rows: sm, color: run.color, opacity: 1, width: 1.8 });
      }
      if (showEval && field === 'loss' && s.eval.length > 0 && lines.length <= 2) {
        const ev = toRows(
          minMaxDownsample(s.eval.step.view(), s.eval.cols.valLoss.view(), s.eval.length, target, log),
        ) as { x: number; y: number }[];
        take(ev);
        lines.push({ key: `${run.id}-eval`, rows: ev, color: '#ea580c', opacity: 1, width: 1.5, dashed: true });
      }
    }
    return { lines, xMin, xMax, yMin, yMax, points, nanStep };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [version, runKey, field, smoothing, showRaw, log, showEval, target]);

  const empty = data.lines.every((l) => l.rows.length === 0);
  const yTicks = empty ? [] : niceTicks(data.yMin, data.yMax, height < 160 ? 3 : 5, log);
  const yDomain: [number, number] = empty
    ? [0, 1]
    : log
      ? [data.yMin * 0.9, data.yMax * 1.1]
      : [Math.min(yTicks[0] ?? data.yMin, data.yMin), Math.max(yTicks[yTicks.length - 1] ?? data.yMax, data.yMax)];
  const xDomain: [number, number] = empty ? [0, 1] : [data.xMin, data.xMax === data.xMin ? data.xMin + 1 : data.xMax];
  const xTicks = empty
    ? []
    : niceTicks(xDomain[0], xDomain[1], height < 160 ? 4 : 6).filter((t) => t >= xDomain[0] && t <= xDomain[1]);
  const bandKey = (bands ?? []).map((b) => `${b.round}:${b.status}:${b.firstStep}:${b.lastStep}`).join('|');
  const visibleBands = (bands ?? []).filter((b) => b.status !== 'pending' && b.lastStep >= b.firstStep);

  const chart = useMemo(
    () =>
      empty ? null : (
        <ResponsiveContainer width="100%" height={height}>
          <LineChart margin={{ top: 14, right: 12, bottom: 0, left: 0 }}>
            <CartesianGrid stroke="var(--grid)" strokeDasharray="2 3" />
            {visibleBands.map((b, i) => (
              <ReferenceArea
                key={b.round}
                x1={Math.max(b.firstStep, xDomain[0])}
                x2={Math.min(b.status === 'running' ? Math.max(b.lastStep, data.xMax) : b.lastStep, xDomain[1])}
                ifOverflow="hidden"
                fill={i % 2 ? 'var(--band-b)' : 'var(--band-a)'}
                fillOpacity={1}
                label={{
                  value: roundLabel(b.teacherSteps, b.studentSteps),
                  position: 'insideTopLeft',
                  fontSize: 10,
                  fill: 'var(--muted)',
                }}
              />
            ))}
            {data.nanStep !== undefined && (
              <ReferenceLine
                x={data.nanStep}
                stroke="var(--danger)"
                strokeDasharray="3 2"
                ifOverflow="hidden"
                label={{
                  value: `NaN @ ${data.nanStep}`,
                  position: 'insideTopRight',
                  fontSize: 10,
                  fill: 'var(--danger)',
                }}
              />
            )}
            <XAxis
              type="number"
              dataKey="x"
              domain={xDomain}
              ticks={xTicks}
              allowDataOverflow
              tickFormatter={(v: number) => fmtNum(v, 3)}
              tick={{ fontSize: 10 }}
              stroke="var(--axis)"
            />
            <YAxis {...VALUE_AXIS} scale={log ? 'log' : 'linear'} domain={yDomain} ticks={yTicks} />
            {data.lines.map((l) => (
              <Line
                key={l.key}
                data={l.rows}
                dataKey="y"
                type="linear"
                stroke={l.color}
                strokeOpacity={l.opacity}
                strokeWidth={l.width}
                strokeDasharray={l.dashed ? '4 3' : undefined}
                dot={l.rows.length <= 2 ? { r: 2.5, fill: l.color } : false}
                activeDot={false}
                isAnimationActive={false}
                connectNulls={false}
              />
            ))}
          </LineChart>
        </ResponsiveContainer>
      ),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [data, height, bandKey, log],
  );

  return (
    <div className="chart" data-testid={testId} data-points={data.points} data-lines={data.lines.length}>
      {empty ? (
        <div className="chart-empty" style={{ height }}>
          no {field} points yet
        </div>
      ) : (
        chart
      )}
    </div>
  );
}
