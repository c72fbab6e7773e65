// The path policy (src/main/pathPolicy.ts) that every ApiHost host applies before reading or writing a path a
// request names: userChoicePolicy (Electron: what the user typed in the app window; the CLI) and confinedPolicy
// (`sdtt serve`). Pure function tests, no server: real folders, symlinks inside a workspace that lead elsewhere,
// dangling links and loops. Nothing here writes outside the temp folder (the policy functions never write).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assertFolders,
  checkReadPath,
  checkWritePath,
  confinedPolicy,
  describePolicy,
  PathRefusedError,
  realPathOf,
  SHIPPED_ASSETS_DIR,
  userChoicePolicy,
} from '../src/main/pathPolicy.ts';

function layout() {
  const base = mkdtempSync(join(tmpdir(), 'sdtt-policy-'));
  const ws = join(base, 'ws');
  const runs = join(ws, 'runs');
  mkdirSync(join(runs, 'r1', 'checkpoints', '000010'), { recursive: true });
  mkdirSync(join(base, 'outside'));
  mkdirSync(join(base, 'allowed'));
  writeFileSync(join(base, 'outside', 'secret.txt'), 'secret');
  writeFileSync(join(ws, 'corpus.txt'), 'text');
  writeFileSync(join(ws, 'a-file'), 'x');
  symlinkSync(join(base, 'outside'), join(ws, 'link-out'));
  symlinkSync(join(runs, 'r1', 'checkpoints'), join(ws, 'link-ck'));
  symlinkSync(join(base, 'no-such-target'), join(ws, 'dangling'));
  symlinkSync(join(ws, 'loop'), join(ws, 'loop'));
  symlinkSync(join(SHIPPED_ASSETS_DIR, 'models'), join(ws, 'link-assets'));
  return { base, ws, runs, cleanup: () => rmSync(base, { recursive: true, force: true }) };
}

