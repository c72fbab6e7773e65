// `sdtt export --run ID [--round R] --out DIR [--dtype f32|f16] [--format workbench|official]`: writes a run's
// checkpoint (a round's student, or with round -1 the latest checkpoint / the teacher) as model.safetensors (EMA
// weights when present; float32, or float16 at half the size) + config.json + a model card; `--model DIR` exports
// any checkpoint folder instead. `--format official` writes the official MDLM layout (main/officialExport.ts).
// The same code path as the app's Export panel (ApiHost.exportRound): never overwrites anything.
import { ApiHost } from '../main/apiHost.ts';
import { RunManager } from '../main/runManager.ts';
import { RunStore } from '../runs/runStore.ts';
import { userChoicePolicy } from '../main/pathPolicy.ts';
import { ExportDtype, ExportFormat } from '../shared/api.ts';
import { exportCheckpointFolder } from '../main/exporter.ts';
import { checkWritePath } from '../main/pathPolicy.ts';
import { resolveCheckpointDir } from '../runs/checkpoint.ts';
import { officialFormatOf } from '../engine/io/officialCheckpoint.ts';
import { resolve } from 'node:path';
import { parseFlags, UsageError, type Flags } from './args.ts';

const FLAGS: Flags = {
  run: { type: 'string', help: 'run id (folder under <workspace>/runs)' },
  model: { type: 'string', help: 'export this checkpoint folder (or official checkpoint) instead of a run' },
  round: {
    type: 'string',
    help: "round to export; -1 = a pretraining run's latest checkpoint or a distillation run's teacher",
    default: '-1',
  },
  out: { type: 'string', help: 'new or empty folder to write' },
  dtype: {
    type: 'string',
    help: 'weight type in model.safetensors: f32, or f16 (half the size; refused if a weight exceeds 65504)',
    default: 'f32',
  },
  format: {
    type: 'string',
    help: "workbench, or official (kuleshov-group/mdlm's layout: HF mdlm config, backbone.* names, float32)",
    default: 'workbench',
  },
  workspace: { type: 'string', help: 'folder that holds runs/', default: '.' },
};

const SYNOPSIS =
  'usage: sdtt export (--run ID [--round R] | --model DIR) --out DIR [--dtype f32|f16] [--format workbench|official]';

export async function run(argv: string[]): Promise<number> {
  const f = parseFlags(argv, FLAGS, SYNOPSIS);
  if (!f) return 0;
  if (!f.out || (!f.run && !f.model)) throw new UsageError('--out DIR and one of --run ID or --model DIR are required');
  if (f.run && f.model) throw new UsageError('give --run ID or --model DIR, not both');
  const round = Number(f.round);
  if (!Number.isInteger(round) || round < -1)
    throw new UsageError(`--round must be an integer >= -1, got "${f.round}"`);
  const dtype = ExportDtype.safeParse(f.dtype);
  if (!dtype.success) throw new UsageError(`--dtype must be f32 or f16, got "${f.dtype}"`);
  const format = ExportFormat.safeParse(f.format);
  if (!format.success) throw new UsageError(`--format must be workbench or official, got "${f.format}"`);
  const workspace = String(f.workspace);
  const paths = userChoicePolicy([]);
  if (f.model) {
    const folder = checkWritePath(paths, String(f.out), {
      base: process.cwd(),
      what: 'export folder',
      runsRoot: resolve(workspace, 'runs'),
    });
    const files = exportCheckpointFolder(null, -1, { dir: modelDir(String(f.model)), step: 0 }, folder, {
      workspace,
      dtype: dtype.data,
      format: format.data,
    });
    console.error(`exported ${files.join(', ')} to ${folder}`);
    console.log(JSON.stringify({ export: folder, files }));
    return 0;
  }
  // The user typed --out: any folder (assets/ included, to re-export the shipped models), never a checkpoints folder.
  const api = new ApiHost({
    manager: new RunManager(new RunStore(workspace)),
    workspace,
    host: 'browser',
    probeBackend: null,
    paths,
  });
  const r = await api.exportRound({
    id: String(f.run),
    round,
    folder: String(f.out),
    dtype: dtype.data,
    format: format.data,
  });
  console.error(`exported ${r.files.join(', ')} to ${r.folder}`);
  console.log(JSON.stringify({ export: r.folder, files: r.files }));
  return 0;
}

/** A checkpoint folder or run folder as resolveCheckpointDir finds it; an official checkpoint as it is. */
function modelDir(given: string): string {
  return officialFormatOf(given) ? resolve(given) : resolveCheckpointDir(given);
}
