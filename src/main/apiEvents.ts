// The two translations between the RunManager's world and the API's, kept apart from ApiHost's request handling
// (apiHost.ts): toApiEvents maps a ManagerEvent to the client-facing RunEvents of shared/api.ts, and toApiError maps
// anything a handler throws to an ApiError with the right code.
import { ApiError, type RunEvent } from '../shared/api.ts';
import type { RunRecord } from '../shared/runState.ts';
import { normaliseRound } from '../runs/runFiles.ts';
import { RunStoreError } from '../runs/runStore.ts';
import { RunConflictError } from './runLifecycle.ts';
import { PathRefusedError } from './pathPolicy.ts';
import type { ManagerEvent } from './managerEvents.ts';

/** A ManagerEvent as API RunEvents (none for 'progress'); `getRecord` reads a run's record (RunManager.get). */
export function toApiEvents(e: ManagerEvent, getRecord: (id: string) => RunRecord): RunEvent[] {
  switch (e.type) {
    case 'status':
      return [{ type: 'status', record: e.record }];
    case 'metrics':
      return [{ type: 'metrics', runId: e.runId, points: e.points.map((p) => ({ ...p, type: 'train' as const })) }];
    case 'eval':
      return [{ type: 'metrics', runId: e.runId, points: [{ ...e.metric, type: 'eval' as const }] }];
    case 'checkpoint':
      // run.json's step (the resumable step) moved on.
      try {
        return [{ type: 'status', record: getRecord(e.runId) }];
      } catch {
        return [];
      }
    case 'activity':
      return [{ type: 'activity', runId: e.runId, text: e.text }];
    case 'deleted':
      return [{ type: 'deleted', runId: e.runId }];
    case 'samples':
      return [{ type: 'samples', runId: e.runId }];
    case 'round': {
      const r = normaliseRound(e.round);
      return r ? [{ type: 'round', runId: e.runId, round: r }] : [];
    }
    case 'started':
      // Preceded by a status event carrying backend/device; the log was cut back to the checkpoint it resumed from.
      return [{ type: 'restarted', runId: e.runId, fromStep: e.startStep }];
    case 'progress':
      return []; // progress has no API event
  }
}

/** Maps anything a handler throws to an ApiError with the right code. */
export function toApiError(method: string, e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof PathRefusedError) return new ApiError(e.message, e.code);
  const msg = (e as Error)?.message ?? String(e);
  if (e instanceof RunConflictError) return new ApiError(msg, 'conflict');
  if (e instanceof RunStoreError)
    return new ApiError(
      msg,
      /already exists/.test(msg) ? 'conflict' : /cannot read/.test(msg) ? 'not-found' : 'internal',
    );
  if (/already (active|running|paused|exists)|is done|not supported/.test(msg)) return new ApiError(msg, 'conflict');
  return new ApiError(`${method}: ${msg}`, 'internal');
}
