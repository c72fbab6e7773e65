import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { createInferenceModel } from '../src/engine/model/inference.ts';
import { DataType, Message, encodeModel, encodeTensor, varintBytes } from '../src/engine/onnx/protobuf.ts';
import { buildOnnxModel, exportOnnx, onnxModelBytes } from '../src/engine/onnx/graph.ts';
import { createOnnxModel, loadOnnxRuntime } from '../src/engine/onnx/runtime.ts';
import { maxAbsDiff, noisyParams, randomTokens as tokens, tinyModel, useWasmBackend } from './helpers/fixtures.ts';
import { requirement } from './helpers/requirements.ts';

const rt = await loadOnnxRuntime();
// Skips outside CI only; under CI=true (.ci/run installs onnxruntime-node) its absence fails each test.
const ORT = requirement(rt.ort ? false : `onnxruntime-node not installed: ${rt.reason}`);
const SKIP = ORT.skip;

useWasmBackend();

const mdlm = tinyModel({ vocabSize: 13, maskId: 12, eosId: 11 });
const ar = tinyModel({ arch: 'ar', vocabSize: 13, seqLen: 12, maskId: -1, eosId: 12 });
/** Noise 0.3 everywhere (LN weights, gates, modulation, biases, head): every weight matters. */
const NOISE = 0.3;
function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

// ---------------------------------------------------------------------------------------------------------------
// Protobuf encoder: hand-computed bytes

