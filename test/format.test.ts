// The sources are formatted by prettier (.prettierrc.json: 120 columns), so a file's line count is its real size
// and no long line hides code. `npm run format` rewrites them; this fails, naming the files, when one is not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import * as prettier from 'prettier';

const ROOT = resolve(import.meta.dirname, '..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return n === 'node_modules' ? [] : sources(p);
    return /\.(ts|tsx|cts|mts|js|mjs|css|html)$/.test(n) ? [p] : [];
  });
}

test('every source file is as prettier formats it (npm run format)', async () => {
  const files = [
    ...['src', 'test', 'scripts', 'bin'].flatMap((d) => sources(join(ROOT, d))),
    join(ROOT, 'vite.config.ts'),
  ];
  assert.ok(files.length > 150, `${files.length} files`);
  const unformatted: string[] = [];
  for (const file of files) {
    const info = await prettier.getFileInfo(file, { ignorePath: join(ROOT, '.prettierignore') });
    if (info.ignored || !info.inferredParser) continue;
    const options = { ...(await prettier.resolveConfig(file)), filepath: file };
    if (!(await prettier.check(readFileSync(file, 'utf8'), options))) unformatted.push(relative(ROOT, file));
  }
  assert.deepEqual(unformatted, [], 'run `npm run format`');
});
