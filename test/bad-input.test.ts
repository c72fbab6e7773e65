// Bad input against every command that opens a model (sample, eval, distill --teacher, export): each corrupt model
// folder fails the command with exit 1 and one `sdtt <cmd>: error:` line naming the file and the problem, and the
// workspace's existing run folder is byte for byte what it was. The loaders are one (engine/modelCheckpoint.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { main } from '../src/cli/index.ts';
import { RunStore } from '../src/runs/runStore.ts';
import { decodeSafetensors, encodeSafetensors, type SafetensorInput } from '../src/runs/safetensors.ts';
import { ALICE, trainTinyRun } from './helpers/fixtures.ts';
import { capture } from './helpers/cliOutput.ts';
import type { WorkerToMain } from '../src/shared/messages.ts';
import { JobLoop } from '../src/worker/jobs.ts';
import type { Port } from '../src/worker/port.ts';

let ws = '';
let good = ''; // a complete checkpoint folder of run 'good'

before(async () => {
  ws = mkdtempSync(join(tmpdir(), 'sdtt-bad-input-'));
  good = await trainTinyRun(ws, 'good', 'pretrain', 4);
});
after(() => rmSync(ws, { recursive: true, force: true }));

/** sha256 over every file's relative path and bytes under `dir`. */
function folderChecksum(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else h.update(relative(dir, p)).update('\0').update(readFileSync(p)).update('\0');
    }
  };
  walk(dir);
  return h.digest('hex');
}

/** Rewrites `name` (model.safetensors) of `dir` with its tensors changed by `edit` (metadata kept). */
function editTensors(
  dir: string,
  edit: (tensors: Map<string, SafetensorInput>) => void,
  name = 'model.safetensors',
): void {
  const file = join(dir, name);
  const { tensors, metadata } = decodeSafetensors(readFileSync(file));
  const t = tensors as Map<string, SafetensorInput>;
  edit(t);
  writeFileSync(file, encodeSafetensors(t, metadata));
}

/** Rewrites the JSON header of model.safetensors (same length prefix rules; data untouched). */
function editHeader(
  dir: string,
  edit: (header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>) => void,
): void {
  const file = join(dir, 'model.safetensors');
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  edit(header);
  const text = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(text.length));
  writeFileSync(file, Buffer.concat([len, text, buf.subarray(8 + n)]));
}

const firstFloat = (t: Map<string, SafetensorInput>) =>
  [...t].find(([, e]) => e.data instanceof Float32Array && e.data.length > 2)!;
const editConfig = (dir: string, edit: (c: Record<string, unknown>) => void) => {
  const file = join(dir, 'config.json');
  const c = JSON.parse(readFileSync(file, 'utf8'));
  edit(c);
  writeFileSync(file, JSON.stringify(c));
};

