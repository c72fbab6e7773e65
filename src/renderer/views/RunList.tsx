import { StatusBadge } from '../components/StatusBadge.tsx';
import { fmtPct } from '../lib/format.ts';
import { useApp } from '../store/appStore.ts';

export function RunList() {
  const runs = useApp((s) => s.runs);
  const selectedId = useApp((s) => s.selectedId);
  const view = useApp((s) => s.view);
  const select = useApp((s) => s.select);
  const runsError = useApp((s) => s.runsError);
  const list = Object.values(runs).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  return (
    <nav className="run-list" data-testid="run-list" aria-label="runs">
      {runsError && <div className="error-line">could not list runs: {runsError}</div>}
      {list.length === 0 && !runsError && <div className="muted pad">No runs yet.</div>}
      {list.map((r) => {
        const pct = r.totalSteps > 0 ? Math.min(100, (100 * r.step) / r.totalSteps) : 0;
        return (
          <button
            key={r.id}
            type="button"
            className={`run-item${selectedId === r.id && view === 'run' ? ' selected' : ''}`}
            data-testid={`run-item-${r.id}`}
            data-status={r.status}
            onClick={() => select(r.id)}
            title={r.reason ? `${r.status}: ${r.reason}` : r.id}
          >
            <div className="run-item-top">
              <span className="run-id">{r.id}</span>
              <StatusBadge status={r.status} title={r.reason} />
            </div>
            <div className="run-item-meta">
              <span className="kind">{r.kind}</span>
              <span>{fmtPct(r.step, r.totalSteps)}</span>
              <span className="backend" title={r.device}>
                {r.backend ?? '—'}
                {r.device ? ` · ${r.device}` : ''}
              </span>
            </div>
            <div className="mini-progress" aria-hidden="true">
              <div className={`mini-fill mini-${r.status}`} style={{ width: `${pct}%` }} />
            </div>
          </button>
        );
      })}
    </nav>
  );
}
