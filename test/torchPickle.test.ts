// The torch checkpoint reader, on files torch itself wrote (test/fixtures/torch, made by
// scripts/make-torch-fixtures.py, so no PyTorch is needed here) and on hostile pickles built byte by byte below.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError } from '../src/runs/safetensors.ts';
import {
  StorageRef,
  TensorRef,
  openTorchCheckpoint,
  readTorchStateDict,
  unpickle,
  type PickleValue,
  type TorchTensor,
} from '../src/runs/torchPickle.ts';

const DIR = join(import.meta.dirname, 'fixtures', 'torch');
const fixture = (name: string) => join(DIR, name);
type Expected = Record<string, Record<string, { dtype: string; shape: number[]; values: (number | string)[] }>>;
const EXPECTED = JSON.parse(readFileSync(fixture('expected.json'), 'utf8')) as Expected;
const ARRAY_FOR: Record<string, unknown> = {
  F32: Float32Array,
  F16: Float32Array,
  BF16: Float32Array,
  F64: Float32Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};

/** Pickle bytes from opcodes (latin-1 strings) and pieces built by the helpers below. */
const pk = (...parts: (string | Buffer)[]) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));
/** BINUNICODE */
const str = (s: string) => {
  const b = Buffer.from(s, 'utf8');
  const n = Buffer.alloc(4);
  n.writeUInt32LE(b.length);
  return pk('X', n, b);
};

