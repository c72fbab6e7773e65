// Runs the test suites with node's own test runner. Node 20's --test does not expand globs, so list files here.
// usage: node scripts/run-tests.mjs [unit|e2e|all] [extra files...]
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function list(dir) {
  let out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(list(p));
    else if (/\.test\.tsx?$/.test(name)) out.push(p);
  }
  return out;
}

const which = process.argv[2] ?? 'all';
const all = list('test');
const e2e = all.filter((f) => f.startsWith(join('test', 'e2e')));
const unit = all.filter((f) => !e2e.includes(f));
const files = which === 'unit' ? unit : which === 'e2e' ? e2e : all;
if (files.length === 0) {
  console.error(`no test files for "${which}"`);
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
