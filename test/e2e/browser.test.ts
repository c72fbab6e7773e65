// Browser mode end to end, with the REAL engine: `sdtt serve` (startServer) over a temp workspace holding a tiny
// MDLM teacher and a tiny AR judge (trained here with runPretrain, registered as finished runs so listModels offers
// them), driven by the system Chromium through playwright-core. The test creates a distillation run from the form
// and follows it: loss chart growing, round timeline advancing, samples grid (teacher + student rows, several step
// counts), unmasking replay, export of a round (files loaded back with loadCheckpoint), compare with a second run
// (created over the API; both runs use the tiny judge — the first picks it in the form — so cells carry a gen PPL) and the config diff. A wrong token leaves
// the page unconnected, in the terminal 'failed' state. Screenshots go to test-output/e2e/; the live view and the samples grid are copied to
// docs/screenshots/ for the README when SDTT_UPDATE_SCREENSHOTS=1.
//
// Needs /usr/bin/chromium (or SDTT_CHROMIUM_PATH), playwright-core and the built renderer (scripts/run-tests.mjs
// builds it for the e2e suite); without them the test is SKIPPED with the reason, never passed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startServer, type RunningServer } from '../../src/main/browserHost.ts';
import { loadCheckpoint } from '../../src/runs/checkpointLoad.ts';
import { paramLayout } from '../../src/engine/model/paramLayout.ts';
import { importedModel } from '../../src/engine/io/officialImport.ts';
import type { SampleCell } from '../../src/shared/api.ts';
import { ALICE, trainTinyRun } from '../helpers/fixtures.ts';
import { CHROMIUM, CHROMIUM_ARGS, ROOT, until, playwrightOrSkip } from './helpers.ts';

const SHOTS = join(ROOT, 'test-output', 'e2e');
// The README's pictures are refreshed only on request (SDTT_UPDATE_SCREENSHOTS=1), so a test run leaves git clean.
const DOCS = process.env.SDTT_UPDATE_SCREENSHOTS ? join(ROOT, 'docs', 'screenshots') : null;
const RUN = 'e2e-distill';
const RUN2 = 'e2e-distill-judge';