function refused(fn: () => unknown, code: 'invalid-request' | 'conflict', re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PathRefusedError, `expected a PathRefusedError, got ${e}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, re);
    return true;
  });
}

test('realPathOf: a path that does not exist yet resolves through its deepest existing ancestor', () => {
  const { base, ws, cleanup } = layout();
  try {
    assert.equal(realPathOf(join(ws, 'new', 'deeper')), join(ws, 'new', 'deeper'));
    assert.equal(
      realPathOf(join(ws, 'link-out', 'new', 'x')),
      join(base, 'outside', 'new', 'x'),
      'a symlinked ancestor is followed',
    );
    assert.equal(realPathOf(join(ws, 'link-out', 'secret.txt')), join(base, 'outside', 'secret.txt'));
    refused(
      () => realPathOf(join(ws, 'dangling', 'x')),
      'conflict',
      /dangling is a symbolic link to '[^']+', which does not exist/,
    );
    refused(() => realPathOf(join(ws, 'dangling')), 'conflict', /is a symbolic link to '[^']+', which does not exist/);
    refused(() => realPathOf(join(ws, 'loop', 'x')), 'conflict', /is a symbolic link loop/);
    refused(() => realPathOf(join(ws, 'a-file', 'x')), 'conflict', /is a file, not a folder/);
  } finally {
    cleanup();
  }
});

test('Electron (userChoicePolicy): anywhere the user picks, but never into assets/, a checkpoints folder, a dangling link or a loop', () => {
  const { base, ws, runs, cleanup } = layout();
  try {
    const p = userChoicePolicy();
    const w = (folder: string) => checkWritePath(p, folder, { base: ws, what: 'export folder', runsRoot: runs });
    // the user's own choice: outside the workspace is fine, relative resolves against the workspace
    assert.equal(w(join(base, 'outside', 'export')), join(base, 'outside', 'export'));
    assert.equal(w('exports/a'), join(ws, 'exports', 'a'));
    assert.equal(w('../elsewhere'), join(base, 'elsewhere'));
    assert.equal(
      w('link-out/via-link'),
      join(ws, 'link-out', 'via-link'),
      "a symlink the user made is the user's choice",
    );
    // never into the shipped assets/ (read-only), named directly or through a link
    refused(() => w(join(SHIPPED_ASSETS_DIR, 'models', 'mine')), 'invalid-request', /read-only/);
    refused(() => w(SHIPPED_ASSETS_DIR), 'invalid-request', /read-only/);
    refused(() => w('link-assets/mine'), 'invalid-request', /really .*assets.*read-only/);
    // never among a run's checkpoints, named directly or through a link
    refused(() => w('runs/r1/checkpoints/999'), 'conflict', /lies in run "r1"'s checkpoints folder/);
    refused(() => w(join(runs, 'r1', 'checkpoints')), 'conflict', /lies in run "r1"'s checkpoints folder/);
    refused(() => w('link-ck/999'), 'conflict', /really .*lies in run "r1"'s checkpoints folder/);
    assert.equal(w('runs/r1/exports'), join(runs, 'r1', 'exports'), 'elsewhere in a run folder is fine');
    // a sentence, not ENOTDIR / ELOOP from rename or mkdir
    refused(() => w('dangling'), 'conflict', /is a symbolic link to '[^']+', which does not exist/);
    refused(() => w('dangling/sub'), 'conflict', /is a symbolic link to '[^']+', which does not exist/);
    refused(() => w('loop/sub'), 'conflict', /is a symbolic link loop/);
    refused(() => w('a-file/sub'), 'conflict', /not a folder/);
    // reads are the user's choice too, unchanged
    assert.equal(checkReadPath(p, '/etc/passwd', { base: ws, what: 'data' }), '/etc/passwd');
    // the CLI's policy (no read-only folders): it may re-export the shipped models into assets/
    assert.equal(
      checkWritePath(userChoicePolicy([]), join(SHIPPED_ASSETS_DIR, 'models', 'new'), {
        base: ws,
        what: 'export folder',
        runsRoot: runs,
      }),
      join(SHIPPED_ASSETS_DIR, 'models', 'new'),
    );
    refused(
      () => checkWritePath(userChoicePolicy([]), 'link-ck/x', { base: ws, what: 'export folder', runsRoot: runs }),
      'conflict',
      /checkpoints folder/,
    );
  } finally {
    cleanup();
  }
});

test('browser mode (confinedPolicy): inside the workspace and --allow folders only, assets/ read-only, on real paths', () => {
  const { base, ws, runs, cleanup } = layout();
  try {
    const allowed = join(base, 'allowed');
    const p = confinedPolicy(ws, [allowed]);
    const w = (folder: string) => checkWritePath(p, folder, { base: ws, what: 'export folder', runsRoot: runs });
    const r = (path: string) => checkReadPath(p, path, { base: ws, what: 'createRun: config.data' });
    assert.equal(w('exports/a'), join(ws, 'exports', 'a'));
    assert.equal(w(join(allowed, 'b', 'c')), join(allowed, 'b', 'c'));
    assert.equal(w(join(ws, 'x', '..', 'y')), join(ws, 'y'));
    refused(
      () => w(join(base, 'outside', 'abs')),
      'invalid-request',
      /outside the folders this server may write: read\/write inside .*ws.*allowed.*--allow DIR/,
    );
    refused(() => w('../escaped'), 'invalid-request', /outside the folders this server may write/);
    refused(() => w('/'), 'invalid-request', /outside the folders/);
    refused(() => w('link-out/via-link'), 'invalid-request', /really .*outside.*via-link\) lies outside the folders/);
    refused(() => w('link-out'), 'invalid-request', /lies outside the folders/);
    refused(() => w('link-assets/mine'), 'invalid-request', /read-only/);
    refused(() => w(join(SHIPPED_ASSETS_DIR, 'x')), 'invalid-request', /read-only/);
    refused(() => w('link-ck/1'), 'conflict', /checkpoints folder/);
    refused(() => w('dangling/x'), 'conflict', /is a symbolic link to '[^']+', which does not exist/);

    assert.equal(r('corpus.txt'), join(ws, 'corpus.txt'), 'relative paths resolve against the workspace');
    assert.equal(r(join(allowed, 'missing.txt')), join(allowed, 'missing.txt'));
    assert.equal(
      r(join(SHIPPED_ASSETS_DIR, 'models', 'mdlm-base-5m')),
      join(SHIPPED_ASSETS_DIR, 'models', 'mdlm-base-5m'),
      'assets/ may be read',
    );
    assert.equal(r('link-assets/mdlm-base-5m'), join(ws, 'link-assets', 'mdlm-base-5m'));
    refused(
      () => r('/etc/passwd'),
      'invalid-request',
      /createRun: config\.data "\/etc\/passwd" lies outside the folders this server may read: .*read-only inside .*assets/,
    );
    refused(() => r('../outside/secret.txt'), 'invalid-request', /outside the folders this server may read/);
    refused(() => r('link-out/secret.txt'), 'invalid-request', /really .*outside\/secret\.txt\) lies outside/);
    refused(() => r('loop'), 'conflict', /is a symbolic link loop/);

    assert.match(
      describePolicy(p),
      new RegExp(`^read/write inside ${ws}, ${allowed}; read-only inside ${SHIPPED_ASSETS_DIR}$`),
    );
    // --allow must name existing folders
    assert.doesNotThrow(() => assertFolders([allowed]));
    refused(() => assertFolders([join(base, 'nope')]), 'invalid-request', /--allow .*nope: no such folder/);
    refused(() => assertFolders([join(ws, 'corpus.txt')]), 'invalid-request', /no such folder/);
  } finally {
    cleanup();
  }
});
