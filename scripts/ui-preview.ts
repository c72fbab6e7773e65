// DEV-ONLY preview harness for the renderer. NOT the product server and NOT used by any test: the real browser
// mode is `sdtt serve` (real engine). This serves out/renderer plus a WebSocket at WS_PATH that speaks the
// browser-mode wire format, backed by an in-process FAKE SdttApi producing plausible SDTT data (one 90k-point run
// streaming live, finished / nan / failed / paused / queued runs, rounds, samples with trajectories), so the UI
// can be looked at without the engine.
//
//   npx vite build && node --import tsx scripts/ui-preview.ts [--port 5199]          # prints the URL
//   node --import tsx scripts/ui-preview.ts --shots out/ui-shots                       # Chromium screenshots
import { createServer, type IncomingMessage } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, mkdir } from 'node:fs/promises';
import { extname, join, normalize, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import {
  parseApiRequest,
  WS_PATH,
  ApiError,
  type AppInfo,
  type MetricPoint,
  type ModelInfo,
  type RoundSummary,
  type RunEvent,
  type SampleCell,
  type WsServerMessage,
} from '../src/shared/api.ts';
import type { RunRecord } from '../src/shared/runState.ts';

const args = process.argv.slice(2);
const argOf = (k: string) => {
  const i = args.indexOf(k);
  return i >= 0 ? args[i + 1] : undefined;
};
const PORT = Number(argOf('--port') ?? 5199);
const SHOTS = argOf('--shots');
const ROOT = resolve('out/renderer');
const TOKEN = randomBytes(12).toString('hex');

// ---------------------------------------------------------------- fake data (deterministic) -------------------
let seed = 12345;
const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
const gauss = () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());

interface FakeRun {
  record: RunRecord;
  points: MetricPoint[];
  rounds: RoundSummary[];
  samples: SampleCell[];
  n0: number;
  stepsPerRound: number;
}
const runs = new Map<string, FakeRun>();
const now = Date.now();
const iso = (minAgo: number) => new Date(now - minAgo * 60_000).toISOString();

function distillConfig(over: Record<string, unknown> = {}) {
  return {
    kind: 'distill',
    teacher: 'assets/models/mdlm-small',
    divergence: 'kld',
    rounds: 5,
    stepsPerRound: 20000,
    teacherSubsteps: 2,
    minSteps: 4,
    legacyTimeGrid: false,
    resetOptimizerEachRound: false,
    resetEmaEachRound: false,
    optim: {
      lr: 1e-4,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: 0,
      warmupSteps: 200,
      gradClip: 1,
      emaDecay: 0.998,
    },
    batchSize: 32,
    seed: 0,
    epsT: 1e-5,
    evalSteps: [128, 64, 32, 16, 8, 4],
    evalSamples: 256,
    studentDropout: 0.1,
    logEvery: 1,
    checkpointEvery: 200,
    keepCheckpoints: 3,
    backend: 'auto',
    threads: 2,
    ...over,
  };
}

function trainPoint(run: FakeRun, step: number, lr: number): MetricPoint {
  const r = Math.min(Math.floor((step - 1) / run.stepsPerRound), run.rounds.length - 1);
  const inRound = step - r * run.stepsPerRound;
  const base = 0.35 + 0.06 * r;
  let loss = base + (0.9 - 0.1 * r) * Math.exp(-inRound / 900) + 0.04 * gauss();
  if (rnd() < 0.0004) loss *= 2.5 + rnd() * 2; // rare spikes the downsampler must keep
  const warm = Math.min(1, step / 200);
  return {
    type: 'train',
    step,
    loss,
    lr: lr * warm,
    gradNorm: Math.abs(0.6 + 0.25 * gauss() + 2 * Math.exp(-inRound / 300)),
    tokPerSec: 1180 + 60 * gauss(),
    elapsedS: step / 25,
    round: r,
  };
}

