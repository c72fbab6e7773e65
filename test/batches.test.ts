import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchIterator, validationBatches } from '../src/engine/data/batches.ts';
import { openTokenSource } from '../src/engine/data/shards.ts';
import { ByteTokenizer } from '../src/engine/data/tokenizer.ts';

const tokens = Uint16Array.from({ length: 1000 }, (_, i) => i);

test('batches have the right shape and are contiguous windows', () => {
  const it = new BatchIterator(tokens, 16, 4, 1);
  const b = it.next();
  assert.equal(b.length, 64);
  for (let r = 0; r < 4; r++) for (let c = 1; c < 16; c++) assert.equal(b[r * 16 + c], b[r * 16] + c);
});

test('an epoch visits every window once (seeded permutation); epochs differ', () => {
  const it = new BatchIterator(tokens, 10, 1, 3);
  const n = it.windowsPerEpoch;
  const starts = new Set<number>();
  for (let i = 0; i < n; i++) starts.add(it.next()[0]);
  assert.equal(starts.size, n);
  assert.equal(it.cursor().epoch, 0);
  it.next();
  assert.equal(it.cursor().epoch, 1);
});

test('same seed -> same batches; different seed -> different', () => {
  const a = new BatchIterator(tokens, 8, 3, 42);
  const b = new BatchIterator(tokens, 8, 3, 42);
  const c = new BatchIterator(tokens, 8, 3, 43);
  const ra = [a.next(), a.next()];
  assert.deepEqual([b.next(), b.next()], ra);
  assert.notDeepEqual([c.next(), c.next()], ra);
});

test('resume from a JSON cursor gives exactly the uninterrupted batches (across epochs, any batch size)', () => {
  const seqLen = 16;
  const full = new BatchIterator(tokens, seqLen, 5, 9);
  const ref: Int32Array[] = [];
  for (let i = 0; i < 40; i++) ref.push(full.next()); // > 3 epochs of ~62 windows

  for (const stopAt of [0, 1, 7, 12, 13, 25, 39]) {
    const it = new BatchIterator(tokens, seqLen, 5, 9);
    for (let i = 0; i < stopAt; i++) it.next();
    const cursor = JSON.parse(JSON.stringify(it.cursor()));
    const res = BatchIterator.resume(tokens, seqLen, 5, cursor);
    for (let i = stopAt; i < 40; i++) assert.deepEqual(res.next(), ref[i], `stop ${stopAt}, batch ${i}`);
  }
  // a different batch size after resume draws the same window sequence
  const it = new BatchIterator(tokens, seqLen, 5, 9);
  it.next();
  const res1 = BatchIterator.resume(tokens, seqLen, 1, it.cursor());
  const flat = Array.from(ref[1]);
  const got: number[] = [];
  for (let i = 0; i < 5; i++) got.push(...res1.next());
  assert.deepEqual(got, flat);
  assert.throws(() => BatchIterator.resume(tokens.subarray(0, 900), seqLen, 5, it.cursor()), /different data/);
  assert.throws(() => BatchIterator.resume(tokens, 8, 5, it.cursor()), /seqLen/);
});

test('validationBatches: deterministic, non-overlapping windows spread over the data', () => {
  const v = validationBatches(tokens, 10, 4, 5);
  assert.equal(v.length, 5);
  assert.deepEqual(validationBatches(tokens, 10, 4, 5), v);
  const starts = v.flatMap((b) => [0, 1, 2, 3].map((r) => b[r * 10]));
  assert.equal(new Set(starts).size, 20);
  for (const s of starts) assert.equal(s % 10, 0);
  assert.ok(Math.max(...starts) >= 900);
  assert.equal(validationBatches(tokens, 100, 4, 10).length, 2); // only 10 windows: 2 full batches
  assert.throws(() => validationBatches(tokens, 400, 4, 1), /fewer than one batch/);
});

test('openTokenSource on a text file: ByteTokenizer default, last ~5% is validation, no test split', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sdtt-text-'));
  const f = join(dir, 'x.txt');
  const text = 'Hello, wörld!\n'.repeat(200);
  writeFileSync(f, text);
  const src = openTokenSource(f);
  assert.equal(src.kind, 'text');
  assert.ok(src.tokenizer instanceof ByteTokenizer);
  const tr = src.split('train');
  const va = src.split('validation');
  assert.equal(tr.length + va.length, Buffer.byteLength(text));
  assert.ok(Math.abs(va.length / (tr.length + va.length) - 0.05) < 0.01);
  assert.equal(src.tokenizer.decode([...tr, ...va]), text);
  assert.throws(() => src.split('test'), /no test split/);
  const it = new BatchIterator(tr, 32, 2, 0);
  assert.equal(it.next().length, 64);
});
