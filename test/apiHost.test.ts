// ApiHost (src/main/apiHost.ts): request validation (nothing changes on a bad request), the read paths over a real
// RunStore (metrics paging, samples, shipped models, rounds), and one integration run with the real forkSpawner:
// createRun -> controlRun start -> events -> getMetrics -> exportRound (loadable, never overwrites).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError, API_METHODS, MAX_REQUEST_BYTES, type RunEvent } from '../src/shared/api.ts';
import { MODEL_PRESETS } from '../src/shared/presets.ts';
import { RunStore } from '../src/runs/runStore.ts';
import { RunManager } from '../src/main/runManager.ts';
import { forkSpawner } from '../src/main/workerSpawner.ts';
import { ApiHost, METRICS_PAGE, safetensorsParamCount } from '../src/main/apiHost.ts';
import { nodeBackendProbe } from '../src/main/hostInfo.ts';
import { saveCheckpoint } from '../src/runs/checkpoint.ts';
import { loadCheckpoint } from '../src/runs/checkpointLoad.ts';
import { paramLayout, paramCount, initParams } from '../src/engine/model/paramLayout.ts';
import type { ModelConfig } from '../src/shared/config.ts';
import { tinyPretrainJob } from './helpers/fixtures.ts';
import { trainingDataOf } from '../src/runs/runFiles.ts';
import type { RunRecord } from '../src/shared/runState.ts';
import { runPaths, upsertRoundLine } from '../src/runs/runFolder.ts';

const ALICE = join(process.cwd(), 'test/fixtures/alice.txt');

const cfg = (over: Record<string, unknown> = {}) => tinyPretrainJob({ data: ALICE, ...over });

const TINY_MODEL = { arch: 'mdlm', vocabSize: 258, eosId: 256, maskId: 257, ...MODEL_PRESETS.tiny } as ModelConfig;

function setup(opts: { spawn?: Parameters<typeof forkSpawner>[0] | 'never'; models?: string } = {}) {
  const ws = mkdtempSync(join(tmpdir(), 'sdtt-api-'));
  const store = new RunStore(ws);
  const warnings: string[] = [];
  const spawn =
    opts.spawn === 'never' || opts.spawn === undefined
      ? () => {
          throw new Error('no workers in this test');
        }
      : forkSpawner(opts.spawn);
  const manager = new RunManager(store, { spawn, onWarning: (l) => warnings.push(l) });
  const host = new ApiHost({
    manager,
    workspace: ws,
    host: 'browser',
    probeBackend: null,
    assetsModelsDir: opts.models ?? join(ws, 'no-models'),
    warn: (l) => warnings.push(l),
  });
  return { ws, store, manager, host, warnings, cleanup: () => rmSync(ws, { recursive: true, force: true }) };
}

async function rejects(p: Promise<unknown>, code: ApiError['code'], re: RegExp): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    assert.ok(
      e instanceof ApiError,
      `expected an ApiError, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`,
    );
    assert.equal(e.code, code, e.message);
    assert.match(e.message, re);
    return e;
  }
  assert.fail(`expected a rejection matching ${re}`);
}

/** A snapshot of everything a request could have changed: run records and the workspace listing. */
function snapshot(ws: string, store: RunStore): string {
  const list = (d: string): string[] =>
    existsSync(d)
      ? readdirSync(d, { withFileTypes: true }).flatMap((e) =>
          e.isDirectory() ? [e.name + '/', ...list(join(d, e.name)).map((x) => `${e.name}/${x}`)] : [e.name],
        )
      : [];
  return JSON.stringify({
    runs: store.list(),
    files: list(ws),
    parent: readdirSync(join(ws, '..')).filter((n) => n === 'x' || n === 'evil'),
  });
}

test('every API method is implemented and wired', () => {
  const { host, cleanup } = setup();
  for (const m of API_METHODS) assert.equal(typeof (host as unknown as Record<string, unknown>)[m], 'function', m);
  assert.equal(typeof host.subscribe, 'function');
  cleanup();
});