function makeRounds(n0: number, count: number, spr: number, doneThrough: number, running: boolean): RoundSummary[] {
  const out: RoundSummary[] = [];
  for (let r = 0; r < count; r++) {
    const teacherSteps = n0 / 2 ** r;
    const studentSteps = teacherSteps / 2;
    const status = r <= doneThrough ? 'done' : r === doneThrough + 1 && running ? 'running' : 'pending';
    const ppl = (s: number) => 60 + 900 / s + 4 * r + 3 * rnd();
    out.push({
      round: r,
      teacherSteps,
      studentSteps,
      label: `teacher ${teacherSteps} -> student ${studentSteps}`,
      status,
      firstStep: r * spr + 1,
      lastStep: status === 'pending' ? r * spr + 1 : (r + 1) * spr,
      eval:
        status === 'done'
          ? [studentSteps, studentSteps / 2].map((s) => ({
              steps: s,
              gen_ppl: ppl(s),
              gen_ppl_se: 1.5 + rnd(),
              entropy: 5.6 - 0.02 * r - 0.1 * rnd(),
            }))
          : undefined,
    });
  }
  return out;
}

const WORDS =
  'the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her she there been one all we their has would when if so no will more some what its time only also into two other could state people may these new upon any great made first such must'.split(
    ' ',
  );
function makeSamples(n0: number, doneRounds: number, seedVal: number): SampleCell[] {
  const cells: SampleCell[] = [];
  const stepsList = [128, 64, 32, 16, 8, 4].filter((s) => s <= n0);
  const MASK = 4096;
  for (let r = -1; r < doneRounds; r++) {
    for (const steps of stepsList) {
      const quality = Math.min(1, (steps / 128) * 2 ** (r + 1));
      const len = 40;
      const toks: string[] = [];
      for (let i = 0; i < len; i++) {
        const w =
          rnd() < 0.35 + 0.6 * quality ? WORDS[Math.floor(rnd() * 30)]! : WORDS[Math.floor(rnd() * WORDS.length)]!;
        toks.push((i === 0 ? '' : ' ') + (rnd() < 0.08 * (1 - quality) ? w.toUpperCase() : w));
      }
      if (steps === 4 && r < 1) toks[7] = ' [MASK]';
      const ids = toks.map((_, i) => 100 + ((i * 37) % 3000));
      const order = ids.map((_, i) => i).sort(() => rnd() - 0.5);
      const traj: number[][] = [];
      const rows = Math.min(steps, 64);
      for (let s = 0; s <= rows; s++) {
        const revealed = new Set(order.slice(0, Math.round((len * s) / rows)));
        traj.push(ids.map((id, i) => (revealed.has(i) ? id : MASK)));
      }
      cells.push({
        round: r,
        steps,
        seed: seedVal,
        text: toks.join(''),
        genPpl: 55 + 1200 / steps / (1 + r * 0.5 + 0.5) + 5 * rnd(),
        entropy: 5.3 + 0.3 * quality + 0.05 * rnd(),
        latencyMs: steps * 11.5 * (1 + 0.05 * rnd()),
        trajectory: traj,
        tokenTexts: toks,
      });
    }
  }
  return cells;
}

