// Browser mode against hostile requests, over the real WebSocket of the real CLI (`sdtt serve --workspace W --allow A`
// in a child process, as a user starts it):
// - every path a request names is confined: exportRound with absolute, `..` and symlinked folders is refused and
//   writes nothing outside the workspace and the --allow folder; createRun with data /etc/passwd, a teacher / judge /
//   tokenizer outside, or data reached through a symlink that leads outside is refused and creates no run; the
//   workspace, the --allow folder and the shipped assets/ (read only) work;
// - a frame over the limit closes with 1009 on the client (the server used to reset the connection while a big frame
//   was still arriving: 1006). The client runs in another process than the server, as in real use: in one process
//   the race that loses the close frame does not show.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import WebSocket from 'ws';
import { MAX_REQUEST_BYTES, WS_PATH, type WsServerMessage } from '../src/shared/api.ts';
import { SHIPPED_ASSETS_DIR } from '../src/main/pathPolicy.ts';
import { ALICE, tinyPretrainJob, trainTinyRun } from './helpers/fixtures.ts';

let base = '';
let ws = '';
let allowed = '';
let outside = '';
let child: ChildProcess | null = null;
let out = '';
let url: URL;

/** Every file and folder under `dir`, relative, sorted ([] when it does not exist). */
function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

before(async () => {
  base = mkdtempSync(join(tmpdir(), 'sdtt-serve-paths-'));
  ws = join(base, 'ws');
  allowed = join(base, 'allowed');
  outside = join(base, 'outside');
  mkdirSync(ws);
  mkdirSync(allowed);
  mkdirSync(outside);
  mkdirSync(join(base, 'private'));
  writeFileSync(join(base, 'private', 'secret.txt'), 'TOP-SECRET');
  writeFileSync(join(allowed, 'corpus.txt'), 'some training text');
  writeFileSync(join(ws, 'corpus.txt'), 'some training text');
  await trainTinyRun(ws, 'good', 'pretrain', 2);
  symlinkSync(outside, join(ws, 'link-out'));
  symlinkSync(join(base, 'private'), join(ws, 'link-private'));
  symlinkSync(join(ws, 'runs', 'good', 'checkpoints'), join(ws, 'link-ck'));

  child = spawn(
    process.execPath,
    [join(import.meta.dirname, '..', 'bin', 'sdtt.js'), 'serve', '--port', '0', '--workspace', ws, '--allow', allowed],
    {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (s) => (err += s));
  url = new URL(
    await new Promise<string>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`no URL printed: ${out}\n${err}`)), 40_000);
      child!.stdout!.setEncoding('utf8').on('data', (s) => {
        out += s;
        const m = /open (http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{64})\n/.exec(out);
        if (m) {
          clearTimeout(timer);
          res(m[1]!);
        }
      });
      child!.on('exit', (code) => rej(new Error(`sdtt serve exited (${code}): ${out}\n${err}`)));
    }),
  );
});

after(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.on('exit', r));
    child.kill('SIGINT');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    child.kill('SIGKILL');
  }
  rmSync(base, { recursive: true, force: true });
});

type Client = { ws: WebSocket; call: (method: string, params: unknown) => Promise<WsServerMessage & { id: number }> };

async function open(): Promise<Client> {
  const sock = new WebSocket(`ws://${url.host}${WS_PATH}?token=${url.searchParams.get('token')}`, {
    origin: url.origin,
  });
  const waiting = new Map<number, (m: WsServerMessage & { id: number }) => void>();
  sock.on('message', (d) => {
    const m = JSON.parse(String(d)) as WsServerMessage;
    if ('id' in m) waiting.get(m.id)?.(m);
  });
  await new Promise((res, rej) => {
    sock.once('open', res);
    sock.once('error', rej);
  });
  let next = 0;
  return {
    ws: sock,
    call: (method, params) =>
      new Promise((res) => {
        const id = ++next;
        waiting.set(id, res);
        sock.send(JSON.stringify({ id, method, params }));
      }),
  };
}

function refusedWith(m: WsServerMessage, code: string, re: RegExp, what: string): void {
  assert.ok('ok' in m && !m.ok, `${what}: expected a refusal, got ${JSON.stringify(m)}`);
  assert.equal(m.error.code, code, `${what}: ${m.error.message}`);
  assert.match(m.error.message, re, what);
}