/** Each variant damages a copy of the good checkpoint; `problem` is what the error must say. */
const VARIANTS: { name: string; problem: RegExp; file: string; damage: (dir: string) => void }[] = [
  {
    name: 'truncated',
    file: 'model.safetensors',
    problem: /out of range: the data section holds/,
    damage: (d) =>
      truncateSync(join(d, 'model.safetensors'), Math.floor(statSync(join(d, 'model.safetensors')).size / 2)),
  },
  {
    name: 'header-lies',
    file: 'model.safetensors',
    problem: /header length \d+ reaches beyond the end of the file/,
    damage: (d) => {
      const f = join(d, 'model.safetensors');
      const buf = readFileSync(f);
      buf.writeBigUInt64LE(BigInt(buf.length));
      writeFileSync(f, buf);
    },
  },
  {
    name: 'overlapping-offsets',
    file: 'model.safetensors',
    problem: /overlaps tensor/,
    damage: (d) =>
      editHeader(d, (h) => {
        // two same-size tensors swap nothing but point at the same bytes; a hole is left where the second was
        const names = Object.keys(h).filter((k) => k !== '__metadata__');
        const [a, b] = names.filter(
          (k) =>
            h[k].data_offsets[1] - h[k].data_offsets[0] === h[names[0]].data_offsets[1] - h[names[0]].data_offsets[0],
        );
        h[b].data_offsets = [...h[a].data_offsets];
      }),
  },
  {
    name: 'wrong-dtype',
    file: 'model.safetensors',
    problem: /has dtype I32; weights must be a float type/,
    damage: (d) =>
      editTensors(d, (t) => {
        const [name, e] = firstFloat(t);
        t.set(name, { dtype: 'I32', shape: e.shape, data: new Int32Array(e.data.length) });
      }),
  },
  {
    name: 'nan',
    file: 'model.safetensors',
    problem: /non-finite weights in 1 tensor: '[^']+' \(1 NaN of \d+ values\)/,
    damage: (d) => {
      editTensors(d, (t) => void ((firstFloat(t)[1].data as Float32Array)[1] = NaN));
      rmSync(join(d, 'ema.safetensors'), { force: true });
    },
  },
  {
    name: 'inf',
    file: 'ema.safetensors',
    problem: /non-finite weights in 1 tensor: '[^']+' \(2 Inf of \d+ values\)/,
    damage: (d) =>
      editTensors(
        d,
        (t) => {
          const data = firstFloat(t)[1].data as Float32Array;
          data[0] = Infinity;
          data[2] = -Infinity;
        },
        'ema.safetensors',
      ),
  },
  {
    name: 'vocab-mismatch',
    file: 'model.safetensors',
    problem: /has shape \[\d+, \d+\] but the config needs/,
    damage: (d) => editConfig(d, (c) => void ((c.vocabSize as number) += 7)),
  },
  {
    name: 'no-dModel',
    file: 'config.json',
    problem: /dModel/,
    damage: (d) => editConfig(d, (c) => void delete c.dModel),
  },
  {
    name: 'foreign-tensors',
    file: 'model.safetensors',
    problem: /not an SDTT workbench checkpoint: it holds 2 tensors/,
    damage: (d) => {
      const t = new Map<string, SafetensorInput>([
        ['transformer.wte.weight', { dtype: 'F32', shape: [4, 2], data: new Float32Array(8) }],
        ['lm_head.weight', { dtype: 'F32', shape: [4, 2], data: new Float32Array(8) }],
      ]);
      writeFileSync(join(d, 'model.safetensors'), encodeSafetensors(t, { format: 'pt' }));
      rmSync(join(d, 'ema.safetensors'), { force: true });
    },
  },
  {
    name: 'symlink-loop',
    file: 'model.safetensors',
    problem: /is a symbolic link loop/,
    damage: (d) => {
      rmSync(join(d, 'model.safetensors'));
      symlinkSync('model.safetensors', join(d, 'model.safetensors'));
    },
  },
  {
    name: 'sparse-2gib',
    file: 'model.safetensors',
    problem: /header is not valid JSON/,
    damage: (d) => {
      rmSync(join(d, 'model.safetensors'));
      writeFileSync(join(d, 'model.safetensors'), '');
      truncateSync(join(d, 'model.safetensors'), 2 ** 31); // a hole: no disk space, zeros when read
    },
  },
];

/** A run `bad-<name>` whose only checkpoint is the damaged copy; returns that checkpoint folder. */
function damagedRun(name: string, damage: (dir: string) => void): string {
  const store = new RunStore(ws);
  const id = `bad-${name}`;
  store.create({ ...store.read('good'), id });
  const dir = join(store.checkpointsDir(id), basename(good));
  cpSync(good, dir, { recursive: true });
  damage(dir);
  return dir;
}

/** A distillation as small as the CLI allows: these runs are refused before they start. */
const TINY_DISTILL = () => [
  '--rounds',
  '1',
  '--steps-per-round',
  '1',
  '--batch',
  '1',
  '--eval-samples',
  '1',
  '--eval-steps',
  '2',
  '--workspace',
  ws,
];

const COMMANDS: { cmd: string; argv: (dir: string, name: string) => string[] }[] = [
  { cmd: 'sample', argv: (dir) => ['sample', '--model', dir, '--steps', '2', '--samples', '1'] },
  { cmd: 'eval', argv: (dir) => ['eval', '--model', dir, '--data', ALICE, '--batches', '1', '--batch', '1'] },
  {
    cmd: 'distill',
    argv: (dir, name) => ['distill', '--teacher', dir, '--data', ALICE, ...TINY_DISTILL(), '--run', `distill-${name}`],
  },
  {
    cmd: 'export',
    argv: (_dir, name) => ['export', '--run', `bad-${name}`, '--out', join(ws, 'exports', name), '--workspace', ws],
  },
];

