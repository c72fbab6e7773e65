// The worker side: Port adapter, job loop (batching, pause/resume/stop, errors) against a fake engine, and the real
// worker entry as a forked process (protocol and exit code, no engine needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { parseWorkerToMain, type WorkerToMain } from '../src/shared/messages.ts';
import { JobLoop, type JobHooks, type RunDistill, type RunPretrain, type SampleTextFn } from '../src/worker/jobs.ts';
import { PROTOCOL_LIMITS } from '../src/shared/messages.ts';
import { NoChannelError, openPort, type Port, type ProcessLike } from '../src/worker/port.ts';
import { DEFAULT_WORKER_ENTRY, forkSpawner } from '../src/main/workerSpawner.ts';
import { ALICE, tinyPretrainJob } from './helpers/fixtures.ts';
import { ByteTokenizer } from '../src/engine/data/tokenizer.ts';

class FakePort implements Port {
  readonly host = 'node' as const;
  sent: WorkerToMain[] = [];
  waiters: { pred: (m: WorkerToMain) => boolean; resolve: (m: WorkerToMain) => void }[] = [];
  send(msg: WorkerToMain): Promise<void> {
    const r = parseWorkerToMain(structuredClone(msg)); // everything the worker says must pass the main side's schema
    assert.ok(r.ok, r.ok ? '' : r.error);
    this.sent.push(msg);
    this.waiters = this.waiters.filter((w) => (w.pred(msg) ? (w.resolve(msg), false) : true));
    return Promise.resolve();
  }
  onMessage(): void {}
  onDisconnect(): void {}
  next(type: WorkerToMain['type']): Promise<WorkerToMain> {
    const have = this.sent.find((m) => m.type === type);
    if (have) return Promise.resolve(have);
    return new Promise((resolve) => this.waiters.push({ pred: (m) => m.type === type, resolve }));
  }
  types(): string[] {
    return this.sent.map((m) => m.type);
  }
}

/** A stand-in for runPretrain with the same hook contract (checkpoint at checkpointEvery, at the end and on stop). */
function fakeEngine(opts: {
  beforeStep: boolean;
  yieldEachStep?: boolean;
  clock?: { t: number };
  atStep?: (step: number) => void;
  throwAt?: number;
  released?: (step: number) => void;
}) {
  let ckStep = 0;
  const starts: number[] = [];
  const run: RunPretrain = async (cfg, dir, hooks) => {
    const h = hooks as JobHooks;
    let step = ckStep;
    starts.push(step);
    h.onStart?.({
      backend: 'fake',
      device: 'none',
      params: 10,
      startStep: step,
      resumedFrom: step ? `${dir}/${step}` : undefined,
      trainTokens: 100,
      valTokens: 10,
    });
    const ck = () => {
      ckStep = step;
      h.onCheckpoint?.(step, `${dir}/${step}`);
    };
    while (step < cfg.steps) {
      if (opts.beforeStep) {
        await h.beforeStep?.(step);
        opts.released?.(step); // beforeStep(step) returned: step + 1 is taken now
      }
      if (opts.yieldEachStep) await new Promise((r) => setImmediate(r));
      if (opts.clock) opts.clock.t += 1;
      if (opts.throwAt === step) throw new Error('engine exploded');
      step++;
      h.onStep?.({ step, loss: 1 / step, lr: 1e-3, gradNorm: 1, tokPerSec: 100, elapsedS: step / 1000 });
      opts.atStep?.(step);
      if (step % cfg.evalEvery === 0) h.onEval?.({ step, valLoss: 2, valPpl: 7.4, elapsedS: 1 });
      if (step % cfg.checkpointEvery === 0 || step === cfg.steps) ck();
      else if (h.shouldStop?.()) {
        ck();
        return { status: 'stopped', step, reason: 'stopped by user' };
      }
      if (h.shouldStop?.()) return { status: 'stopped', step, reason: 'stopped by user' };
    }
    return { status: 'done', step };
  };
  return { run, starts };
}

const start = (config = tinyPretrainJob()) => ({
  type: 'start',
  job: { kind: 'pretrain', runId: 'r1', runDir: '/tmp/r1', config },
});

