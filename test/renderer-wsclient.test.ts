import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WsApiClient, wsUrlFor, type WsLike } from '../src/renderer/api/wsClient.ts';
import type { RunEvent } from '../src/shared/api.ts';

class FakeWs implements WsLike {
  static all: FakeWs[] = [];
  readyState = 0;
  sent: { id: number; method: string; params: unknown }[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  constructor(readonly url: string) {
    FakeWs.all.push(this);
  }
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close(code = 1000, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  reply(m: unknown) {
    this.onmessage?.({ data: JSON.stringify(m) });
  }
}

function setup() {
  FakeWs.all = [];
  const timers: { fn: () => void; ms: number; live: boolean }[] = [];
  const client = new WsApiClient('ws://h/api?token=abc', {
    factory: (u) => new FakeWs(u),
    backoff: (a) => 100 * 2 ** a,
    setTimer: (fn, ms) => {
      const t = { fn, ms, live: true };
      timers.push(t);
      return t;
    },
    clearTimer: (t) => {
      (t as { live: boolean }).live = false;
    },
  });
  const fire = (ms: number) => {
    for (const t of timers.filter((x) => x.live && x.ms === ms)) {
      t.live = false;
      t.fn();
    }
  };
  return { client, timers, fire };
}

test('requests made before open are queued, sent on open, and resolved by id', async () => {
  const { client } = setup();
  const p = client.api.getInfo({});
  const ws = FakeWs.all[0]!;
  assert.equal(ws.url, 'ws://h/api?token=abc');
  assert.equal(ws.sent.length, 0);
  ws.open();
  assert.deepEqual(ws.sent[0], { id: 1, method: 'getInfo', params: {} });
  ws.reply({ id: 1, ok: true, result: { backend: 'wasm' } });
  assert.deepEqual(await p, { backend: 'wasm' });
});

test('server errors reject with the server message and code', async () => {
  const { client } = setup();
  FakeWs.all[0]!.open();
  const p = client.api.getRun({ id: 'nope' });
  FakeWs.all[0]!.reply({ id: 1, ok: false, error: { message: 'getRun: run "nope" not found', code: 'not-found' } });
  await assert.rejects(p, (e: Error & { code?: string }) => e.message.includes('not found') && e.code === 'not-found');
});

test('events reach subscribers; unsubscribe stops them', () => {
  const { client } = setup();
  FakeWs.all[0]!.open();
  const got: RunEvent[] = [];
  const off = client.api.subscribe((e) => got.push(e));
  FakeWs.all[0]!.reply({ event: { type: 'samples', runId: 'r1' } });
  off();
  FakeWs.all[0]!.reply({ event: { type: 'samples', runId: 'r2' } });
  assert.deepEqual(got, [{ type: 'samples', runId: 'r1' }]);
});

test('a disconnect rejects in-flight requests with a clear message, then reconnects with backoff and reports it', async () => {
  const { client, fire } = setup();
  const states: string[] = [];
  client.onStatus((s) => states.push(s.state));
  let reconnected = 0;
  client.onReconnect(() => reconnected++);
  FakeWs.all[0]!.open();
  const p = client.api.listRuns({});
  FakeWs.all[0]!.close(1006, '');
  await assert.rejects(p, /listRuns: connection to the SDTT server lost .*may or may not have run/);
  assert.equal(client.status.state, 'reconnecting');
  assert.equal(client.status.retryInMs, 100);
  fire(100);
  assert.equal(FakeWs.all.length, 2);
  FakeWs.all[1]!.close(1006, ''); // refused again: next delay doubles
  assert.equal(client.status.retryInMs, 200);
  fire(200);
  FakeWs.all[2]!.open();
  assert.equal(reconnected, 1);
  assert.equal(client.status.state, 'open');
  assert.ok(states.includes('reconnecting'));
  // attempt counter resets after a successful open
  FakeWs.all[2]!.close(1001, '');
  assert.equal(client.status.retryInMs, 100);
});

test('a request made while disconnected waits for the connection, then fails after the queue timeout', async () => {
  const { client, timers } = setup();
  const p = client.api.listModels({});
  const qt = timers.find((t) => t.ms === 15_000)!;
  qt.live = false;
  qt.fn();
  await assert.rejects(p, /listModels: not connected to the SDTT server/);
  FakeWs.all[0]!.open();
  assert.equal(FakeWs.all[0]!.sent.length, 0, 'a request that gave up is not sent later');
});

test('the token comes from the page URL; wss on https', () => {
  assert.deepEqual(wsUrlFor({ protocol: 'http:', host: '127.0.0.1:7860', search: '?token=a%2Bb' }, '/api'), {
    url: 'ws://127.0.0.1:7860/api?token=a%2Bb',
    token: 'a+b',
  });
  assert.equal(wsUrlFor({ protocol: 'https:', host: 'x', search: '' }, '/api').token, null);
  assert.equal(wsUrlFor({ protocol: 'https:', host: 'x', search: '' }, '/api').url, 'wss://x/api?token=');
});

test('close code 1008 (bad or missing token) is terminal: state "failed", pending requests fail, no retry', async () => {
  const { client, timers } = setup();
  const queued = client.api.listRuns({});
  FakeWs.all[0]!.open();
  const inflight = client.api.getInfo({});
  const queuedLater = client.api.listModels({});
  FakeWs.all[0]!.close(1008, 'bad or missing token');
  await assert.rejects(queued, /token/);
  await assert.rejects(inflight, /token/);
  await assert.rejects(queuedLater, /token/);
  assert.equal(client.status.state, 'failed');
  assert.match(client.status.detail ?? '', /token/);
  assert.equal(timers.filter((t) => t.live && t.ms < 15_000).length, 0, 'no reconnect scheduled');
  assert.equal(FakeWs.all.length, 1);
  await assert.rejects(client.api.listRuns({}), /not connected.*token/);
  assert.equal(FakeWs.all.length, 1);
});