test('hostile, malformed and oversized requests are rejected with a clear error and change nothing', async () => {
  const { ws, store, host, cleanup } = setup();
  try {
    const rec = await host.createRun({ kind: 'pretrain', id: 'keep', config: cfg() as never });
    assert.equal(rec.status, 'queued');
    const before = snapshot(ws, store);

    await rejects(host.call('deleteEverything', {}), 'invalid-request', /unknown method "deleteEverything"/);
    await rejects(host.call('constructor', {}), 'invalid-request', /unknown method/);
    await rejects(host.call('__proto__', {}), 'invalid-request', /unknown method/);
    await rejects(host.call('toString', {}), 'invalid-request', /unknown method/);
    // run ids that would escape the runs folder
    for (const id of ['../x', '..', '/etc', 'a/../../x', '.hidden', 'a\\..\\x', '', 'x'.repeat(129)]) {
      await rejects(host.getRun({ id }), 'invalid-request', /getRun: id: a run id is/);
    }
    await rejects(
      host.createRun({ kind: 'pretrain', id: '../evil', config: cfg() as never }),
      'invalid-request',
      /createRun: id/,
    );
    await rejects(host.exportRound({ id: '../keep', round: -1, folder: join(ws, 'out') }), 'invalid-request', /id/);
    await rejects(host.exportRound({ id: 'keep', round: -1, folder: 'a\0b' }), 'invalid-request', /NUL/);
    await rejects(host.exportRound({ id: 'keep', round: 65, folder: 'x' }), 'invalid-request', /round/);
    // unknown / hostile keys (JSON.parse makes "__proto__" an own key, as a WebSocket frame would)
    await rejects(
      host.call('getRun', JSON.parse('{"id":"keep","__proto__":{"polluted":true}}')),
      'invalid-request',
      /getRun/,
    );
    await rejects(
      host.call(
        'createRun',
        JSON.parse(
          `{"kind":"pretrain","config":${JSON.stringify(cfg()).replace('"model":{', '"model":{"__proto__":{"polluted":1},')}}`,
        ),
      ),
      'invalid-request',
      /createRun: config\.model/,
    );
    await rejects(
      host.call(
        'createRun',
        JSON.parse(
          `{"kind":"pretrain","config":${JSON.stringify(cfg({ constructor: { prototype: { polluted: 1 } } }))}}`,
        ),
      ),
      'invalid-request',
      /constructor/,
    );
    assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched');
    await rejects(host.call('getRun', { id: 'keep', extra: 1 }), 'invalid-request', /extra|Unrecognized/i);
    await rejects(host.call('controlRun', { id: 'keep', action: 'rm -rf' }), 'invalid-request', /action/);
    await rejects(host.call('getMetrics', { id: 'keep', from: -1 }), 'invalid-request', /from/);
    await rejects(host.call('getMetrics', { id: 'keep', from: 1.5 }), 'invalid-request', /from/);
    await rejects(
      host.call('createRun', { kind: 'pretrain', config: cfg({ steps: 0 }) }),
      'invalid-request',
      /config\.steps/,
    );
    await rejects(
      host.call('createRun', { kind: 'pretrain', config: cfg({ data: '' }) }),
      'invalid-request',
      /config\.data/,
    );
    await rejects(host.call('createRun', { kind: 'nuke', config: {} }), 'invalid-request', /createRun/);
    // wrong payload types
    for (const p of [null, 'getRun', 42, [], [{ id: 'keep' }], true]) {
      await assert.rejects(
        host.call('getRun', p),
        (e: unknown) => e instanceof ApiError && e.code === 'invalid-request',
      );
    }
    // oversized: rejected by size before any schema work
    await rejects(
      host.call('getRun', { id: 'x'.repeat(MAX_REQUEST_BYTES + 10) }),
      'invalid-request',
      /exceeds the 262144-byte limit/,
    );
    await rejects(
      host.call('createRun', { kind: 'pretrain', config: { ...cfg(), pad: 'y'.repeat(MAX_REQUEST_BYTES) } }),
      'invalid-request',
      /exceeds/,
    );
    // not plain JSON data (IPC's structured clone can carry these)
    const cyclic: Record<string, unknown> = { id: 'keep' };
    cyclic.self = cyclic;
    await rejects(host.call('getRun', cyclic), 'invalid-request', /not plain JSON data/);
    await rejects(host.call('getRun', { id: 1n }), 'invalid-request', /not plain JSON data|id/);

    assert.equal(snapshot(ws, store), before, 'no run or file changed');
    assert.equal(store.read('keep').status, 'queued');
  } finally {
    cleanup();
  }
});

