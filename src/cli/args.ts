// Argument parsing shared by all commands: node's parseArgs in strict mode, numbers checked here so that a typo
// fails with the flag's name instead of training on NaN.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/** A mistake in how a command was called: `main` (index.ts) prints its message and exits 2. */
export class UsageError extends Error {}

export interface FlagSpec {
  type: 'string' | 'boolean';
  short?: string;
  help: string;
  default?: string | boolean;
  /** Repeatable (string flags): every occurrence is kept, in order, as a string[] value. */
  multiple?: boolean;
}

export type Flags = Record<string, FlagSpec>;

export function parseFlags(
  argv: string[],
  flags: Flags,
  synopsis: string,
): Record<string, string | boolean | undefined> | null {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [k, f] of Object.entries(flags))
    options[k] = { type: f.type, ...(f.short ? { short: f.short } : {}), ...(f.multiple ? { multiple: true } : {}) };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }) as {
      values: Record<string, string | boolean | undefined>;
    });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\n${helpText(flags, synopsis)}`);
  }
  if (values.help) {
    console.log(helpText(flags, synopsis));
    return null;
  }
  for (const [k, f] of Object.entries(flags))
    if (values[k] === undefined && f.default !== undefined) values[k] = f.default;
  return values;
}

export function helpText(flags: Flags, synopsis: string): string {
  const rows = Object.entries(flags).map(([k, f]) => {
    const name = `--${k}${f.type === 'string' ? ' VALUE' : ''}${f.multiple ? ' ...' : ''}`;
    const def = f.default !== undefined && f.default !== false ? ` (default: ${f.default})` : '';
    return `  ${name.padEnd(26)} ${f.help}${def}`;
  });
  return `${synopsis}\n\noptions:\n${rows.join('\n')}`;
}

/** A `multiple` flag's values (parseFlags types every value as a scalar; repeatable ones are arrays at run time). */
export function listFlag(values: Record<string, unknown>, name: string): string[] {
  const v = values[name];
  return v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)];
}

/** Parses an integer flag; undefined stays undefined. */
export function intFlag(values: Record<string, unknown>, name: string, min = 0): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got "${v}"`);
  return n;
}

export function numFlag(values: Record<string, unknown>, name: string): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${v}"`);
  return n;
}

/** "128,64,32" -> [128, 64, 32] */
export function intListFlag(values: Record<string, unknown>, name: string): number[] | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const xs = String(v)
    .split(',')
    .map((s) => Number(s.trim()));
  if (xs.length === 0 || xs.some((n) => !Number.isInteger(n) || n < 1))
    throw new UsageError(`--${name} must be a comma-separated list of positive integers, got "${v}"`);
  return xs;
}

/** --runtime auto|onnx|tfjs for commands that run inference. */
export function runtimeFlag(values: Record<string, unknown>): 'auto' | 'onnx' | 'tfjs' {
  const v = values.runtime ?? 'auto';
  if (v !== 'auto' && v !== 'onnx' && v !== 'tfjs')
    throw new UsageError(`--runtime must be auto, onnx or tfjs, got "${v}"`);
  return v;
}

/** The JSON object in a --config file; anything else (unreadable, not JSON, not an object) is a UsageError. */
export function readJsonConfig(file: string): Record<string, unknown> {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8'));
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v;
  } catch (e) {
    throw new UsageError(`--config ${file}: ${(e as Error).message}`);
  }
}
