// engine/io/modelSummary.ts: what a model is (workbench, official HF, SDTT branch) from config.json and a safetensors
// header only, and the cost of a distillation step by the formula stated there; broken paths refused naming the
// problem; a file whose tensor data is cut short still summarises (so the weights are never needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { estimateDistillStep, summariseModel } from '../src/engine/io/modelSummary.ts';
import { officialModelConfig, officialTensorShapes, type OfficialDims } from '../src/engine/io/officialLayout.ts';
import { trainingStepMemory } from '../src/engine/onnx/deviceMemory.ts';
import { initParams, paramCount, paramLayout } from '../src/engine/model/paramLayout.ts';
import { saveCheckpoint } from '../src/runs/checkpoint.ts';
import { ByteTokenizer } from '../src/engine/data/tokenizer.ts';
import { MODEL_PRESETS } from '../src/shared/presets.ts';
import type { ModelConfig } from '../src/shared/config.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'official-tiny');
const TINY = { arch: 'mdlm', vocabSize: 258, eosId: 256, maskId: 257, ...MODEL_PRESETS.tiny } as ModelConfig;
/** The fixtures' dims (hf/config.json; the SDTT branch states the same under model.*, its vocabulary in the weights). */
const FIXTURE_DIMS: OfficialDims = {
  vocabSize: 258,
  hiddenDim: 16,
  condDim: 8,
  nBlocks: 2,
  nHeads: 2,
  modelLength: 12,
  dropout: 0,
};

function tmp(): { dir: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'sdtt-summary-'));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The step's cost written out from the formula in modelSummary.ts, for K = 2 teacher forwards. */
function expectedEstimate(cfg: ModelConfig, B: number, gflops: number | null) {
  const { dModel: d, nLayers: layers, seqLen: L, vocabSize: V, mlpRatio: r } = cfg;
  const pmm = layers * (3 * d * d + d * d + 2 * r * d * d) + V * d;
  const flops = 6 * pmm * B * L + 12 * layers * B * L * L * d + 2 * (2 * pmm * B * L + 4 * layers * B * L * L * d);
  const chunk = Math.min(B, Math.max(1, Math.floor(1024 / L))) * L;
  const m = trainingStepMemory(cfg, chunk);
  const weights = 6 * 4 * paramCount(cfg);
  const activations = m.activations + m.logits;
  const targets = 0.5 * B * L * V * 4;
  return {
    batchSize: B,
    flops,
    peakBytes: weights + activations + targets,
    memory: { weights, activations, targets },
    gflops,
    secondsPerStep: gflops ? flops / (gflops * 1e9) : null,
  };
}

function saveTiny(dir: string, cfg: ModelConfig = TINY, extra: Record<string, unknown> = {}): void {
  saveCheckpoint(dir, {
    config: cfg,
    layout: paramLayout(cfg),
    params: initParams(cfg, 1),
    extraConfig: { tokenizer: new ByteTokenizer().toJSON(), ...extra },
  });
}

test('a workbench checkpoint, and a run folder (its latest checkpoint): dims, params, tokenizer, estimate', () => {
  const t = tmp();
  try {
    const ck = join(t.dir, 'runs', 'r1', 'checkpoints', '40');
    saveTiny(join(t.dir, 'runs', 'r1', 'checkpoints', '20'));
    saveTiny(ck);
    const s = summariseModel(ck, { batchSize: 8, gflops: 50 });
    assert.deepEqual(
      {
        layout: s.layout,
        arch: s.arch,
        params: s.params,
        vocab: s.vocabSize,
        L: s.seqLen,
        tok: s.tokenizer,
        problems: s.problems,
      },
      {
        layout: 'workbench',
        arch: 'mdlm',
        params: paramCount(TINY),
        vocab: 258,
        L: TINY.seqLen,
        tok: 'byte',
        problems: [],
      },
    );
    assert.deepEqual(s.estimate, expectedEstimate(TINY, 8, 50));
    const run = summariseModel(join(t.dir, 'runs', 'r1'), { batchSize: 8 });
    assert.equal(run.checkpoint, ck, 'a run folder is read at its latest checkpoint');
    assert.equal(run.estimate.secondsPerStep, null, 'no rate: FLOPs and memory only');
    assert.equal(run.estimate.gflops, null);
  } finally {
    t.done();
  }
});