test('metrics are batched: a fast job sends at most one metrics message per flush interval, in order', async () => {
  const clock = { t: 0 };
  const eng = fakeEngine({ beforeStep: false, clock });
  const port = new FakePort();
  const loop = new JobLoop(port, { runPretrain: eng.run, now: () => clock.t, flushMs: 200 });
  loop.handle(start(tinyPretrainJob({ steps: 5000, evalEvery: 100000, checkpointEvery: 100000 })));
  assert.equal(await loop.finished, 0);
  const batches = port.sent.filter((m) => m.type === 'metrics') as Extract<WorkerToMain, { type: 'metrics' }>[];
  const steps = batches.flatMap((b) => b.points.map((p) => p.step));
  assert.deepEqual(
    steps,
    Array.from({ length: 5000 }, (_, i) => i + 1),
  );
  assert.ok(batches.length <= 5000 / 200 + 2, `${batches.length} metrics messages for 5000 steps`);
  const progress = port.sent.filter((m) => m.type === 'progress') as Extract<WorkerToMain, { type: 'progress' }>[];
  assert.equal(progress.at(-1)!.step, 5000);
  assert.equal(port.types().at(-1), 'done');
});

test('event order: started, metrics before the eval and checkpoint that follow them, done last', async () => {
  const eng = fakeEngine({ beforeStep: true });
  const port = new FakePort();
  const loop = new JobLoop(port, { runPretrain: eng.run });
  loop.handle(start());
  assert.equal(await loop.finished, 0);
  const t = port.types();
  assert.equal(t[0], 'started');
  const evalAt = t.indexOf('eval');
  assert.ok(t.slice(0, evalAt).includes('metrics'));
  const lastMetricsStep = (
    port.sent
      .slice(0, evalAt)
      .filter((m) => m.type === 'metrics')
      .at(-1) as Extract<WorkerToMain, { type: 'metrics' }>
  ).points.at(-1)!.step;
  assert.equal(lastMetricsStep, 10);
  assert.deepEqual(
    port.sent.filter((m) => m.type === 'checkpoint').map((m) => (m as { step: number }).step),
    [10, 20],
  );
  assert.deepEqual(port.sent.at(-1), { type: 'done', status: 'done', step: 20 });
});

test('pause holds in place between steps when the engine offers beforeStep; resume continues the same run', async () => {
  const port = new FakePort();
  let loop!: JobLoop;
  const order: string[] = [];
  let releasedFrom5!: () => void;
  const released5 = new Promise<'released'>((r) => (releasedFrom5 = () => r('released')));
  const eng = fakeEngine({
    beforeStep: true,
    atStep: (s) => s === 5 && loop.handle({ type: 'pause' }),
    released: (s) => (order.push(`released ${s}`), s === 5 && releasedFrom5()),
  });
  loop = new JobLoop(port, { runPretrain: eng.run });
  loop.handle(start());
  const paused = await port.next('paused');
  assert.deepEqual(paused, { type: 'paused', step: 5 });
  // The event a broken pause produces is the engine let go: beforeStep(5) returns and step 6 starts. A pause that
  // holds has no event of its own, so this waits for that one with a bounded deadline (20 ms), failing as soon as
  // it comes, instead of sleeping and then reading the metrics (which the 200 ms flush timer may not have sent yet).
  let deadline!: ReturnType<typeof setTimeout>;
  const held = await Promise.race([released5, new Promise<'held'>((r) => (deadline = setTimeout(r, 20, 'held')))]);
  clearTimeout(deadline);
  assert.equal(held, 'held', 'no steps while paused (beforeStep(5) returned before the resume)');
  assert.equal(
    port.sent
      .filter((m) => m.type === 'metrics')
      .flatMap((m) => (m as { points: { step: number }[] }).points)
      .at(-1)!.step,
    5,
    'no steps while paused',
  );
  order.push('resume');
  loop.handle({ type: 'resume' });
  assert.equal(await loop.finished, 0);
  assert.deepEqual(
    order.slice(order.indexOf('resume') - 1, order.indexOf('resume') + 2),
    ['released 4', 'resume', 'released 5'],
    'beforeStep(5) held the engine until the resume',
  );
  assert.deepEqual(eng.starts, [0], 'one engine run: paused in place');
  assert.ok(port.types().indexOf('resumed') > port.types().indexOf('paused'));
  assert.deepEqual(port.sent.at(-1), { type: 'done', status: 'done', step: 20 });
});