function refuses(run: () => unknown, source: string, ...patterns: RegExp[]): void {
  assert.throws(run, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${e}`);
    assert.ok(e.message.startsWith(`${source}: `), e.message);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

function assertMatches(name: string, got: Map<string, TorchTensor>): void {
  const want = EXPECTED[name];
  assert.deepEqual([...got.keys()].sort(), Object.keys(want).sort(), name);
  for (const [k, w] of Object.entries(want)) {
    const t = got.get(k)!;
    assert.equal(t.dtype, w.dtype, `${name} ${k}`);
    assert.deepEqual(t.shape, w.shape, `${name} ${k}`);
    assert.equal(t.data.constructor, ARRAY_FOR[w.dtype], `${name} ${k}`);
    const values = t.data instanceof BigInt64Array ? [...t.data].map(String) : [...t.data];
    assert.deepEqual(values, w.values, `${name} ${k}`);
  }
}

test('reads what torch.save wrote: every dtype, views, parameters, protocols 2/4/5, deflate, ZIP64', () => {
  for (const name of Object.keys(EXPECTED)) assertMatches(name, readTorchStateDict(fixture(name)));
  // Names come in file order; the bytes of a checkpoint read the same as the file.
  assert.deepEqual([...readTorchStateDict(fixture('plain.pt')).keys()], ['a', 'b', 'scalar', 'empty']);
  assertMatches('plain.pt', readTorchStateDict(readFileSync(fixture('plain.pt')), 'plain.pt'));
});

test('a Lightning checkpoint: its state_dict, the plain values around it, and no aliasing of tied weights', () => {
  const sd = readTorchStateDict(fixture('lightning.ckpt'));
  const emb = sd.get('emb.weight')!.data as Float32Array;
  const out = sd.get('out.weight')!.data as Float32Array;
  assert.deepEqual(out, emb, 'tied weights: one storage under two names');
  assert.notEqual(out.buffer, emb.buffer, 'each name gets its own memory');
  const before = out[0];
  emb[0] += 1;
  assert.equal(out[0], before);

  const ck = openTorchCheckpoint(fixture('lightning.ckpt'));
  try {
    const root = ck.root as Map<string, PickleValue>;
    assert.equal(root.get('epoch'), 3);
    assert.equal(root.get('global_step'), 100);
    assert.equal(root.get('pytorch-lightning_version'), '2.1.0');
    const notes = root.get('notes') as Map<string, PickleValue>;
    assert.deepEqual(notes.get('bytes'), new Uint8Array([0, 255, 97, 98]));
    assert.equal(notes.get('huge'), 2n ** 70n);
    assert.equal(notes.get('negative'), -5);
    assert.equal(notes.get('float'), 0.1);
    assert.equal(notes.get('none'), null);
    assert.deepEqual(notes.get('tuple'), [1, 'x']);
    assert.ok(Object.isFrozen(notes.get('tuple')), 'tuples are frozen arrays');
    assert.deepEqual(notes.get('set'), new Set([1, 2]));
    const [opt] = root.get('optimizer_states') as Map<string, PickleValue>[];
    const adam = (opt.get('state') as Map<number, Map<string, PickleValue>>).get(0)!;
    assert.ok(adam.get('exp_avg') instanceof TensorRef, 'optimizer moments stay unread references');
    const [moment] = ck.tensors([adam.get('exp_avg') as TensorRef]);
    assert.deepEqual(moment.shape, [5, 3]);
  } finally {
    ck.close();
  }
});

test('views: storage offsets, strides, expand and shared storages are materialised, each in its own memory', () => {
  const sd = readTorchStateDict(fixture('views.pt'));
  const base = sd.get('base')!.data;
  for (const k of ['rows', 'column', 'transposed', 'tied_a', 'tied_b', 'corner'])
    assert.notEqual(sd.get(k)!.data.buffer, base.buffer, k);
  assert.deepEqual([...sd.get('column')!.data], [1, 6, 11, 16]);
  assert.deepEqual([...sd.get('corner')!.data], [11, 16, 12, 17, 13, 18, 14, 19]);
  // The common case, a float32 weight that fills its storage, is the storage record itself: no second copy.
  const a = readTorchStateDict(fixture('plain.pt')).get('a')!.data;
  assert.equal(a.byteOffset, 0);
  assert.equal(a.buffer.byteLength, a.byteLength);
});

test('nn.Parameter (_rebuild_parameter) keeps requires_grad on the reference', () => {
  const ck = openTorchCheckpoint(fixture('param.pt'));
  const root = ck.root as Map<string, TensorRef>;
  ck.close();
  assert.equal(root.get('w')!.requiresGrad, true);
  assert.equal(root.get('frozen')!.requiresGrad, false);
  assert.equal(root.get('w')!.storage.location, 'cpu');
});

test('refuses globals outside the allow-list, naming them, with a hint to re-save the weights', () => {
  refuses(
    () => readTorchStateDict(fixture('omegaconf.ckpt')),
    fixture('omegaconf.ckpt'),
    /the pickle references the global omegaconf\.dictconfig\.DictConfig; only tensors, OrderedDict and torch's tensor rebuild functions are read \(no code from a checkpoint ever runs\)\./,
    /re-save just its weights with PyTorch/,
    /torch\.load\("omegaconf\.ckpt", map_location="cpu", weights_only=False\); torch\.save\(ck\.get\("state_dict", ck\), "weights\.pt"\)/,
  );
  // Code execution proper: no re-save advice, a warning instead.
  const osSystem =
    /the pickle references the global os\.system; only tensors, OrderedDict and torch's tensor rebuild functions are read \(no code from a checkpoint ever runs\)\. A checkpoint has no reason to reference it: the file may be malicious/;
  refuses(() => readTorchStateDict(fixture('os-system.pt')), fixture('os-system.pt'), osSystem);
  refuses(
    () => unpickle(pk('\x80\x02cos\nsystem\n', str('echo pwned'), '\x85R.'), { source: 'model.ckpt' }),
    'model.ckpt',
    osSystem,
  );
  const evalStack = pk('\x80\x04', str('builtins'), str('eval'), '\x93', str('1+1'), '\x85R.');
  refuses(
    () => unpickle(evalStack, { source: 'm.pt' }),
    'm.pt',
    /references the global builtins\.eval; /,
    /may be malicious/,
  );
  refuses(
    () => unpickle(pk('\x80\x02clightning.pytorch\nTrainer\n)R.')),
    'pickle',
    /global lightning\.pytorch\.Trainer/,
    /weights_only=False/,
  );
  refuses(
    () => unpickle(pk('ctorch\nComplexFloatStorage\n.')),
    'pickle',
    /tensors of type torch\.ComplexFloatStorage are not supported \(supported: torch\.FloatStorage, /,
  );
});

test('refuses REDUCE, NEWOBJ and BUILD on anything not allow-listed', () => {
  const refused = (bytes: Buffer, what: RegExp) =>
    refuses(() => unpickle(bytes, { source: 'x.pt' }), 'x.pt', what, /no code from a checkpoint ever runs/);
  refused(pk('ctorch\nFloatStorage\n)R.'), /the pickle calls torch\.FloatStorage \(REDUCE\)/);
  refused(pk(str('os.system'), ')R.'), /the pickle calls a string \(os\.system\) \(REDUCE\)/);
  refused(
    pk('ctorch._utils\n_rebuild_tensor_v2\n)\x81.'),
    /the pickle instantiates torch\._utils\._rebuild_tensor_v2 \(NEWOBJ\)/,
  );
  refused(pk(']}b.'), /the pickle sets the state of a list \(BUILD\)/);
  refused(pk('ccollections\nOrderedDict\n)R', str('x'), 'b.'), /sets the state of a dict \(BUILD\)/);
  // The one BUILD torch writes, an OrderedDict's __dict__, is read (and dropped); OrderedDict(pairs) is emulated.
  const od = unpickle(pk('ccollections\nOrderedDict\n)R', '}', str('_metadata'), '}sb.'));
  assert.deepEqual(od, new Map());
  assert.deepEqual(unpickle(pk('ccollections\nOrderedDict\n]', str('k'), 'K\x07\x86a\x85R.')), new Map([['k', 7]]));
  assert.deepEqual(unpickle(pk('c_codecs\nencode\n', str('\xff'), str('latin1'), '\x86R.')), new Uint8Array([255]));
  refuses(
    () => unpickle(pk('c_codecs\nencode\n', str('a'), str('utf-16'), '\x86R.')),
    'pickle',
    /malformed call to _codecs\.encode/,
  );
});

test('refuses unknown or unsupported opcodes by byte and name, and truncated or inconsistent pickles', () => {
  refuses(() => unpickle(pk('\x80\x02\xff.')), 'pickle', /unknown pickle opcode 0xff: /);
  refuses(() => unpickle(pk('\x80\x02\x82\x01.')), 'pickle', /pickle opcode EXT1 \(0x82\) is not supported/);
  refuses(() => unpickle(pk('\x80\x05\x97.')), 'pickle', /pickle opcode NEXT_BUFFER \(0x97\) is not supported/);
  refuses(() => unpickle(pk("S'abc'\n.")), 'pickle', /pickle opcode STRING \(0x53\) is not supported/);
  refuses(() => unpickle(pk('\x80\x02X\x0a\x00\x00\x00abc')), 'pickle', /pickle data ends unexpectedly .*truncated/);
  refuses(() => unpickle(pk('\x80\x02]')), 'pickle', /pickle data ends unexpectedly/);
  refuses(() => unpickle(pk('\x80\x02h\x05.')), 'pickle', /memo entry 5 is read before it is written/);
  refuses(() => unpickle(pk('\x80\x02(K\x01a.')), 'pickle', /stack underflow/);
  refuses(() => unpickle(pk('\x80\x02K\x01K\x02.')), 'pickle', /stops with 2 values on the stack/);
  refuses(() => unpickle(pk('\x80\x02K\x01\x85Q.')), 'pickle', /persistent id, but nothing resolves it/);
  // A view that reaches past the end of its storage is refused before any bytes are read.
  const storage = new StorageRef('0', 'F32', 4, 'cpu');
  const view = pk('ctorch._utils\n_rebuild_tensor_v2\n(K\x00Q', 'K\x00K\x05\x85K\x01\x85\x89', ')', 'tR.');
  refuses(
    () => unpickle(view, { persistentLoad: () => storage }),
    'pickle',
    /malformed call to torch\._utils\._rebuild_tensor_v2: the view reaches element 4 of storage '0', which holds 4 elements/,
  );
});

test('refuses legacy, truncated, corrupt and incomplete files with messages that say what is wrong', () => {
  refuses(
    () => readTorchStateDict(fixture('legacy.pt')),
    fixture('legacy.pt'),
    /is a legacy PyTorch file \(written before torch 1\.6/,
  );
  const plain = readFileSync(fixture('plain.pt'));
  for (const cut of [plain.length >> 1, plain.length - 10])
    refuses(() => readTorchStateDict(plain.subarray(0, cut), 'cut.pt'), 'cut.pt', /it is truncated/);
  refuses(
    () => readTorchStateDict(Buffer.from('{"not": "torch"}'), 'x.pt'),
    'x.pt',
    /does not start with a zip signature/,
  );
  refuses(() => readTorchStateDict(Buffer.alloc(0), 'empty.pt'), 'empty.pt', /does not start with a zip signature/);
  refuses(
    () => readTorchStateDict(fixture('no-data-pkl.pt')),
    fixture('no-data-pkl.pt'),
    /has no <root>\/data\.pkl record, so it is not a torch\.save checkpoint \(entries: plain\/data\/0, /,
  );
  refuses(
    () => readTorchStateDict(fixture('missing-storage.pt')),
    fixture('missing-storage.pt'),
    /refers to tensor storage '1', but the archive has no record plain\/data\/1/,
  );
  refuses(() => readTorchStateDict(fixture('big-endian.pt')), fixture('big-endian.pt'), /stores big-endian tensors/);
  refuses(
    () => readTorchStateDict(fixture('bare-tensor.pt')),
    fixture('bare-tensor.pt'),
    /holds a tensor; expected a dict of tensors/,
  );
  refuses(
    () => readTorchStateDict(fixture('protocol4.pt').replace('protocol4', 'nope')),
    fixture('nope.pt'),
    /cannot open/,
  );
  // Flip one byte of tensor 'b': the CRC-32 in the central directory catches it.
  const corrupt = Buffer.from(plain);
  const b = Buffer.from(Float32Array.from(EXPECTED['plain.pt'].b.values as number[]).buffer);
  corrupt[corrupt.indexOf(b) + 1] ^= 0x40;
  refuses(() => readTorchStateDict(corrupt, 'flip.pt'), 'flip.pt', /zip entry 'plain\/data\/1' fails its CRC-32 check/);
});
