import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkPlainData,
  classifyExit,
  describeExit,
  parseMainToWorker,
  parseWorkerToMain,
  PROTOCOL_LIMITS,
  SAMPLE_LIMITS,
} from '../src/shared/messages.ts';

const job = { kind: 'pretrain', runId: 'r1', runDir: '/tmp/runs/r1', config: { kind: 'pretrain', steps: 10 } };
const point = { step: 10, loss: 2.5, lr: 1e-4, gradNorm: 0.7, tokPerSec: 1000, elapsedS: 1.5 };

test('valid messages in both directions parse', () => {
  for (const m of [{ type: 'start', job }, { type: 'pause' }, { type: 'resume' }, { type: 'stop' }]) {
    const r = parseMainToWorker(m);
    assert.ok(r.ok, JSON.stringify(r));
  }
  const events = [
    { type: 'ready' },
    { type: 'started', backend: 'wasm', device: 'cpu', params: 1000, startStep: 0 },
    { type: 'started', backend: 'wasm', device: 'cpu', params: 1000, startStep: 20, resumedFrom: '/r/checkpoints/20' },
    { type: 'metrics', points: [point, { ...point, step: 20, round: 1 }] },
    { type: 'eval', metric: { step: 10, valLoss: 3, valPpl: 20, elapsedS: 2 } },
    { type: 'checkpoint', step: 10, dir: '/r/checkpoints/10' },
    { type: 'progress', step: 10, total: 100, etaS: 12.5 },
    { type: 'progress', step: 0, total: 100, etaS: null },
    { type: 'paused' },
    { type: 'paused', step: 3 },
    { type: 'resumed' },
    { type: 'done', status: 'done', step: 100 },
    { type: 'done', status: 'nan', step: 7, reason: 'non-finite loss' },
    { type: 'error', message: 'boom', stack: 'Error: boom\n  at x' },
    { type: 'activity', text: 'round 0: sampling 64 x 128 steps' },
    { type: 'activity', text: 'x'.repeat(PROTOCOL_LIMITS.maxShortText) },
    { type: 'activity', text: null },
  ];
  for (const m of events) {
    const r = parseWorkerToMain(m);
    assert.ok(r.ok, `${JSON.stringify(m)}: ${r.ok ? '' : r.error}`);
  }
});

test('NaN and Infinity in metrics are data, not protocol errors', () => {
  const r = parseWorkerToMain({ type: 'eval', metric: { step: 1, valLoss: NaN, valPpl: Infinity, elapsedS: 1 } });
  assert.ok(r.ok);
});

function rejects(r: { ok: boolean; error?: string }, re: RegExp): void {
  assert.equal(r.ok, false, 'expected rejection');
  assert.match((r as { error: string }).error, re);
}

test('unknown and missing types are rejected naming the expected ones', () => {
  rejects(
    parseMainToWorker({ type: 'explode' }),
    /unknown type "explode"; expected one of start, sample, pause, resume, stop/,
  );
  rejects(parseWorkerToMain({ type: 'sample' }), /unknown type "sample"; expected one of ready, started/);
  rejects(parseWorkerToMain({}), /unknown type undefined/);
  rejects(parseWorkerToMain({ type: 42 }), /unknown type 42/);
  rejects(parseMainToWorker('stop'), /expected an object/);
});

test('non-objects and non-plain values are rejected', () => {
  for (const raw of [null, undefined, 1, [], [{ type: 'stop' }]])
    assert.equal(parseMainToWorker(raw).ok, false, String(raw));
  rejects(
    parseMainToWorker(
      new (class X {
        type = 'stop';
      })(),
    ),
    /not a plain object/,
  );
  rejects(parseMainToWorker({ type: 'stop', f: () => 1 }), /function is not plain data/);
  rejects(parseMainToWorker({ type: 'start', job: { ...job, config: { n: 1n } } }), /bigint/);
  rejects(
    parseWorkerToMain({ type: 'checkpoint', step: 1, dir: new Map() as unknown as string }),
    /not a plain object/,
  );
});

