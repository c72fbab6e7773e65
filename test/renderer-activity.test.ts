// The renderer's side of the 'activity' event (what a distillation's evaluation is doing): the app store keeps the
// latest text per run and drops it when the run stops running, metric events never touch that store (so the run
// view does not re-render per point), a client that opens the run mid-evaluation gets it from getRun, and the
// status line shows it only while the run is running.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import type { RunEvent, SdttApi } from '../src/shared/api.ts';
import type { RunRecord, RunStatus } from '../src/shared/runState.ts';
import { handleEvent, initStore, openRun, useApp } from '../src/renderer/store/appStore.ts';
import { ActivityLine } from '../src/renderer/components/ActivityLine.tsx';

const record = (id: string, status: RunStatus): RunRecord => ({
  id,
  kind: 'distill',
  config: {},
  status,
  step: 0,
  totalSteps: 40,
  createdAt: '2026-01-01T00:00:00Z',
  updatedAt: '2026-01-01T00:00:00Z',
});
const point = (step: number) => ({
  type: 'train' as const,
  step,
  loss: 1,
  lr: 1e-4,
  gradNorm: 1,
  tokPerSec: 100,
  elapsedS: step,
});

/** Counts app-store notifications (every one is a potential re-render of each subscribed view). */
function countUpdates(): { readonly n: number; stop(): void } {
  const c = { n: 0, stop: () => {} };
  c.stop = useApp.subscribe(() => void c.n++);
  return c;
}

test('store: the latest activity per run; repeats are no-ops; null and a non-running status clear it', () => {
  handleEvent({ type: 'status', record: record('a', 'running') });
  handleEvent({ type: 'status', record: record('b', 'running') });
  const updates = countUpdates();
  handleEvent({ type: 'activity', runId: 'a', text: 'round 0: sampling 64 x 128 steps' });
  handleEvent({ type: 'activity', runId: 'b', text: 'teacher evaluation: reused from cache bd6b6146' });
  assert.equal(useApp.getState().activity.a, 'round 0: sampling 64 x 128 steps');
  handleEvent({ type: 'activity', runId: 'a', text: 'round 0: sampling 64 x 128 steps' });
  assert.equal(updates.n, 2, 'the same text again changes nothing');
  handleEvent({ type: 'activity', runId: 'a', text: 'round 0: held-out NELBO' });
  assert.equal(useApp.getState().activity.a, 'round 0: held-out NELBO');

  handleEvent({ type: 'activity', runId: 'b', text: null }); // training resumed
  assert.equal('b' in useApp.getState().activity, false);
  handleEvent({ type: 'status', record: record('a', 'running') }); // e.g. a checkpoint: still evaluating
  assert.equal(useApp.getState().activity.a, 'round 0: held-out NELBO');
  handleEvent({ type: 'status', record: record('a', 'done') });
  assert.deepEqual(useApp.getState().activity, {});
  updates.stop();
});

test('store: metrics events never notify the app store (the run view re-renders on the throttled series version)', () => {
  handleEvent({ type: 'status', record: record('m', 'running') });
  handleEvent({ type: 'activity', runId: 'm', text: 'round 1: self-BLEU' });
  const updates = countUpdates();
  for (let s = 1; s <= 50; s++) handleEvent({ type: 'metrics', runId: 'm', points: [point(s)] });
  assert.equal(updates.n, 0);
  assert.equal(
    useApp.getState().activity.m,
    'round 1: self-BLEU',
    'metrics do not clear it either: the worker says when training resumes',
  );
  updates.stop();
});

test('store: opening a run (first load, reconnect) takes its current activity from getRun', async () => {
  let activity: string | undefined = 'round 2: held-out NELBO';
  const listeners: ((e: RunEvent) => void)[] = [];
  const api = {
    getInfo: async () => ({ version: '0', workspace: '/w', host: 'browser', backend: 'cpu', device: 'test' }),
    listRuns: async () => [],
    listModels: async () => [],
    getRun: async ({ id }: { id: string }) => ({
      record: record(id, 'running'),
      rounds: [],
      metricsCount: 0,
      ...(activity ? { activity } : {}),
    }),
    getMetrics: async () => ({ points: [], next: 0 }),
    getSamples: async () => [],
    subscribe: (l: (e: RunEvent) => void) => (listeners.push(l), () => {}),
  } as unknown as SdttApi;
  const off = initStore({ api, host: 'browser', onStatus: () => () => {}, onReconnect: () => () => {} });
  try {
    await openRun('late');
    assert.equal(useApp.getState().activity.late, 'round 2: held-out NELBO');
    listeners[0]!({ type: 'activity', runId: 'late', text: 'round 2: self-BLEU' }); // events flow through the subscription
    assert.equal(useApp.getState().activity.late, 'round 2: self-BLEU');
    activity = undefined; // training again by the time the client reconnects
    await openRun('late');
    assert.equal('late' in useApp.getState().activity, false);
  } finally {
    off();
  }
});

test('view: the status line shows the activity only while the run is running, as text', () => {
  const html = (status: RunStatus, text?: string) =>
    renderToStaticMarkup(createElement(ActivityLine, { status, text }));
  const line = html('running', 'round 0: sampling 64 x 128 steps');
  assert.match(line, /data-testid="run-activity"/);
  assert.match(line, /role="status"/);
  assert.match(line, />evaluating — round 0: sampling 64 x 128 steps</);
  for (const status of ['done', 'queued', 'paused', 'stopped', 'failed', 'nan'] as const)
    assert.equal(html(status, 'round 0: self-BLEU'), '', status);
  assert.equal(html('running'), '');
  assert.equal(html('running', ''), '');
  assert.doesNotMatch(html('running', '<img src=x onerror=alert(1)>'), /<img/, 'worker text is escaped, never markup');
});
