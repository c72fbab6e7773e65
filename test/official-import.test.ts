// Official MDLM / SDTT checkpoints in and out (engine/io/official*.ts, `sdtt import`, `sdtt export --format
// official`): the tiny fixture of scripts/make-official-fixture.py (non-trivial adaLN and sigma_map, logits of an
// independent PyTorch forward committed with it) imports to a model whose logits equal those within 1e-4 on both
// runtimes; the HF, SDTT-branch and sharded layouts give the same weights; an official-layout export has exactly the
// official module's names and shapes and re-imports to the same logits; what is not an unconditioned MDLM DIT is
// refused with the reason and leaves nothing behind.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { run as importCli } from '../src/cli/import.ts';
import { run as exportCli } from '../src/cli/export.ts';
import { createModelRuntime } from '../src/engine/io/openModel.ts';
import { readModelWeights } from '../src/engine/io/modelCheckpoint.ts';
import { importedModel } from '../src/engine/io/officialImport.ts';
import { decodeSafetensors, encodeSafetensors, type SafetensorInput } from '../src/runs/safetensors.ts';
import { readSafetensorsFile } from '../src/runs/safetensorsFile.ts';
import { capture } from './helpers/cliOutput.ts';
import { ALICE, maxAbsDiff } from './helpers/fixtures.ts';

const FIXTURE = resolve(import.meta.dirname, 'fixtures', 'official-tiny');
const expected = readSafetensorsFile(join(FIXTURE, 'expected.safetensors')).tensors;
const inputIds = Int32Array.from(expected.get('input_ids')!.data as Int32Array);
const wantLogits = expected.get('logits')!.data as Float32Array;
const [B, L] = expected.get('input_ids')!.shape;

let ws = '';
before(() => {
  ws = mkdtempSync(join(tmpdir(), 'sdtt-official-'));
});
after(() => rmSync(ws, { recursive: true, force: true }));

async function logitsOf(dir: string, runtime: 'onnx' | 'tfjs'): Promise<Float32Array> {
  const w = readModelWeights(dir);
  const rt = await createModelRuntime(w.config, w.params, {
    backend: runtime === 'onnx' ? 'onnx-cpu' : 'cpu',
    runtime,
  });
  try {
    return await rt.model.logits(inputIds, B);
  } finally {
    await rt.model.dispose();
  }
}

async function importTo(src: string, name: string, ...flags: string[]) {
  const dir = join(ws, name);
  const r = await capture(() => importCli([src, '--out', dir, '--tokenizer', 'byte', ...flags]));
  return { dir, ...r };
}

/** Copy of the HF fixture whose tensors `edit` changes. */
function editedFixture(name: string, edit: (t: Map<string, SafetensorInput>) => void): string {
  const dir = join(ws, name);
  cpSync(join(FIXTURE, 'hf'), dir, { recursive: true });
  const file = join(dir, 'model.safetensors');
  const t = decodeSafetensors(readFileSync(file)).tensors as unknown as Map<string, SafetensorInput>;
  edit(t);
  writeFileSync(file, encodeSafetensors(t, { format: 'pt' }));
  return dir;
}

/** Runs `sdtt import` expecting a refusal; checks that nothing was left at --out or beside it. */
async function refused(src: string, message: RegExp, ...flags: string[]) {
  const out = join(ws, 'refused', 'model');
  mkdirSync(join(ws, 'refused'), { recursive: true });
  await assert.rejects(importCli([src, '--out', out, '--tokenizer', 'byte', ...flags]), message);
  assert.deepEqual(readdirSync(join(ws, 'refused')), [], 'a refused import leaves nothing behind');
}

test('the imported tiny model computes the independent forward logits within 1e-4 (onnx and tfjs)', async () => {
  const { dir: out, code, err } = await importTo(join(FIXTURE, 'hf'), 'hf-import');
  assert.equal(code, 0);
  assert.match(err, /imported hf-mdlm .*vocab 258 \(byte\), L 12, d 16, 2 layers, 2 heads, adaLN folded/);
  for (const runtime of ['onnx', 'tfjs'] as const) {
    const got = await logitsOf(out, runtime);
    assert.equal(got.length, wantLogits.length);
    assert.ok(maxAbsDiff(got, wantLogits) < 1e-4, `${runtime}: max |diff| ${maxAbsDiff(got, wantLogits)}`);
  }
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(cfg.import.format, 'hf-mdlm');
  const sha = (await import('node:crypto'))
    .createHash('sha256')
    .update(readFileSync(join(FIXTURE, 'hf', 'model.safetensors')))
    .digest('hex');
  assert.deepEqual(
    cfg.import.files.map((f: { name: string; sha256: string }) => [f.name, f.sha256]),
    [
      ['config.json', cfg.import.files[0].sha256],
      ['model.safetensors', sha],
    ],
  );
});