test('wrong field types are rejected with the field path', () => {
  rejects(parseWorkerToMain({ type: 'checkpoint', step: '10', dir: '/x' }), /'checkpoint' message rejected: step:/);
  rejects(parseWorkerToMain({ type: 'checkpoint', step: -1, dir: '/x' }), /step:/);
  rejects(parseWorkerToMain({ type: 'checkpoint', step: 1.5, dir: '/x' }), /step:/);
  rejects(parseWorkerToMain({ type: 'done', status: 'exploded', step: 1 }), /status:/);
  rejects(parseWorkerToMain({ type: 'metrics', points: [] }), /points:/);
  rejects(
    parseWorkerToMain({ type: 'metrics', points: [{ ...point, loss: '1' }] }),
    /points\.0\.loss: expected a number/,
  );
  rejects(parseWorkerToMain({ type: 'progress', step: 1, total: 2, etaS: -1 }), /etaS/);
  rejects(parseMainToWorker({ type: 'start', job: { ...job, kind: 'bogus' } }), /job\.kind/);
  rejects(parseMainToWorker({ type: 'start', job: { ...job, config: 'x' } }), /job\.config/);
  rejects(parseMainToWorker({ type: 'start' }), /job/);
});

test('activity: a bounded, non-empty text or null; anything else is rejected', () => {
  rejects(
    parseWorkerToMain({ type: 'activity', text: 'x'.repeat(PROTOCOL_LIMITS.maxShortText + 1) }),
    /'activity' message rejected: text:/,
  );
  rejects(parseWorkerToMain({ type: 'activity', text: '' }), /text:/);
  rejects(parseWorkerToMain({ type: 'activity', text: 42 }), /text:/);
  rejects(parseWorkerToMain({ type: 'activity', text: { toString: 'evil' } }), /text:/);
  rejects(parseWorkerToMain({ type: 'activity' }), /text:/);
  rejects(parseWorkerToMain({ type: 'activity', text: 'ok', html: '<b>' }), /Unrecognized key.*html/);
});

test('sample jobs: a bounded request and its answer; out-of-range or extra fields are rejected', () => {
  const request = { checkpoint: '/r/checkpoints/20', steps: 16, samples: 2, seed: 0, prefix: 'Once' };
  assert.ok(parseMainToWorker({ type: 'sample', request }).ok);
  const result = {
    checkpoint: '/r/checkpoints/20',
    arch: 'mdlm',
    backend: 'onnx',
    device: 'cpu',
    steps: 16,
    topP: 1,
    seed: 0,
    texts: ['a', 'b'],
    nfe: 14,
    seconds: 0.5,
  };
  assert.ok(parseWorkerToMain({ type: 'sampled', result }).ok);
  assert.ok(parseWorkerToMain({ type: 'sampled', result: { ...result, arch: 'ar', steps: null, nfe: undefined } }).ok);
  rejects(parseMainToWorker({ type: 'sample', request: { ...request, steps: 0 } }), /request\.steps/);
  rejects(
    parseMainToWorker({ type: 'sample', request: { ...request, samples: SAMPLE_LIMITS.maxSamples + 1 } }),
    /request\.samples/,
  );
  rejects(
    parseMainToWorker({
      type: 'sample',
      request: { ...request, prefix: 'x'.repeat(SAMPLE_LIMITS.maxPrefixChars + 1) },
    }),
    /request\.prefix/,
  );
  rejects(parseMainToWorker({ type: 'sample', request: { ...request, cmd: 'rm' } }), /cmd/);
  assert.ok(parseMainToWorker({ type: 'sample', request: { ...request, topP: 0.9 } }).ok);
  rejects(parseMainToWorker({ type: 'sample', request: { ...request, topP: 0 } }), /request\.topP/);
  rejects(parseMainToWorker({ type: 'sample', request: { ...request, topP: 1.5 } }), /request\.topP/);
  rejects(parseWorkerToMain({ type: 'sampled', result: { ...result, texts: [] } }), /result\.texts/);
});

test('extra keys are rejected (strict objects)', () => {
  rejects(parseMainToWorker({ type: 'stop', force: true }), /Unrecognized key.*force/);
  rejects(parseMainToWorker({ type: 'start', job: { ...job, shell: 'rm -rf /' } }), /shell/);
  rejects(parseWorkerToMain({ type: 'metrics', points: [{ ...point, extra: 1 }] }), /extra/);
});

test('path traversal in run ids is rejected', () => {
  rejects(parseMainToWorker({ type: 'start', job: { ...job, runId: '../etc' } }), /run id/);
  rejects(parseMainToWorker({ type: 'start', job: { ...job, runId: '' } }), /run id/);
});

