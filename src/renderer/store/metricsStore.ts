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

export const useMetrics = create<MetricsState>(() => ({
  series: new Map(),
  load: new Map(),
  errors: new Map(),
  version: 0,
}));

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
    if (typeof requestAnimationFrame === 'function' && typeof document !== 'undefined' && !document.hidden)
      requestAnimationFrame(bump);
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
 * Loads a run's metric history (paged getMetrics) into its series; afterwards live events append. Called again with
 * `force` (after a reconnect, or when a resumed run's log was cut back to its checkpoint) it reloads the history
 * from the start into a new series and swaps it in whole: the old curve stays on screen until then, and no point
 * is skipped or kept twice (live points that arrive meanwhile wait, and are applied deduplicated by step).
 */
export async function loadMetrics(api: SdttApi, runId: string, opts: { force?: boolean } = {}): Promise<void> {
  const st = useMetrics.getState();
  const cur = st.load.get(runId);
  if (cur === 'loading') return;
  if (cur === 'loaded' && !opts.force) return;
  const fresh = new RunSeries();
  st.load.set(runId, 'loading');
  st.errors.delete(runId);
  try {
    for (let from = 0; ;) {
      const { points, next } = await api.getMetrics({ id: runId, from });
      if (points.length === 0) break;
      fresh.append(points);
      from = next;
    }
    for (const batch of pendingWhileLoading.get(runId) ?? []) fresh.append(batch);
    st.series.set(runId, fresh);
    st.load.set(runId, 'loaded');
  } catch (e) {
    st.load.set(runId, 'error');
    st.errors.set(runId, (e as Error).message);
  } finally {
    pendingWhileLoading.delete(runId);
  }
  useMetrics.setState((x) => ({ version: x.version + 1 }));
}

/** After a reconnect: reload every series that was loaded (events may have been missed meanwhile). */
export async function reloadAll(api: SdttApi): Promise<void> {
  const ids = [...useMetrics.getState().load.entries()].filter(([, v]) => v !== 'loading').map(([k]) => k);
  await Promise.all(ids.map((id) => loadMetrics(api, id, { force: true })));
}

/** A run restarted from a checkpoint: its loaded series is reloaded (the steps after the checkpoint are redone). */
export function metricsRestarted(api: SdttApi, runId: string): Promise<void> {
  return useMetrics.getState().load.get(runId) === 'loaded'
    ? loadMetrics(api, runId, { force: true })
    : Promise.resolve();
}

/** A deleted run: its series, load state and error go (a load in flight finishes into a series nobody reads). */
export function dropMetrics(runId: string): void {
  const st = useMetrics.getState();
  if (!st.series.has(runId) && !st.load.has(runId) && !st.errors.has(runId)) return;
  st.series.delete(runId);
  st.load.delete(runId);
  st.errors.delete(runId);
  pendingWhileLoading.delete(runId);
  useMetrics.setState((x) => ({ version: x.version + 1 }));
}
