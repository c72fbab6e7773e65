import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ModelConfig } from '../src/shared/config.ts';
import {
  CheckpointError,
  FORMAT_TAG,
  checkpointDir,
  latestCheckpoint,
  listCheckpoints,
  pruneCheckpoints,
  saveCheckpoint,
  writeFileDurable,
  type ParamLayout,
  type WriteFileDurable,
} from '../src/runs/checkpoint.ts';
import { loadCheckpoint } from '../src/runs/checkpointLoad.ts';
import { decodeSafetensors, encodeSafetensors, type SafetensorInput } from '../src/runs/safetensors.ts';

const CFG: ModelConfig = {
  arch: 'mdlm',
  vocabSize: 11,
  dModel: 8,
  nLayers: 2,
  nHeads: 2,
  mlpRatio: 2,
  seqLen: 16,
  dropout: 0.1,
  ropeBase: 10000,
  maskId: 10,
  eosId: 0,
};

/** A stand-in for the model's paramLayout: enough tensors of different shapes to exercise names and offsets. */
function layoutFor(cfg: ModelConfig): ParamLayout {
  const shapes: [string, number[]][] = [['backbone.vocab_embed.embedding', [cfg.vocabSize, cfg.dModel]]];
  for (let i = 0; i < cfg.nLayers; i++) {
    shapes.push([`backbone.blocks.${i}.attn_qkv.weight`, [3 * cfg.dModel, cfg.dModel]]);
    shapes.push([`backbone.blocks.${i}.mlp.0.weight`, [cfg.mlpRatio * cfg.dModel, cfg.dModel]]);
  }
  shapes.push(['backbone.output_layer.linear.bias', [cfg.vocabSize]]);
  let offset = 0;
  return shapes.map(([name, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const e = { name, shape, offset, size };
    offset += size;
    return e;
  });
}

const LAYOUT = layoutFor(CFG);
const N = LAYOUT.reduce((a, e) => a + e.size, 0);
const ramp = (k: number) => Float32Array.from({ length: N }, (_, i) => Math.sin(i * 0.37 + k));

const roots: string[] = [];
function tmpRoot(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sdtt-ckpt-'));
  roots.push(root);
  return root;
}
after(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

function snapshot(dir: string): Record<string, Buffer> {
  return Object.fromEntries(
    fs
      .readdirSync(dir)
      .sort()
      .map((f) => [f, fs.readFileSync(path.join(dir, f))]),
  );
}

function fullCheckpoint(k: number) {
  return {
    config: CFG,
    layout: LAYOUT,
    params: ramp(k),
    ema: ramp(k + 1),
    emaUpdates: 42,
    optimizer: { m: ramp(k + 2), v: ramp(k + 3).map(Math.abs), step: 1234 },
    state: { step: 1234, round: 1, rng: [1, 2, 3, 4294967295], dataCursor: { shard: 3, offset: 77 } },
    extraConfig: { tokenizer: { name: 'compact-bytes', maskId: 10 }, sdtt: { round: 1, divergence: 'kld' } },
  };
}

test('save/load round trip: params, EMA, optimizer, state and extra config', () => {
  const root = tmpRoot();
  const dir = checkpointDir(root, 1234);
  const ck = fullCheckpoint(0);
  saveCheckpoint(dir, ck);
  assert.deepEqual(fs.readdirSync(root), ['1234'], 'no .tmp/.old leftovers');
  assert.deepEqual(fs.readdirSync(dir).sort(), [
    'config.json',
    'ema.safetensors',
    'model.safetensors',
    'optimizer.safetensors',
    'state.json',
  ]);

  const back = loadCheckpoint(dir, { layoutFor, expectConfig: CFG });
  assert.deepEqual(back.config, CFG);
  assert.deepEqual(back.params, ck.params);
  assert.deepEqual(back.ema, ck.ema);
  assert.equal(back.emaUpdates, 42);
  assert.deepEqual(back.optimizer, ck.optimizer);
  assert.deepEqual(back.state, ck.state);
  assert.deepEqual(back.extraConfig, ck.extraConfig);
  assert.deepEqual(back.layout, LAYOUT);
});

test('files follow the documented format (HF-style config.json, named tensors, format tags)', () => {
  const dir = path.join(tmpRoot(), '5');
  saveCheckpoint(dir, fullCheckpoint(0));
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.deepEqual(config.architectures, ['SdttMdlmDenoiser']);
  assert.equal(config.model_type, 'sdtt-mdlm');
  assert.equal(config.dModel, 8);
  assert.equal(config.maskId, 10);
  assert.equal(config.tokenizer.name, 'compact-bytes');

  const model = decodeSafetensors(fs.readFileSync(path.join(dir, 'model.safetensors')));
  assert.equal(model.metadata.format, 'pt', 'transformers refuses files without format=pt');
  assert.equal(model.metadata.sdtt_format, FORMAT_TAG);
  assert.deepEqual(model.tensors.get('backbone.blocks.1.attn_qkv.weight')!.shape, [24, 8]);
  const opt = decodeSafetensors(fs.readFileSync(path.join(dir, 'optimizer.safetensors')));
  assert.ok(
    opt.tensors.has('m.backbone.vocab_embed.embedding') && opt.tensors.has('v.backbone.output_layer.linear.bias'),
  );
  assert.equal(opt.metadata.step, '1234');
});

test('a checkpoint with only parameters loads with the optional parts absent; defaults are written out', () => {
  const dir = path.join(tmpRoot(), '0');
  const { mlpRatio: _m, dropout: _d, ropeBase: _r, ...minimal } = CFG;
  saveCheckpoint(dir, { config: { ...minimal, mlpRatio: 2 } as ModelConfig, layout: LAYOUT, params: ramp(3) });
  const back = loadCheckpoint(dir, { layoutFor });
  assert.deepEqual(back.params, ramp(3));
  assert.equal(back.ema, undefined);
  assert.equal(back.optimizer, undefined);
  assert.equal(back.state, undefined);
  assert.equal(back.config.ropeBase, 10000);
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).ropeBase, 10000);
});