test('prototype-pollution keys are rejected at any depth', () => {
  const viaJson = JSON.parse(
    '{"type":"start","job":{"kind":"pretrain","runId":"r","runDir":"/r","config":{"__proto__":{"polluted":1}}}}',
  );
  rejects(parseMainToWorker(viaJson), /forbidden key "__proto__" at job\.config/);
  rejects(parseMainToWorker(JSON.parse('{"type":"stop","__proto__":{"x":1}}')), /forbidden key "__proto__"/);
  rejects(
    parseMainToWorker({ type: 'start', job: { ...job, config: { model: { constructor: { prototype: {} } } } } }),
    /forbidden key "constructor"/,
  );
  rejects(parseWorkerToMain({ type: 'metrics', points: [JSON.parse('{"prototype":1}')] }), /forbidden key "prototype"/);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('oversized messages and strings are rejected', () => {
  const huge = 'x'.repeat(PROTOCOL_LIMITS.maxMessageBytes + 10);
  rejects(
    parseMainToWorker({ type: 'start', job: { ...job, config: { data: huge } } }),
    /exceeds the 1048576-byte limit/,
  );
  rejects(parseWorkerToMain({ type: 'error', message: huge }), /exceeds/);
  rejects(parseWorkerToMain({ type: 'error', message: 'x'.repeat(PROTOCOL_LIMITS.maxLongText + 1) }), /message:/);
  rejects(
    parseWorkerToMain({ type: 'started', backend: 'b'.repeat(5000), device: 'd', params: 1, startStep: 0 }),
    /backend:/,
  );
  rejects(parseMainToWorker({ type: 'start', job: { ...job, runDir: '/'.repeat(5000) } }), /runDir/);
  rejects(
    parseWorkerToMain({ type: 'metrics', points: Array.from({ length: PROTOCOL_LIMITS.maxPoints + 1 }, () => point) }),
    /points/,
  );
});

test('deeply nested payloads are rejected before zod sees them', () => {
  let deep: Record<string, unknown> = {};
  const root = deep;
  for (let i = 0; i < 100; i++) deep = (deep.a = {}) as Record<string, unknown>;
  rejects(parseMainToWorker({ type: 'start', job: { ...job, config: root } }), /nested deeper than 32/);
  assert.equal(checkPlainData({ a: [1, 'x', null, { b: true }] }), undefined);
});

test('exit reason classification', () => {
  const table: [number | null, string | null, string, boolean | undefined, string][] = [
    [0, null, '', true, 'clean'],
    [0, null, '', undefined, 'clean'],
    [1, null, 'Error: boom', true, 'crashed'],
    [3, null, '', undefined, 'crashed'],
    [null, 'SIGSEGV', '', true, 'crashed'],
    [null, 'SIGKILL', '', true, 'killed'],
    [null, 'SIGTERM', '', true, 'killed'],
    [137, null, '', true, 'killed'],
    [null, 'SIGKILL', '', false, 'killed'],
    [134, null, '', true, 'out-of-memory'],
    [null, 'SIGABRT', '', true, 'out-of-memory'],
    [
      1,
      null,
      'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory',
      true,
      'out-of-memory',
    ],
    [null, null, 'JavaScript heap out of memory', true, 'out-of-memory'],
    [1, null, "Error [ERR_MODULE_NOT_FOUND]: Cannot find module '/x/index.ts'", false, 'launch-failed'],
    [0, null, '', false, 'launch-failed'],
  ];
  for (const [code, signal, tail, launched, want] of table) {
    assert.equal(classifyExit(code, signal, tail, { launched }), want, `${code} ${signal} ${tail} ${launched}`);
  }
});

test('exit descriptions start with the reason and quote the error line', () => {
  assert.match(describeExit('killed', null, 'SIGKILL'), /^killed: .*SIGKILL/);
  const crash = describeExit(
    'crashed',
    1,
    null,
    'file:///x.ts:3\nTypeError: x is not a function\n    at f (file:///x.ts:3:1)\n',
  );
  assert.match(crash, /^crashed: .*exit code 1.*TypeError: x is not a function/);
  assert.match(describeExit('out-of-memory', 134, null), /^out-of-memory: /);
  assert.match(describeExit('launch-failed', 1, null, 'Error: no tsx'), /^launch-failed: .*no tsx/);
});