function addRun(
  id: string,
  kind: RunRecord['kind'],
  status: RunRecord['status'],
  cfg: Record<string, unknown>,
  opts: {
    step: number;
    minAgo: number;
    reason?: string;
    nanAt?: number;
    doneRounds?: number;
    backend?: string;
    device?: string;
  },
) {
  const spr = Number(cfg.stepsPerRound ?? 1000);
  const nr = Number(cfg.rounds ?? 1);
  const n0 = 128;
  const totalSteps = kind === 'distill' ? spr * nr : Number(cfg.steps ?? 1000);
  const record: RunRecord = {
    id,
    kind,
    config: cfg,
    status,
    reason: opts.reason,
    backend: opts.backend ?? 'wasm',
    device: opts.device ?? 'CPU (wasm, SIMD, 1 thread)',
    step: opts.step,
    totalSteps,
    createdAt: iso(opts.minAgo),
    updatedAt: iso(0),
  };
  const doneRounds = opts.doneRounds ?? Math.floor(opts.step / spr);
  const run: FakeRun = {
    record,
    points: [],
    rounds:
      kind === 'distill' ? makeRounds(n0, nr, spr, doneRounds - 1, status === 'running' || status === 'paused') : [],
    samples: [],
    n0,
    stepsPerRound: spr,
  };
  const lr = Number((cfg.optim as { lr?: number })?.lr ?? 1e-4);
  const logEvery = Number(cfg.logEvery ?? 10);
  for (let s = logEvery; s <= opts.step; s += logEvery) {
    const p = trainPoint(run, s, lr);
    if (opts.nanAt !== undefined && s >= opts.nanAt) p.loss = NaN;
    run.points.push(p);
    if (s % 2000 === 0)
      run.points.push({
        type: 'eval',
        step: s,
        valLoss: (p.loss as number) * 1.08 + 0.02,
        valPpl: Math.exp((p.loss as number) * 1.08),
        elapsedS: s / 25,
      });
  }
  if (kind === 'distill' && status !== 'queued') run.samples = makeSamples(n0, doneRounds, Number(cfg.seed ?? 0));
  runs.set(id, run);
  return run;
}

const live = addRun('sdtt-kld-small', 'distill', 'running', distillConfig({ seed: 1234 }), {
  step: 90_000,
  minAgo: 62,
  doneRounds: 4,
});
addRun(
  'sdtt-mse-lr3e-4',
  'distill',
  'done',
  distillConfig({
    divergence: 'mse',
    optim: { ...distillConfig().optim, lr: 3e-4 },
    rounds: 3,
    stepsPerRound: 4000,
    logEvery: 10,
    seed: 1234,
  }),
  { step: 12_000, minAgo: 300 },
);
addRun(
  'sdtt-tvd-bs64',
  'distill',
  'nan',
  distillConfig({ divergence: 'tvd', batchSize: 64, rounds: 3, stepsPerRound: 4000, logEvery: 10 }),
  {
    step: 6_000,
    minAgo: 200,
    nanAt: 5_310,
    reason: 'loss became NaN at step 5310 (round 1); last good checkpoint: step 5200',
    doneRounds: 1,
  },
);
addRun(
  'sdtt-kl-fwd',
  'distill',
  'paused',
  distillConfig({ divergence: 'kl-fwd', rounds: 4, stepsPerRound: 3000, logEvery: 10 }),
  { step: 4_100, minAgo: 150 },
);
addRun(
  'sdtt-oom',
  'distill',
  'failed',
  distillConfig({ batchSize: 512, rounds: 2, stepsPerRound: 1000, logEvery: 10 }),
  {
    step: 20,
    minAgo: 140,
    reason: 'worker exited with code 134: out of memory while allocating the teacher targets (batch 512)',
    doneRounds: 0,
  },
);
addRun('sdtt-stopped', 'distill', 'stopped', distillConfig({ rounds: 2, stepsPerRound: 1000, logEvery: 10 }), {
  step: 700,
  minAgo: 120,
  reason: 'stopped by the user',
});
addRun('sdtt-queued', 'distill', 'queued', distillConfig({ rounds: 2, stepsPerRound: 1000 }), { step: 0, minAgo: 5 });
addRun(
  'pretrain-small',
  'pretrain',
  'done',
  {
    kind: 'pretrain',
    steps: 20000,
    batchSize: 16,
    logEvery: 20,
    optim: { lr: 3e-4 },
    model: { arch: 'mdlm', dModel: 128, nLayers: 4 },
  },
  { step: 20_000, minAgo: 900 },
);