test('saving over an existing checkpoint replaces it completely and leaves no .old', () => {
  const root = tmpRoot();
  const dir = checkpointDir(root, 10);
  saveCheckpoint(dir, fullCheckpoint(0));
  saveCheckpoint(dir, { config: CFG, layout: LAYOUT, params: ramp(9) });
  assert.deepEqual(fs.readdirSync(root), ['10']);
  const back = loadCheckpoint(dir, { layoutFor });
  assert.deepEqual(back.params, ramp(9));
  assert.equal(back.optimizer, undefined, 'files of the old checkpoint do not survive');
});

/** Fails like a full disk once the named file is being written, after writing part of it. */
function diskFullAt(fileName: string): WriteFileDurable {
  return (file, data) => {
    if (path.basename(file) === fileName) {
      fs.writeFileSync(file, typeof data === 'string' ? data.slice(0, 10) : data.subarray(0, 10));
      throw Object.assign(new Error(`ENOSPC: no space left on device, write`), { code: 'ENOSPC' });
    }
    writeFileDurable(file, data);
  };
}

test('a failed save (disk full) leaves the previous checkpoint byte-identical and nothing half-written', () => {
  const root = tmpRoot();
  const dir = checkpointDir(root, 200);
  saveCheckpoint(dir, fullCheckpoint(0));
  const before = snapshot(dir);

  assert.throws(
    () => saveCheckpoint(dir, fullCheckpoint(5), diskFullAt('optimizer.safetensors')),
    (e: unknown) =>
      e instanceof CheckpointError &&
      /disk full while writing .*200\.tmp.optimizer\.safetensors/.test(e.message) &&
      /previous one left as it was/.test(e.message),
  );
  assert.deepEqual(snapshot(dir), before);
  assert.deepEqual(fs.readdirSync(root), ['200']);

  // A fresh step that fails never appears as a checkpoint.
  assert.throws(
    () => saveCheckpoint(checkpointDir(root, 400), fullCheckpoint(1), diskFullAt('model.safetensors')),
    /disk full while writing/,
  );
  assert.deepEqual(fs.readdirSync(root), ['200']);
  assert.deepEqual(listCheckpoints(root), [200]);
  assert.deepEqual(loadCheckpoint(dir, { layoutFor }).params, ramp(0));
});

