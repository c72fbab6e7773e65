// ApiHost's browseFolder (src/main/folderBrowser.ts), behind the new-run form's "Browse…": what each entry is (a
// workbench checkpoint or run folder, an official HF folder or PyTorch file, a folder), what is left out (hidden
// entries, plain files, links leading out of the served folders), the order and the 500-entry cap, the parent and
// the roots under the browser-mode policy and under the user's own choice, and refusals: a folder outside the
// policy (the same sentence inspectModel gives), a missing folder, a file, and hostile payloads caught by the schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { ApiError } from '../src/shared/api.ts';
import type { ModelConfig } from '../src/shared/config.ts';
import { MODEL_PRESETS } from '../src/shared/presets.ts';
import { checkpointDir, saveCheckpoint } from '../src/runs/checkpoint.ts';
import { initParams, paramLayout } from '../src/engine/model/paramLayout.ts';
import { MAX_FOLDER_ENTRIES } from '../src/main/folderBrowser.ts';
import { SHIPPED_ASSETS_DIR } from '../src/main/pathPolicy.ts';
import { policyFolders, policyHost } from './helpers/policyHost.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'official-tiny');
const TINY = { arch: 'mdlm', vocabSize: 258, eosId: 256, maskId: 257, ...MODEL_PRESETS.tiny } as ModelConfig;

function workbenchCheckpoint(dir: string): void {
  saveCheckpoint(dir, { config: TINY, layout: paramLayout(TINY), params: initParams(TINY, 1) });
}

/** A workspace holding one of each kind of entry, an --allow folder, and a folder outside both. */
function setup({ confined = true } = {}) {
  const f = policyFolders('sdtt-browse-');
  const { base, ws, allowed, outside } = f;
  workbenchCheckpoint(join(ws, 'teacher'));
  workbenchCheckpoint(checkpointDir(join(ws, 'runs', 'run-a', 'checkpoints'), 100));
  cpSync(join(FIXTURES, 'hf'), join(ws, 'official-hf'), { recursive: true });
  cpSync(join(FIXTURES, 'lightning', 'model.ckpt'), join(ws, 'teacher.ckpt'));
  mkdirSync(join(ws, 'plain'));
  writeFileSync(join(ws, 'plain', 'notes.txt'), 'a plain file');
  mkdirSync(join(ws, 'other-config'));
  writeFileSync(join(ws, 'other-config', 'config.json'), JSON.stringify({ model_type: 'bert' }));
  mkdirSync(join(ws, '.hidden'));
  writeFileSync(join(ws, 'notes.txt'), 'a plain file');
  cpSync(join(FIXTURES, 'hf'), join(outside, 'hf'), { recursive: true });
  symlinkSync(join(outside, 'hf'), join(ws, 'link-out'));
  symlinkSync(join(ws, 'official-hf'), join(ws, 'link-in'));
  symlinkSync(join(base, 'nowhere'), join(ws, 'dangling'));
  return { ...f, host: policyHost(f, { confined }) };
}

