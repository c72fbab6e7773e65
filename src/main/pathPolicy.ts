// Which paths an API request may name: a new run's data / teacher / judge / tokenizer file (read) and an export
// folder (write). ONE policy module for every host of ApiHost:
// - browser mode (`sdtt serve`): confinedPolicy. Requests read and write only inside the workspace and the folders
//   given with `sdtt serve --allow DIR`, and may read (never write) the shipped assets/. Anything else is refused:
//   whoever holds the token must not reach the rest of the disk.
// - Electron and the CLI: userChoicePolicy. The path is the user's own choice (typed in the app window, which only
//   trusted app code drives; the CLI's --out), so it may lie anywhere; Electron still never writes into assets/.
// Both: every check runs on the REAL path (symlinks resolved; for a path that does not exist yet, e.g. a new export
// folder, the realpath of its deepest existing ancestor plus the rest), so a symlink inside the workspace pointing
// outside is refused; a dangling symlink, a symlink loop or a file where a folder should be is refused with a
// sentence; and nothing is ever written into a run's checkpoints folder (an export there would pass for a checkpoint
// the run cannot resume from). Host-agnostic: nothing from Electron, nothing that loads tfjs.
import { realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brokenLinkReason } from '../runs/safetensorsFile.ts';
import { isTokenizerName } from '../engine/data/tokenizers.ts';

/** The repository's shipped assets/ folder (models, data, tokenizer): read-only to requests. */
export const SHIPPED_ASSETS_DIR = fileURLToPath(new URL('../../assets', import.meta.url));

export interface PathPolicy {
  /** Folders a request may read and write inside; null = anywhere (the user named the path themselves). */
  readonly allowed: readonly string[] | null;
  /** Folders a request may read but never write into (a confined request may read them too). */
  readonly readOnly: readonly string[];
}

/** A path a request may not use. `code` is the ApiError code it maps to. */
export class PathRefusedError extends Error {
  readonly code: 'invalid-request' | 'conflict';
  constructor(message: string, code: 'invalid-request' | 'conflict' = 'invalid-request') {
    super(message);
    this.name = 'PathRefusedError';
    this.code = code;
  }
}

/** Browser mode: the workspace and each --allow folder (read/write), plus `readOnly` (default: the shipped assets/). */
export function confinedPolicy(
  workspace: string,
  allow: readonly string[] = [],
  readOnly: readonly string[] = [SHIPPED_ASSETS_DIR],
): PathPolicy {
  const allowed = [...new Set([workspace, ...allow].map((d) => resolve(d)))];
  return { allowed, readOnly: readOnly.map((d) => resolve(d)) };
}

/** Electron (readOnly: the shipped assets/) and the CLI (readOnly: none, it may re-export the shipped models). */
export function userChoicePolicy(readOnly: readonly string[] = [SHIPPED_ASSETS_DIR]): PathPolicy {
  return { allowed: null, readOnly: readOnly.map((d) => resolve(d)) };
}

/** True when `path` is `root` or lies inside it (both absolute and normalised). */
function within(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!isAbsolute(rel) && rel !== '..' && !rel.startsWith(`..${sep}`));
}

/**
 * The real location of the absolute path `abs`: realpath when it exists, else the realpath of its deepest existing
 * ancestor joined with the rest. Throws PathRefusedError (code 'conflict') for a dangling symlink on the way, a
 * symlink loop, or a non-folder where a folder is needed.
 */
export function realPathOf(abs: string, what = abs): string {
  const rest: string[] = [];
  let cur = resolve(abs);
  for (;;) {
    try {
      return rest.length ? join(realpathSync.native(cur), ...rest.reverse()) : realpathSync.native(cur);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const broken = brokenLinkOnTheWay(cur);
      if (broken)
        throw new PathRefusedError(`${what}: ${broken}; remove or fix the link, or choose another path`, 'conflict');
      if (code === 'ENOTDIR')
        throw new PathRefusedError(`${what}: a part of ${cur} is a file, not a folder`, 'conflict');
      if (code !== 'ENOENT')
        throw new PathRefusedError(`${what}: cannot resolve ${cur} (${(e as Error).message})`, 'conflict');
      const parent = dirname(cur);
      if (parent === cur) throw new PathRefusedError(`${what}: cannot resolve ${abs}`, 'conflict');
      rest.push(basename(cur));
      cur = parent;
    }
  }
}

/** Why `p` or one of its ancestors is a broken symbolic link (a loop, a missing target), or undefined. */
function brokenLinkOnTheWay(p: string): string | undefined {
  for (let q = p; ; q = dirname(q)) {
    const broken = brokenLinkReason(q);
    if (broken || dirname(q) === q) return broken;
  }
}

/** Real locations of policy roots; a root that cannot be resolved matches nothing. */
function realRoots(dirs: readonly string[]): { dir: string; real: string }[] {
  const out: { dir: string; real: string }[] = [];
  for (const dir of dirs) {
    try {
      out.push({ dir, real: realPathOf(dir) });
    } catch {
      // a broken root allows nothing
    }
  }
  return out;
}