test('not-found and conflict are told apart; distill is created or refused with a clear conflict', async () => {
  const { host, cleanup } = setup();
  try {
    await rejects(host.getRun({ id: 'nope' }), 'not-found', /no run "nope"/);
    await rejects(host.controlRun({ id: 'nope', action: 'start' }), 'not-found', /no run "nope"/);
    await rejects(host.getSamples({ id: 'nope' }), 'not-found', /no run/);
    await host.createRun({ kind: 'pretrain', id: 'dup', config: cfg() as never });
    await rejects(
      host.createRun({ kind: 'pretrain', id: 'dup', config: cfg() as never }),
      'conflict',
      /already exists/,
    );
    await rejects(host.exportRound({ id: 'dup', round: -1, folder: 'out' }), 'not-found', /no checkpoint yet/);
    await rejects(host.exportRound({ id: 'dup', round: 0, folder: 'out' }), 'not-found', /no finished round 0/);
    try {
      const rec = await host.createRun({ kind: 'distill', id: 'd1', config: { kind: 'distill', teacher: 'runs/dup' } });
      assert.equal(rec.kind, 'distill'); // the distill job has landed in the RunManager
    } catch (e) {
      assert.ok(e instanceof ApiError);
      assert.equal(e.code, 'conflict');
      assert.match(e.message, /cannot create the distillation run: .*distill/);
    }
  } finally {
    cleanup();
  }
});

test('getInfo: version, workspace, host; backend from the probe, cached; "resolved per job" without one', async () => {
  const { manager, ws, host: plain, cleanup } = setup();
  try {
    const info = await plain.getInfo({});
    assert.equal(info.host, 'browser');
    assert.equal(info.workspace, ws);
    assert.equal(info.version, JSON.parse(readFileSync('package.json', 'utf8')).version);
    assert.match(info.backend, /resolved per job/);
    let calls = 0;
    const probed = new ApiHost({
      manager,
      workspace: ws,
      host: 'electron',
      probeBackend: async () => (calls++, { backend: 'wasm', device: 'CPU (test)' }),
    });
    assert.deepEqual(
      [(await probed.getInfo({})).backend, (await probed.getInfo({})).device, calls],
      ['wasm', 'CPU (test)', 1],
    );
    const failing = new ApiHost({
      manager,
      workspace: ws,
      host: 'electron',
      probeBackend: async () => Promise.reject(new Error('boom')),
      warn: () => {},
    });
    assert.match((await failing.getInfo({})).backend, /resolved per job/);
  } finally {
    cleanup();
  }
});

test(
  'nodeBackendProbe asks a child process what auto resolves to and its matmul rate',
  { timeout: 60_000 },
  async () => {
    const info = await nodeBackendProbe()();
    assert.match(info.backend, /^(onnx|tensorflow|wasm|cpu|webgpu)$/);
    const { loadOnnxRuntime } = await import('../src/engine/onnx/runtime.ts');
    if ((await loadOnnxRuntime()).ort)
      assert.equal(info.backend, 'onnx', 'with onnxruntime-node installed, auto trains on it');
    assert.ok(info.device.length > 0);
    // the matmul rate the new-run form's time estimate divides by, measured in the same child process
    assert.ok(typeof info.gflops === 'number' && info.gflops > 0, `gflops: ${info.gflops}`);
  },
);