test('other write errors are named too, and unserialisable state fails before touching the disk', () => {
  const root = tmpRoot();
  const denied: WriteFileDurable = () => {
    throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
  };
  assert.throws(
    () => saveCheckpoint(path.join(root, '1'), fullCheckpoint(0), denied),
    /permission denied while writing .*model\.safetensors/,
  );
  assert.throws(
    () => saveCheckpoint(path.join(root, '2'), { ...fullCheckpoint(0), state: { big: 1n } }),
    /state is not JSON-serialisable/,
  );
  assert.throws(
    () => saveCheckpoint(path.join(root, '3'), { ...fullCheckpoint(0), ema: new Float32Array(3) }),
    /EMA has 3 values/,
  );
  assert.throws(
    () => saveCheckpoint(path.join(root, '4'), { ...fullCheckpoint(0), extraConfig: { dModel: 1 } }),
    /extraConfig must not set dModel/,
  );
  assert.throws(
    () => saveCheckpoint(path.join(root, '5'), { ...fullCheckpoint(0), config: { ...CFG, nHeads: 3 } }),
    /invalid model config[\s\S]*nHeads/,
  );
  assert.deepEqual(fs.readdirSync(root), []);
});

/** Rewrites one file of a saved checkpoint with different tensors. */
function rewriteModel(dir: string, edit: (t: Map<string, SafetensorInput>) => void): void {
  const file = path.join(dir, 'model.safetensors');
  const { tensors, metadata } = decodeSafetensors(fs.readFileSync(file));
  const m = new Map([...tensors].map(([k, t]) => [k, t as SafetensorInput]));
  edit(m);
  fs.writeFileSync(file, encodeSafetensors(m, metadata));
}

test('a tensor whose shape does not fit the config is refused, naming the tensor', () => {
  const dir = path.join(tmpRoot(), '7');
  saveCheckpoint(dir, fullCheckpoint(0));
  rewriteModel(dir, (t) => {
    t.get('backbone.blocks.1.mlp.0.weight')!.shape = [8, 16]; // same size, transposed
  });
  assert.throws(
    () => loadCheckpoint(dir, { layoutFor }),
    /tensor 'backbone\.blocks\.1\.mlp\.0\.weight' has shape \[8, 16\] but the config needs \[16, 8\]/,
  );
});

test('missing and unexpected tensors are listed by name', () => {
  const dir = path.join(tmpRoot(), '8');
  saveCheckpoint(dir, fullCheckpoint(0));
  rewriteModel(dir, (t) => {
    t.delete('backbone.output_layer.linear.bias');
    t.set('backbone.extra', { dtype: 'F32', shape: [1], data: new Float32Array(1) });
  });
  assert.throws(
    () => loadCheckpoint(dir, { layoutFor }),
    /model\.safetensors does not match config\.json: missing tensors: backbone\.output_layer\.linear\.bias; unexpected tensors: backbone\.extra/,
  );
});

test('a checkpoint for another model configuration is refused', () => {
  const dir = path.join(tmpRoot(), '9');
  saveCheckpoint(dir, fullCheckpoint(0));
  assert.throws(
    () => loadCheckpoint(dir, { layoutFor, expectConfig: { ...CFG, nLayers: 3 } }),
    /different model:\nnLayers: checkpoint 2, expected 3/,
  );
  // config.json edited to a bigger model: every tensor is now the wrong size.
  const cfgFile = path.join(dir, 'config.json');
  fs.writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(cfgFile, 'utf8')), dModel: 16 }));
  assert.throws(
    () => loadCheckpoint(dir, { layoutFor }),
    /tensor 'backbone\.vocab_embed\.embedding' has shape \[11, 8\] but the config needs \[11, 16\]/,
  );
});

test('an invalid config.json lists every bad key', () => {
  const dir = path.join(tmpRoot(), '11');
  saveCheckpoint(dir, fullCheckpoint(0));
  const cfgFile = path.join(dir, 'config.json');
  const { mlpRatio: _, ...rest } = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
  fs.writeFileSync(cfgFile, JSON.stringify({ ...rest, vocabSize: 'eleven', mlp_ratio: 4 }));
  assert.throws(
    () => loadCheckpoint(dir, { layoutFor }),
    (e: unknown) =>
      e instanceof CheckpointError &&
      /config\.json: mlp_ratio: unknown key, did you mean 'mlpRatio'\?/.test(e.message) &&
      /config\.json: vocabSize: /.test(e.message),
  );
  fs.writeFileSync(cfgFile, '{ not json');
  assert.throws(() => loadCheckpoint(dir, { layoutFor }), /config\.json: not valid JSON/);
});

