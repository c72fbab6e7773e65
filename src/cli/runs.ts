// `sdtt runs`: the runs in a workspace with their status, progress and backend.
import { RunStore } from '../main/runStore.ts';
import { withLiveness } from '../main/runLifecycle.ts';
import type { RunRecord } from '../shared/runState.ts';
import { parseFlags, type Flags } from './args.ts';

const FLAGS: Flags = {
  workspace: { type: 'string', help: 'folder that holds runs/', default: '.' },
  json: { type: 'boolean', help: 'print the run records as JSON' },
};

export async function run(argv: string[]): Promise<number> {
  const f = parseFlags(argv, FLAGS, 'usage: sdtt runs [--workspace DIR] [--json]');
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
    console.log(`${r.id.padEnd(40)} ${r.kind.padEnd(12)} ${r.status.padEnd(8)} ${String(r.step).padStart(7)}/${r.totalSteps} (${pct}%)  ${r.backend ?? ''}${latest(store, r)}${r.reason ? `  ${r.reason}` : ''}`);
  }
  return 0;
}

/** Where the run stands: a distillation's finished rounds, a pretraining run's last validation. */
function latest(store: RunStore, r: RunRecord): string {
  if (r.kind === 'distill') {
    const n = store.readRounds(r.id).length;
    return n ? `  ${n} round${n === 1 ? '' : 's'} done` : '';
  }
  const ev = store.readMetrics(r.id).findLast((m) => m.type === 'eval' && typeof m.valPpl === 'number');
  return ev ? `  validation ${r.kind === 'pretrain' ? 'NELBO' : 'NLL'} ppl ${(ev.valPpl as number).toFixed(1)} at step ${String(ev.step)}` : '';
}