test('serve prints the folders requests may use', () => {
  assert.match(
    out,
    new RegExp(
      `sdtt serve: requests may read/write inside ${ws}, ${allowed}; read-only inside ${SHIPPED_ASSETS_DIR}\\n`,
    ),
  );
});

test(
  'exportRound over the socket: absolute, `..` and symlinked folders are refused and write nothing outside',
  { timeout: 60_000 },
  async () => {
    const c = await open();
    try {
      const outsideBefore = tree(outside);
      const attempts: [string, string, RegExp][] = [
        [join(outside, 'abs'), 'invalid-request', /outside the folders this server may write/],
        ['/some/abs/dir', 'invalid-request', /outside the folders this server may write/],
        ['../outside/dotdot', 'invalid-request', /outside the folders this server may write/],
        ['../escaped', 'invalid-request', /outside the folders this server may write/],
        ['exports/../../escaped2', 'invalid-request', /outside the folders/],
        [
          'link-out/via-link',
          'invalid-request',
          /really .*outside.*via-link\) lies outside the folders this server may write/,
        ],
        [join(ws, 'link-out'), 'invalid-request', /lies outside the folders/],
        [join(ws, 'link-out', 'deep', 'er'), 'invalid-request', /lies outside the folders/],
        ['link-ck/999', 'conflict', /checkpoints folder/],
        ['runs/good/checkpoints/999', 'conflict', /checkpoints folder/],
      ];
      for (const [folder, code, re] of attempts) {
        refusedWith(await c.call('exportRound', { id: 'good', round: -1, folder }), code, re, folder);
      }
      assert.deepEqual(tree(outside), outsideBefore, 'nothing was written into the outside folder');
      assert.deepEqual(tree(outside), []);
      for (const gone of ['escaped', 'escaped2', 'dotdot']) assert.equal(existsSync(join(base, gone)), false, gone);
      assert.equal(existsSync('/some/abs/dir'), false);
      assert.deepEqual(
        tree(join(ws, 'runs', 'good', 'checkpoints')).filter((f) => f.startsWith('999')),
        [],
      );

      // inside the workspace (relative or absolute) and inside the --allow folder: written
      for (const [folder, where] of [
        ['exports/a', join(ws, 'exports', 'a')],
        [join(ws, 'exports', 'b'), join(ws, 'exports', 'b')],
        [join(allowed, 'c'), join(allowed, 'c')],
      ] as const) {
        const r = await c.call('exportRound', { id: 'good', round: -1, folder });
        assert.ok('ok' in r && r.ok, `${folder}: ${JSON.stringify(r)}`);
        assert.equal((r.result as { folder: string }).folder, where);
        for (const f of ['model.safetensors', 'config.json', 'README.md'])
          assert.ok(existsSync(join(where, f)), `${where}/${f}`);
      }
      assert.deepEqual(tree(outside), [], 'still nothing outside');
      assert.deepEqual(readdirSync(base).sort(), ['allowed', 'outside', 'private', 'ws']);
    } finally {
      c.ws.close();
    }
  },
);