for (const v of VARIANTS) {
  test(`corrupt model folder "${v.name}": sample, eval, distill --teacher and export refuse it in one line naming ${v.file}`, async () => {
    const dir = damagedRun(v.name, v.damage);
    const before = folderChecksum(join(ws, 'runs', 'good'));
    for (const { cmd, argv } of COMMANDS) {
      const runsBefore = readdirSync(join(ws, 'runs')).sort();
      const r = await capture(() => main(argv(dir, v.name)));
      const lines = r.err.split('\n').filter((l) => l.startsWith(`sdtt ${cmd}: error:`));
      assert.equal(r.code, 1, `${cmd}: exit code ${r.code}\n${r.err}`);
      assert.equal(lines.length, 1, `${cmd}: one error line expected:\n${r.err}`);
      assert.ok(
        lines[0].includes(join(dir, v.file)) || lines[0].includes(join(basename(dir), v.file)),
        `${cmd}: the error names ${v.file}: ${lines[0]}`,
      );
      assert.match(lines[0], v.problem, `${cmd}: ${lines[0]}`);
      assert.deepEqual(readdirSync(join(ws, 'runs')).sort(), runsBefore, `${cmd}: no run folder is created or removed`);
    }
    assert.ok(!existsSync(join(ws, 'exports', v.name)), 'no export folder');
    assert.equal(folderChecksum(join(ws, 'runs', 'good')), before, 'the existing run folder is unchanged');
  });
}

test("non-finite weights: distill --judge and the app's Try it (the worker's sample job) refuse them, naming the tensor", async () => {
  const judge = await trainTinyRun(ws, 'judge', 'pretrain-ar', 4);
  const nanJudge = join(ws, 'nan-judge');
  cpSync(judge, nanJudge, { recursive: true });
  for (const f of ['model.safetensors', 'ema.safetensors'])
    editTensors(nanJudge, (t) => void (firstFloat(t)[1].data as Float32Array).fill(NaN), f);
  const runsBefore = readdirSync(join(ws, 'runs')).sort();
  const r = await capture(() =>
    main(['distill', '--teacher', good, '--judge', nanJudge, '--data', ALICE, ...TINY_DISTILL(), '--run', 'nan-judge']),
  );
  assert.equal(r.code, 1, r.err);
  const lines = r.err.split('\n').filter((l) => l.startsWith('sdtt distill: error:'));
  assert.equal(lines.length, 1, r.err);
  assert.match(
    lines[0],
    new RegExp(
      `${join(nanJudge, 'model.safetensors')}: non-finite weights in 1 tensor: '[^']+' \\(\\d+ NaN of \\d+ values\\)`,
    ),
  );
  assert.deepEqual(readdirSync(join(ws, 'runs')).sort(), runsBefore, 'no run folder for a refused judge');

  // Try it: main asks a sampling worker, whose job loop runs the engine's sampleText on the checkpoint.
  const sent: WorkerToMain[] = [];
  const port: Port = {
    host: 'node',
    send: async (m) => void sent.push(m),
    onMessage: () => {},
    onDisconnect: () => {},
  };
  const loop = new JobLoop(port);
  loop.handle({ type: 'sample', request: { checkpoint: nanJudge, steps: 2, samples: 1, seed: 0 } });
  assert.equal(await loop.finished, 1);
  assert.deepEqual(
    sent.map((m) => m.type),
    ['error'],
  );
  assert.match(
    (sent[0] as Extract<WorkerToMain, { type: 'error' }>).message,
    /model\.safetensors: non-finite weights in 1 tensor: '[^']+' \(\d+ NaN of \d+ values\)/,
  );
});

test('links in words: a model folder that links to itself, an export through a dangling link', async () => {
  const loop = join(ws, 'self-link');
  symlinkSync(loop, loop);
  for (const cmd of ['sample', 'eval']) {
    const r = await capture(() =>
      main([cmd, '--model', loop, ...(cmd === 'sample' ? ['--steps', '2'] : ['--data', ALICE])]),
    );
    assert.equal(r.code, 1, r.err);
    assert.match(
      r.err,
      new RegExp(`^sdtt ${cmd}: error: ${loop} is not a model folder: ${loop} is a symbolic link loop`, 'm'),
    );
    assert.doesNotMatch(r.err, /ELOOP/);
  }
  const dangling = join(ws, 'dangling-out');
  symlinkSync(join(ws, 'nowhere', 'at-all'), dangling);
  const r = await capture(() => main(['export', '--run', 'good', '--out', dangling, '--workspace', ws]));
  assert.equal(r.code, 1, r.err);
  assert.match(
    r.err,
    new RegExp(`^sdtt export: error: .*${dangling} is a symbolic link to '[^']+', which does not exist`, 'm'),
  );
  assert.doesNotMatch(r.err, /ENOTDIR|ENOENT/);
  assert.ok(!existsSync(join(ws, 'nowhere')), 'nothing created behind the link');
});
