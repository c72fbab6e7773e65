// Helpers for the browser-mode end-to-end test: the repository root, the Chromium launch used by the e2e suite
// (playwright-core + the system Chromium) and polling. Its tiny trained models come from trainTinyRun in
// ../helpers/fixtures.ts, shared with the unit tests.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { TestContext } from 'node:test';
import { requirement } from '../helpers/requirements.ts';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const CHROMIUM = process.env.SDTT_CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/**
 * playwright-core, or null after skipping `t` with the reason (no Chromium, no built renderer, no playwright-core);
 * under CI, which installs all three, a missing one fails the test instead (../helpers/requirements.ts).
 */
export async function playwrightOrSkip(t: TestContext): Promise<typeof import('playwright-core') | null> {
  let missing: string | false = false;
  let pw: typeof import('playwright-core') | null = null;
  if (!existsSync(CHROMIUM)) missing = `no Chromium at ${CHROMIUM} (set SDTT_CHROMIUM_PATH)`;
  else if (!existsSync(join(ROOT, 'out', 'renderer', 'index.html')))
    missing = 'the renderer is not built: node scripts/run-tests.mjs e2e builds it (or npm run build:renderer)';
  else
    try {
      pw = await import('playwright-core');
    } catch (e) {
      missing = `playwright-core is not installed (${(e as Error).message.split('\n')[0]})`;
    }
  const need = requirement(missing);
  if (need.skip) {
    t.skip(need.skip);
    return null;
  }
  need.check();
  return pw;
}

/** Polls `fn` until it returns a truthy value (or throws after `ms`). */
export async function until<T>(
  what: string,
  fn: () => T | Promise<T>,
  ms: number,
  every = 250,
): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}