test('getMetrics pages at METRICS_PAGE; getRun counts metrics and reads rounds leniently', async () => {
  const { store, host, warnings, cleanup } = setup();
  try {
    await host.createRun({ kind: 'pretrain', id: 'm', config: cfg() as never });
    const n = METRICS_PAGE + 5000;
    const lines: string[] = [];
    for (let i = 1; i <= n; i++)
      lines.push(
        JSON.stringify(
          i % 100 === 0
            ? { type: 'eval', step: i, valLoss: 1, valPpl: 2, elapsedS: 0 }
            : { type: 'train', step: i, loss: 3, lr: 1e-3, gradNorm: 1, tokPerSec: 1, elapsedS: 0 },
        ),
      );
    writeFileSync(join(store.dir('m'), 'metrics.jsonl'), lines.join('\n') + '\n{"torn');
    const p1 = await host.getMetrics({ id: 'm' });
    assert.equal(p1.points.length, METRICS_PAGE);
    assert.equal(p1.next, METRICS_PAGE);
    assert.equal(p1.points[0]!.step, 1);
    assert.equal(p1.points[99]!.type, 'eval');
    const p2 = await host.getMetrics({ id: 'm', from: p1.next });
    assert.equal(p2.points.length, 5000);
    assert.equal(p2.next, n);
    const p3 = await host.getMetrics({ id: 'm', from: p2.next });
    assert.deepEqual(p3, { points: [], next: n });
    assert.deepEqual(await host.getMetrics({ id: 'm', from: n + 100 }), { points: [], next: n });

    upsertRoundLine(store.dir('m'), {
      round: 0,
      teacherSteps: 32,
      studentSteps: 16,
      firstStep: 1,
      lastStep: 100,
      eval: [{ steps: 16, gen_ppl: 50, gen_ppl_se: 1, entropy: 5.5 }, { bogus: true }],
    });
    appendFileSync(runPaths.rounds(store.dir('m')), JSON.stringify({ nonsense: 1 }) + '\n'); // a foreign line
    const detail = await host.getRun({ id: 'm' });
    assert.equal(detail.metricsCount, n);
    assert.equal(detail.record.id, 'm');
    assert.equal(detail.rounds.length, 1);
    assert.equal(detail.rounds[0]!.status, 'done');
    assert.equal(detail.rounds[0]!.label, 'R0: 32 -> 16 steps');
    assert.deepEqual(detail.rounds[0]!.eval, [{ steps: 16, gen_ppl: 50, gen_ppl_se: 1, entropy: 5.5 }]);
    assert.ok(warnings.some((w) => /rounds\.jsonl/.test(w)));
  } finally {
    cleanup();
  }
});

test('getSamples reads samples/*.json (array, single cell or {cells}), skips what is not a SampleCell', async () => {
  const { store, host, warnings, cleanup } = setup();
  try {
    await host.createRun({ kind: 'pretrain', id: 's', config: cfg() as never });
    const cell = (round: number, steps: number, seed = 0) => ({
      round,
      steps,
      seed,
      text: `r${round} s${steps}`,
      genPpl: 10,
      entropy: 5,
      latencyMs: 3,
    });
    const dir = store.samplesDir('s');
    writeFileSync(
      join(dir, '0-16.json'),
      JSON.stringify([cell(0, 16, 1), cell(0, 16, 0), { round: 0, text: 'no steps' }]),
    );
    writeFileSync(
      join(dir, '-1-32.json'),
      JSON.stringify({
        ...cell(-1, 32),
        trajectory: [
          [257, 257],
          [1, 257],
          [1, 2],
        ],
        tokenTexts: ['a', 'b'],
      }),
    );
    writeFileSync(join(dir, '1-8.json'), JSON.stringify({ cells: [cell(1, 8)] }));
    writeFileSync(join(dir, 'broken.json'), '{not json');
    writeFileSync(join(dir, 'notes.txt'), 'ignored');
    const cells = await host.getSamples({ id: 's' });
    assert.deepEqual(
      cells.map((c) => [c.round, c.steps, c.seed]),
      [
        [-1, 32, 0],
        [0, 16, 0],
        [0, 16, 1],
        [1, 8, 0],
      ],
    );
    assert.deepEqual(cells[0]!.trajectory, [
      [257, 257],
      [1, 257],
      [1, 2],
    ]);
    assert.ok(warnings.some((w) => /broken\.json/.test(w)));
    assert.ok(warnings.some((w) => /0-16\.json: skipped 1 entry/.test(w)));
  } finally {
    cleanup();
  }
});

test('listModels: shipped checkpoint folders, corrupt ones skipped with a warning', async () => {
  const models = mkdtempSync(join(tmpdir(), 'sdtt-models-'));
  const { host, warnings, cleanup } = setup({ models });
  try {
    const layout = paramLayout(TINY_MODEL);
    saveCheckpoint(join(models, 'teacher-tiny'), {
      config: TINY_MODEL,
      layout,
      params: initParams(TINY_MODEL, 1),
      extraConfig: { label: 'Tiny teacher' },
    });
    mkdirSync(join(models, 'bad-json'));
    writeFileSync(join(models, 'bad-json', 'config.json'), '{');
    mkdirSync(join(models, 'no-weights'));
    writeFileSync(join(models, 'no-weights', 'config.json'), JSON.stringify({ arch: 'mdlm' }));
    mkdirSync(join(models, 'bad-header'));
    writeFileSync(join(models, 'bad-header', 'config.json'), JSON.stringify({ arch: 'ar' }));
    writeFileSync(
      join(models, 'bad-header', 'model.safetensors'),
      Buffer.from([255, 255, 255, 255, 255, 255, 255, 127, 1]),
    );
    writeFileSync(join(models, 'README.md'), 'not a folder');
    const list = await host.listModels({});
    assert.deepEqual(list, [
      {
        id: 'shipped:teacher-tiny',
        label: 'Tiny teacher',
        path: join(models, 'teacher-tiny'),
        arch: 'mdlm',
        params: paramCount(TINY_MODEL),
        source: 'shipped',
      },
    ]);
    assert.equal(warnings.filter((w) => /skipping shipped model/.test(w)).length, 3);
    assert.equal(safetensorsParamCount(join(models, 'teacher-tiny', 'model.safetensors')), paramCount(TINY_MODEL));
  } finally {
    cleanup();
    rmSync(models, { recursive: true, force: true });
  }
});