test('protobuf: varints (small, multi-byte, int64 negatives)', () => {
  assert.deepEqual([...varintBytes(0)], [0x00]);
  assert.deepEqual([...varintBytes(1)], [0x01]);
  assert.deepEqual([...varintBytes(127)], [0x7f]);
  assert.deepEqual([...varintBytes(128)], [0x80, 0x01]);
  assert.deepEqual([...varintBytes(300)], [0xac, 0x02]);
  assert.deepEqual([...varintBytes(2 ** 32)], [0x80, 0x80, 0x80, 0x80, 0x10]);
  // int64 -1: ten bytes, two's complement
  assert.deepEqual([...varintBytes(-1)], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  assert.deepEqual([...varintBytes(-2n)], [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  assert.throws(() => varintBytes(1.5), /not an integer/);
});

test('protobuf: tiny message with varints, string, packed floats and a nested message', () => {
  // field 1 varint 150; field 2 string "hi"; field 4 packed floats [1, -2]; field 3 message { field 1 varint 300 }
  const m = new Message()
    .varint(1, 150)
    .string(2, 'hi')
    .packedFloat(4, [1, -2])
    .message(3, new Message().varint(1, 300));
  const expected = [
    0x08,
    0x96,
    0x01, // 1:varint 150
    0x12,
    0x02,
    0x68,
    0x69, // 2:len "hi"
    0x22,
    0x08,
    0x00,
    0x00,
    0x80,
    0x3f,
    0x00,
    0x00,
    0x00,
    0xc0, // 4:len packed float32 LE 1.0, -2.0
    0x1a,
    0x03,
    0x08,
    0xac,
    0x02, // 3:len { 1:varint 300 }
  ];
  assert.equal(m.size, expected.length);
  assert.deepEqual([...m.finish()], expected);
  // packed varints and a float/double scalar
  assert.deepEqual([...new Message().packedVarint(5, [3, 270]).finish()], [0x2a, 0x03, 0x03, 0x8e, 0x02]);
  assert.deepEqual([...new Message().float(2, 0.5).finish()], [0x15, 0x00, 0x00, 0x00, 0x3f]);
});

test('protobuf: ONNX TensorProto bytes (dims unpacked, data_type, name, raw_data)', () => {
  const t = encodeTensor({
    name: 'w',
    dims: [2, 1],
    dataType: DataType.FLOAT,
    data: Float32Array.from([1, -2]),
  }).finish();
  assert.deepEqual(
    [...t],
    [
      0x08,
      0x02,
      0x08,
      0x01, // dims 2, 1
      0x10,
      0x01, // data_type FLOAT
      0x42,
      0x01,
      0x77, // name "w"
      0x4a,
      0x08,
      0x00,
      0x00,
      0x80,
      0x3f,
      0x00,
      0x00,
      0x00,
      0xc0, // raw_data
    ],
  );
  assert.throws(
    () => encodeTensor({ name: 'x', dims: [3], dataType: DataType.FLOAT, data: new Float32Array(2) }),
    /2 elements for dims \[3\]/,
  );
});

test('protobuf: ModelProto header fields (ir_version, producer, opset_import)', () => {
  const bytes = encodeModel({
    irVersion: 8,
    opset: 17,
    producerName: 'p',
    producerVersion: 'v',
    graph: { name: 'g', nodes: [], initializers: [], inputs: [], outputs: [] },
  });
  assert.deepEqual(
    [...bytes],
    [
      0x08,
      0x08, // ir_version 8
      0x12,
      0x01,
      0x70, // producer_name "p"
      0x1a,
      0x01,
      0x76, // producer_version "v"
      0x3a,
      0x03,
      0x12,
      0x01,
      0x67, // graph { name "g" }
      0x42,
      0x04,
      0x0a,
      0x00,
      0x10,
      0x11, // opset_import { domain "", version 17 }
    ],
  );
});

test('graph: initializers keep the PyTorch names and [out, in] layout', () => {
  const p = noisyParams(mdlm, 1, NOISE);
  const m = buildOnnxModel(mdlm, p);
  const qkv = m.graph.initializers.find((t) => t.name === 'backbone.blocks.1.attn_qkv.weight')!;
  assert.deepEqual(qkv.dims, [48, 16]);
  const head = m.graph.initializers.find((t) => t.name === 'backbone.output_layer.linear.weight')!;
  assert.deepEqual(head.dims, [13, 16]);
  assert.equal(m.opset, 17);
  assert.ok(
    m.graph.nodes.every((n) => !n.domain),
    'standard ONNX ops only',
  );
  assert.throws(() => buildOnnxModel(mdlm, p.subarray(1)), /params has/);
});

// ---------------------------------------------------------------------------------------------------------------
// onnxruntime vs the tfjs model

test('loadOnnxRuntime reports availability', (t) => {
  if (!rt.ort) {
    assert.match(rt.reason, /onnxruntime-node/);
    ORT.check();
    t.skip(ORT.skip as string);
    return;
  }
  assert.equal(typeof rt.version, 'string');
});

test('mdlm: ONNX logits == tfjs logits (random params, batch 3)', { skip: SKIP }, async () => {
  ORT.check();
  const p = noisyParams(mdlm, 2, NOISE);
  const B = 3;
  const tok = tokens(B * mdlm.seqLen, mdlm.vocabSize, 3);
  const ref = createInferenceModel(mdlm, p);
  const onnx = await createOnnxModel(mdlm, p, { threads: 1 });
  try {
    const a = await ref.logits(tok, B);
    const b = await onnx.logits(tok, B);
    assert.equal(b.length, B * mdlm.seqLen * mdlm.vocabSize);
    assert.ok(maxAbs(a) > 0.5, 'logits are not trivially small');
    const diff = maxAbsDiff(a, b);
    assert.ok(diff < 1e-4, `max |onnx - tfjs| = ${diff}`);
    // dynamic batch: a single sequence gives the same rows
    const one = await onnx.logits(tok.subarray(mdlm.seqLen, 2 * mdlm.seqLen), 1);
    assert.ok(maxAbsDiff(one, b.subarray(mdlm.seqLen * mdlm.vocabSize, 2 * mdlm.seqLen * mdlm.vocabSize)) < 1e-5);
    await assert.rejects(onnx.logits(tok.subarray(0, 5), 1), /exactly 8 tokens/);
    await assert.rejects(
      onnx.logits(
        Int32Array.from({ length: 8 }, () => 13),
        1,
      ),
      /outside the vocabulary/,
    );
    assert.throws(() => onnx.session(1), /causal/);
  } finally {
    ref.dispose();
    await onnx.dispose();
  }
});

test(
  'mdlm: opset 17 graph (composed tanh-GELU, the export default) == opset 20 (Gelu op, the runtime default)',
  { skip: SKIP },
  async () => {
    ORT.check();
    const p = noisyParams(mdlm, 4, NOISE);
    const tok = tokens(2 * mdlm.seqLen, mdlm.vocabSize, 5);
    const a = await createOnnxModel(mdlm, p, { threads: 1, opset: 17 });
    const b = await createOnnxModel(mdlm, p, { threads: 1, opset: 20 });
    try {
      const d = maxAbsDiff(await a.logits(tok, 2), await b.logits(tok, 2));
      assert.ok(d < 1e-4, `opset 17 vs 20: ${d}`);
    } finally {
      await a.dispose();
      await b.dispose();
    }
  },
);

test('ar: ONNX causal logits == tfjs logits (full recompute, shorter than seqLen)', { skip: SKIP }, async () => {
  ORT.check();
  const p = noisyParams(ar, 6, NOISE);
  const ref = createInferenceModel(ar, p);
  const onnx = await createOnnxModel(ar, p, { threads: 1 });
  try {
    for (const len of [ar.seqLen, 5]) {
      const B = 2;
      const tok = tokens(B * len, ar.vocabSize, 7 + len);
      const a = await ref.logits(tok, B, len);
      const b = await onnx.logits(tok, B, len);
      assert.ok(maxAbs(a) > 0.5);
      const diff = maxAbsDiff(a, b);
      assert.ok(diff < 1e-4, `len ${len}: max |onnx - tfjs| = ${diff}`);
    }
    await assert.rejects(onnx.logits(tokens(2 * 13, 13, 1), 2, 13), /exceeds the model's seqLen/);
  } finally {
    ref.dispose();
    await onnx.dispose();
  }
});

test(
  'ar: KV-cache session logits == full recompute (prefill 4, then 1, 3, 1 tokens) and == tfjs session',
  { skip: SKIP },
  async () => {
    ORT.check();
    const p = noisyParams(ar, 8, NOISE);
    const B = 2;
    const total = 9;
    const tok = tokens(B * total, ar.vocabSize, 9);
    const onnx = await createOnnxModel(ar, p, { threads: 1 });
    const ref = createInferenceModel(ar, p);
    const V = ar.vocabSize;
    try {
      const full = await onnx.logits(tok, B, total);
      const s = onnx.session(B);
      const rs = ref.session(B);
      let pos = 0;
      for (const n of [4, 1, 3, 1]) {
        const chunk = new Int32Array(B * n);
        for (let b = 0; b < B; b++) chunk.set(tok.subarray(b * total + pos, b * total + pos + n), b * n);
        const got = await s.append(chunk, n);
        const want = await rs.append(chunk, n);
        pos += n;
        assert.equal(s.length, pos);
        assert.equal(got.length, B * V);
        for (let b = 0; b < B; b++) {
          const row = full.subarray((b * total + pos - 1) * V, (b * total + pos) * V);
          const d = maxAbsDiff(got.subarray(b * V, (b + 1) * V), row);
          assert.ok(d < 1e-4, `pos ${pos} seq ${b}: session vs full recompute ${d}`);
        }
        assert.ok(maxAbsDiff(got, want) < 1e-4, `pos ${pos}: onnx session vs tfjs session`);
      }
      await assert.rejects(s.append(tokens(B * 4, V, 1), 4), /exceeds the model's seqLen/);
      s.dispose();
      rs.dispose();
      await assert.rejects(s.append(tokens(B, V, 1), 1), /after dispose/);
    } finally {
      ref.dispose();
      await onnx.dispose();
    }
  },
);

test('exportOnnx writes the same bytes the runtime uses, loadable by onnxruntime', { skip: SKIP }, async () => {
  ORT.check();
  const dir = await mkdtemp(path.join(tmpdir(), 'onnx-test-'));
  try {
    const p = noisyParams(ar, 10, NOISE);
    const file = path.join(dir, 'model.onnx');
    const { bytes } = await exportOnnx(ar, p, file);
    const onDisk = new Uint8Array(await readFile(file));
    assert.equal(onDisk.length, bytes);
    assert.deepEqual(onDisk, onnxModelBytes(ar, p));
    const sess = await rt.ort!.InferenceSession.create(onDisk);
    assert.deepEqual([...sess.inputNames].sort(), [
      'past_key.0',
      'past_key.1',
      'past_value.0',
      'past_value.1',
      'tokens',
    ]);
    assert.ok(sess.outputNames.includes('logits') && sess.outputNames.includes('present_value.1'));
    // the exported file itself (opset 17) reproduces the tfjs causal logits, driven through the raw ORT API
    const ort = rt.ort!;
    const B = 2;
    const len = 6;
    const hd = ar.dModel / ar.nHeads;
    const tok = tokens(B * len, ar.vocabSize, 11);
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = { tokens: new ort.Tensor('int32', tok, [B, len]) };
    for (const n of ['past_key.0', 'past_key.1', 'past_value.0', 'past_value.1'])
      feeds[n] = new ort.Tensor('float32', new Float32Array(0), [B, ar.nHeads, 0, hd]);
    const out = await sess.run(feeds);
    assert.deepEqual([...out.logits.dims], [B, len, ar.vocabSize]);
    assert.deepEqual([...out['present_key.1'].dims], [B, ar.nHeads, len, hd]);
    const ref = createInferenceModel(ar, p);
    const want = await ref.logits(tok, B, len);
    ref.dispose();
    const diff = maxAbsDiff(out.logits.data as Float32Array, want);
    assert.ok(diff < 1e-4, `exported file vs tfjs: ${diff}`);
    await sess.release();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('runs inside a worker_threads Worker (loadOnnxRuntime + createOnnxModel)', { skip: SKIP }, async () => {
  ORT.check();
  // tsx must be registered inside the worker (execArgv --import tsx does not reach worker threads on Node 20).
  const api = import.meta.resolve('tsx/esm/api');
  const u = (rel: string) => JSON.stringify(new URL(rel, import.meta.url).href);
  const boot = `
    const { parentPort, workerData } = await import('node:worker_threads');
    (await import(${JSON.stringify(api)})).register();
    const { ModelConfig } = await import(${u('../src/shared/config.ts')});
    const { initParams } = await import(${u('../src/engine/model/paramLayout.ts')});
    const { createOnnxModel, loadOnnxRuntime } = await import(${u('../src/engine/onnx/runtime.ts')});
    const rt = await loadOnnxRuntime();
    const cfg = ModelConfig.parse(workerData);
    const m = await createOnnxModel(cfg, initParams(cfg, 1), { threads: 1 });
    const out = await m.logits(new Int32Array(cfg.seqLen), 1);
    await m.dispose();
    parentPort.postMessage({ version: rt.version, n: out.length });`;
  const w = new Worker(`(async () => {${boot}})().catch((e) => { throw e; })`, { eval: true, workerData: mdlm });
  try {
    const msg = await new Promise<{ version: string; n: number }>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    assert.equal(msg.version, rt.version);
    assert.equal(msg.n, mdlm.seqLen * mdlm.vocabSize);
  } finally {
    await w.terminate();
  }
});

test(
  'forward(): logits read by row (transformer in chunks of sequences, head per chunk of rows) == the whole graph, bit for bit',
  { skip: SKIP },
  async () => {
    ORT.check();
    // seqLen 1024: a forward runs 2 sequences per transformer run, so batch 3 takes two runs; V 20000: a head run
    // takes rowChunk(V) = 838 rows, so reading 1024 takes two.
    const long = { seqLen: 1024 };
    for (const [cfg, B] of [
      [tinyModel({ vocabSize: 13, maskId: 12, eosId: 11, ...long }), 3],
      [tinyModel({ vocabSize: 20000, maskId: 19999, eosId: 19998, ...long }), 1],
      [ar, 3],
    ] as const) {
      const p = noisyParams(cfg, 8, NOISE);
      const len = cfg.seqLen;
      const tok = tokens(B * len, cfg.vocabSize, 9);
      const V = cfg.vocabSize;
      const ort = rt.ort!;
      const whole = await ort.InferenceSession.create(onnxModelBytes(cfg, p, { opset: 20 }), {
        intraOpNumThreads: 1,
      });
      const onnx = await createOnnxModel(cfg, p, { threads: 1 });
      try {
        const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
          tokens: new ort.Tensor('int32', tok, [B, len]),
        };
        const hd = cfg.dModel / cfg.nHeads;
        if (cfg.arch === 'ar')
          for (let i = 0; i < cfg.nLayers; i++)
            for (const n of [`past_key.${i}`, `past_value.${i}`])
              feeds[n] = new ort.Tensor('float32', new Float32Array(0), [B, cfg.nHeads, 0, hd]);
        const want = (await whole.run(feeds)).logits.data as Float32Array;
        const rows = await onnx.forward(tok, B, len);
        assert.equal(rows.positions, B * len);
        // any order, repeats allowed
        const asked = Int32Array.from([B * len - 1, 0, 5, 5, len + 3, 2 * len].map((r) => r % (B * len)));
        const seen: number[] = [];
        await rows.forEachRow(asked, (k, logits, offset) => {
          seen.push(k);
          const p0 = asked[k];
          assert.deepEqual(logits.subarray(offset, offset + V), want.subarray(p0 * V, (p0 + 1) * V), `row ${p0}`);
        });
        assert.deepEqual(seen, [0, 1, 2, 3, 4, 5]);
        rows.dispose();
        await assert.rejects(
          rows.forEachRow([0], () => {}),
          /after dispose/,
        );
        assert.deepEqual(await onnx.logits(tok, B, len), want);
      } finally {
        await whole.release();
        await onnx.dispose();
      }
    }
  },
);