test('the SDTT branch layout, the sharded HF layout and the HF folder read in memory give the same weights', async () => {
  const hf = importedModel(join(FIXTURE, 'hf'), { tokenizer: 'byte' }).params;
  assert.deepEqual(importedModel(join(FIXTURE, 'sdtt'), { tokenizer: 'byte' }).params, hf);
  // A Lightning-style torch.save (restricted unpickler) with the model's config.json beside it.
  assert.deepEqual(importedModel(join(FIXTURE, 'lightning', 'model.ckpt'), { tokenizer: 'byte' }).params, hf);
  const sharded = join(ws, 'sharded');
  mkdirSync(sharded);
  cpSync(join(FIXTURE, 'hf', 'config.json'), join(sharded, 'config.json'));
  const all = readSafetensorsFile(join(FIXTURE, 'hf', 'model.safetensors')).tensors;
  const names = [...all.keys()];
  const weightMap: Record<string, string> = {};
  names.forEach((n, i) => {
    weightMap[n] = `model-0000${(i % 2) + 1}-of-00002.safetensors`;
  });
  for (const shard of new Set(Object.values(weightMap))) {
    const part = new Map(
      names
        .filter((n) => weightMap[n] === shard)
        .map((n) => [n, all.get(n) as unknown as SafetensorInput] as [string, SafetensorInput]),
    );
    writeFileSync(join(sharded, shard), encodeSafetensors(part, { format: 'pt' }));
  }
  writeFileSync(join(sharded, 'model.safetensors.index.json'), JSON.stringify({ weight_map: weightMap }));
  assert.deepEqual(importedModel(sharded, { tokenizer: 'byte' }).params, hf);
  // readModelWeights (sample, eval, --teacher, --judge) imports an official folder on the fly, and says when the
  // vocabulary is not GPT-2's and no tokenizer is recorded.
  assert.throws(
    () => readModelWeights(join(FIXTURE, 'sdtt')),
    /a vocabulary of 258 ids is not GPT-2's .*pass --tokenizer/,
  );
  rmSync(join(sharded, 'model-00002-of-00002.safetensors'));
  await refused(sharded, /names shard model-00002-of-00002\.safetensors, missing from .*the download is incomplete/);
});

test('export --format official: the official module names and shapes, HF config, and the same logits re-imported', async () => {
  const { dir: imported } = await importTo(join(FIXTURE, 'hf'), 'for-export');
  const out = join(ws, 'exported');
  const r = await capture(() => exportCli(['--model', imported, '--out', out, '--format', 'official']));
  assert.equal(r.code, 0, r.err);
  const official = JSON.parse(readFileSync(join(FIXTURE, 'official-keys.json'), 'utf8')) as Record<string, number[]>;
  const written = readSafetensorsFile(join(out, 'model.safetensors')).tensors;
  // strict=True loading: exactly the official state dict's names (with the HF wrapper's prefix) and shapes.
  assert.deepEqual(
    [...written.keys()].sort(),
    Object.keys(official)
      .map((k) => `backbone.${k}`)
      .sort(),
  );
  for (const [k, shape] of Object.entries(official)) {
    const t = written.get(`backbone.${k}`)!;
    assert.deepEqual(t.shape, shape, k);
    assert.equal(t.dtype, 'F32', k);
  }
  assert.ok((written.get('backbone.blocks.0.adaLN_modulation.weight')!.data as Float32Array).every((v) => v === 0));
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(cfg.model_type, 'mdlm');
  assert.equal(cfg.time_conditioning, false);
  assert.deepEqual(
    [cfg.vocab_size, cfg.model_length, cfg.hidden_dim, cfg.cond_dim, cfg.n_blocks, cfg.n_heads],
    [258, 12, 16, 8, 2, 2],
  );
  assert.match(cfg.auto_map.AutoModelForMaskedLM, /modeling_mdlm\.MDLM$/);
  assert.match(readFileSync(join(out, 'README.md'), 'utf8'), /Tokenizer note:.*byte tokenizer/s);
  // Re-imported (the export keeps the byte tokenizer in config.json): the same logits as the fixture.
  const back = join(ws, 'reimported');
  assert.deepEqual(readModelWeights(out).params, readModelWeights(imported).params, 'read on the fly');
  assert.equal((await capture(() => importCli([out, '--out', back]))).code, 0);
  assert.deepEqual(readModelWeights(back).params, readModelWeights(imported).params);
  assert.ok(maxAbsDiff(await logitsOf(back, 'onnx'), wantLogits) < 1e-4);
});