test(
  'integration: createRun -> start -> events -> getMetrics -> exportRound (loadable, never overwrites)',
  { timeout: 240_000 },
  async () => {
    let output = '';
    const { ws, host, manager, cleanup } = setup({ spawn: { onOutput: (s) => (output += s) } });
    try {
      const events: RunEvent[] = [];
      const unsubscribe = host.subscribe((e) => events.push(e));
      const created = await host.createRun({ kind: 'pretrain', id: 'tiny', config: cfg() as never });
      assert.equal(created.status, 'queued');
      await host.controlRun({ id: 'tiny', action: 'start' });
      const rec = await manager.wait('tiny');
      assert.equal(rec.status, 'done', `${rec.reason ?? ''}\n${output.slice(-2000)}`);
      unsubscribe();

      const statuses = events
        .filter((e): e is Extract<RunEvent, { type: 'status' }> => e.type === 'status')
        .map((e) => e.record.status);
      assert.deepEqual([statuses[0], statuses.includes('running'), statuses.at(-1)], ['queued', true, 'done']);
      const metricEvents = events.filter((e): e is Extract<RunEvent, { type: 'metrics' }> => e.type === 'metrics');
      const streamed = metricEvents.flatMap((e) => e.points);
      assert.deepEqual(
        streamed.filter((p) => p.type === 'train').map((p) => p.step),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      assert.deepEqual(
        streamed.filter((p) => p.type === 'eval').map((p) => p.step),
        [10, 20],
      );
      assert.ok(metricEvents.every((e) => e.runId === 'tiny'));

      const detail = await host.getRun({ id: 'tiny' });
      assert.equal(detail.metricsCount, 22);
      const page = await host.getMetrics({ id: 'tiny', from: 5 });
      assert.equal(page.points.length, 17);
      assert.equal(page.next, 22);
      assert.deepEqual(
        (await host.listRuns({})).map((r) => [r.id, r.status]),
        [['tiny', 'done']],
      );
      const models = await host.listModels({});
      assert.deepEqual(
        models.map((m) => [m.id, m.source, m.arch]),
        [['run:tiny', 'run', 'mdlm']],
      );

      const folder = join(ws, 'exports', 'tiny-final');
      const out = await host.exportRound({ id: 'tiny', round: -1, folder });
      assert.equal(out.folder, folder);
      assert.deepEqual(out.files.sort(), ['README.md', 'config.json', 'model.safetensors']);
      assert.deepEqual(readdirSync(folder).sort(), ['README.md', 'config.json', 'model.safetensors']);
      const ck = loadCheckpoint(folder, { layoutFor: paramLayout });
      assert.deepEqual(
        ck.config,
        loadCheckpoint(join(manager.store.checkpointsDir('tiny'), '20'), { layoutFor: paramLayout }).config,
      );
      const src = loadCheckpoint(join(manager.store.checkpointsDir('tiny'), '20'), { layoutFor: paramLayout });
      assert.deepEqual(
        ck.params,
        src.ema ?? src.params,
        'exported weights are the EMA (or raw) weights of the final checkpoint',
      );
      assert.equal((ck.extraConfig.export as { run: string }).run, 'tiny');
      assert.match(readFileSync(join(folder, 'README.md'), 'utf8'), /# tiny[\s\S]*checkpoint step: 20/);
      assert.ok(!readdirSync(join(ws, 'exports')).some((n) => n.endsWith('.tmp')), 'no temp folder left');

      // never overwrites: the same folder again, or a folder with any file in it
      await rejects(host.exportRound({ id: 'tiny', round: -1, folder }), 'conflict', /not empty/);
      const other = join(ws, 'exports', 'occupied');
      mkdirSync(other);
      writeFileSync(join(other, 'keep.txt'), 'mine');
      await rejects(host.exportRound({ id: 'tiny', round: -1, folder: other }), 'conflict', /not empty/);
      assert.equal(readFileSync(join(other, 'keep.txt'), 'utf8'), 'mine');
      // an existing empty folder is fine; relative folders resolve against the workspace
      mkdirSync(join(ws, 'exports', 'empty'));
      assert.equal(
        (await host.exportRound({ id: 'tiny', round: -1, folder: 'exports/empty' })).folder,
        join(ws, 'exports', 'empty'),
      );
      await rejects(host.controlRun({ id: 'tiny', action: 'start' }), 'conflict', /is done/);
      // never into a run's checkpoints folder, where it would pass for the latest checkpoint
      await rejects(
        host.exportRound({ id: 'tiny', round: -1, folder: 'runs/tiny/checkpoints/999999' }),
        'conflict',
        /lies in run "tiny"'s checkpoints folder/,
      );
      assert.ok(!existsSync(join(manager.store.checkpointsDir('tiny'), '999999')));

      // "try it": fresh samples from the run's latest checkpoint, in a worker; the same seed gives the same texts
      const ask = { id: 'tiny', round: -1, steps: 8, samples: 2, seed: 5, prefix: 'Alice' };
      const first = host.sampleModel(ask);
      await rejects(host.sampleModel(ask), 'conflict', /another sampling job is running/);
      const a = await first;
      assert.equal(a.arch, 'mdlm');
      assert.equal(a.steps, 8);
      assert.equal(a.checkpoint, join(manager.store.checkpointsDir('tiny'), '20'));
      assert.equal(a.texts.length, 2);
      assert.ok(
        a.texts.every((t) => t.startsWith('Alice') && t.length > 'Alice'.length),
        JSON.stringify(a.texts),
      );
      // the run's training text exists here: each text's invented words come as spans, with the known-word rate
      assert.equal(a.wordCheck?.invented.length, 2);
      a.wordCheck!.invented.forEach((spans, b) =>
        spans.forEach(([x, y]) => assert.match(a.texts[b]!.slice(x, y), /^\p{L}+/u)),
      );
      assert.ok(
        typeof a.wordCheck!.knownWords === 'number' && a.wordCheck!.knownWords >= 0 && a.wordCheck!.knownWords <= 1,
        JSON.stringify(a.wordCheck),
      );
      assert.ok(a.nfe! >= 1 && a.nfe! <= 8);
      assert.deepEqual((await host.sampleModel(ask)).texts, a.texts);
      assert.notDeepEqual((await host.sampleModel({ ...ask, seed: 6 })).texts, a.texts);
      assert.equal(a.topP, 1, 'MDLM samples are exact unless a nucleus is asked for');
      assert.equal((await host.sampleModel({ ...ask, topP: 0.5 })).topP, 0.5);
      await rejects(host.sampleModel({ ...ask, topP: 2 }), 'invalid-request', /topP/);
      await rejects(
        host.sampleModel({ ...ask, prefix: 'x'.repeat(300) }),
        'internal',
        /the prefix is 300 tokens; it must be shorter than the sequence length/,
      );
      await rejects(host.sampleModel({ ...ask, round: 2 }), 'not-found', /has no finished round 2/);
      await rejects(host.sampleModel({ ...ask, samples: 64 }), 'invalid-request', /samples/);
    } finally {
      cleanup();
    }
  },
);

test('no judge: eval rows with gen_ppl null and cells with genPpl null (or the old -1 placeholder) are kept as null', async () => {
  const { store, host, cleanup } = setup();
  try {
    await host.createRun({ kind: 'pretrain', id: 'nj', config: cfg() as never });
    upsertRoundLine(store.dir('nj'), {
      round: 0,
      teacherSteps: 32,
      studentSteps: 16,
      firstStep: 1,
      lastStep: 20,
      heldoutNelbo: 3.5,
      eval: [{ steps: 16, gen_ppl: null, gen_ppl_se: null, entropy: 4.2 }],
    });
    const detail = await host.getRun({ id: 'nj' });
    assert.deepEqual(detail.rounds[0]!.eval, [{ steps: 16, gen_ppl: null, gen_ppl_se: null, entropy: 4.2 }]);
    assert.equal(detail.rounds[0]!.heldoutNelbo, 3.5);
    assert.deepEqual([detail.rounds[0]!.firstStep, detail.rounds[0]!.lastStep], [1, 20]);
    const cell = { round: 0, steps: 16, seed: 0, text: 'x', entropy: 4, latencyMs: 1 };
    writeFileSync(
      join(store.samplesDir('nj'), '0-16.json'),
      JSON.stringify([
        { ...cell, genPpl: null, inventedWords: [[0, 1]] },
        { ...cell, seed: 1, genPpl: -1, inventedWords: [[0, 'x']] },
      ]),
    );
    const cells = await host.getSamples({ id: 'nj' });
    assert.deepEqual(
      cells.map((c) => c.genPpl),
      [null, null],
    );
    // unusable invented-word spans are dropped, the cell is kept
    assert.deepEqual(
      cells.map((c) => c.inventedWords),
      [[[0, 1]], undefined],
    );
  } finally {
    cleanup();
  }
});

test("getRun carries a distillation's teacher evaluation rows once teacher-eval.json exists; a torn file is no error", async () => {
  const { store, host, cleanup } = setup();
  try {
    store.create({
      id: 'd',
      kind: 'distill',
      config: {},
      status: 'running',
      step: 0,
      totalSteps: 10,
      createdAt: '2026-11-27T04:00:00.000Z',
      updatedAt: '2026-11-27T04:00:00.000Z',
    });
    assert.equal((await host.getRun({ id: 'd' })).teacherEval, undefined, 'not evaluated yet');
    const file = join(store.dir('d'), 'teacher-eval.json');
    writeFileSync(file, '{"round":-1,"rows":[{"steps":16,"gen_ppl":2');
    assert.equal((await host.getRun({ id: 'd' })).teacherEval, undefined);
    const rows = [
      {
        steps: 16,
        gen_ppl: 210.5,
        gen_ppl_se: 9.1,
        entropy: 4.41,
        known_words: 0.861,
        samples: 64,
        nfe: 68,
        seconds: 3,
      },
      { steps: 4, gen_ppl: null, gen_ppl_se: null, entropy: 4.6 },
      { steps: 'x' },
    ];
    writeFileSync(file, JSON.stringify({ round: -1, rows, heldoutNelbo: 4.26 }));
    assert.deepEqual((await host.getRun({ id: 'd' })).teacherEval, [
      { steps: 16, gen_ppl: 210.5, gen_ppl_se: 9.1, entropy: 4.41, known_words: 0.861 },
      { steps: 4, gen_ppl: null, gen_ppl_se: null, entropy: 4.6 },
    ]);
  } finally {
    cleanup();
  }
});

test("trainingDataOf: the run's own data, else the data a distilled checkpoint records, only when it exists here", () => {
  const ws = mkdtempSync(join(tmpdir(), 'sdtt-data-of-'));
  try {
    const ck = join(ws, 'ck');
    mkdirSync(ck);
    writeFileSync(join(ws, 'corpus.txt'), 'text');
    const rec = (config: Record<string, unknown>) =>
      ({
        id: 'r',
        kind: 'distill',
        config,
        status: 'done',
        step: 0,
        totalSteps: 0,
        createdAt: '',
        updatedAt: '',
      }) as RunRecord;
    assert.equal(trainingDataOf(rec({ data: 'corpus.txt' }), ck, ws), join(ws, 'corpus.txt'));
    assert.equal(trainingDataOf(rec({ data: 'gone.txt' }), ck, ws), undefined);
    writeFileSync(join(ck, 'config.json'), JSON.stringify({ sdtt: { data: join(ws, 'corpus.txt') } }));
    assert.equal(trainingDataOf(rec({}), ck, ws), join(ws, 'corpus.txt'));
    writeFileSync(join(ck, 'config.json'), JSON.stringify({ sdtt: { data: 'corpus.txt' } }));
    assert.equal(trainingDataOf(rec({}), ck, ws), undefined, 'a relative recorded path is not trusted');
    writeFileSync(join(ck, 'config.json'), '{torn');
    assert.equal(trainingDataOf(rec({}), ck, ws), undefined);
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});
