// `sdtt runs`: the runs in a workspace with their status, progress and backend. `sdtt runs rm ID`: deletes a run's
// folder, unless a live process runs it (runLifecycle.assertRemovable), and says what went.
import { RunStore } from '../runs/runStore.ts';
import { assertRemovable, withLiveness } from '../main/runLifecycle.ts';
import type { RunRecord } from '../shared/runState.ts';
import { parseFlags, UsageError, type Flags } from './args.ts';
import { formatBytes } from '../shared/units.ts';

const FLAGS: Flags = {
  workspace: { type: 'string', help: 'folder that holds runs/', default: '.' },
  json: { type: 'boolean', help: 'print the run records as JSON' },
};

const RM_FLAGS: Flags = { workspace: FLAGS.workspace };
const RM_USAGE =
  'usage: sdtt runs rm ID [--workspace DIR]\n\ndeletes runs/ID (run.json, metrics, checkpoints, rounds, samples); refused while a process runs it';

export async function run(argv: string[]): Promise<number> {
  if (argv[0] === 'rm') return remove(argv.slice(1));
  const f = parseFlags(
    argv,
    FLAGS,
    'usage: sdtt runs [--workspace DIR] [--json]\n       sdtt runs rm ID [--workspace DIR]',
  );
  if (!f) return 0;
  const store = new RunStore(String(f.workspace));
  const runs = store.list().map(withLiveness); // a run whose process is gone shows as stopped, not running
  if (f.json) {
    console.log(JSON.stringify(runs, null, 2));
    return 0;
  }
  if (runs.length === 0) {
    console.log(`no runs in ${store.root}`);
    return 0;
  }
  for (const r of runs) {
    const pct = r.totalSteps ? Math.floor((100 * r.step) / r.totalSteps) : 0;
    console.log(
      `${r.id.padEnd(40)} ${r.kind.padEnd(12)} ${r.status.padEnd(8)} ${String(r.step).padStart(7)}/${r.totalSteps} (${pct}%)  ${r.backend ?? ''}${latest(store, r)}${r.reason ? `  ${r.reason}` : ''}`,
    );
  }
  return 0;
}

async function remove(argv: string[]): Promise<number> {
  const id = argv[0] && !argv[0].startsWith('-') ? argv[0] : undefined;
  const f = parseFlags(id ? argv.slice(1) : argv, RM_FLAGS, RM_USAGE);
  if (!f) return 0;
  if (!id) throw new UsageError(`runs rm: name the run to delete\n\n${RM_USAGE}`);
  const store = new RunStore(String(f.workspace));
  if (!store.exists(id)) throw new Error(`no run "${id}" in ${store.root} (\`sdtt runs --workspace DIR\` lists them)`);
  const rec = store.read(id);
  assertRemovable(rec, process.pid);
  const { dir, files, bytes } = store.remove(id);
  console.log(
    `removed run ${id} (${rec.kind}, ${rec.status} at step ${rec.step}/${rec.totalSteps}): ${dir}, ${files} file${files === 1 ? '' : 's'}, ${formatBytes(bytes)}`,
  );
  return 0;
}

/** Where the run stands: a distillation's finished rounds, a pretraining run's last validation. */
function latest(store: RunStore, r: RunRecord): string {
  if (r.kind === 'distill') {
    const n = store.readRounds(r.id).length;
    return n ? `  ${n} round${n === 1 ? '' : 's'} done` : '';
  }
  const ev = store.readMetrics(r.id).findLast((m) => m.type === 'eval' && typeof m.valPpl === 'number');
  return ev
    ? `  validation ${r.kind === 'pretrain' ? 'NELBO' : 'NLL'} ppl ${(ev.valPpl as number).toFixed(1)} at step ${String(ev.step)}`
    : '';
}
