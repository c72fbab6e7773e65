// Helpers for the browser-mode end-to-end test: the repository root, the Chromium launch used by the e2e suite
// (playwright-core + the system Chromium) and polling. Its tiny trained models come from trainTinyRun in
// ../helpers/fixtures.ts, shared with the unit tests.
import { resolve } from 'node:path';

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
