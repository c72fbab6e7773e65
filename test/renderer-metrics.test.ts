// The renderer's metric store (src/renderer/store/metricsStore.ts) against a fake API whose metrics.jsonl can grow
// and be cut back: live points that race the history load, a reconnect after missed events, and a run resumed from
// a checkpoint (its log cut back, the steps after it redone) all end with exactly the file's points, in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MetricPoint, SdttApi } from '../src/shared/api.ts';
import {
  getSeries,
  ingestMetrics,
  loadMetrics,
  metricsRestarted,
  reloadAll,
} from '../src/renderer/store/metricsStore.ts';

const pt = (step: number, loss = step): MetricPoint => ({
  type: 'train',
  step,
  loss,
  lr: 1e-3,
  gradNorm: 1,
  tokPerSec: 100,
  elapsedS: step,
});

function fakeApi(file: MetricPoint[], page = 2, onPage?: () => void): SdttApi {
  return {
    getMetrics: async ({ from = 0 }: { from?: number }) => {
      await new Promise((r) => setImmediate(r));
      const points = file.slice(from, from + page);
      onPage?.();
      return { points, next: from + points.length };
    },
  } as unknown as SdttApi;
}

const steps = (id: string) => [...getSeries(id)!.train.step.view()];
const losses = (id: string) => [...getSeries(id)!.train.cols.loss.view()];

test('metrics: live points racing the load are kept once; a reconnect reloads what was missed; a resumed run is redrawn', async () => {
  const file = [1, 2, 3, 4].map((s) => pt(s));
  let pages = 0;
  // While the history loads, the run logs step 5 (appended to the file first, then sent: both copies arrive).
  const api = fakeApi(file, 2, () => {
    if (++pages === 1) {
      file.push(pt(5));
      ingestMetrics('r', [pt(5)]);
      ingestMetrics('r', [pt(3), pt(4)]); // a replayed batch the pages also hold
    }
  });
  await loadMetrics(api, 'r');
  assert.deepEqual(steps('r'), [1, 2, 3, 4, 5]);

  // Connection lost while steps 6 and 7 were logged; back again: nothing is skipped.
  file.push(pt(6), pt(7));
  await reloadAll(api);
  assert.deepEqual(steps('r'), [1, 2, 3, 4, 5, 6, 7]);
  ingestMetrics('r', [pt(8)]);
  file.push(pt(8));
  assert.deepEqual(steps('r'), [1, 2, 3, 4, 5, 6, 7, 8]);

  // Killed and resumed from the checkpoint at step 4: the log is cut back, steps 5.. are redone with other losses.
  file.length = 4;
  file.push(pt(5, 50), pt(6, 60));
  await metricsRestarted(api, 'r');
  assert.deepEqual(steps('r'), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(losses('r'), [1, 2, 3, 4, 50, 60]);
  await metricsRestarted(api, 'never-loaded'); // a run whose curve nobody opened is not fetched
  assert.equal(getSeries('never-loaded'), undefined);
});