test('the official HF fixture: layout, vocabulary, length, folded parameter count; no tokenizer fits by itself', () => {
  const s = summariseModel(join(FIXTURES, 'hf'), { batchSize: 4, gflops: 10 });
  assert.equal(s.layout, 'hf-mdlm');
  assert.deepEqual([s.vocabSize, s.seqLen, s.dModel, s.nLayers, s.nHeads, s.tokenizer], [258, 12, 16, 2, 2, null]);
  // Ours = the official state dict minus what folds away on import (sigma_map, the rotary buffer, each adaLN Linear
  // [k·d, c] + bias becoming one modulation row set [k, d]).
  const { hiddenDim: d, condDim: c } = FIXTURE_DIMS;
  let official = 0;
  for (const shape of officialTensorShapes(FIXTURE_DIMS).values()) official += shape.reduce((a, b) => a * b, 1);
  const folded = c * 256 + c + c * c + c + d / 2 / 2 + 2 * (6 * d * c + 6 * d - 6 * d) + (2 * d * c + 2 * d - 2 * d);
  assert.equal(s.params, official - folded);
  const cfg = officialModelConfig(FIXTURE_DIMS, 0);
  assert.equal(s.params, paramCount(cfg));
  assert.deepEqual(s.estimate, expectedEstimate(cfg, 4, 10));
  assert.equal(s.problems.length, 1);
  assert.match(s.problems[0]!, /258 ids is not GPT-2's .*records no tokenizer.*--tokenizer byte/);
});

test('the SDTT branch fixture: the vocabulary comes from the safetensors header', () => {
  const s = summariseModel(join(FIXTURES, 'sdtt'), { batchSize: 4 });
  assert.equal(s.layout, 'sdtt-branch');
  assert.deepEqual([s.vocabSize, s.seqLen, s.dModel, s.nLayers], [258, 12, 16, 2]);
  assert.equal(s.params, paramCount(officialModelConfig(FIXTURE_DIMS, 0)));
});

test('a model.safetensors with a valid header but its data cut short still summarises, saying so', () => {
  const t = tmp();
  try {
    for (const kind of ['hf', 'sdtt']) {
      const dir = join(t.dir, kind);
      cpSync(join(FIXTURES, kind), dir, { recursive: true });
      const file = join(dir, 'model.safetensors');
      const headerEnd = 8 + Number(readFileSync(file).readBigUInt64LE(0));
      truncateSync(file, headerEnd + 100);
      const s = summariseModel(dir, { batchSize: 2 });
      assert.equal(s.vocabSize, 258, kind);
      assert.ok(
        s.problems.some((p) => /model\.safetensors is truncated: \d+ of the \d+ bytes its header declares/.test(p)),
        `${kind}: ${JSON.stringify(s.problems)}`,
      );
    }
    // A workbench checkpoint too: its parameters come from config.json, not from the data.
    const wb = join(t.dir, 'wb');
    saveTiny(wb);
    const f = join(wb, 'model.safetensors');
    truncateSync(f, 8 + Number(readFileSync(f).readBigUInt64LE(0)));
    const s = summariseModel(wb, { batchSize: 2 });
    assert.equal(s.params, paramCount(TINY));
    assert.match(s.problems.join('\n'), /truncated/);
  } finally {
    t.done();
  }
});

test('what stops a model from being a teacher is listed: an AR model, a time-conditioned official one', () => {
  const t = tmp();
  try {
    const ar = join(t.dir, 'ar');
    saveTiny(ar, { ...TINY, arch: 'ar', maskId: -1 });
    assert.match(summariseModel(ar, { batchSize: 2 }).problems.join('\n'), /autoregressive/);
    const cond = join(t.dir, 'cond');
    mkdirSync(cond);
    copyFileSync(join(FIXTURES, 'conditioned', 'config.json'), join(cond, 'config.json'));
    copyFileSync(join(FIXTURES, 'hf', 'model.safetensors'), join(cond, 'model.safetensors'));
    assert.match(summariseModel(cond, { batchSize: 2 }).problems.join('\n'), /time-conditioned/);
  } finally {
    t.done();
  }
});

test('paths that are not models are refused with a sentence naming the problem', () => {
  const t = tmp();
  try {
    const refused = (p: string, re: RegExp) => assert.throws(() => summariseModel(p, { batchSize: 1 }), re);
    refused(join(t.dir, 'missing'), /no such file or folder/);
    refused(join(import.meta.dirname, '..', 'package.json'), /is a file, not a model/);
    mkdirSync(join(t.dir, 'empty'));
    refused(join(t.dir, 'empty'), /neither a checkpoint folder .* nor a run folder/);
    mkdirSync(join(t.dir, 'badjson'));
    writeFileSync(join(t.dir, 'badjson', 'config.json'), '{ not json');
    refused(join(t.dir, 'badjson'), /cannot read config\.json/);
    mkdirSync(join(t.dir, 'gpt2'));
    writeFileSync(join(t.dir, 'gpt2', 'config.json'), JSON.stringify({ model_type: 'gpt2', n_embd: 768 }));
    refused(join(t.dir, 'gpt2'), /model_type "gpt2", neither the workbench's .* nor an official/);
    refused(join(FIXTURES, 'conditioned'), /official config\.json but no weights/);
    mkdirSync(join(t.dir, 'badhf'));
    writeFileSync(join(t.dir, 'badhf', 'config.json'), JSON.stringify({ model_type: 'mdlm', hidden_dim: 16 }));
    copyFileSync(join(FIXTURES, 'hf', 'model.safetensors'), join(t.dir, 'badhf', 'model.safetensors'));
    refused(join(t.dir, 'badhf'), /"vocab_size" must be a positive integer/);
    mkdirSync(join(t.dir, 'garbage'));
    copyFileSync(join(FIXTURES, 'sdtt', 'config.json'), join(t.dir, 'garbage', 'config.json'));
    writeFileSync(join(t.dir, 'garbage', 'model.safetensors'), Buffer.alloc(64, 0xff));
    refused(join(t.dir, 'garbage'), /header length .* out of range/);
    symlinkSync(join(t.dir, 'nowhere'), join(t.dir, 'dangling'));
    refused(join(t.dir, 'dangling'), /is a symbolic link to .*, which does not exist/);
  } finally {
    t.done();
  }
});

test('the estimate scales with the batch: FLOPs and targets linearly, the weights not at all', () => {
  const a = estimateDistillStep(TINY, { batchSize: 4, gflops: 100 });
  const b = estimateDistillStep(TINY, { batchSize: 8, gflops: 100 });
  assert.equal(b.flops, 2 * a.flops);
  assert.equal(b.memory.targets, 2 * a.memory.targets);
  assert.equal(b.memory.weights, a.memory.weights);
  assert.equal(b.secondsPerStep, b.flops / 1e11);
  assert.equal(estimateDistillStep(TINY, { batchSize: 4, gflops: 0 }).secondsPerStep, null);
});
