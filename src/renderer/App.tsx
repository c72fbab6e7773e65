import { useEffect, useRef } from 'react';
import { useApp } from './store/appStore.ts';
import { CompareView } from './views/CompareView.tsx';
import { Header } from './views/Header.tsx';
import { NewRunForm } from './views/NewRunForm.tsx';
import { RunList } from './views/RunList.tsx';
import { RunView } from './views/RunView.tsx';

export function App() {
  const view = useApp((s) => s.view);
  const selectedId = useApp((s) => s.selectedId);
  const setView = useApp((s) => s.setView);
  const notices = useApp((s) => s.notices);
  const dismiss = useApp((s) => s.dismiss);
  const mainRef = useRef<HTMLElement>(null);
  useEffect(() => {
    mainRef.current?.scrollTo({ top: 0 });
  }, [view, selectedId]);
  return (
    <div className="app">
      <Header />
      <div className="body">
        <aside className="sidebar">
          <div className="sidebar-actions">
            <button
              type="button"
              className={view === 'new' ? 'primary' : ''}
              data-testid="nav-new-run"
              onClick={() => setView('new')}
            >
              + New run
            </button>
            <button
              type="button"
              className={view === 'compare' ? 'primary' : ''}
              data-testid="nav-compare"
              onClick={() => setView('compare')}
            >
              Compare
            </button>
          </div>
          <RunList />
        </aside>
        <main className="main" ref={mainRef}>
          {view === 'new' ? (
            <NewRunForm />
          ) : view === 'compare' ? (
            <CompareView />
          ) : selectedId ? (
            <RunView key={selectedId} id={selectedId} />
          ) : (
            <div className="panel muted">Select a run on the left, or start a new one.</div>
          )}
        </main>
      </div>
      {notices.length > 0 && (
        <div className="notices" role="status">
          {notices.map((n) => (
            <div key={n.id} className={`notice notice-${n.kind}`}>
              <span>{n.text}</span>
              <button type="button" onClick={() => dismiss(n.id)} aria-label="dismiss">
                ✕
              </button>
            </div>
          ))}
        </div>
      )}
    </div>
  );
}
