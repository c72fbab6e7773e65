// Runs the test suites with node's own test runner. Node 20's --test does not expand globs, so list files here.
// usage: node scripts/run-tests.mjs [unit|e2e|all] [extra files...]
import { existsSync, readdirSync, statSync } from 'node:fs';
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
// The e2e suite drives the built renderer (out/renderer): build it when it is missing or older than src/renderer.
function newestMtime(p) {
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  return readdirSync(p).reduce((m, n) => Math.max(m, newestMtime(join(p, n))), st.mtimeMs);
}
if (files.some((f) => e2e.includes(f))) {
  const index = join('out', 'renderer', 'index.html');
  if (!existsSync(index) || statSync(index).mtimeMs < newestMtime(join('src', 'renderer'))) {
    console.log('building the renderer for the e2e suite (out/renderer is missing or stale)');
    const b = spawnSync(process.execPath, [join('node_modules', 'vite', 'bin', 'vite.js'), 'build'], {
      stdio: 'inherit',
    });
    if (b.status !== 0) process.exit(b.status ?? 1);
  }
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