test('refused imports name the problem and leave nothing behind', async () => {
  await refused(
    join(FIXTURE, 'conditioned'),
    /time-conditioned \(time_conditioning true\).*only models trained with time_conditioning false/,
  );
  const wrongShape = editedFixture('wrong-shape', (t) => {
    const e = t.get('backbone.blocks.1.mlp.0.bias')!;
    t.set('backbone.blocks.1.mlp.0.bias', { ...e, shape: [63], data: (e.data as Float32Array).subarray(0, 63) });
  });
  await refused(wrongShape, /'blocks\.1\.mlp\.0\.bias' has shape \[63\] but the config says \[64\]/);
  const foreign = editedFixture('foreign', (t) => {
    t.set('backbone.blocks.0.extra_gate', { dtype: 'F32', shape: [2], data: new Float32Array(2) });
  });
  await refused(foreign, /foreign tensor 'blocks\.0\.extra_gate' \(not part of an MDLM DIT\)/);
  const missing = editedFixture('missing', (t) => t.delete('backbone.sigma_map.mlp.2.bias'));
  await refused(missing, /missing tensor 'sigma_map\.mlp\.2\.bias' \[8\]/);
  await refused(
    join(FIXTURE, 'hf'),
    /the gpt2 tokenizer \(50258 ids, MASK 50257\) does not fit the model \(258 ids/,
    '--tokenizer',
    'gpt2',
  );
  // A pickle that references any global beyond tensors, OrderedDict and torch's rebuild functions: nothing runs.
  const hostile = join(ws, 'hostile');
  mkdirSync(hostile);
  cpSync(join(FIXTURE, 'hf', 'config.json'), join(hostile, 'config.json'));
  cpSync(resolve(import.meta.dirname, 'fixtures', 'torch', 'os-system.pt'), join(hostile, 'model.pt'));
  await refused(join(hostile, 'model.pt'), /the pickle references the global os\.system; only tensors, OrderedDict/);
  cpSync(resolve(import.meta.dirname, 'fixtures', 'torch', 'omegaconf.ckpt'), join(hostile, 'model.ckpt'));
  await refused(join(hostile, 'model.ckpt'), /references the global omegaconf\.dictconfig\.DictConfig/);
  const bare = join(ws, 'bare');
  mkdirSync(bare);
  cpSync(join(FIXTURE, 'lightning', 'model.ckpt'), join(bare, 'model.ckpt'));
  await refused(join(bare, 'model.ckpt'), /a PyTorch file alone does not say .*pass --config FILE/);
  // An existing, non-empty folder is never overwritten.
  const taken = join(ws, 'taken');
  mkdirSync(taken);
  writeFileSync(join(taken, 'keep.txt'), 'mine');
  await assert.rejects(importCli([join(FIXTURE, 'hf'), '--out', taken, '--tokenizer', 'byte']), /not an empty folder/);
  assert.deepEqual(readdirSync(taken), ['keep.txt']);
  assert.ok(!existsSync(join(ws, 'refused', 'model')));
});

test('distill --teacher takes an official folder: imported once into the run folder and read from there', async () => {
  const { dir: imported } = await importTo(join(FIXTURE, 'hf'), 'for-distill');
  const official = join(ws, 'official-teacher');
  assert.equal(
    (await capture(() => exportCli(['--model', imported, '--out', official, '--format', 'official']))).code,
    0,
  );
  const { main } = await import('../src/cli/index.ts');
  const args = ['distill', '--teacher', official, '--data', ALICE, '--rounds', '1', '--steps-per-round', '2'];
  const more = ['--batch', '2', '--eval-samples', '1', '--eval-steps', '4', '--workspace', ws, '--run', 'official'];
  const r = await capture(() => main([...args, ...more]));
  assert.equal(r.code, 0, r.err);
  const teacherDir = join(ws, 'runs', 'official', 'teacher');
  const cfg = JSON.parse(readFileSync(join(teacherDir, 'config.json'), 'utf8'));
  assert.equal(cfg.import.format, 'hf-mdlm');
  assert.equal(cfg.import.source, 'official-teacher');
  assert.deepEqual(readModelWeights(teacherDir).params, readModelWeights(imported).params);
  const student = JSON.parse(readFileSync(join(ws, 'runs', 'official', 'rounds', '0', 'config.json'), 'utf8'));
  assert.equal(student.sdtt.originalTeacher, teacherDir, 'the run reads its own imported copy');
  // The same command again reopens the finished run and reads the copy it has: no second import.
  assert.equal((await capture(() => main([...args, ...more]))).code, 0);
  assert.equal(
    JSON.parse(readFileSync(join(teacherDir, 'config.json'), 'utf8')).import.importedAt,
    cfg.import.importedAt,
  );
});
