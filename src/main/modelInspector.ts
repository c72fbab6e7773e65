// ApiHost's inspectModel (apiHost.ts stays the dispatcher): the new-run form asks what a teacher is before the run
// exists. The path goes through the same read policy as a new run's teacher (pathPolicy.ts checkReadPath), so in
// browser mode a request cannot learn about files outside the workspace, the --allow folders and assets/ by probing
// them. The summary itself is engine/io/modelSummary.ts, which reads config.json and a safetensors header at most.
import { ApiError, type ApiRequest, type ModelSummary } from '../shared/api.ts';
import { CheckpointError } from '../runs/safetensors.ts';
import { summariseModel } from '../engine/io/modelSummary.ts';
import { describeFsError } from '../node/atomicFile.ts';
import { checkReadPath, type PathPolicy } from './pathPolicy.ts';

export interface InspectContext {
  paths: PathPolicy;
  /** Relative paths resolve against it, as a new run's teacher does. */
  workspace: string;
  /** This machine's measured matmul rate (GFLOP/s), or null: the estimate then gives FLOPs and memory only. */
  gflops: number | null;
}

export function inspectModel(req: ApiRequest<'inspectModel'>, ctx: InspectContext): ModelSummary {
  const path = checkReadPath(ctx.paths, req.path, { base: ctx.workspace, what: 'inspectModel: path' });
  try {
    return summariseModel(path, { batchSize: req.batchSize, gflops: ctx.gflops });
  } catch (e) {
    if (e instanceof CheckpointError)
      throw new ApiError(e.message, /no such file or folder$/.test(e.message) ? 'not-found' : 'invalid-request');
    if ((e as NodeJS.ErrnoException)?.code)
      throw new ApiError(describeFsError(e, `reading ${path}`), 'invalid-request');
    throw e;
  }
}
