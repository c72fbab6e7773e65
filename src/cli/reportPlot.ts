// The figure of `sdtt report`, built as an SVG string with no charting library (the CLI must not pull the renderer's
// dependencies in): judge gen PPL against sampling steps N with ±1 s.e. bars, unigram entropy against N and, when
// it was computed, the known-word rate against N; all on a log2 N axis, because the step counts halve from round to
// round. Pure functions: report.ts turns the
// string into a PNG (Chromium) or writes it as it is.

export interface PlotPoint {
  n: number;
  /** null = no judge for this run: the point is left out of the PPL panel. */
  ppl: number | null;
  se: number | null;
  entropy: number;
  /** Share of the samples' words found in the training text (0..1); absent or null = not computed. */
  known?: number | null;
}

export interface PlotSeries {
  label: string;
  points: PlotPoint[];
}

/** A horizontal reference line in both panels (a baseline with no step count: real text, an AR model's samples). */
export interface PlotRef {
  label: string;
  ppl: number | null;
  entropy: number;
  known?: number | null;
}

export interface PlotFigure {
  svg: string;
  width: number;
  height: number;
}

const PANEL_W = 500;
const PANEL_H = 380;
const TITLE_H = 44;
const LEGEND_ROW = 22;
const LEGEND_PER_ROW = 4;
const MARGIN = { left: 70, right: 20, top: 16, bottom: 52 };
// Teacher black; students in a colour-blind-friendly order (Okabe-Ito), so adjacent rounds differ clearly.
const TEACHER_COLOUR = '#000000';
const COLOURS = ['#E69F00', '#0072B2', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#F0E442', '#999999'];
// Reference lines: greys, dotted, so they read as background to the models' lines.
const REF_COLOURS = ['#555555', '#8c8c8c', '#b5b5b5'];
const REF_DASH = ' stroke-dasharray="2 3"';

export function seriesColour(index: number, label: string): string {
  return /^teacher/i.test(label) ? TEACHER_COLOUR : COLOURS[index % COLOURS.length];
}

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

type PanelKey = 'ppl' | 'entropy' | 'known';

/** A point's (or reference's) value in panel `key`, null when it has none: known words in %. */
function panelValue(key: PanelKey, q: { ppl: number | null; entropy: number; known?: number | null }): number | null {
  const v = key === 'ppl' ? q.ppl : key === 'entropy' ? q.entropy : q.known == null ? null : 100 * q.known;
  return v !== null && Number.isFinite(v) ? v : null;
}

/** ~`count` round ticks (1, 2, 5 x 10^k) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) {
    const d = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    return niceTicks(lo - d, hi + d, count);
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** The powers of two from the smallest to the largest N (the x ticks of a log2 axis). */
export function log2Ticks(ns: number[]): number[] {
  if (ns.length === 0) return [1];
  const lo = Math.floor(Math.log2(Math.min(...ns)));
  const hi = Math.ceil(Math.log2(Math.max(...ns)));
  const out: number[] = [];
  for (let e = lo; e <= hi; e++) out.push(2 ** e);
  return out;
}

function fmtTick(v: number): string {
  return Math.abs(v) >= 1000 ? v.toFixed(0) : Number(v.toPrecision(4)).toString();
}

interface Panel {
  key: PanelKey;
  title: string;
  yLabel: string;
  x0: number;
  y0: number;
  w: number;
  h: number;
}

/** One panel: axes, grid, one polyline per series (data-model names it), markers and optional error bars, and a
 * dotted horizontal line per reference (data-ref names it). */
function panelSvg(p: Panel, series: PlotSeries[], refs: PlotRef[], xTicks: number[], emptyNote: string): string {
  const pts = series.map((s) =>
    s.points
      .flatMap((q) => {
        const y = panelValue(p.key, q);
        return y === null
          ? []
          : [{ n: q.n, y, se: p.key === 'ppl' && q.se !== null && Number.isFinite(q.se) ? q.se : 0 }];
      })
      .sort((a, b) => a.n - b.n),
  );
  const px = p.x0 + MARGIN.left;
  const py = p.y0 + MARGIN.top;
  const pw = p.w - MARGIN.left - MARGIN.right;
  const ph = p.h - MARGIN.top - MARGIN.bottom;
  const parts: string[] = [`<g class="panel" data-panel="${p.key}">`];
  parts.push(
    `<text x="${px + pw / 2}" y="${p.y0 + 4}" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(p.title)}</text>`,
  );
  const refYs = refs.map((r) => panelValue(p.key, r));
  const all = [...pts.flat(), ...refYs.filter((v): v is number => v !== null).map((y) => ({ n: 0, y, se: 0 }))];
  // Half a doubling of padding keeps the end points and their error bars off the frame.
  const lx = Math.log2(xTicks[0]) - 0.25;
  const hx = Math.log2(xTicks[xTicks.length - 1]) + 0.25;
  const Xn = (n: number) => px + ((Math.log2(n) - lx) / (hx - lx)) * pw;
  let lo = all.length ? Math.min(...all.map((q) => q.y - q.se)) : 0;
  let hi = all.length ? Math.max(...all.map((q) => q.y + q.se)) : 1;
  const pad = (hi - lo || Math.abs(hi) || 1) * 0.08;
  lo -= pad;
  hi += pad;
  const yTicks = niceTicks(lo, hi);
  lo = Math.min(lo, yTicks[0]);
  hi = Math.max(hi, yTicks[yTicks.length - 1]);
  const Y = (v: number) => py + ph - ((v - lo) / (hi - lo)) * ph;
  for (const t of yTicks) {
    const y = Y(t).toFixed(1);
    parts.push(`<line x1="${px}" x2="${px + pw}" y1="${y}" y2="${y}" stroke="#e0e0e0"/>`);
    parts.push(`<text x="${px - 6}" y="${y}" dy="4" text-anchor="end" font-size="11">${fmtTick(t)}</text>`);
  }
  for (const t of xTicks) {
    const x = Xn(t).toFixed(1);
    parts.push(`<line x1="${x}" x2="${x}" y1="${py}" y2="${py + ph}" stroke="#f0f0f0"/>`);
    parts.push(`<text x="${x}" y="${py + ph + 16}" text-anchor="middle" font-size="11">${t}</text>`);
  }
  parts.push(`<rect x="${px}" y="${py}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`);
  parts.push(
    `<text x="${px + pw / 2}" y="${py + ph + 38}" text-anchor="middle" font-size="12">sampling steps N (log2 scale)</text>`,
  );
  parts.push(
    `<text transform="translate(${p.x0 + 16},${py + ph / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escapeXml(p.yLabel)}</text>`,
  );
  if (all.length === 0)
    parts.push(
      `<text x="${px + pw / 2}" y="${py + ph / 2}" text-anchor="middle" font-size="13" fill="#888">${escapeXml(emptyNote)}</text>`,
    );
  refs.forEach((r, i) => {
    const v = refYs[i];
    if (v === null) return;
    const y = Y(v).toFixed(1);
    parts.push(
      `<line class="ref" data-panel="${p.key}" data-ref="${escapeXml(r.label)}" x1="${px}" x2="${px + pw}" y1="${y}" y2="${y}" stroke="${REF_COLOURS[i % REF_COLOURS.length]}" stroke-width="1.5"${REF_DASH}/>`,
    );
  });
  series.forEach((s, i) => {
    const c = seriesColour(i, s.label);
    const q = pts[i];
    // A few pixels of horizontal dodge per series: students often sit on the teacher, and their error bars would
    // hide each other exactly.
    const dx = (i - (series.length - 1) / 2) * Math.min(4, 24 / Math.max(1, series.length));
    const X = (n: number) => Xn(n) + dx;
    const dash = /^teacher/i.test(s.label) ? ' stroke-dasharray="6 3"' : '';
    parts.push(
      `<polyline class="series" data-panel="${p.key}" data-model="${escapeXml(s.label)}" fill="none" stroke="${c}" stroke-width="2"${dash} points="${q.map((v) => `${X(v.n).toFixed(1)},${Y(v.y).toFixed(1)}`).join(' ')}"/>`,
    );
    for (const v of q) {
      const x = X(v.n);
      if (v.se > 0) {
        const [a, b] = [Y(v.y - v.se), Y(v.y + v.se)];
        parts.push(
          `<path d="M${x.toFixed(1)},${a.toFixed(1)}V${b.toFixed(1)}M${(x - 4).toFixed(1)},${a.toFixed(1)}h8M${(x - 4).toFixed(1)},${b.toFixed(1)}h8" stroke="${c}" stroke-width="1.2" fill="none"/>`,
        );
      }
      parts.push(`<circle cx="${x.toFixed(1)}" cy="${Y(v.y).toFixed(1)}" r="3.5" fill="${c}"/>`);
    }
  });
  parts.push('</g>');
  return parts.join('\n');
}

/**
 * The figure: gen PPL ± s.e., unigram entropy and (when any point or reference has it) the known-word rate against
 * N, one panel each, one line per series (teacher first, then each round's student), dotted horizontal lines for
 * `refs`, a shared legend under the panels and `title` on top; with its size (the legend grows with the series).
 */
export function plotFigure(title: string, series: PlotSeries[], refs: PlotRef[] = []): PlotFigure {
  const withKnown = [...series.flatMap((s) => s.points), ...refs].some((q) => panelValue('known', q) !== null);
  const panels: Panel[] = [
    {
      key: 'ppl',
      title: 'judge generative perplexity (± 1 s.e.)',
      yLabel: 'gen PPL (lower is better)',
      x0: 0,
      y0: TITLE_H,
      w: PANEL_W,
      h: PANEL_H,
    },
    {
      key: 'entropy',
      title: 'unigram entropy of the samples',
      yLabel: 'entropy (nats)',
      x0: PANEL_W,
      y0: TITLE_H,
      w: PANEL_W,
      h: PANEL_H,
    },
    ...(withKnown
      ? [
          {
            key: 'known' as const,
            title: 'words found in the training text',
            yLabel: 'known words (%)',
            x0: 2 * PANEL_W,
            y0: TITLE_H,
            w: PANEL_W,
            h: PANEL_H,
          },
        ]
      : []),
  ];
  const width = PANEL_W * panels.length;
  const height =
    TITLE_H + PANEL_H + Math.max(1, Math.ceil((series.length + refs.length) / LEGEND_PER_ROW)) * LEGEND_ROW + 12;
  const xTicks = log2Ticks(series.flatMap((s) => s.points.map((p) => p.n)));
  const emptyNotes: Record<PanelKey, string> = {
    ppl: 'gen PPL not computed (no judge)',
    entropy: 'no samples',
    known: 'not computed',
  };
  const legend: string[] = [];
  const colW = (width - 2 * MARGIN.left) / LEGEND_PER_ROW;
  series.forEach((s, i) => {
    const x = MARGIN.left + (i % LEGEND_PER_ROW) * colW;
    const y = TITLE_H + PANEL_H + Math.floor(i / LEGEND_PER_ROW) * LEGEND_ROW + 10;
    const dash = /^teacher/i.test(s.label) ? ' stroke-dasharray="6 3"' : '';
    legend.push(
      `<line x1="${x}" x2="${x + 26}" y1="${y}" y2="${y}" stroke="${seriesColour(i, s.label)}" stroke-width="2"${dash}/><circle cx="${x + 13}" cy="${y}" r="3.5" fill="${seriesColour(i, s.label)}"/>`,
    );
    legend.push(`<text x="${x + 34}" y="${y}" dy="4" font-size="12">${escapeXml(s.label)}</text>`);
  });
  refs.forEach((r, k) => {
    const i = series.length + k;
    const x = MARGIN.left + (i % LEGEND_PER_ROW) * colW;
    const y = TITLE_H + PANEL_H + Math.floor(i / LEGEND_PER_ROW) * LEGEND_ROW + 10;
    legend.push(
      `<line x1="${x}" x2="${x + 26}" y1="${y}" y2="${y}" stroke="${REF_COLOURS[k % REF_COLOURS.length]}" stroke-width="1.5"${REF_DASH}/>`,
    );
    legend.push(`<text x="${x + 34}" y="${y}" dy="4" font-size="12">${escapeXml(r.label)}</text>`);
  });
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, Helvetica, sans-serif">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="26" text-anchor="middle" font-size="17" font-weight="bold">${escapeXml(title)}</text>`,
    ...panels.map((p) => panelSvg(p, series, refs, xTicks, emptyNotes[p.key])),
    `<g class="legend">${legend.join('\n')}</g>`,
    '</svg>',
  ].join('\n');
  return { svg, width, height };
}
