import { useEffect, useMemo, useState } from 'react';
import type { SampleCell } from '../../shared/api.ts';
import { fmtNum } from '../lib/format.ts';
import { InventedLegend, MarkedText } from '../components/MarkedText.tsx';
import { gridAxes, replayTokens } from '../lib/samples.ts';
import { refreshSamples, useApp } from '../store/appStore.ts';

export function SamplesGrid({ id }: { id: string }) {
  const cells = useApp((s) => s.samples[id]);
  const error = useApp((s) => s.samplesError[id]);
  const rounds = useApp((s) => s.rounds[id]);
  const [open, setOpen] = useState<SampleCell | null>(null);
  const { rounds: rows, steps: cols } = useMemo(() => gridAxes(cells ?? []), [cells]);
  // A cell file holds several samples; the grid shows the first (the one that carries the unmasking trajectory).
  const byKey = useMemo(() => {
    const m = new Map<string, SampleCell>();
    for (const c of cells ?? []) if (!m.has(`${c.round}:${c.steps}`)) m.set(`${c.round}:${c.steps}`, c);
    return m;
  }, [cells]);
  const seeds = [...new Set((cells ?? []).map((c) => c.seed))];
  const wordsChecked = (cells ?? []).some((c) => c.inventedWords !== undefined);
  const rowLabel = (r: number) => {
    if (r === -1) return 'teacher';
    const rs = rounds?.find((x) => x.round === r);
    return `R${r} student${rs ? ` (${rs.studentSteps})` : ''}`;
  };
  return (
    <section className="panel">
      <div className="panel-head">
        <h3>Samples</h3>
        {seeds.length === 1 && (
          <span className="chip" data-testid="samples-seed">
            seed {seeds[0]} · same in every cell
          </span>
        )}
        {seeds.length > 1 && <span className="chip warn">seeds differ: {seeds.join(', ')}</span>}
        {wordsChecked && <InventedLegend testId="invented-legend" />}
        <div className="spacer" />
        <button type="button" onClick={() => void refreshSamples(id)}>
          ↻ Refresh
        </button>
      </div>
      {error && <div className="error-line">could not load samples: {error}</div>}
      <div className="samples-scroll">
        <table className="samples-grid" data-testid="samples-grid">
          <thead>
            <tr>
              <th />
              {cols.map((c) => (
                <th key={c}>{c} steps</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.length === 0 && (
              <tr>
                <td className="muted pad">
                  {cells
                    ? 'No samples yet: the teacher row appears when the run starts, a student row after each round.'
                    : 'loading…'}
                </td>
              </tr>
            )}
            {rows.map((r) => (
              <tr key={r}>
                <th className="row-head">{rowLabel(r)}</th>
                {cols.map((st) => {
                  const c = byKey.get(`${r}:${st}`);
                  if (!c) return <td key={st} className="cell-empty" />;
                  return (
                    <td key={st}>
                      <button
                        type="button"
                        className="sample-cell"
                        data-testid={`sample-cell-${r}-${st}`}
                        onClick={() => setOpen(c)}
                        title="open the unmasking replay"
                      >
                        <span className="sample-text">
                          <MarkedText text={c.text} invented={c.inventedWords} />
                        </span>
                        <span className="sample-stats">
                          <span>PPL {fmtNum(c.genPpl, 3)}</span>
                          <span>H {fmtNum(c.entropy, 3)}</span>
                          {c.inventedWords && (
                            <span title="words of this sample found nowhere in the training text">
                              {c.inventedWords.length} invented
                            </span>
                          )}
                          <span>{fmtNum(c.latencyMs, 3)} ms</span>
                        </span>
                      </button>
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {open && <Replay cell={open} label={rowLabel(open.round)} onClose={() => setOpen(null)} />}
    </section>
  );
}

function Replay({ cell, label, onClose }: { cell: SampleCell; label: string; onClose: () => void }) {
  const n = cell.trajectory?.length ?? 0;
  const [s, setS] = useState(Math.max(0, n - 1));
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') onClose();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [onClose]);
  const tokens = useMemo(() => replayTokens(cell, s), [cell, s]);
  const masked = tokens.filter((t) => t.masked).length;
  return (
    <div className="modal-backdrop" onClick={onClose}>
      <div
        className="modal"
        role="dialog"
        aria-modal="true"
        aria-label="sample replay"
        data-testid="replay"
        onClick={(e) => e.stopPropagation()}
      >
        <div className="panel-head">
          <h3>
            {label} · {cell.steps} steps · seed {cell.seed}
          </h3>
          <div className="spacer" />
          <button type="button" onClick={onClose} aria-label="close">
            ✕
          </button>
        </div>
        {n > 0 ? (
          <>
            <div className="replay-controls">
              <input
                type="range"
                min={0}
                max={n - 1}
                step={1}
                value={s}
                onChange={(e) => setS(Number(e.target.value))}
                data-testid="replay-slider"
                aria-label="sampling step"
                autoFocus
              />
              <span className="mono">
                step {s}/{n - 1} · {masked} masked
              </span>
            </div>
            <div className="replay-text" data-testid="replay-text">
              {tokens.map((t, i) => (
                <span key={i} className={t.masked ? 'tok masked' : t.fresh ? 'tok fresh' : 'tok'}>
                  {t.text}
                </span>
              ))}
            </div>
          </>
        ) : (
          <>
            <div className="muted">No trajectory was recorded for this cell; final text:</div>
            <div className="replay-text">
              <MarkedText text={cell.text} invented={cell.inventedWords} />
            </div>
          </>
        )}
        <div className="sample-stats">
          <span>gen PPL {fmtNum(cell.genPpl)}</span>
          <span>entropy {fmtNum(cell.entropy)}</span>
          <span>{fmtNum(cell.latencyMs)} ms</span>
        </div>
      </div>
    </div>
  );
}
