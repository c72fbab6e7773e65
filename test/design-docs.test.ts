// The design documents the code cites live in docs/design/, and every citation resolves: each
// `docs/design/<name>.md` named in src/, test/, docs/design/ or README.md must exist, and each section it names
// with it, `§4.1` (a numbered heading "### 4.1 ...") or `"Runs folder"` (a heading whose text, after an optional
// section number, is exactly that), must be a heading of that document. Several may follow one path:
// `docs/design/sdtt.md §4, §7` or `docs/design/on-disk-format.md "Runs folder", "Checkpoint format"`.
// src/ must not cite the old out-of-repository documents (sdtt-spec.md "spec §N", architecture.md, ...) any more.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const DESIGN = join(ROOT, 'docs', 'design');
const SELF = resolve(import.meta.filename);

export interface Citation {
  /** file:line of the citation */
  at: string;
  doc: string;
  sections: string[];
  headings: string[];
}

const PATH_PREFIX = ['docs', 'design', ''].join('/');
const CITATION = new RegExp(
  `${PATH_PREFIX.replace(/\//g, '\\/')}([A-Za-z0-9._-]+\\.md)((?:\\s*(?:,|and)?\\s*(?:§\\d+(?:\\.\\d+)*|"[^"\\n]+"))*)`,
  'g',
);
const PART = /§(\d+(?:\.\d+)*)|"([^"\n]+)"/g;

/** The citations of docs/design documents in `text` (named `file` in the results). */
export function citationsIn(text: string, file: string): Citation[] {
  const out: Citation[] = [];
  text.split('\n').forEach((line, i) => {
    for (const m of line.matchAll(CITATION)) {
      const c: Citation = { at: `${file}:${i + 1}`, doc: m[1], sections: [], headings: [] };
      for (const p of (m[2] ?? '').matchAll(PART)) {
        if (p[1]) c.sections.push(p[1]);
        else c.headings.push(p[2]);
      }
      out.push(c);
    }
  });
  return out;
}

/** A document's headings: the section number ("4.1", or null) and the text after it. */
export function headingsOf(markdown: string): { number: string | null; text: string }[] {
  const out: { number: string | null; text: string }[] = [];
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    if (fenced) continue;
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const n = /^(\d+(?:\.\d+)*)\.?\s+(.*)$/.exec(h[1]);
    out.push(n ? { number: n[1], text: n[2] } : { number: null, text: h[1] });
  }
  return out;
}

/** What is wrong with the citations, one line each; `read(doc)` returns a document's text or null when it is missing. */
export function problemsOf(citations: Citation[], read: (doc: string) => string | null): string[] {
  const problems: string[] = [];
  for (const c of citations) {
    const text = read(c.doc);
    if (text === null) {
      problems.push(`${c.at}: docs/design/${c.doc} does not exist`);
      continue;
    }
    const hs = headingsOf(text);
    for (const s of c.sections)
      if (!hs.some((h) => h.number === s)) problems.push(`${c.at}: docs/design/${c.doc} has no section §${s}`);
    for (const t of c.headings)
      if (!hs.some((h) => h.text === t)) problems.push(`${c.at}: docs/design/${c.doc} has no heading "${t}"`);
  }
  return problems;
}

function filesUnder(dir: string, ext: RegExp): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return n === 'node_modules' || n.startsWith('.') ? [] : filesUnder(p, ext);
    return ext.test(n) ? [p] : [];
  });
}

const SOURCE = /\.(ts|tsx|cts|mts|mjs|js|css|html)$/;
const scanned = [
  ...filesUnder(join(ROOT, 'src'), SOURCE),
  ...filesUnder(join(ROOT, 'test'), SOURCE),
  ...filesUnder(join(ROOT, 'scripts'), SOURCE),
  ...filesUnder(DESIGN, /\.md$/),
  join(ROOT, 'README.md'),
].filter((f) => f !== SELF && existsSync(f));

const readDoc = (doc: string): string | null => {
  const f = join(DESIGN, doc);
  return existsSync(f) ? readFileSync(f, 'utf8') : null;
};

const all = scanned.flatMap((f) => citationsIn(readFileSync(f, 'utf8'), relative(ROOT, f)));

test('every docs/design citation names an existing document and existing sections', () => {
  assert.deepEqual(problemsOf(all, readDoc), []);
});

test('the checker sees the citations of src/ (a scan that found none would pass everything)', () => {
  const inSrc = all.filter((c) => c.at.startsWith('src/'));
  assert.ok(inSrc.length >= 30, `only ${inSrc.length} citations found in src/`);
  assert.ok(
    inSrc.some((c) => c.doc === 'sdtt.md' && c.sections.length > 0),
    'a § citation of sdtt.md',
  );
  assert.ok(
    inSrc.some((c) => c.headings.length > 0),
    'a "Heading" citation',
  );
  for (const doc of ['sdtt.md', 'architecture.md', 'on-disk-format.md', 'data.md'])
    assert.ok(readDoc(doc) !== null, `docs/design/${doc} exists`);
});

test('src/ no longer cites the out-of-repository design documents', () => {
  const legacy = [
    /\bspec(?:'s)? ?§/,
    /\bspec \d/,
    /\bthe spec\b/,
    /sdtt-spec/,
    /(?<!docs\/design\/)\b(?:architecture|data-sources|spec)\.md\b/,
    /docs\/design data-sources/,
  ];
  const hits: string[] = [];
  for (const f of scanned.filter((x) => x.startsWith(join(ROOT, 'src')))) {
    readFileSync(f, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (legacy.some((r) => r.test(line))) hits.push(`${relative(ROOT, f)}:${i + 1}: ${line.trim()}`);
      });
  }
  assert.deepEqual(hits, []);
});

test('the checker fails on a missing document, a missing § and a missing heading', () => {
  const p = PATH_PREFIX;
  const text = [
    `// ${p}sdtt.md §4.1 and ${p}sdtt.md §4, §7`,
    `// (${p}on-disk-format.md "Runs folder", "Checkpoint format")`,
    `// ${p}nope.md §1`,
    `// ${p}sdtt.md §99 and ${p}sdtt.md "No such heading"`,
  ].join('\n');
  const cs = citationsIn(text, 'fake.ts');
  assert.deepEqual(
    cs.map((c) => [c.doc, c.sections, c.headings]),
    [
      ['sdtt.md', ['4.1'], []],
      ['sdtt.md', ['4', '7'], []],
      ['on-disk-format.md', [], ['Runs folder', 'Checkpoint format']],
      ['nope.md', ['1'], []],
      ['sdtt.md', ['99'], []],
      ['sdtt.md', [], ['No such heading']],
    ],
  );
  const docs: Record<string, string> = {
    'sdtt.md': '# T\n## 4. SDTT\n### 4.1 Teacher targets\n```\n## 99. inside a code block\n```\n## 7. Defaults\n',
    'on-disk-format.md': '# On disk\n## Runs folder\n## Checkpoint format\n',
  };
  assert.deepEqual(
    problemsOf(cs, (d) => docs[d] ?? null),
    [
      `fake.ts:3: ${p}nope.md does not exist`,
      `fake.ts:4: ${p}sdtt.md has no section §99`,
      `fake.ts:4: ${p}sdtt.md has no heading "No such heading"`,
    ],
  );
});