const models: ModelInfo[] = [
  {
    id: 'mdlm-small',
    label: 'MDLM small (shipped)',
    path: 'assets/models/mdlm-small',
    arch: 'mdlm',
    params: 3_400_000,
    source: 'shipped',
  },
  {
    id: 'ar-judge',
    label: 'AR judge (shipped)',
    path: 'assets/models/ar-judge',
    arch: 'ar',
    params: 3_100_000,
    source: 'shipped',
  },
  {
    id: 'pretrain-small',
    label: 'pretrain-small (step 20000)',
    path: 'runs/pretrain-small/checkpoints/20000',
    arch: 'mdlm',
    params: 3_400_000,
    source: 'run',
  },
];
const info: AppInfo = {
  version: '0.1.0',
  workspace: '/home/user/sdtt-workspace',
  host: 'browser',
  backend: 'wasm',
  device: 'CPU (wasm, SIMD, 1 thread)',
};

// ------------------------------------------------------------------------------------ fake API ---------------
const clients = new Set<(e: RunEvent) => void>();
const emit = (e: RunEvent) => clients.forEach((c) => c(e));
const touch = (r: FakeRun) => {
  r.record = { ...r.record, updatedAt: new Date().toISOString() };
  emit({ type: 'status', record: r.record });
};
function get(id: string): FakeRun {
  const r = runs.get(id);
  if (!r) throw new ApiError(`run "${id}" not found`, 'not-found');
  return r;
}
let created = 0;
async function call(method: string, params: unknown): Promise<unknown> {
  const { req } = parseApiRequest(method, params) as { req: Record<string, unknown> };
  switch (method) {
    case 'getInfo':
      return info;
    case 'listRuns':
      return [...runs.values()].map((r) => r.record);
    case 'getRun': {
      const r = get(req.id as string);
      return { record: r.record, rounds: r.rounds, metricsCount: r.points.length };
    }
    case 'getMetrics': {
      const r = get(req.id as string);
      const from = req.from as number;
      const points = r.points.slice(from, from + 20000);
      return { points, next: from + points.length };
    }
    case 'listModels':
      return models;
    case 'getSamples':
      return get(req.id as string).samples;
    case 'createRun': {
      const cfg = req.config as Record<string, unknown>;
      const id = (req.id as string | undefined) ?? `distill-${String(++created).padStart(3, '0')}`;
      if (runs.has(id)) throw new ApiError(`run "${id}" exists`, 'conflict');
      return addRun(id, 'distill', 'queued', cfg, { step: 0, minAgo: 0 }).record;
    }
    case 'controlRun': {
      const r = get(req.id as string);
      const a = req.action as string;
      const to = a === 'start' || a === 'resume' ? 'running' : a === 'pause' ? 'paused' : 'stopped';
      r.record = { ...r.record, status: to, reason: to === 'stopped' ? 'stopped by the user' : undefined };
      if (a === 'start' && r.rounds.length) r.rounds[0] = { ...r.rounds[0]!, status: 'running' };
      touch(r);
      return r.record;
    }
    case 'exportRound': {
      const r = get(req.id as string);
      const round = r.rounds.find((x) => x.round === req.round);
      if (!round || round.status !== 'done')
        throw new ApiError(`round ${req.round} of ${r.record.id} is not finished`, 'conflict');
      return {
        folder: req.folder,
        files: ['model.safetensors', 'config.json', 'README.md'].map((f) => `${req.folder}/${f}`),
      };
    }
  }
  throw new ApiError(`unknown method ${method}`, 'invalid-request');
}