test(
  'browser mode: distil a tiny teacher from the form and follow it through every view (real engine)',
  { timeout: 420_000 },
  async (t) => {
    const pw = await playwrightOrSkip(t);
    if (!pw) return;
    const t0 = Date.now();
    const lap = (what: string) => t.diagnostic(`${((Date.now() - t0) / 1000).toFixed(1)}s ${what}`);
    const tmp = mkdtempSync(join(tmpdir(), 'sdtt-e2e-browser-'));
    const ws = join(tmp, 'workspace');
    mkdirSync(SHOTS, { recursive: true });
    if (DOCS) mkdirSync(DOCS, { recursive: true });

    // ---- tiny models, as finished runs of the workspace ---------------------------------------------------------
    // 200 steps: enough for the teacher to move off the unigram distribution (else its 2-step targets equal the
    // student's 1-step predictions and the distillation loss is ~1e-7), still a few seconds.
    const teacher = await trainTinyRun(ws, 'tiny-teacher', 'pretrain', 200);
    const judge = await trainTinyRun(ws, 'tiny-judge', 'pretrain-ar', 60);
    lap('tiny teacher + judge trained');

    const serverLog: string[] = [];
    let srv: RunningServer | null = null;
    let browser: import('playwright-core').Browser | null = null;
    const problems: string[] = [];
    try {
      // Browser mode confines request paths: the run below reads ALICE, the export writes under tmp/exported.
      srv = await startServer({ workspace: ws, port: 0, allow: [tmp, dirname(ALICE)], log: (l) => serverLog.push(l) });
      // launch() gives every run a fresh temporary profile (it refuses an explicit --user-data-dir).
      browser = await pw.chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 });

      // ---- a wrong token: the page never connects, and says why ----------------------------------------------------
      {
        const ctx = await browser.newContext();
        const bad = await ctx.newPage();
        await bad.goto(srv.url.replace(/token=[0-9a-f]+/, 'token=' + 'f'.repeat(64)));
        const conn = bad.getByTestId('connection-state');
        await conn.waitFor({ timeout: 30_000 });
        // The server upgrades and closes with 1008 "bad or missing token": a terminal state, no retry.
        await bad.waitForFunction(
          () => document.querySelector('[data-testid="connection-state"]')?.getAttribute('data-state') === 'failed',
          null,
          { timeout: 30_000 },
        );
        assert.match((await conn.getAttribute('title')) ?? '', /token/i);
        assert.match((await conn.textContent()) ?? '', /token/i);
        await ctx.close();
      }
      lap('wrong token refused');

      // ---- the app ---------------------------------------------------------------------------------------------------
      const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
      const page = await ctx.newPage();
      page.setDefaultTimeout(60_000);
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console.error: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      // Every text the evaluation status line ever shows: a tiny model's evaluation is over in well under a second,
      // too quick for a poll, so a MutationObserver installed before the app loads records each DOM change.
      await page.addInitScript(() => {
        const w = window as unknown as { __activity: string[] };
        w.__activity = [];
        new MutationObserver(() => {
          const text = document.querySelector('[data-testid="run-activity"]')?.textContent;
          if (text && w.__activity[w.__activity.length - 1] !== text) w.__activity.push(text);
        }).observe(document, { subtree: true, childList: true, characterData: true });
      });
      await page.goto(srv.url);
      await page.waitForFunction(
        () => document.querySelector('[data-testid="connection-state"]')?.getAttribute('data-state') === 'open',
      );
      const badge = page.getByTestId('backend-badge');
      await badge.waitFor({ state: 'visible' });
      await page.waitForFunction(
        () =>
          !/asking the host/.test(
            document.querySelector('[data-testid="backend-badge"]')?.textContent ?? 'asking the host',
          ),
      );
      assert.doesNotMatch((await badge.textContent()) ?? '', /backend unknown/);
      await page.getByTestId('run-item-tiny-teacher').waitFor();

      // ---- new distillation run from the form ----------------------------------------------------------------------
      await page.getByTestId('nav-new-run').click();
      await page.getByTestId('new-run-form').waitFor();
      const teacherSelect = page.getByTestId('field-teacher');
      await page.waitForFunction(
        (p) =>
          [...document.querySelectorAll('[data-testid="field-teacher"] option')].some(
            (o) => (o as HTMLOptionElement).value === p,
          ),
        teacher,
      );
      const offered = await teacherSelect
        .locator('option')
        .evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
      assert.ok(!offered.includes(judge), 'the AR judge must not be offered as a teacher');
      await teacherSelect.selectOption(teacher);
      await page.getByTestId('field-backend').selectOption('wasm');
      for (const [f, v] of [
        ['rounds', '2'],
        ['stepsPerRound', '20'],
        ['lr', '1e-3'],
        ['batchSize', '4'],
        ['seed', '7'],
        ['startSteps', '32'],
        ['evalSamples', '4'],
      ] as const) {
        await page.getByTestId(`field-${f}`).fill(v);
      }
      // The judge from the form (so the first run's rounds carry a gen PPL); a short eval step list keeps it quick.
      await page.waitForFunction(
        (p) =>
          [...document.querySelectorAll('[data-testid="field-judge"] option')].some(
            (o) => (o as HTMLOptionElement).value === p,
          ),
        judge,
      );
      await page.getByTestId('field-judge').selectOption(judge);
      await page.getByTestId('field-evalSteps').fill('32, 16, 8');
      await page.getByTestId('field-id').fill(RUN);
      assert.equal(
        await page.locator('[data-testid^="field-error-"]').count(),
        0,
        'the filled form has no field errors',
      );
      await page.getByTestId('submit-run').click();
      await page.getByTestId(`run-item-${RUN}`).waitFor();
      const chart = page.getByTestId('loss-chart');
      await chart.waitFor();
      // Every value the chart's point count takes, from now on (a 20 ms poll, independent of Playwright's waits).
      await page.evaluate(() => {
        const w = window as unknown as { __points: number[] };
        w.__points = [];
        setInterval(() => {
          const n = Number(document.querySelector('[data-testid="loss-chart"]')?.getAttribute('data-points') ?? 0);
          if (n > 0 && w.__points[w.__points.length - 1] !== n) w.__points.push(n);
        }, 20);
      });
      lap('run created from the form');

      // The second run (over the API, as a script or another client would): judge set, so gen PPL is computed.
      // Queued behind the first (one active run at a time).
      await srv.api.call('createRun', {
        kind: 'distill',
        id: RUN2,
        config: {
          teacher,
          judge,
          data: ALICE,
          rounds: 1,
          stepsPerRound: 4,
          batchSize: 4,
          seed: 11,
          startSteps: 16,
          evalSteps: [16, 8],
          evalSamples: 2,
          evalBatch: 2,
          evalHeldoutBatches: 1,
          samplesPerCell: 1,
          selfBleuPrompts: 0,
          logEvery: 1,
          backend: 'wasm',
          threads: 1,
          optim: { lr: 2e-3, warmupSteps: 1 },
        },
      });
      await srv.api.call('controlRun', { id: RUN2, action: 'start' });

      // ---- live view: chart grows, progress, round timeline advances -------------------------------------------------
      await page.waitForFunction(
        () => Number(document.querySelector('[data-testid="loss-chart"]')?.getAttribute('data-points')) > 0,
        null,
        { timeout: 180_000 },
      );
      await page.getByTestId('progress-bar').waitFor();
      await page.screenshot({ path: join(SHOTS, 'live-view.png') });
      if (DOCS) copyFileSync(join(SHOTS, 'live-view.png'), join(DOCS, 'live-view.png'));
      const timeline = page.getByTestId('round-timeline');
      await timeline.waitFor();
      await page.waitForFunction(
        () => document.querySelector('[data-testid="round-0"]')?.getAttribute('data-status') === 'done',
        null,
        { timeout: 180_000 },
      );
      lap('round 0 done');
      await page.waitForFunction(
        () => document.querySelector('[data-testid="round-1"]')?.getAttribute('data-status') === 'done',
        null,
        { timeout: 180_000 },
      );
      await page.waitForFunction(
        (id) => document.querySelector(`[data-testid="run-item-${id}"]`)?.getAttribute('data-status') === 'done',
        RUN,
        { timeout: 60_000 },
      );
      lap('round 1 done, run done');
      await timeline.scrollIntoViewIfNeeded();
      await timeline.screenshot({ path: join(SHOTS, 'round-timeline.png') });
      const seen = await page.evaluate(() => (window as unknown as { __points: number[] }).__points);
      assert.ok(
        seen.length >= 2 && seen.every((n, i) => i === 0 || n > seen[i - 1]!),
        `loss chart point counts seen: ${JSON.stringify(seen)}`,
      );
      assert.equal(seen[seen.length - 1], 4, `2 rounds × 20 steps logged every 10 steps: ${JSON.stringify(seen)}`);
      // the engine's evaluation progress reached the run view while it ran, and the line is gone once the run is done
      const activity = await page.evaluate(() => (window as unknown as { __activity: string[] }).__activity);
      assert.ok(
        activity.some((a) => /^evaluating — round [01]: /.test(a)),
        `evaluation status lines seen: ${JSON.stringify(activity)}`,
      );
      assert.equal(await page.getByTestId('run-activity').count(), 0);
      assert.equal(await page.getByTestId('round-1').getAttribute('data-status'), 'done');
      await page.waitForFunction(
        () => document.querySelector('[data-testid="progress-bar"]')?.getAttribute('aria-valuenow') === '40',
      );
      // round step ranges are completed-step numbers, like the chart's x axis: 1–20, 21–40
      assert.match((await page.getByTestId('round-0').locator('.round-steps').textContent()) ?? '', /steps 1–20$/);
      assert.match((await page.getByTestId('round-1').locator('.round-steps').textContent()) ?? '', /steps 21–40$/);
      // the judge chosen in the form: the round cards show a gen PPL (a number, not "—"), and the held-out NELBO
      await page.waitForFunction(
        () => /^\d/.test(document.querySelector('[data-testid="round-0"] .round-eval b')?.textContent ?? ''),
        null,
        { timeout: 30_000 },
      );
      await page.getByTestId('round-0-nelbo').waitFor();
      // the known-word rate of the round's samples, a share of the words checked against the training text
      assert.match((await page.getByTestId('round-0-words').textContent()) ?? '', /^words \d+(\.\d+)? %$/);
      assert.doesNotMatch((await page.getByTestId('steps-per-s').textContent()) ?? '', /NaN/);
      // the held-out NELBO is not drawn on the distillation loss chart (other scale): raw + smoothed lines only
      assert.equal(await page.getByTestId('loss-chart').getAttribute('data-lines'), '2');

      // ---- quality vs sampling steps: the teacher's line and one per round, metric switchable --------------------------
      const quality = page.getByTestId('quality-chart');
      await page.waitForFunction(
        () => document.querySelector('[data-testid="quality-chart"]')?.getAttribute('data-series') === '3',
        null,
        { timeout: 30_000 },
      );
      assert.equal(await quality.getAttribute('data-metric'), 'gen_ppl');
      assert.ok((await quality.locator('.recharts-line').count()) === 3, 'teacher + R0 + R1 lines');
      assert.ok((await quality.locator('.recharts-errorBar').count()) >= 3, 'gen PPL points carry ± s.e. bars');
      assert.deepEqual(await page.getByTestId('quality-legend').locator('.legend-item').allTextContents(), [
        'teacher',
        'R0 student (16)',
        'R1 student (8)',
      ]);
      await page.getByTestId('quality-metric-known_words').click();
      await page.waitForFunction(
        () => document.querySelector('[data-testid="quality-chart"]')?.getAttribute('data-metric') === 'known_words',
      );
      await page.getByTestId('quality-metric-gen_ppl').click();
      await quality.evaluate((el) => el.closest('section')!.scrollIntoView({ block: 'center' }));
      await page.screenshot({ path: join(SHOTS, 'quality-chart.png') });
      if (DOCS) copyFileSync(join(SHOTS, 'quality-chart.png'), join(DOCS, 'quality-chart.png'));

      // ---- samples grid: the teacher row and both students, several step counts side by side -------------------------
      const grid = page.getByTestId('samples-grid');
      await page.waitForFunction(() => document.querySelectorAll('[data-testid^="sample-cell-1-"]').length >= 2, null, {
        timeout: 60_000,
      });
      const cellIds = await grid
        .locator('[data-testid^="sample-cell-"]')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-testid')!));
      const stepsOf = (round: number) =>
        cellIds
          .filter((c) => c.startsWith(`sample-cell-${round}-`))
          .map((c) => Number(c.slice(`sample-cell-${round}-`.length)));
      for (const r of [-1, 0, 1])
        assert.ok(stepsOf(r).length >= 2, `round ${r} row has cells at ${JSON.stringify(stepsOf(r))} steps`);
      for (const id of [
        `sample-cell--1-${stepsOf(-1)[0]}`,
        `sample-cell-0-${stepsOf(0)[1]}`,
        `sample-cell-1-${stepsOf(1)[0]}`,
      ]) {
        const text = (await page.getByTestId(id).locator('.sample-text').textContent()) ?? '';
        assert.ok(text.trim().length > 0, `${id} shows a sample text`);
      }
      // invented words (not in the training text) are underlined, with a legend saying so
      await page.getByTestId('invented-legend').waitFor();
      const invented = await grid.locator('.sample-text .invented').allTextContents();
      assert.ok(
        invented.length > 0 && invented.every((w) => /^\p{L}+/u.test(w)),
        `marked words: ${JSON.stringify(invented.slice(0, 10))}`,
      );
      await grid.scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(SHOTS, 'samples-grid.png') });
      if (DOCS) copyFileSync(join(SHOTS, 'samples-grid.png'), join(DOCS, 'samples-grid.png'));
      lap('samples grid');

      // ---- replay: the slider walks the unmasking trajectory -----------------------------------------------------------
      const replaySteps = Math.max(...stepsOf(0));
      await page.getByTestId(`sample-cell-0-${replaySteps}`).click();
      const slider = page.getByTestId('replay-slider');
      await slider.waitFor();
      const max = Number(await slider.getAttribute('max'));
      assert.ok(max >= 2, `trajectory rows: ${max + 1}`);
      const maskedAt = async () => page.getByTestId('replay-text').locator('.tok.masked').count();
      const maskedEnd = await maskedAt();
      await slider.fill('0');
      await page.waitForFunction(
        () => (document.querySelector('[data-testid="replay-slider"]') as HTMLInputElement | null)?.value === '0',
      );
      const maskedStart = await maskedAt();
      assert.ok(maskedStart > maskedEnd, `masked tokens at step 0 (${maskedStart}) > at the end (${maskedEnd})`);
      await slider.fill(String(Math.floor(max / 2)));
      await page.screenshot({ path: join(SHOTS, 'replay.png') });
      await page.keyboard.press('Escape');
      await page.getByTestId('replay').waitFor({ state: 'detached' });
      lap('replay');

      // ---- export a round, load it back ------------------------------------------------------------------------------
      const exportDir = join(tmp, 'exported', 'round1');
      await page.getByTestId('export-round').selectOption('1');
      await page.getByTestId('export-folder').fill(exportDir);
      await page.getByTestId('export-submit').click();
      const result = page.getByTestId('export-result');
      await result.waitFor();
      await result.scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(SHOTS, 'export.png') });
      for (const f of ['model.safetensors', 'config.json', 'README.md'])
        assert.ok(existsSync(join(exportDir, f)), `exported ${f}`);
      const ck = loadCheckpoint(exportDir, { layoutFor: paramLayout });
      assert.equal(ck.config.arch, 'mdlm');
      assert.equal(
        ck.params.length,
        paramLayout(ck.config).reduce((n, e) => n + e.size, 0),
      );
      assert.ok(ck.params.length > 0 && ck.params.every(Number.isFinite), 'exported weights are finite');
      // the same round in the official MDLM layout: float32 only, an HF config, and the importer reads it back
      const officialDir = join(tmp, 'exported', 'round1-official');
      await page.getByTestId('export-format').selectOption('official');
      assert.ok(await page.getByTestId('export-dtype').isDisabled(), 'the official layout is float32 only');
      assert.equal(await page.getByTestId('export-dtype').inputValue(), 'f32');
      await page.getByTestId('export-format-help').waitFor();
      await page.getByTestId('export-folder').fill(officialDir);
      await page.getByTestId('export-submit').click();
      await page.waitForFunction(
        (d) => document.querySelector('[data-testid="export-result"] .mono')?.textContent === d,
        officialDir,
      );
      assert.equal(JSON.parse(readFileSync(join(officialDir, 'config.json'), 'utf8')).model_type, 'mdlm');
      const reimported = importedModel(officialDir);
      assert.deepEqual(reimported.config, ck.config);
      assert.ok(
        reimported.params.every((v, i) => v === ck.params[i]),
        'the official layout holds the same weights',
      );
      lap('export');

      // ---- "try it" offers the teacher and every finished round's student -------------------------------------------
      const tryModels = await page.getByTestId('try-model').locator('option').allTextContents();
      assert.deepEqual(
        tryModels.map((m) => m.replace(/\(\d+ steps\)/, '(N steps)')),
        ['teacher', 'R0 student (N steps)', 'R1 student (N steps)'],
        `try-it models: ${tryModels.join(', ')}`,
      );

      // ---- export a pretraining run (its latest checkpoint) as float16 -------------------------------------------------
      await page.getByTestId('run-item-tiny-teacher').click();
      await page.waitForFunction(() =>
        /^latest checkpoint · step 200$/.test(
          document.querySelector('[data-testid="export-round"] option:checked')?.textContent ?? '',
        ),
      );
      const teacherExport = join(tmp, 'exported', 'teacher-f16');
      await page.getByTestId('export-dtype').selectOption('f16');
      await page.getByTestId('export-folder').fill(teacherExport);
      await page.getByTestId('export-submit').click();
      await page.getByTestId('export-result').waitFor();
      const half = loadCheckpoint(teacherExport, { layoutFor: paramLayout });
      const full = loadCheckpoint(teacher, { layoutFor: paramLayout });
      const provenance = half.extraConfig.export as { run: string; round: number; dtype: string; step: number };
      assert.deepEqual(
        [provenance.run, provenance.round, provenance.dtype, provenance.step],
        ['tiny-teacher', -1, 'f16', 200],
      );
      assert.ok(
        statSync(join(teacherExport, 'model.safetensors')).size <
          0.6 * statSync(join(exportDir, 'model.safetensors')).size,
        'float16: about half the size',
      );
      const ema = full.ema ?? full.params;
      assert.ok(
        half.params.every((v, i) => Math.abs(v - ema[i]!) <= 1e-3 * Math.max(1, Math.abs(ema[i]!))),
        'the EMA weights, rounded to float16',
      );
      lap('export of the pretraining run');

      // ---- "try it" on the pretraining run: fresh samples with a prefix, from a worker with the real engine ---------
      await page.getByTestId('try-steps').selectOption('8');
      await page.getByTestId('try-samples').selectOption('2');
      await page.getByTestId('try-prefix').fill('Alice');
      await page.getByTestId('try-top-p').selectOption('0.9');
      await page.getByTestId('try-submit').click();
      await page.getByTestId('try-result').first().waitFor({ timeout: 60_000 });
      const tried = await page.getByTestId('try-text').allTextContents();
      assert.equal(tried.length, 2);
      assert.ok(
        tried.every((t) => t.startsWith('Alice')),
        JSON.stringify(tried),
      );
      assert.match(
        (await page.getByTestId('try-result').first().locator('.sample-stats').textContent()) ?? '',
        /latest checkpoint · step 200.*8 steps.*nucleus p=0\.9.*seed 0/,
      );
      // the run's training text is known: the samples' words it never uses are underlined, with the known-word rate
      assert.match((await page.getByTestId('try-known-words').first().textContent()) ?? '', /^known words \d+\.\d %$/);
      const triedInvented = await page
        .getByTestId('try-result')
        .first()
        .locator('.try-text .invented')
        .allTextContents();
      assert.ok(
        triedInvented.length > 0 && triedInvented.every((w) => /^\p{L}+/u.test(w)),
        JSON.stringify(triedInvented),
      );
      await page.getByTestId('try-panel').screenshot({ path: join(SHOTS, 'try-it.png') });
      if (DOCS) copyFileSync(join(SHOTS, 'try-it.png'), join(DOCS, 'try-it.png'));
      lap('try it');

      // ---- compare: the form's run and the API's run --------------------------------------------------------------
      await page.getByTestId(`run-item-${RUN2}`).waitFor();
      await page.getByTestId('nav-compare').click();
      await page.getByTestId('compare-view').waitFor();
      await page.getByTestId(`compare-pick-${RUN}`).check();
      await page.getByTestId(`compare-pick-${RUN2}`).check();
      const diff = page.getByTestId('config-diff');
      await diff.waitFor();
      const differing = await diff
        .locator('tr[data-differs="true"]')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key')));
      for (const k of ['rounds', 'seed', 'evalSteps'])
        assert.ok(differing.includes(k), `config-diff marks "${k}" (differing: ${differing.join(', ')})`);
      assert.ok(!differing.includes('teacher'), 'same teacher: not marked');
      assert.ok(!differing.includes('judge'), 'same judge (set from the form / over the API): not marked');
      await page.screenshot({ path: join(SHOTS, 'compare.png'), fullPage: true });
      lap('compare');

      // ---- the judge run: its cells carry a finite gen PPL ------------------------------------------------------------
      const cells = await until(
        `${RUN2} to finish`,
        async () => {
          const rec = srv!.manager.get(RUN2);
          if (rec.status === 'failed' || rec.status === 'nan')
            throw new Error(`${RUN2}: ${rec.status} ${rec.reason ?? ''}`);
          return rec.status === 'done' ? ((await srv!.api.call('getSamples', { id: RUN2 })) as SampleCell[]) : null;
        },
        120_000,
      );
      const student = cells.filter((c) => c.round === 0);
      assert.ok(
        student.length >= 2 &&
          student.every((c) => typeof c.genPpl === 'number' && Number.isFinite(c.genPpl) && c.genPpl > 1),
        `gen PPL with the tiny judge: ${JSON.stringify(student.map((c) => c.genPpl))}`,
      );
      // ... and the UI shows it: the round card and the cells carry a number, not a placeholder.
      await page.getByTestId(`run-item-${RUN2}`).click();
      await page.waitForFunction(
        () => /^\d/.test(document.querySelector('[data-testid="round-0"] .round-eval b')?.textContent ?? ''),
        null,
        { timeout: 30_000 },
      );
      await page.getByTestId('sample-cell-0-8').waitFor();
      assert.match((await page.getByTestId('sample-cell-0-8').locator('.sample-stats').textContent()) ?? '', /PPL \d/);
      lap(`${RUN2} done`);

      // ---- delete the finished judge run: confirm, then it is gone from the list and from disk -------------------------
      await page.getByTestId('btn-delete').click();
      await page.getByTestId('confirm-delete').waitFor();
      await page.getByTestId('btn-delete-cancel').click();
      assert.equal(await page.getByTestId('confirm-delete').count(), 0, 'cancel closes the question');
      assert.ok(srv.manager.store.exists(RUN2), 'cancel deletes nothing');
      await page.getByTestId('btn-delete').click();
      await page.getByTestId('btn-delete-confirm').click();
      await page.getByTestId(`run-item-${RUN2}`).waitFor({ state: 'detached' });
      assert.ok(!existsSync(srv.manager.store.dir(RUN2)), `${RUN2}'s folder is removed`);
      await page.getByTestId(`run-item-${RUN}`).waitFor();
      lap('delete');

      assert.deepEqual(problems, [], 'no console errors or page errors');
      await ctx.close();
    } catch (e) {
      t.diagnostic(`server log:\n${serverLog.slice(-40).join('\n')}`);
      if (problems.length) t.diagnostic(`page problems:\n${problems.join('\n')}`);
      throw e;
    } finally {
      await browser?.close().catch(() => {});
      await srv?.close();
      rmSync(tmp, { recursive: true, force: true });
    }
  },
);
