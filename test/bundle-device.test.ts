// `npm run bundle:device`: the kit builds (here with --fast, xz preset 1: the 45 MB limit needs preset 9e, a minute
// of compression, and is checked by the script itself), and its run.sh runs from a folder outside the repository
// with no node on PATH: it unpacks its own node and onnxruntime, prints one JSON line per benchmark (the CPU EP on a
// tiny model, plus a backend that does not exist, whose lines carry an "error") and exits 1 for the failures.
// The CLI's `bench --config FILE` is checked too: the model is named by the file and a bad file by its key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { requirement } from './helpers/requirements.ts';

const ROOT = join(import.meta.dirname, '..');
const XZ = requirement(
  spawnSync('xz', ['--version']).status === 0 ? false : 'xz is not installed (apt-get install xz-utils)',
);
const LINUX_X64 = process.platform === 'linux' && process.arch === 'x64';

/** A PATH folder with every program of /usr/bin and /bin but node (and npm's): a machine without node. */
function pathWithoutNode(dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const from of ['/usr/bin', '/bin'])
    for (const name of existsSync(from) ? readdirSync(from) : []) {
      if (/^(node|nodejs|npm|npx|corepack|tsx)$/.test(name)) continue;
      try {
        symlinkSync(join(from, name), join(dir, name));
      } catch (e) {
        // /bin is /usr/bin on merged-/usr systems; existsSync cannot see a link like X11 -> . that is already there
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
  return dir;
}

test(
  'bundle:device builds a kit whose run.sh runs without node on PATH, one JSON line per benchmark',
  { skip: XZ.skip || (!LINUX_X64 && 'the kit is for linux-x64'), timeout: 120_000 },
  () => {
    XZ.check();
    const tmp = mkdtempSync(join(tmpdir(), 'sdtt-kit-'));
    try {
      const kit = join(tmp, 'kit');
      const b = spawnSync(process.execPath, [join(ROOT, 'scripts', 'bundle-device.mjs'), '--fast', '--out', kit], {
        cwd: ROOT,
        encoding: 'utf8',
      });
      assert.equal(b.status, 0, b.stderr);
      assert.match(b.stderr, /smoke test \(bundled CLI, plain node/);
      assert.match(b.stdout, /\d+ {2}total \(/);
      for (const f of ['run.sh', 'README.txt', 'bin/node.xz', 'lib/libonnxruntime.so.1.xz', 'app/sdtt.mjs'])
        assert.ok(existsSync(join(kit, f)), `${f} is missing from the kit`);
      assert.ok(!existsSync(join(kit, 'assets')), 'no shipped models in the kit');

      const env = {
        PATH: pathWithoutNode(join(tmp, 'bin')),
        HOME: tmp,
        MODELS: 'tiny',
        BACKENDS: 'onnx-cpu no-such-backend',
        BENCH_STEPS: '1',
        SAMPLE_STEPS: '4',
        SAMPLE_BATCH: '2',
      };
      assert.notEqual(spawnSync('sh', ['-c', 'command -v node'], { env }).status, 0, 'node is still on PATH');
      const r = spawnSync(join(kit, 'run.sh'), [], { cwd: tmp, env, encoding: 'utf8' });
      assert.equal(r.status, 1, `run.sh exits 1 when a benchmark failed\n${r.stderr}`);
      const lines = r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.equal(lines.length, 4, r.stdout);
      const [train, sample, badTrain, badSample] = lines;
      assert.equal(train.bench, 'train');
      assert.equal(train.model, 'tiny');
      assert.equal(train.backend, 'onnx');
      assert.equal(train.requested_backend, 'onnx-cpu');
      assert.equal(train.params, 133313);
      assert.ok(train.train_tok_per_s > 0 && train.fwd_tok_per_s > 0, JSON.stringify(train));
      assert.equal(sample.bench, 'sample');
      assert.ok(sample.mdlm['4'] > 0 && sample.ar_kv > 0, JSON.stringify(sample));
      for (const bad of [badTrain, badSample]) {
        assert.equal(bad.backend, 'no-such-backend');
        assert.match(bad.error, /unknown --backend "no-such-backend"/);
      }
      assert.ok(existsSync(join(kit, '.work', 'bin', 'node')), 'run.sh unpacked its node next to itself');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  },
);

test('bench --config FILE: the model is named by its file; a bad file fails naming the file and the key', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'sdtt-bench-config-'));
  try {
    const good = join(tmp, 'd32.json');
    writeFileSync(good, JSON.stringify({ dModel: 32, nLayers: 1, nHeads: 2, seqLen: 16, vocabSize: 67 }));
    const cli = join(ROOT, 'bin', 'sdtt.js');
    const base = ['bench', 'train', '--backend', 'onnx-cpu', '--bench-steps', '1', '--threads', '1'];
    const ok = spawnSync(process.execPath, [cli, ...base, '--config', good], { encoding: 'utf8' });
    if (ok.status !== 0 && /onnxruntime-node could not be loaded/.test(ok.stderr)) return; // optional package absent
    assert.equal(ok.status, 0, ok.stderr);
    const line = JSON.parse(ok.stdout.trim().split('\n').at(-1)!);
    assert.equal(line.model, basename(good, '.json'));
    assert.equal(line.params, 17155);
    assert.equal(line.seq_len, 16);

    const bad = join(tmp, 'bad.json');
    writeFileSync(bad, JSON.stringify({ dModel: 30, nLayers: 1, nHeads: 4, seqLen: 16, vocabSize: 67 }));
    const r = spawnSync(process.execPath, [cli, ...base, '--config', bad], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, new RegExp(`--config ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: nHeads: dModel 30`));
    const both = spawnSync(process.execPath, [cli, ...base, '--config', good, '--model', 'bench-5m'], {
      encoding: 'utf8',
    });
    assert.equal(both.status, 2);
    assert.match(both.stderr, /--model and --config .* exclude each other/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
