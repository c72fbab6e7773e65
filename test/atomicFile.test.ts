import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../src/node/atomicFile.ts';

test('writeFileAtomic replaces a file whole; a failed write keeps what was there and leaves no temp file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atomic-'));
  try {
    const file = join(dir, 'run.json');
    writeFileAtomic(file, '{"a":1}\n');
    writeFileAtomic(file, new Uint8Array([123, 125, 10]));
    assert.equal(readFileSync(file, 'utf8'), '{}\n');
    // the rename fails when the target is a non-empty folder: it stays as it was, the temp file goes
    const occupied = join(dir, 'samples');
    mkdirSync(occupied);
    writeFileSync(join(occupied, 'keep.json'), 'mine');
    assert.throws(() => writeFileAtomic(occupied, 'x'), /EISDIR|ENOTEMPTY|EEXIST|ENOTDIR/);
    assert.equal(readFileSync(join(occupied, 'keep.json'), 'utf8'), 'mine');
    assert.deepEqual(readdirSync(dir).sort(), ['run.json', 'samples']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