async function rejects(p: Promise<unknown>, code: ApiError['code'], re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ApiError, `an ApiError, got ${(e as Error)?.message}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, re);
    return true;
  });
}

const kinds = (entries: { name: string; kind: string }[]) => entries.map((e) => `${e.name}:${e.kind}`);

test('browseFolder: the workspace listed by kind, models first, hidden entries, plain files and links out left out', async () => {
  const { ws, allowed, host, done } = setup();
  try {
    const top = await host.browseFolder({});
    assert.equal(top.path, ws);
    assert.equal(top.parent, null, 'the workspace is the top of what this server may read');
    assert.deepEqual(kinds(top.entries), [
      'link-in:official', // a link whose real path stays in the workspace is followed
      'official-hf:official',
      'teacher:model',
      'teacher.ckpt:official',
      'other-config:folder', // a config.json that is neither ours nor official
      'plain:folder',
      'runs:folder',
    ]);
    assert.equal(top.entries.find((e) => e.name === 'teacher')!.path, join(ws, 'teacher'));
    assert.equal(top.truncated, false);
    assert.deepEqual(top.roots, [
      { label: 'workspace', path: ws },
      { label: basename(allowed), path: allowed },
      { label: 'shipped models', path: join(SHIPPED_ASSETS_DIR, 'models') },
    ]);

    const runs = await host.browseFolder({ path: 'runs' });
    assert.deepEqual([runs.path, runs.parent], [join(ws, 'runs'), ws], 'relative paths resolve against the workspace');
    assert.deepEqual(kinds(runs.entries), ['run-a:model'], 'a run folder with a checkpoint is a model');
    const checkpoints = await host.browseFolder({ path: join(ws, 'runs', 'run-a', 'checkpoints') });
    assert.deepEqual(kinds(checkpoints.entries), ['100:model']);
    assert.deepEqual((await host.browseFolder({ path: 'plain' })).entries, [], 'a plain file is not listed');
    assert.equal((await host.browseFolder({ path: allowed })).parent, null, 'an --allow folder is a top too');
    const shipped = await host.browseFolder({ path: join(SHIPPED_ASSETS_DIR, 'models') });
    assert.ok(shipped.entries.some((e) => e.name === 'mdlm-base-5m' && e.kind === 'model'));
    assert.equal(shipped.parent, SHIPPED_ASSETS_DIR, 'assets/ is readable, so it is the shipped models’ parent');
  } finally {
    done();
  }
});

test('browseFolder: folders outside the policy, missing folders and files are refused, naming the path', async () => {
  const { ws, outside, host, done } = setup();
  try {
    const outsideRe = /browseFolder: path .* lies outside the folders this server may read/;
    await rejects(host.browseFolder({ path: outside }), 'invalid-request', outsideRe);
    await rejects(host.browseFolder({ path: '../outside' }), 'invalid-request', outsideRe);
    await rejects(host.browseFolder({ path: '/' }), 'invalid-request', outsideRe);
    await rejects(host.browseFolder({ path: 'link-out' }), 'invalid-request', /"link-out" \(really .*outside.*\) lies/);
    // The same refusal for what does not exist outside: no probing of the disk.
    await rejects(host.browseFolder({ path: '/etc/no-such-folder' }), 'invalid-request', outsideRe);
    await rejects(host.browseFolder({ path: 'no-such-folder' }), 'not-found', /no-such-folder: no such folder$/);
    await rejects(host.browseFolder({ path: 'notes.txt' }), 'invalid-request', /notes\.txt is a file, not a folder/);
    await rejects(host.browseFolder({ path: 'dangling' }), 'conflict', /symbolic link .* which does not exist/);
    assert.equal((await host.browseFolder({ path: ws })).path, ws);
  } finally {
    done();
  }
});

test('browseFolder: hostile and malformed payloads are refused by the schema, naming the field', async () => {
  const { host, done } = setup();
  try {
    const bad: [unknown, RegExp][] = [
      [{ path: '' }, /browseFolder: path/],
      [{ path: 'a\0b' }, /path: path contains a NUL byte/],
      [{ path: 'x'.repeat(5000) }, /browseFolder: path/],
      [{ path: ['runs'] }, /browseFolder: path/],
      [{ path: 7 }, /browseFolder: path/],
      [{ path: null }, /browseFolder: path/],
      [{ path: 'runs', depth: 3 }, /browseFolder/],
      [JSON.parse('{"path":"runs","__proto__":{"polluted":1}}'), /browseFolder/],
    ];
    for (const [payload, re] of bad) await rejects(host.call('browseFolder', payload), 'invalid-request', re);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  } finally {
    done();
  }
});

test('browseFolder: at most 500 entries, the first by name, and it says so', async () => {
  const { ws, host, done } = setup();
  try {
    const many = join(ws, 'many');
    for (let i = 0; i < MAX_FOLDER_ENTRIES + 5; i++) mkdirSync(join(many, `f${i}`), { recursive: true });
    const capped = await host.browseFolder({ path: 'many' });
    assert.equal(capped.entries.length, MAX_FOLDER_ENTRIES);
    assert.equal(capped.truncated, true);
    assert.deepEqual(
      capped.entries.slice(0, 3).map((e) => e.name),
      ['f0', 'f1', 'f2'],
      'names compare as numbers where they hold one',
    );
    // Plain files beyond the cap would not be listed anyway: not truncated.
    for (let i = MAX_FOLDER_ENTRIES; i < MAX_FOLDER_ENTRIES + 5; i++) rmSync(join(many, `f${i}`), { recursive: true });
    for (let i = 0; i < 20; i++) writeFileSync(join(many, `z${i}.txt`), '');
    const full = await host.browseFolder({ path: 'many' });
    assert.deepEqual([full.entries.length, full.truncated], [MAX_FOLDER_ENTRIES, false]);
  } finally {
    done();
  }
});

test("browseFolder under the user's own choice (Electron): anywhere, up to the filesystem root, links followed", async () => {
  const { ws, base, outside, host, done } = setup({ confined: false });
  try {
    const top = await host.browseFolder({});
    assert.equal(top.parent, base, 'no policy folder to stop at');
    assert.ok(kinds(top.entries).includes('link-out:official'), 'the user may read where the link leads');
    assert.ok(!kinds(top.entries).some((k) => k.startsWith('dangling')), 'a dangling link leads nowhere');
    assert.deepEqual(
      top.roots.map((r) => r.label),
      ['workspace', 'shipped models', 'home'],
    );
    assert.equal(top.roots[2]!.path, homedir());
    assert.deepEqual(kinds((await host.browseFolder({ path: outside })).entries), ['hf:official']);
    assert.equal((await host.browseFolder({ path: '/' })).parent, null);
    assert.ok(ws.startsWith(base));
  } finally {
    done();
  }
});
