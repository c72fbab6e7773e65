// `sdtt export --run ID [--round R] --out DIR [--dtype f32|f16]`: writes a run's checkpoint (a round's student, or
// with round -1 the latest checkpoint / the teacher) as model.safetensors (EMA weights when present; float32, or
// float16 at half the size) + config.json + a model card.
// The same code path as the app's Export panel (ApiHost.exportRound): never overwrites anything.
import { ApiHost } from '../main/apiHost.ts';
import { RunManager } from '../main/runManager.ts';
import { RunStore } from '../runs/runStore.ts';
import { userChoicePolicy } from '../main/pathPolicy.ts';
import { ExportDtype } from '../shared/api.ts';
import { parseFlags, UsageError, type Flags } from './args.ts';

const FLAGS: Flags = {
  run: { type: 'string', help: 'run id (folder under <workspace>/runs)' },
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
  workspace: { type: 'string', help: 'folder that holds runs/', default: '.' },
};

export async function run(argv: string[]): Promise<number> {
  const f = parseFlags(argv, FLAGS, 'usage: sdtt export --run ID [--round R] --out DIR [--dtype f32|f16]');
  if (!f) return 0;
  if (!f.run || !f.out) throw new UsageError('--run ID and --out DIR are required');
  const round = Number(f.round);
  if (!Number.isInteger(round) || round < -1)
    throw new UsageError(`--round must be an integer >= -1, got "${f.round}"`);
  const dtype = ExportDtype.safeParse(f.dtype);
  if (!dtype.success) throw new UsageError(`--dtype must be f32 or f16, got "${f.dtype}"`);
  const workspace = String(f.workspace);
  // The user typed --out: any folder (assets/ included, to re-export the shipped models), never a checkpoints folder.
  const api = new ApiHost({
    manager: new RunManager(new RunStore(workspace)),
    workspace,
    host: 'browser',
    probeBackend: null,
    paths: userChoicePolicy([]),
  });
  const r = await api.exportRound({ id: String(f.run), round, folder: String(f.out), dtype: dtype.data });
  console.error(`exported ${r.files.join(', ')} to ${r.folder}`);
  console.log(JSON.stringify({ export: r.folder, files: r.files }));
  return 0;
}