test('pause without beforeStep: checkpoint, wait, restart from that checkpoint; started is sent once', async () => {
  const port = new FakePort();
  let loop!: JobLoop;
  const eng = fakeEngine({ beforeStep: false, atStep: (s) => s === 7 && loop.handle({ type: 'pause' }) });
  loop = new JobLoop(port, { runPretrain: eng.run });
  loop.handle(start());
  await port.next('paused');
  assert.ok(
    port.sent.some((m) => m.type === 'checkpoint' && m.step === 7),
    'checkpoint at the pause',
  );
  loop.handle({ type: 'resume' });
  assert.equal(await loop.finished, 0);
  assert.deepEqual(eng.starts, [0, 7]);
  assert.equal(port.types().filter((t) => t === 'started').length, 1);
  assert.deepEqual(port.sent.at(-1), { type: 'done', status: 'done', step: 20 });
});

test('stop checkpoints and finishes as stopped; stop while paused too', async () => {
  for (const beforeStep of [true, false]) {
    const port = new FakePort();
    let loop!: JobLoop;
    const eng = fakeEngine({ beforeStep, atStep: (s) => s === 3 && loop.handle({ type: 'stop' }) });
    loop = new JobLoop(port, { runPretrain: eng.run });
    loop.handle(start());
    assert.equal(await loop.finished, 0);
    assert.ok(port.sent.some((m) => m.type === 'checkpoint' && m.step === 3));
    assert.deepEqual(port.sent.at(-1), { type: 'done', status: 'stopped', step: 3, reason: 'stopped by user' });

    const port2 = new FakePort();
    let loop2!: JobLoop;
    const eng2 = fakeEngine({ beforeStep, atStep: (s) => s === 4 && loop2.handle({ type: 'pause' }) });
    loop2 = new JobLoop(port2, { runPretrain: eng2.run });
    loop2.handle(start());
    await port2.next('paused');
    loop2.handle({ type: 'stop' });
    assert.equal(await loop2.finished, 0);
    const done = port2.sent.at(-1) as Extract<WorkerToMain, { type: 'done' }>;
    assert.equal(done.status, 'stopped', `beforeStep=${beforeStep}`);
    assert.ok(
      port2.sent.some((m) => m.type === 'checkpoint' && m.step === done.step),
      'the stopped step is checkpointed',
    );
  }
});

test('an invalid config is an error naming the key; exit code 1', async () => {
  const port = new FakePort();
  const loop = new JobLoop(port, { runPretrain: fakeEngine({ beforeStep: true }).run });
  loop.handle(start(tinyPretrainJob({ batchSize: -3 })));
  assert.equal(await loop.finished, 1);
  assert.equal(port.sent.length, 1);
  assert.equal(port.sent[0].type, 'error');
  assert.match((port.sent[0] as { message: string }).message, /job config: batchSize: /);
});

test('a sample job answers sampled then done (exit 0); a failure is an error (exit 1); it takes no second job', async () => {
  const calls: unknown[] = [];
  const request = { checkpoint: '/r/checkpoints/4', steps: 8, samples: 2, seed: 3, prefix: 'Once', topP: 0.9 };
  const port = new FakePort();
  const warnings: string[] = [];
  const loop = new JobLoop(port, {
    warn: (l) => warnings.push(l),
    sampleText: async (model, opts) => {
      calls.push([model, opts]);
      return {
        checkpointDir: model,
        arch: 'mdlm',
        weights: 'ema',
        backend: 'fake',
        device: 'none',
        steps: opts.steps,
        topP: opts.topP ?? 1,
        seed: opts.seed,
        texts: ['Once a', 'Once b'],
        seqLen: 8,
        tokenizer: new ByteTokenizer(),
        nfe: 7,
        seconds: 0.25,
      };
    },
  });
  loop.handle({ type: 'sample', request });
  loop.handle(start());
  assert.equal(await loop.finished, 0);
  assert.deepEqual(calls, [['/r/checkpoints/4', { steps: 8, samples: 2, seed: 3, prefix: 'Once', topP: 0.9 }]]);
  assert.deepEqual(port.types(), ['sampled', 'done']);
  assert.deepEqual((port.sent[0] as Extract<WorkerToMain, { type: 'sampled' }>).result, {
    checkpoint: '/r/checkpoints/4',
    arch: 'mdlm',
    backend: 'fake',
    device: 'none',
    steps: 8,
    topP: 0.9,
    seed: 3,
    texts: ['Once a', 'Once b'],
    nfe: 7,
    seconds: 0.25,
  });
  assert.match(warnings.join('\n'), /ignoring a second 'start'/);

  const failing = new FakePort();
  const bad = new JobLoop(failing, {
    sampleText: async () =>
      Promise.reject(new Error('the prefix is 300 tokens; it must be shorter than the sequence length 128')),
  });
  bad.handle({ type: 'sample', request });
  assert.equal(await bad.finished, 1);
  assert.deepEqual(failing.types(), ['error']);
  assert.match((failing.sent[0] as { message: string }).message, /the prefix is 300 tokens/);
});

