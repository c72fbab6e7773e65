// run.sh's JSON line for one benchmark: the CLI's own line plus the requested backend, the exit code and the wall
// time; or, where the benchmark failed, a line with an "error" field (the last error its log shows). Exits 1 then.
// usage: node result-line.mjs BENCH MODEL BACKEND EXIT_CODE T0_MS T1_MS STDOUT_FILE LOG_FILE
import fs from 'node:fs';
import path from 'node:path';

const [bench, model, backend, rcText, t0, t1, outFile, logFile] = process.argv.slice(2);
const rc = Number(rcText);
const read = (f) => {
  try {
    return fs.readFileSync(f, 'utf8');
  } catch {
    return '';
  }
};
const extra = { requested_backend: backend, exit_code: rc, wall_s: Math.round((Number(t1) - Number(t0)) / 100) / 10 };
let result = null;
try {
  const v = JSON.parse(read(outFile).trim().split('\n').at(-1) ?? '');
  if (v && typeof v === 'object' && !Array.isArray(v)) result = v;
} catch {
  // no JSON line: the benchmark failed
}
if (rc === 0 && result) {
  console.log(JSON.stringify({ ...result, ...extra }));
  process.exit(0);
}
const lines = read(logFile)
  .split('\n')
  .map((l) => l.trim())
  .filter(Boolean);
const last = [...lines].reverse().find((l) => /error|unavailable|failed|cannot|unknown|abort/i.test(l)) ?? lines.at(-1);
let error = last ?? (rc === 0 ? 'no JSON line on stdout' : 'no output');
if (rc === 124) error = `timed out after ${process.env.BENCH_TIMEOUT} s (BENCH_TIMEOUT); last output: ${error}`;
else if (rc > 128) error = `killed by signal ${rc - 128}; last output: ${error}`;
const name = model.endsWith('.json') ? path.basename(model, '.json') : model;
console.log(JSON.stringify({ bench, model: name, backend, error, ...extra }));
process.exit(1);