// Live streaming: every 200 ms each running run logs a few steps (like the worker's 200 ms flush).
setInterval(() => {
  for (const r of runs.values()) {
    if (r.record.status !== 'running') continue;
    const lr = Number((r.record.config.optim as { lr?: number })?.lr ?? 1e-4);
    const logEvery = Number(r.record.config.logEvery ?? 10);
    const batch: MetricPoint[] = [];
    for (let k = 0; k < 5 && r.record.step < r.record.totalSteps; k++) {
      r.record.step += logEvery;
      batch.push(trainPoint(r, r.record.step, lr));
    }
    r.points.push(...batch);
    if (batch.length) emit({ type: 'metrics', runId: r.record.id, points: batch });
    const cur = r.rounds.find((x) => x.status === 'running');
    if (cur) {
      cur.lastStep = r.record.step;
      if (r.record.step >= (cur.round + 1) * r.stepsPerRound) {
        cur.status = 'done';
        cur.eval = [{ steps: cur.studentSteps, gen_ppl: 70 + 300 / cur.studentSteps, gen_ppl_se: 2, entropy: 5.5 }];
        const nxt = r.rounds[cur.round + 1];
        if (nxt) nxt.status = 'running';
        emit({ type: 'round', runId: r.record.id, round: cur });
        if (nxt) emit({ type: 'round', runId: r.record.id, round: nxt });
      } else if (Math.random() < 0.2) emit({ type: 'round', runId: r.record.id, round: { ...cur } });
    }
    if (r.record.step >= r.record.totalSteps) r.record.status = 'done';
    if (Math.random() < 0.25 || r.record.status === 'done') touch(r);
  }
}, 200).unref();
void live;

// ---------------------------------------------------------------- HTTP + a minimal RFC 6455 WebSocket ---------
const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
};
const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  const rel = normalize(decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname)).replace(
    /^(\.\.[/\\])+/,
    '',
  );
  const file = join(ROOT, rel);
  if (!file.startsWith(ROOT)) return void res.writeHead(403).end();
  try {
    const body = await readFile(file);
    res
      .writeHead(200, {
        'content-type': MIME[extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-store',
      })
      .end(body);
  } catch {
    res.writeHead(404).end('not found (run `npx vite build` first)');
  }
});

function frame(text: string): Buffer {
  const data = Buffer.from(text);
  const n = data.length;
  const head =
    n < 126
      ? Buffer.from([0x81, n])
      : n < 65536
        ? Buffer.from([0x81, 126, n >> 8, n & 255])
        : Buffer.concat([
            Buffer.from([0x81, 127]),
            (() => {
              const b = Buffer.alloc(8);
              b.writeBigUInt64BE(BigInt(n));
              return b;
            })(),
          ]);
  return Buffer.concat([head, data]);
}

server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname !== WS_PATH || url.searchParams.get('token') !== TOKEN) {
    socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n');
    return;
  }
  const accept = createHash('sha1')
    .update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
    .digest('base64');
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
  );
  const send = (m: WsServerMessage) => socket.writable && socket.write(frame(JSON.stringify(m)));
  const listener = (event: RunEvent) => send({ event });
  clients.add(listener);
  let buf = Buffer.alloc(0);
  let parts: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 2) return;
      const fin = (buf[0]! & 0x80) !== 0;
      const op = buf[0]! & 0x0f;
      let len = buf[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (buf[1]! & 0x80) !== 0;
      const mask = masked ? buf.subarray(off, off + 4) : null;
      if (masked) off += 4;
      if (buf.length < off + len) return;
      const payload = Buffer.from(buf.subarray(off, off + len));
      buf = buf.subarray(off + len);
      if (mask) for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!;
      if (op === 8) {
        socket.end(Buffer.from([0x88, 0]));
        return;
      }
      if (op === 9) {
        socket.write(Buffer.concat([Buffer.from([0x8a, payload.length]), payload]));
        continue;
      }
      if (op === 1 || op === 0) {
        parts.push(payload);
        if (!fin) continue;
        const text = Buffer.concat(parts).toString('utf8');
        parts = [];
        let msg: { id: number; method: string; params: unknown };
        try {
          msg = JSON.parse(text);
        } catch {
          continue;
        }
        call(msg.method, msg.params).then(
          (result) => send({ id: msg.id, ok: true, result }),
          (e: unknown) =>
            send({
              id: msg.id,
              ok: false,
              error: { message: (e as Error).message, code: e instanceof ApiError ? e.code : 'internal' },
            }),
        );
      }
    }
  });
  const bye = () => clients.delete(listener);
  socket.on('close', bye);
  socket.on('error', bye);
});