test("a sample job with the model's training text marks the invented words; unreadable data skips only the marking", async () => {
  const texts = ['Alice was hungry. Zorbly went', 'the Queen said nothing'];
  const request = { checkpoint: '/r/checkpoints/4', steps: 8, samples: 2, seed: 3, data: ALICE };
  const fakeSample: SampleTextFn = async (model, opts) => ({
    checkpointDir: model,
    arch: 'mdlm',
    weights: 'ema',
    backend: 'fake',
    device: 'none',
    steps: opts.steps,
    topP: 1,
    seed: opts.seed,
    texts,
    seqLen: 8,
    tokenizer: new ByteTokenizer(),
    seconds: 0.1,
  });
  const port = new FakePort();
  const loop = new JobLoop(port, { warn: () => {}, sampleText: fakeSample });
  loop.handle({ type: 'sample', request });
  assert.equal(await loop.finished, 0);
  const result = (port.sent[0] as Extract<WorkerToMain, { type: 'sampled' }>).result;
  // 'Alice', 'went' (edge words) and the words of Alice's train split are not marked; 'Zorbly' is
  assert.deepEqual(
    result.wordCheck!.invented.map((spans, b) => spans.map(([a, e]) => texts[b]!.slice(a, e))),
    [['Zorbly'], []],
  );
  assert.equal(result.wordCheck!.knownWords, 4 / 5); // was, hungry, Zorbly; Queen, said

  const warnings: string[] = [];
  const missing = new FakePort();
  const noData = new JobLoop(missing, { warn: (l) => warnings.push(l), sampleText: fakeSample });
  noData.handle({ type: 'sample', request: { ...request, data: '/nonexistent/corpus' } });
  assert.equal(await noData.finished, 0);
  assert.deepEqual(missing.types(), ['sampled', 'done']);
  assert.equal((missing.sent[0] as Extract<WorkerToMain, { type: 'sampled' }>).result.wordCheck, undefined);
  assert.match(warnings.join('\n'), /word check skipped: .*nonexistent/);
});

test('an engine error is reported with its stack after the metrics so far; exit code 1', async () => {
  const port = new FakePort();
  const loop = new JobLoop(port, { runPretrain: fakeEngine({ beforeStep: true, throwAt: 5 }).run });
  loop.handle(start());
  assert.equal(await loop.finished, 1);
  const err = port.sent.at(-1) as Extract<WorkerToMain, { type: 'error' }>;
  assert.equal(err.type, 'error');
  assert.equal(err.message, 'engine exploded');
  assert.match(err.stack!, /engine exploded\n\s+at /);
  assert.ok(port.types().includes('metrics'), 'metrics buffered before the error are not lost');
});

test('distill: evaluation progress becomes activity events, after the metrics before it, cleared when training resumes', async () => {
  const long = `teacher evaluation: not cached (${'e'.repeat(PROTOCOL_LIMITS.maxShortText)})`;
  // A stand-in for runDistill: teacher eval, 2 training steps, round 0's evaluation, one more step.
  const run: RunDistill = async (_cfg, _dir, h) => {
    h.onStart?.({
      backend: 'fake',
      device: 'none',
      params: 10,
      startStep: 0,
      trainTokens: 100,
      valTokens: 10,
      totalSteps: 3,
    } as never);
    h.onEvalProgress?.(long);
    let step = 0;
    const train = async () => {
      await h.beforeStep?.(step);
      step++;
      h.onStep?.({ step, loss: 1, lr: 1e-3, gradNorm: 1, tokPerSec: 100, elapsedS: step, round: 0 });
    };
    await train();
    await train();
    for (const what of [
      'round 0: sampling 64 x 128 steps',
      'round 0: held-out NELBO',
      'round 0: held-out NELBO',
      'round 0: self-BLEU',
    ])
      h.onEvalProgress?.(what);
    h.onRound?.({ round: 0 } as never);
    await train();
    return { status: 'done', step } as never;
  };
  const port = new FakePort();
  const loop = new JobLoop(port, { runDistill: run, flushMs: 60_000 });
  loop.handle({
    type: 'start',
    job: { kind: 'distill', runId: 'd1', runDir: '/tmp/d1', config: { teacher: '/tmp/teacher' } },
  });
  assert.equal(await loop.finished, 0);
  const texts = port.sent.filter((m) => m.type === 'activity').map((m) => (m as { text: string | null }).text);
  // cut to the protocol's bound; repeats not re-sent; cleared by the first step and by the finished round, once each
  assert.deepEqual(texts, [
    long.slice(0, PROTOCOL_LIMITS.maxShortText),
    null,
    'round 0: sampling 64 x 128 steps',
    'round 0: held-out NELBO',
    'round 0: self-BLEU',
    null,
  ]);
  const t = port.types();
  const evalAt = t.indexOf('activity', t.indexOf('activity') + 2);
  assert.equal(t[evalAt - 1], 'progress', 'steps 1-2 are flushed before the round evaluation starts');
  assert.deepEqual(t.slice(t.lastIndexOf('activity') - 1), ['round', 'activity', 'metrics', 'progress', 'done']);
});

