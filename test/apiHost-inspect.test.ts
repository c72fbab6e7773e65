// ApiHost's inspectModel (src/main/modelInspector.ts): hostile payloads refused by the schema before anything is read,
// the read policy of browser mode honoured (workspace, --allow folders, assets/ read-only; a symlink leading out is
// refused), errors told apart (not-found, invalid-request), and the probe's measured matmul rate turned into a time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError } from '../src/shared/api.ts';
import type { ApiHostOptions } from '../src/main/apiHost.ts';
import { SHIPPED_ASSETS_DIR } from '../src/main/pathPolicy.ts';
import { policyFolders, policyHost } from './helpers/policyHost.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'official-tiny');

function setup({ confined = true, ...opts }: Partial<ApiHostOptions> & { confined?: boolean } = {}) {
  const f = policyFolders('sdtt-inspect-');
  const { ws, allowed, outside } = f;
  cpSync(join(FIXTURES, 'hf'), join(ws, 'official-hf'), { recursive: true });
  cpSync(join(FIXTURES, 'sdtt'), join(allowed, 'sdtt'), { recursive: true });
  cpSync(join(FIXTURES, 'hf'), join(outside, 'hf'), { recursive: true });
  symlinkSync(join(outside, 'hf'), join(ws, 'link-out'));
  return { ...f, host: policyHost(f, { confined, ...opts }) };
}

async function rejects(p: Promise<unknown>, code: ApiError['code'], re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ApiError, `an ApiError, got ${(e as Error)?.message}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, re);
    return true;
  });
}

test('inspectModel: hostile and malformed payloads are refused by the schema, naming the field', async () => {
  const { host, done } = setup();
  try {
    const bad: [unknown, RegExp][] = [
      [{ path: 'official-hf' }, /inspectModel: batchSize/],
      [{ path: 'official-hf', batchSize: 0 }, /batchSize/],
      [{ path: 'official-hf', batchSize: 4097 }, /batchSize/],
      [{ path: 'official-hf', batchSize: 2.5 }, /batchSize/],
      [{ path: 'official-hf', batchSize: '8' }, /batchSize/],
      [{ path: '', batchSize: 8 }, /path/],
      [{ path: 'a\0b', batchSize: 8 }, /path: path contains a NUL byte/],
      [{ path: 'x'.repeat(5000), batchSize: 8 }, /path/],
      [{ path: ['official-hf'], batchSize: 8 }, /path/],
      [{ path: 'official-hf', batchSize: 8, weights: true }, /inspectModel/],
      [JSON.parse('{"path":"official-hf","batchSize":8,"__proto__":{"polluted":1}}'), /inspectModel/],
      [null, /inspectModel: path/],
    ];
    for (const [payload, re] of bad) await rejects(host.call('inspectModel', payload), 'invalid-request', re);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  } finally {
    done();
  }
});

test('inspectModel under the browser-mode policy: workspace, --allow and assets/ read; anything else refused', async () => {
  const { ws, allowed, outside, host, done } = setup();
  try {
    const rel = await host.inspectModel({ path: 'official-hf', batchSize: 8 });
    assert.equal(rel.path, join(ws, 'official-hf'), 'relative paths resolve against the workspace');
    assert.deepEqual([rel.layout, rel.vocabSize, rel.seqLen], ['hf-mdlm', 258, 12]);
    assert.equal(rel.estimate.batchSize, 8);
    assert.equal(rel.estimate.secondsPerStep, null, 'no probe, no rate');
    assert.equal((await host.inspectModel({ path: join(allowed, 'sdtt'), batchSize: 1 })).layout, 'sdtt-branch');
    const shipped = await host.inspectModel({ path: join(SHIPPED_ASSETS_DIR, 'models', 'mdlm-base-5m'), batchSize: 4 });
    assert.deepEqual([shipped.layout, shipped.arch, shipped.tokenizer], ['workbench', 'mdlm', 'compact-gpt2']);

    await rejects(
      host.inspectModel({ path: join(outside, 'hf'), batchSize: 8 }),
      'invalid-request',
      /inspectModel: path .* lies outside the folders this server may read/,
    );
    await rejects(
      host.inspectModel({ path: '../outside/hf', batchSize: 8 }),
      'invalid-request',
      /lies outside the folders this server may read/,
    );
    await rejects(
      host.inspectModel({ path: 'link-out', batchSize: 8 }),
      'invalid-request',
      /"link-out" \(really .*outside.*\) lies outside/,
    );
    // Outside the policy, even a path that does not exist answers the same refusal: no probing of the disk.
    await rejects(host.inspectModel({ path: '/etc/no-such-model', batchSize: 8 }), 'invalid-request', /lies outside/);
    await rejects(host.inspectModel({ path: 'no-such-model', batchSize: 8 }), 'not-found', /no such file or folder/);
    await rejects(
      host.inspectModel({ path: '.', batchSize: 8 }),
      'invalid-request',
      /neither a checkpoint folder .* nor a run folder/,
    );
  } finally {
    done();
  }
});

test("inspectModel: the user's own choice reads anywhere; the probe's measured rate gives a time per step", async () => {
  let probes = 0;
  const { outside, host, done } = setup({
    confined: false,
    probeBackend: async () => (probes++, { backend: 'onnx', device: 'CPU (test)', gflops: 40 }),
  });
  try {
    const s = await host.inspectModel({ path: join(outside, 'hf'), batchSize: 16 });
    assert.equal(s.estimate.gflops, 40);
    assert.equal(s.estimate.secondsPerStep, s.estimate.flops / 40e9);
    await host.inspectModel({ path: join(outside, 'hf'), batchSize: 2 });
    assert.equal(probes, 1, 'the probe is asked once');
  } finally {
    done();
  }
  const noRate = setup({ confined: false, probeBackend: async () => ({ backend: 'wasm', device: 'CPU (test)' }) });
  try {
    const s = await noRate.host.inspectModel({ path: 'official-hf', batchSize: 16 });
    assert.deepEqual([s.estimate.gflops, s.estimate.secondsPerStep], [null, null]);
    assert.ok(s.estimate.flops > 0 && s.estimate.peakBytes > 0);
  } finally {
    noRate.done();
  }
});