/** "inside the workspace /ws, --allow folders /a, /b; read-only: /repo/assets" style summary of a policy. */
export function describePolicy(policy: PathPolicy, access: 'read' | 'write' = 'read'): string {
  if (policy.allowed === null)
    return policy.readOnly.length ? `anywhere except inside ${policy.readOnly.join(', ')} (read-only)` : 'anywhere';
  const rw = `read/write inside ${policy.allowed.join(', ')}`;
  if (!policy.readOnly.length) return rw;
  return access === 'write'
    ? `${rw} (never inside the read-only ${policy.readOnly.join(', ')})`
    : `${rw}; read-only inside ${policy.readOnly.join(', ')}`;
}

const HOW_TO_ALLOW = 'start `sdtt serve` with --allow DIR to allow another folder';

/**
 * Checks a path a request names for READING (a run's data, teacher, judge, tokenizer file). Relative paths resolve
 * against `base` (the workspace). Returns the absolute path (not the realpath) to use. Under a policy without
 * `allowed` (user choice) any path is accepted as is.
 */
export function checkReadPath(policy: PathPolicy, path: string, opts: { base: string; what: string }): string {
  const abs = resolve(opts.base, path);
  if (policy.allowed === null) return abs;
  const real = realPathOf(abs, `${opts.what} ${JSON.stringify(path)}`);
  if (realRoots([...policy.allowed, ...policy.readOnly]).some((r) => within(r.real, real))) return abs;
  throw new PathRefusedError(
    `${opts.what} ${JSON.stringify(path)}${real !== abs ? ` (really ${real})` : abs !== path ? ` (${abs})` : ''} lies outside the folders this server may read: ${describePolicy(policy, 'read')}; ${HOW_TO_ALLOW}`,
  );
}

/**
 * True when the absolute `abs` really is one of a confining policy's own folders (allowed or read-only): the top a
 * folder browser may climb to. Always false under a user-choice policy, which has no such folders.
 */
export function isPolicyRoot(policy: PathPolicy, abs: string): boolean {
  if (policy.allowed === null) return false;
  let real: string;
  try {
    real = realPathOf(abs);
  } catch {
    return false;
  }
  return realRoots([...policy.allowed, ...policy.readOnly]).some((r) => r.real === real);
}

/**
 * Checks a folder a request names for WRITING (an export). Relative paths resolve against `base`. Refused: a path
 * outside `allowed` (when set), inside a read-only folder, or inside <runsRoot>/<id>/checkpoints; each on the real
 * path. Returns the absolute path (not the realpath) to write.
 */
export function checkWritePath(
  policy: PathPolicy,
  path: string,
  opts: { base: string; what: string; runsRoot?: string },
): string {
  const abs = resolve(opts.base, path);
  const real = realPathOf(abs, `${opts.what} ${abs}`);
  const really = real !== abs ? ` (really ${real})` : '';
  const named = `${opts.what} ${JSON.stringify(path)}${abs !== path ? ` (${abs})` : ''}`;
  if (opts.runsRoot) {
    // Checked on the path as named and on the real one (a link elsewhere that leads into a checkpoints folder).
    const runsRoot = resolve(opts.runsRoot);
    for (const [root, p] of [[runsRoot, abs], ...realRoots([runsRoot]).map((r) => [r.real, real])] as [
      string,
      string,
    ][]) {
      const inRuns = relative(root, p).split(sep);
      if (within(root, p) && inRuns.length >= 2 && inRuns[1] === 'checkpoints') {
        throw new PathRefusedError(
          `${abs}${really} lies in run "${inRuns[0]}"'s checkpoints folder, where an export would pass for a checkpoint; choose another folder`,
          'conflict',
        );
      }
    }
  }
  const ro = realRoots(policy.readOnly).find((r) => within(r.real, real) || within(r.dir, abs));
  if (ro)
    throw new PathRefusedError(
      `${named}${really} lies inside ${ro.dir}, which is read-only (the shipped models and data); choose another folder`,
    );
  if (policy.allowed !== null && !realRoots(policy.allowed).some((r) => within(r.real, real))) {
    throw new PathRefusedError(
      `${named}${really} lies outside the folders this server may write: ${describePolicy(policy, 'write')}; ${HOW_TO_ALLOW}`,
    );
  }
  return abs;
}

/**
 * The paths a new run's config will read (data, teacher, judge, a tokenizer file), checked for reading. Under a
 * confining policy each becomes absolute (relative ones resolve against `base`, the workspace), so the worker opens
 * exactly the path that was checked, whatever its working folder. Returns the config to create the run with.
 */
export function checkRunConfigPaths<C extends Record<string, unknown>>(policy: PathPolicy, config: C, base: string): C {
  if (policy.allowed === null) return config;
  const read = (field: string, p: string) => checkReadPath(policy, p, { base, what: `createRun: config.${field}` });
  const cfg: Record<string, unknown> = { ...config };
  for (const field of ['data', 'teacher', 'judge'] as const) {
    if (typeof cfg[field] === 'string') cfg[field] = read(field, cfg[field]);
  }
  // 'auto', 'byte', 'gpt2' and a shipped tokenizer's name are names, not paths.
  const tok = cfg.tokenizer;
  if (typeof tok === 'string' && !isTokenizerName(tok)) cfg.tokenizer = read('tokenizer', tok);
  return cfg as C;
}

/** Throws unless every folder exists and is a folder (for --allow). */
export function assertFolders(dirs: readonly string[], flag = '--allow'): void {
  for (const d of dirs) {
    let ok = false;
    try {
      ok = statSync(d).isDirectory();
    } catch {
      // missing
    }
    if (!ok) throw new PathRefusedError(`${flag} ${d}: no such folder`);
  }
}
