// Metric series, kept out of React state point by point: events append into typed arrays (RunSeries) held by
// this zustand store, and the store's `version` moves at most every FLUSH_MS, which is what charts re-render on.
import { create } from 'zustand';
import type { MetricPoint, SdttApi } from '../../shared/api.ts';
import { RunSeries } from '../lib/series.ts';

export const FLUSH_MS = 250;

type LoadState = 'loading' | 'loaded' | 'error';

interface MetricsState {
  /** Mutated in place; read it after subscribing to `version`. */
  series: Map<string, RunSeries>;
  load: Map<string, LoadState>;
  errors: Map<string, string>;
  version: number;
}

export const useMetrics = create<MetricsState>(() => ({ series: new Map(), load: new Map(), errors: new Map(), version: 0 }));

/** Points that arrived while the run's history was loading: applied (deduplicated by step) once it has. */
const pendingWhileLoading = new Map<string, MetricPoint[][]>();
let flushTimer: ReturnType<typeof setTimeout> | null = null;
let lastFlush = 0;

function scheduleFlush(): void {
  if (flushTimer !== null) return;
  const wait = Math.max(0, FLUSH_MS - (Date.now() - lastFlush));
  flushTimer = setTimeout(() => {
    const bump = () => {
      flushTimer = null;
      lastFlush = Date.now();
      useMetrics.setState((s) => ({ version: s.version + 1 }));
    };
    // Align with the next frame when a page is showing (no work for hidden tabs beyond the timer).
    if (typeof requestAnimationFrame === 'function' && typeof document !== 'undefined' && !document.hidden) requestAnimationFrame(bump);
    else bump();
  }, wait);
}

export function getSeries(id: string): RunSeries | undefined {
  return useMetrics.getState().series.get(id);
}

/** A live 'metrics' event. Runs whose history was never loaded are ignored (a partial series would mislead). */
export function ingestMetrics(runId: string, points: MetricPoint[]): void {
  const st = useMetrics.getState();
  const state = st.load.get(runId);
  if (state === 'loading') {
    const q = pendingWhileLoading.get(runId) ?? [];
    q.push(points);
    pendingWhileLoading.set(runId, q);
    return;
  }
  if (state !== 'loaded') return;
  const s = st.series.get(runId);
  if (s && s.append(points) > 0) scheduleFlush();
}

/**
 * Loads a run's metric history (paged getMetrics) into its series; afterwards live events append. Called again
 * (e.g. after a reconnect) it fetches only what came after the points already received.
 */
export async function loadMetrics(api: SdttApi, runId: string, opts: { force?: boolean } = {}): Promise<void> {
  const st = useMetrics.getState();
  const cur = st.load.get(runId);
  if (cur === 'loading') return;
  if (cur === 'loaded' && !opts.force) return;
  let s = st.series.get(runId);
  if (!s || cur === 'error') {
    s = new RunSeries();
    st.series.set(runId, s);
  }
  st.load.set(runId, 'loading');
  st.errors.delete(runId);
  try {
    for (;;) {
      const { points, next } = await api.getMetrics({ id: runId, from: s.received });
      if (points.length === 0) break;
      s.append(points);
      s.received = Math.max(s.received, next);
    }
    st.load.set(runId, 'loaded');
    for (const batch of pendingWhileLoading.get(runId) ?? []) s.append(batch);
    pendingWhileLoading.delete(runId);
  } catch (e) {
    st.load.set(runId, 'error');
    st.errors.set(runId, (e as Error).message);
    pendingWhileLoading.delete(runId);
  }
  useMetrics.setState((x) => ({ version: x.version + 1 }));
}

/** After a reconnect: top up every loaded series from where it stopped. */
export async function topUpAll(api: SdttApi): Promise<void> {
  const ids = [...useMetrics.getState().load.entries()].filter(([, v]) => v !== 'loading').map(([k]) => k);
  await Promise.all(ids.map((id) => loadMetrics(api, id, { force: true })));
}
