// The layering, checked on the import graph of src/ (static imports, re-exports and dynamic import() calls; type-only
// imports are erased at run time and left out): renderer -> API interface; main -> worker protocol; worker ->
// engine; everyone -> shared. The engine imports nothing from Electron, main, the CLI or the renderer; main never
// loads tfjs or onnxruntime, not even through an engine file it imports; the renderer and shared/ import no Node
// module; the preload imports only Electron and the contract; and no two modules import each other in a circle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

const SRC = resolve(import.meta.dirname, '..', 'src');

interface Edge {
  spec: string;
  /** The resolved file inside src/, or null for a package / Node module. */
  file: string | null;
  dynamic: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return /\.(ts|tsx|cts|mts)$/.test(n) && !n.endsWith('.d.ts') ? [p] : [];
  });
}

/** The module specifiers `file` loads at run time, parsed by TypeScript itself (so comments and strings never fool it). */
function edgesOf(file: string): Edge[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const out: Edge[] = [];
  const add = (spec: string, dynamic: boolean) => {
    let target: string | null = null;
    if (spec.startsWith('.')) {
      const base = resolve(dirname(file), spec);
      target =
        [base, `${base}.ts`, `${base}.tsx`, join(base, 'index.ts')].find(
          (p) => existsSync(p) && statSync(p).isFile(),
        ) ?? base;
    }
    out.push({ spec, file: target, dynamic });
  };
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      // `import type {..}` and imports whose every name is `type` are erased.
      const typeOnly =
        clause &&
        (clause.isTypeOnly ||
          (!clause.name &&
            clause.namedBindings &&
            ts.isNamedImports(clause.namedBindings) &&
            clause.namedBindings.elements.length > 0 &&
            clause.namedBindings.elements.every((e) => e.isTypeOnly)));
      if (!typeOnly) add(node.moduleSpecifier.text, false);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      if (!node.isTypeOnly) add(node.moduleSpecifier.text, false);
    } else if (ts.isCallExpression(node) && node.arguments.length && ts.isStringLiteralLike(node.arguments[0])) {
      if (node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0].text, true);
      else if (ts.isIdentifier(node.expression) && node.expression.text === 'require')
        add(node.arguments[0].text, false);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

const files = sourceFiles(SRC);
const graph = new Map(files.map((f) => [f, edgesOf(f)]));
const rel = (f: string) => relative(SRC, f).split(sep).join('/');
const inDir = (f: string, d: string) => rel(f).startsWith(`${d}/`);
const isNode = (spec: string) => spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0]);
const isCompute = (spec: string) => spec.startsWith('@tensorflow/') || spec.startsWith('onnxruntime');

function violations(from: (f: string) => boolean, bad: (e: Edge) => boolean): string[] {
  return files.filter(from).flatMap((f) =>
    graph
      .get(f)!
      .filter(bad)
      .map((e) => `${rel(f)} -> ${e.file ? rel(e.file) : e.spec}`),
  );
}

test('the import graph is what the checker thinks it is (every relative import resolves to a file in src/)', () => {
  assert.ok(files.length > 100, `${files.length} source files`);
  const unresolved = [...graph].flatMap(([f, es]) =>
    es.filter((e) => e.file && !existsSync(e.file)).map((e) => `${rel(f)}: ${e.spec}`),
  );
  assert.deepEqual(unresolved, []);
  // the checker sees known edges (a check that found no edges at all would pass everything)
  const main = graph.get(join(SRC, 'main', 'apiHost.ts'))!;
  assert.ok(
    main.some((e) => e.file === join(SRC, 'main', 'exporter.ts')),
    'apiHost.ts -> exporter.ts is seen',
  );
});

test('the engine and the worker import nothing from Electron, main, the CLI, the renderer or the preload', () => {
  const hostSide = (e: Edge) =>
    e.spec === 'electron' || (e.file !== null && ['main', 'cli', 'renderer', 'preload'].some((d) => inDir(e.file!, d)));
  assert.deepEqual(
    violations((f) => inDir(f, 'worker') || inDir(f, 'engine'), hostSide),
    [],
  );
  // the engine is the compute library: it does not reach up into the worker that hosts it either
  assert.deepEqual(
    violations(
      (f) => inDir(f, 'engine'),
      (e) => e.file !== null && inDir(e.file, 'worker'),
    ),
    [],
  );
});

test('main never loads tfjs or onnxruntime, directly or through what it imports statically', () => {
  // Everything main's modules load when they are imported: the static closure (dynamic imports run only on a call).
  const seen = new Set<string>();
  const stack = files.filter((f) => inDir(f, 'main'));
  const reached: string[] = [];
  while (stack.length) {
    const f = stack.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    for (const e of graph.get(f) ?? []) {
      if (e.dynamic) continue;
      if (isCompute(e.spec)) reached.push(`${rel(f)} -> ${e.spec}`);
      if (e.file && graph.has(e.file)) stack.push(e.file);
    }
  }
  assert.deepEqual(reached, [], 'a compute runtime in the static closure of src/main');
  // and no main module asks for one lazily either
  assert.deepEqual(
    violations(
      (f) => inDir(f, 'main'),
      (e) => isCompute(e.spec),
    ),
    [],
  );
});

test('the renderer imports no Node module and nothing from main, worker or cli; shared/ imports no Node module', () => {
  const forbidden = (e: Edge) =>
    isNode(e.spec) ||
    e.spec === 'electron' ||
    (e.file !== null && ['main', 'worker', 'engine', 'cli', 'preload', 'node'].some((d) => inDir(e.file!, d)));
  assert.deepEqual(
    violations((f) => inDir(f, 'renderer'), forbidden),
    [],
  );
  assert.deepEqual(
    violations(
      (f) => inDir(f, 'shared'),
      (e) => isNode(e.spec) || (e.file !== null && !inDir(e.file, 'shared')),
    ),
    [],
  );
});

test('the preload imports only Electron and the contract', () => {
  assert.deepEqual(
    violations(
      (f) => inDir(f, 'preload'),
      (e) => e.spec !== 'electron' && !(e.file && inDir(e.file, 'shared')),
    ),
    [],
  );
});

test('no import circle in src/ (static and dynamic imports)', () => {
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (f: string, path: string[]) => {
    state.set(f, 'open');
    for (const e of graph.get(f) ?? []) {
      if (!e.file || !graph.has(e.file)) continue;
      const s = state.get(e.file);
      if (s === 'open') cycles.push([...path.slice(path.indexOf(e.file)), f, e.file].map(rel).join(' -> '));
      else if (!s) visit(e.file, [...path, f]);
    }
    state.set(f, 'done');
  };
  for (const f of files) if (!state.has(f)) visit(f, []);
  assert.deepEqual(cycles, []);
});

test('only the runs module (src/runs/) spells the run folder file names', () => {
  const names = /rounds\.jsonl|metrics\.jsonl|teacher-eval\.json/;
  const spelled = files.filter((f) => !inDir(f, 'runs') && names.test(readFileSync(f, 'utf8'))).map(rel);
  assert.deepEqual(spelled, []);
  assert.ok(
    files.some((f) => inDir(f, 'runs') && names.test(readFileSync(f, 'utf8'))),
    'src/runs/ does spell them',
  );
});