test('malformed control messages are ignored with a warning, not fatal', async () => {
  const port = new FakePort();
  const warnings: string[] = [];
  const loop = new JobLoop(port, {
    runPretrain: fakeEngine({ beforeStep: true, yieldEachStep: true }).run,
    warn: (l) => warnings.push(l),
  });
  loop.handle({ type: 'launch-missiles' });
  loop.handle(JSON.parse('{"type":"pause","__proto__":{"x":1}}'));
  loop.handle({ type: 'pause' }); // before start: nothing to pause
  loop.handle(start());
  loop.handle(start());
  assert.equal(await loop.finished, 0);
  assert.equal(warnings.length, 4, warnings.join('\n'));
  assert.match(warnings[0], /unknown type "launch-missiles"/);
  assert.match(warnings[1], /__proto__/);
  assert.match(warnings[3], /second 'start'/);
});

test('port adapter: Electron parentPort, Node process.send, or a clear error', async () => {
  const posted: unknown[] = [];
  const pp = new EventEmitter() as EventEmitter & { postMessage(m: unknown): void };
  pp.postMessage = (m) => posted.push(m);
  const fakeElectron = Object.assign(new EventEmitter(), { parentPort: pp }) as unknown as ProcessLike;
  const ep = openPort(fakeElectron);
  assert.equal(ep.host, 'electron');
  const got: unknown[] = [];
  ep.onMessage((raw) => got.push(raw));
  pp.emit('message', { data: { type: 'stop' } });
  await ep.send({ type: 'ready' });
  assert.deepEqual([...got], [{ type: 'stop' }]);
  assert.deepEqual(posted, [{ type: 'ready' }]);

  const sent: unknown[] = [];
  const node = Object.assign(new EventEmitter(), {
    send: (m: unknown, _h: undefined, _o: object, cb: (e: Error | null) => void) => (
      sent.push(m),
      setImmediate(() => cb(null)),
      true
    ),
  });
  const np = openPort(node as unknown as ProcessLike);
  assert.equal(np.host, 'node');
  np.onMessage((raw) => got.push(raw));
  let disconnected = false;
  np.onDisconnect(() => (disconnected = true));
  node.emit('message', { type: 'pause' });
  node.emit('disconnect');
  await np.send({ type: 'resumed' });
  assert.deepEqual(got.at(-1), { type: 'pause' });
  assert.deepEqual(sent, [{ type: 'resumed' }]);
  assert.ok(disconnected);

  assert.throws(() => openPort(new EventEmitter() as unknown as ProcessLike), NoChannelError);
});

test('the real worker entry, forked: ready, then error + exit code 1 for a bad config', async () => {
  const child = forkSpawner()(DEFAULT_WORKER_ENTRY, []);
  const msgs: WorkerToMain[] = [];
  const exit = new Promise<[number | null, string | null]>((r) => child.on('exit', (c, s) => r([c, s])));
  child.on('message', (raw) => {
    const p = parseWorkerToMain(raw);
    assert.ok(p.ok, p.ok ? '' : p.error);
    msgs.push(p.message);
    if (p.message.type === 'ready')
      child.send({
        type: 'start',
        job: {
          kind: 'pretrain',
          runId: 'r',
          runDir: '/tmp/nowhere',
          config: tinyPretrainJob({ model: { arch: 'mdlm' } }),
        },
      });
  });
  const [code] = await exit;
  assert.equal(code, 1);
  assert.deepEqual(
    msgs.map((m) => m.type),
    ['ready', 'error'],
  );
  assert.match((msgs[1] as { message: string }).message, /job config: model\.vocabSize/);
});