test(
  'createRun over the socket: data /etc/passwd and paths outside are refused; workspace, --allow and assets/ work',
  { timeout: 60_000 },
  async () => {
    const c = await open();
    try {
      const runsBefore = await c.call('listRuns', {});
      assert.ok('ok' in runsBefore && runsBefore.ok);
      const pretrain = (over: Record<string, unknown>) => ({
        kind: 'pretrain',
        config: tinyPretrainJob({ data: ALICE, ...over }),
      });
      const judge = join(SHIPPED_ASSETS_DIR, 'models', 'judge-ar-base-5m');
      const teacher = join(SHIPPED_ASSETS_DIR, 'models', 'mdlm-base-5m');
      const distill = (over: Record<string, unknown>) => ({
        kind: 'distill',
        config: {
          kind: 'distill',
          teacher,
          data: join(ws, 'corpus.txt'),
          rounds: 1,
          stepsPerRound: 1,
          startSteps: 16,
          ...over,
        },
      });
      const refusedRuns: [unknown, RegExp][] = [
        [
          pretrain({ data: '/etc/passwd' }),
          /config\.data "\/etc\/passwd" lies outside the folders this server may read/,
        ],
        [pretrain({ data: ALICE }), /config\.data .* lies outside/],
        [pretrain({ data: '../private/secret.txt' }), /config\.data "\.\.\/private\/secret\.txt" .* lies outside/],
        [
          pretrain({ data: 'link-private/secret.txt' }),
          /config\.data "link-private\/secret\.txt" \(really .*private\/secret\.txt\) lies outside/,
        ],
        [pretrain({ data: join(ws, 'link-private', 'secret.txt') }), /really .*private\/secret\.txt\) lies outside/],
        [
          pretrain({ data: join(ws, 'corpus.txt'), tokenizer: '/etc/passwd' }),
          /config\.tokenizer "\/etc\/passwd" lies outside/,
        ],
        [
          pretrain({ data: join(ws, 'corpus.txt'), tokenizer: '../../../etc/passwd' }),
          /config\.tokenizer .* lies outside/,
        ],
        [distill({ teacher: '/etc' }), /config\.teacher "\/etc" lies outside/],
        [distill({ teacher: 'link-private' }), /config\.teacher "link-private" \(really .*private\) lies outside/],
        [distill({ data: '/etc/passwd' }), /config\.data "\/etc\/passwd" lies outside/],
        [distill({ judge: '/etc' }), /config\.judge "\/etc" lies outside/],
      ];
      let i = 0;
      for (const [params, re] of refusedRuns) {
        refusedWith(
          await c.call('createRun', { ...(params as object), id: `refused-${i++}` }),
          'invalid-request',
          re,
          JSON.stringify(params),
        );
      }
      const runsAfter = await c.call('listRuns', {});
      assert.deepEqual(runsAfter, { ...runsBefore, id: runsAfter.id }, 'no refused request created a run');
      assert.deepEqual(
        tree(join(ws, 'runs')).filter((f) => f.startsWith('refused')),
        [],
      );

      // allowed: data in the workspace (relative: made absolute against the workspace), in the --allow folder, and a
      // teacher + judge from the shipped assets/ (read-only, readable)
      const created: [string, unknown, Record<string, string>][] = [
        ['ok-ws', pretrain({ data: 'corpus.txt', tokenizer: 'byte' }), { data: join(ws, 'corpus.txt') }],
        [
          'ok-allowed',
          pretrain({ data: join(allowed, 'corpus.txt'), tokenizer: 'compact-4096' }),
          { data: join(allowed, 'corpus.txt'), tokenizer: 'compact-4096' },
        ],
        ['ok-assets', distill({ judge }), { teacher, judge, data: join(ws, 'corpus.txt') }],
      ];
      for (const [id, params, expect] of created) {
        const r = await c.call('createRun', { ...(params as object), id });
        assert.ok('ok' in r && r.ok, `${id}: ${JSON.stringify(r)}`);
        const cfg = (r.result as { config: Record<string, unknown> }).config;
        for (const [k, v] of Object.entries(expect)) assert.equal(cfg[k], v, `${id}: config.${k}`);
      }
      assert.deepEqual(tree(outside), []);
    } finally {
      c.ws.close();
    }
  },
);

test(
  'a frame over the limit closes with 1009 on the client (not 1006), also while 10-50 MB are still arriving',
  { timeout: 120_000 },
  async () => {
    for (const size of [MAX_REQUEST_BYTES + 64 * 1024, 10_000_000, 10_000_000, 10_000_000, 50_000_000]) {
      const c = await open();
      const closed = new Promise<number>((r) => c.ws.on('close', (code) => r(code)));
      c.ws.on('error', () => {});
      c.ws.send(Buffer.alloc(size, 0x78), { binary: false });
      assert.equal(await closed, 1009, `a ${size}-byte frame`);
    }
    // the server is still fine
    const c = await open();
    const r = await c.call('listRuns', {});
    assert.ok('ok' in r && r.ok);
    c.ws.close();
  },
);

test('--allow must name an existing folder', { timeout: 40_000 }, async () => {
  const p = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `const m = await import('./src/cli/index.ts'); process.exitCode = await m.main(process.argv.slice(1));`,
      '--',
      'serve',
      '--port',
      '0',
      '--workspace',
      ws,
      '--allow',
      resolve(base, 'nope'),
    ],
    { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let err = '';
  p.stderr!.setEncoding('utf8').on('data', (s) => (err += s));
  const kill = setTimeout(() => p.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((r) => p.on('exit', r));
  clearTimeout(kill);
  assert.notEqual(code, 0);
  assert.match(err, /--allow .*nope: no such folder/);
});
