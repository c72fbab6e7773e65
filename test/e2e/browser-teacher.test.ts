// Browser mode end to end, the new-run form's teacher summary: `sdtt serve` (startServer, with the real backend probe
// and its measured matmul rate) over a workspace holding the official HF fixture, driven by the system Chromium. The
// shipped teacher is summarised as soon as the form opens; the user then picks the custom path, types the official
// folder and sees its layout, vocabulary, length, size and the step estimate, with the one request the settled path
// deserves (not one per keystroke); a missing path and one outside the served folders are named inline. Last, the same
// model is found with Browse… (the host's folder listing: workspace, then its models folder) and picked from the
// keyboard, which fills the path and brings its summary back. No training.
//
// Needs /usr/bin/chromium (or SDTT_CHROMIUM_PATH), playwright-core and the built renderer; SKIPPED otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../../src/main/browserHost.ts';
import { CHROMIUM, CHROMIUM_ARGS, ROOT, playwrightOrSkip } from './helpers.ts';

const SHOTS = join(ROOT, 'test-output', 'e2e');

test(
  'browser mode: the teacher field summarises a shipped model and an official HF folder, typed or browsed to',
  { timeout: 180_000 },
  async (t) => {
    const pw = await playwrightOrSkip(t);
    if (!pw) return;
    const tmp = mkdtempSync(join(tmpdir(), 'sdtt-e2e-teacher-'));
    const ws = join(tmp, 'workspace');
    mkdirSync(SHOTS, { recursive: true });
    const official = join(ws, 'models', 'official-hf');
    cpSync(join(ROOT, 'test', 'fixtures', 'official-tiny', 'hf'), official, { recursive: true });
    const serverLog: string[] = [];
    const problems: string[] = [];
    let srv: RunningServer | null = null;
    let browser: import('playwright-core').Browser | null = null;
    try {
      srv = await startServer({ workspace: ws, port: 0, log: (l) => serverLog.push(l) });
      browser = await pw.chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 });
      const page = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage();
      page.setDefaultTimeout(60_000);
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console.error: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      const inspected: string[] = [];
      page.on('websocket', (sock) =>
        sock.on('framesent', (f) => {
          const text = typeof f.payload === 'string' ? f.payload : f.payload.toString('utf8');
          if (text.includes('"method":"inspectModel"')) inspected.push(text);
        }),
      );
      await page.goto(srv.url);
      await page.waitForFunction(
        () => document.querySelector('[data-testid="connection-state"]')?.getAttribute('data-state') === 'open',
      );
      await page.getByTestId('nav-new-run').click();
      await page.getByTestId('new-run-form').waitFor();

      // The first shipped teacher, summarised without a click.
      const summary = page.getByTestId('teacher-summary');
      await page.waitForFunction(
        () =>
          document.querySelector('[data-testid="teacher-summary"]')?.getAttribute('data-layout') === 'workbench' &&
          !document.querySelector('[data-testid="teacher-summary"]')?.hasAttribute('data-stale'),
      );
      assert.equal(await page.getByTestId('teacher-summary-layout').textContent(), 'layout: workbench checkpoint');
      assert.match((await page.getByTestId('teacher-summary-vocab').textContent()) ?? '', /^vocabulary: 4,096 ids, /);
      const measured = /measured \d+(\.\d)? GFLOP\/s matmul rate; a rough guide: measured steps differ\)$/;
      const estimate = (await page.getByTestId('teacher-summary-estimate').textContent()) ?? '';
      assert.match(estimate, /^≈ .+ per step at batch 32 \(/);
      assert.match(estimate, measured, 'the server probed this machine: a time at its measured rate');

      // The custom path, typed key by key: one request once it settles.
      await page.getByTestId('field-teacher').selectOption('__custom__');
      const before = inspected.length;
      await page.getByTestId('field-teacher-path').pressSequentially(official, { delay: 15 });
      await page.waitForFunction(
        () =>
          document.querySelector('[data-testid="teacher-summary"]')?.getAttribute('data-layout') === 'hf-mdlm' &&
          !document.querySelector('[data-testid="teacher-summary"]')?.hasAttribute('data-stale'),
      );
      const typed = inspected.length - before;
      assert.ok(typed >= 1 && typed <= 3, `${typed} inspectModel requests while typing ${official.length} characters`);
      assert.equal(await page.getByTestId('teacher-summary-layout').textContent(), 'layout: official HF MDLM');
      assert.equal(
        await page.getByTestId('teacher-summary-vocab').textContent(),
        'vocabulary: 258 ids, no tokenizer recorded',
      );
      assert.equal(await page.getByTestId('teacher-summary-seqlen').textContent(), 'sequence length 12');
      assert.equal(await page.getByTestId('teacher-summary-params').textContent(), '15k parameters');
      assert.match((await page.getByTestId('teacher-summary-estimate').textContent()) ?? '', measured);
      assert.match((await page.getByTestId('teacher-summary-memory').textContent()) ?? '', /^peak memory ≈ \d/);
      assert.match(
        (await page.getByTestId('teacher-summary-problem').first().textContent()) ?? '',
        /258 ids is not GPT-2's .*records no tokenizer.*--tokenizer byte/,
      );
      // The estimate follows the batch size.
      await page.getByTestId('field-batchSize').fill('8');
      await page.waitForFunction(() =>
        /per step at batch 8 \(/.test(
          document.querySelector('[data-testid="teacher-summary-estimate"]')?.textContent ?? '',
        ),
      );
      await summary.scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(SHOTS, 'teacher-summary.png') });

      // Errors under the field, naming the problem: a path that is not there, one outside the served folders.
      const pathField = page.getByTestId('field-teacher-path');
      const error = page.getByTestId('teacher-summary-error');
      await pathField.fill(join(ws, 'models', 'missing'));
      await pathField.blur();
      await error.waitFor();
      await page.waitForFunction(() =>
        /missing: no such file or folder$/.test(
          document.querySelector('[data-testid="teacher-summary-error"]')?.textContent ?? '',
        ),
      );
      await pathField.fill('/etc');
      await pathField.blur();
      await page.waitForFunction(() =>
        /lies outside the folders this server may read/.test(
          document.querySelector('[data-testid="teacher-summary-error"]')?.textContent ?? '',
        ),
      );
      assert.equal(await error.getAttribute('role'), 'alert');

      // Browse… instead of typing: the workspace first (its top: no way up), then the folder holding the official
      // model, which is picked from the keyboard; the panel closes, the field holds the path, the summary follows.
      await page.getByTestId('teacher-browse').click();
      const panel = page.getByTestId('folder-browser');
      await page.waitForFunction((p) => document.querySelector('[data-testid="folder-path"]')?.textContent === p, ws);
      assert.equal(await page.getByTestId('folder-up').isDisabled(), true);
      assert.deepEqual(await page.getByTestId('folder-root').allTextContents(), ['workspace', 'shipped models']);
      await page.locator('[data-testid="folder-entry"][data-name="models"]').click();
      await page.waitForFunction(
        (p) => document.querySelector('[data-testid="folder-path"]')?.textContent === p,
        join(ws, 'models'),
      );
      const pick = page.locator('[data-testid="folder-entry"][data-name="official-hf"]');
      assert.equal(await pick.getAttribute('data-kind'), 'official');
      assert.equal(await page.getByTestId('folder-up').isDisabled(), false);
      await page.screenshot({ path: join(SHOTS, 'teacher-browse.png') });
      await pick.focus();
      await page.keyboard.press('Enter');
      await panel.waitFor({ state: 'detached' });
      assert.equal(await pathField.inputValue(), official);
      await page.waitForFunction(
        () =>
          document.querySelector('[data-testid="teacher-summary"]')?.getAttribute('data-layout') === 'hf-mdlm' &&
          !document.querySelector('[data-testid="teacher-summary"]')?.hasAttribute('data-stale'),
      );
      assert.equal(await page.getByTestId('teacher-summary-layout').textContent(), 'layout: official HF MDLM');
      // Reopened where the pick came from; Escape closes it.
      await page.getByTestId('teacher-browse').click();
      await page.waitForFunction(
        (p) => document.querySelector('[data-testid="folder-path"]')?.textContent === p,
        join(ws, 'models'),
      );
      await page.getByTestId('folder-up').focus();
      await page.keyboard.press('Escape');
      await panel.waitFor({ state: 'detached' });
      assert.equal(
        await page.evaluate(() => document.activeElement?.getAttribute('data-testid')),
        'teacher-browse',
        'focus returns to the button',
      );
      // Console errors the page itself logs would mean a broken view; the refused requests above are answers, not errors.
      assert.deepEqual(problems, [], 'no console errors or page errors');
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