test('foreign checkpoints are recognised as such and what was found is listed', () => {
  const root = tmpRoot();
  const gpt2 = new Map<string, SafetensorInput>([
    ['transformer.wte.weight', { dtype: 'F32', shape: [2, 2], data: new Float32Array(4) }],
    ['transformer.h.0.attn.c_attn.weight', { dtype: 'F32', shape: [2], data: new Float32Array(2) }],
  ]);

  const noConfig = path.join(root, 'a');
  fs.mkdirSync(noConfig);
  fs.writeFileSync(path.join(noConfig, 'model.safetensors'), encodeSafetensors(gpt2));
  assert.throws(
    () => loadCheckpoint(noConfig, { layoutFor }),
    /is not an SDTT workbench checkpoint: no config\.json \(found: model\.safetensors\)/,
  );

  const hfConfig = path.join(root, 'b');
  fs.mkdirSync(hfConfig);
  fs.writeFileSync(
    path.join(hfConfig, 'config.json'),
    JSON.stringify({ architectures: ['GPT2LMHeadModel'], model_type: 'gpt2' }),
  );
  fs.writeFileSync(path.join(hfConfig, 'model.safetensors'), encodeSafetensors(gpt2));
  assert.throws(
    () => loadCheckpoint(hfConfig, { layoutFor }),
    /is not an SDTT workbench checkpoint: config\.json has model_type "gpt2".*found: config\.json, model\.safetensors/,
  );

  const ours = path.join(root, 'c');
  saveCheckpoint(ours, fullCheckpoint(0));
  fs.writeFileSync(path.join(ours, 'model.safetensors'), encodeSafetensors(gpt2));
  assert.throws(
    () => loadCheckpoint(ours, { layoutFor }),
    /model\.safetensors: not an SDTT workbench checkpoint: it holds 2 tensors \(transformer\.h\.0\.attn\.c_attn\.weight, transformer\.wte\.weight\)/,
  );

  assert.throws(() => loadCheckpoint(path.join(root, 'missing'), { layoutFor }), /no checkpoint folder at/);
});

test('a corrupt safetensors file inside a checkpoint is reported with its path', () => {
  const dir = path.join(tmpRoot(), '12');
  saveCheckpoint(dir, fullCheckpoint(0));
  const file = path.join(dir, 'ema.safetensors');
  fs.truncateSync(file, fs.statSync(file).size - 4);
  assert.throws(
    () => loadCheckpoint(dir, { layoutFor }),
    /ema\.safetensors: tensor '.*': data_offsets .* are out of range/,
  );
});

test('list / latest / prune: numeric order, leftovers ignored, last K kept', () => {
  const root = tmpRoot();
  assert.deepEqual(listCheckpoints(path.join(root, 'none')), []);
  assert.equal(latestCheckpoint(root), null);
  for (const step of [100, 1000, 300, 200])
    saveCheckpoint(checkpointDir(root, step), { config: CFG, layout: LAYOUT, params: ramp(step) });
  fs.mkdirSync(path.join(root, '400.tmp')); // crash leftovers and unrelated files
  fs.mkdirSync(path.join(root, '50.old'));
  fs.mkdirSync(path.join(root, '600')); // an empty numbered folder is not a checkpoint
  fs.writeFileSync(path.join(root, '700'), 'not a folder');
  assert.deepEqual(listCheckpoints(root), [100, 200, 300, 1000]);
  assert.deepEqual(latestCheckpoint(root), { step: 1000, dir: path.join(root, '1000') });

  assert.deepEqual(pruneCheckpoints(root, 2), [100, 200]);
  assert.deepEqual(listCheckpoints(root), [300, 1000]);
  assert.deepEqual(pruneCheckpoints(root, 5), []);
  assert.deepEqual(loadCheckpoint(latestCheckpoint(root)!.dir, { layoutFor }).params, ramp(1000));
  assert.throws(() => pruneCheckpoints(root, 0), /keep must be an integer >= 1/);
});

test('half-precision and float64 weights (e.g. a PyTorch export) load as float32', () => {
  const dir = path.join(tmpRoot(), '13');
  const params = Float32Array.from({ length: N }, (_, i) => (i % 7) - 3); // exactly representable everywhere
  saveCheckpoint(dir, { config: CFG, layout: LAYOUT, params });
  rewriteModel(dir, (t) => {
    const name = 'backbone.vocab_embed.embedding';
    const e = t.get(name)!;
    t.set(name, { dtype: 'F64', shape: e.shape, data: Float64Array.from(e.data as Float32Array) });
  });
  assert.deepEqual(loadCheckpoint(dir, { layoutFor }).params, params);
});