server.listen(PORT, '127.0.0.1', async () => {
  const url = `http://127.0.0.1:${PORT}/?token=${TOKEN}`;
  console.log(`DEV-ONLY fake preview (no engine): ${url}`);
  if (SHOTS) {
    try {
      await shoot(url, SHOTS);
    } finally {
      server.close();
      process.exit(0);
    }
  }
});

// ---------------------------------------------------------------- screenshots (playwright-core + Debian chromium)
async function shoot(url: string, dir: string) {
  const { chromium } = await import('playwright-core');
  await mkdir(dir, { recursive: true });
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await page.goto(url);
  await page.getByTestId('run-item-sdtt-kld-small').waitFor();
  await page.getByTestId('run-item-sdtt-kld-small').click();
  await page.waitForFunction(
    () => Number(document.querySelector('[data-testid="loss-chart"]')?.getAttribute('data-points')) >= 90000,
    null,
    { timeout: 30000 },
  );
  // Responsiveness with 90k+ points while streaming: measure long tasks over 3 s.
  const longTasks = await page.evaluate(
    () =>
      new Promise<number[]>((res) => {
        const d: number[] = [];
        new PerformanceObserver((l) => l.getEntries().forEach((e) => d.push(Math.round(e.duration)))).observe({
          type: 'longtask',
          buffered: false,
        });
        setTimeout(() => res(d), 3000);
      }),
  );
  console.log(`long tasks (>50 ms) during 3 s of streaming with ~90k points: ${JSON.stringify(longTasks)}`);
  await page.screenshot({ path: `${dir}/1-run-live.png` });
  await page.getByTestId('log-toggle').check();
  await page.getByTestId('loss-chart').screenshot({ path: `${dir}/2-loss-log.png` });
  await page.getByTestId('log-toggle').uncheck();
  await page.getByTestId('samples-grid').scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${dir}/3-rounds-samples.png`, fullPage: true });
  await page.getByTestId('sample-cell-0-16').click();
  await page.getByTestId('replay-slider').fill('7');
  await page.screenshot({ path: `${dir}/4-replay.png` });
  await page.keyboard.press('Escape');
  await page.getByTestId('export-folder').fill('/tmp/export-r3');
  await page.getByTestId('export-submit').click();
  await page.getByTestId('export-result').waitFor();
  await page.getByTestId('export-result').scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${dir}/5-export.png` });
  await page.getByTestId('run-item-sdtt-tvd-bs64').click();
  await page.waitForTimeout(800);
  await page.screenshot({ path: `${dir}/6-run-nan.png` });
  await page.getByTestId('nav-new-run').click();
  await page.getByTestId('field-rounds').fill('0');
  await page.getByTestId('field-lr').fill('abc');
  await page.getByTestId('field-startSteps').fill('100');
  await page.getByTestId('field-divergence').selectOption('tvd-log-l1');
  await page.screenshot({ path: `${dir}/7-new-run-errors.png` });
  await page.getByTestId('field-rounds').fill('2');
  await page.getByTestId('field-lr').fill('2e-4');
  await page.getByTestId('field-startSteps').fill('');
  await page.getByTestId('field-stepsPerRound').fill('300');
  await page.getByTestId('submit-run').click();
  await page.getByTestId('run-item-distill-001').waitFor();
  await page.waitForTimeout(1500);
  await page.screenshot({ path: `${dir}/8-new-run-started.png` });
  await page.getByTestId('nav-compare').click();
  await page.getByTestId('compare-pick-sdtt-kld-small').check();
  await page.getByTestId('compare-pick-sdtt-mse-lr3e-4').check();
  await page.getByTestId('compare-pick-sdtt-tvd-bs64').check();
  await page.getByTestId('config-diff').waitFor();
  await page.waitForTimeout(800);
  await page.screenshot({ path: `${dir}/9-compare.png`, fullPage: true });
  console.log(problems.length ? `page problems:\n${problems.join('\n')}` : 'no console errors, no CSP violations');
  await browser.close();
}
