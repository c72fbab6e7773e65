// ApiHost's browseFolder (apiHost.ts stays the dispatcher): the listing behind the new-run form's "Browse…" for a
// teacher. It is served by the host rather than a native dialog because a browser tab (`sdtt serve`) cannot get a
// path out of one, and Electron then behaves the same.
// - The folder goes through the same read policy as inspectModel (pathPolicy.ts checkReadPath): in browser mode a
//   request cannot list anything outside the workspace, the --allow folders and assets/.
// - A symbolic link in the folder is followed only when checkReadPath accepts it too (its real path stays inside the
//   policy); a link leading out, a dangling link or a loop is left out of the listing, not reported.
// - Only directory listings and config.json files are read, never weights: a workbench model is told by its
//   config.json's model_type or a run's checkpoints folder (runs/checkpoint.ts), an official one by officialFormatOf.
import { readdirSync, statSync, type Dirent } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import {
  ApiError,
  type ApiRequest,
  type FolderEntry,
  type FolderEntryKind,
  type FolderListing,
} from '../shared/api.ts';
import { MODEL_TYPES, resolveCheckpointDir } from '../runs/checkpoint.ts';
import { officialFormatOf, readJsonObjectFile } from '../engine/io/officialCheckpoint.ts';
import { describeFsError } from '../node/atomicFile.ts';
import { checkReadPath, isPolicyRoot, type PathPolicy } from './pathPolicy.ts';

/** Most entries one listing returns: a folder of thousands of runs stays one small answer. */
export const MAX_FOLDER_ENTRIES = 500;

export interface BrowseContext {
  paths: PathPolicy;
  /** The listing without a path, and what relative paths resolve against (as inspectModel's do). */
  workspace: string;
  /** The shipped models folder, offered as a root when the policy may read it and it exists. */
  modelsDir: string;
}

export function browseFolder(req: ApiRequest<'browseFolder'>, ctx: BrowseContext): FolderListing {
  const path = checkReadPath(ctx.paths, req.path ?? ctx.workspace, {
    base: ctx.workspace,
    what: 'browseFolder: path',
  });
  let dirents: Dirent[];
  try {
    dirents = readdirSync(path, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ApiError(`${path}: no such folder`, 'not-found');
    if (code === 'ENOTDIR') throw new ApiError(`${path} is a file, not a folder`, 'invalid-request');
    throw new ApiError(describeFsError(e, `listing ${path}`), 'invalid-request');
  }
  const candidates = dirents
    .filter((d) => !d.name.startsWith('.') && (d.isDirectory() || d.isFile() || d.isSymbolicLink()))
    .sort((a, b) => byName(a.name, b.name));
  // Classified in name order until the cap: the cost is bounded by the answer, not by the folder's size.
  const entries: FolderEntry[] = [];
  let next = 0;
  for (; next < candidates.length && entries.length < MAX_FOLDER_ENTRIES; next++) {
    const entry = entryOf(path, candidates[next]!, ctx);
    if (entry) entries.push(entry);
  }
  const truncated = candidates.slice(next).some((d) => entryOf(path, d, ctx) !== null);
  entries.sort((a, b) => RANK[a.kind] - RANK[b.kind] || byName(a.name, b.name));
  return { path, parent: parentOf(path, ctx), roots: readableRoots(ctx), entries, truncated };
}

/** Models (ours and official) before folders. */
const RANK: Record<FolderEntryKind, number> = { model: 0, official: 0, folder: 1 };

function byName(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true }) || (a < b ? -1 : a > b ? 1 : 0);
}

/** The entry `d` of `folder` as listed, or null when it is left out (a plain file, a link that may not be followed). */
function entryOf(folder: string, d: Dirent, ctx: BrowseContext): FolderEntry | null {
  const path = join(folder, d.name);
  let isFolder = d.isDirectory();
  if (d.isSymbolicLink()) {
    try {
      checkReadPath(ctx.paths, path, { base: folder, what: 'link' });
      isFolder = statSync(path).isDirectory();
    } catch {
      return null;
    }
  }
  if (!isFolder) return officialFormatOf(path) === 'torch-file' ? { name: d.name, path, kind: 'official' } : null;
  return { name: d.name, path, kind: folderKind(path) };
}

function folderKind(dir: string): FolderEntryKind {
  if (officialFormatOf(dir)) return 'official';
  try {
    // A run folder (or a checkpoints folder) resolves to its latest checkpoint; a folder resolves to itself as soon
    // as it holds any config.json, and only ours name one of the workbench's model types.
    if (resolveCheckpointDir(dir) !== dir) return 'model';
    const modelType = readJsonObjectFile(join(dir, 'config.json'), 'config.json').model_type;
    return (Object.values(MODEL_TYPES) as unknown[]).includes(modelType) ? 'model' : 'folder';
  } catch {
    return 'folder';
  }
}

/** The folder above `path`, or null at a policy folder, at the filesystem root, or where the policy stops. */
function parentOf(path: string, ctx: BrowseContext): string | null {
  const up = dirname(path);
  if (up === path || isPolicyRoot(ctx.paths, path)) return null;
  try {
    return checkReadPath(ctx.paths, up, { base: ctx.workspace, what: 'parent' });
  } catch {
    return null;
  }
}

/** Where browsing can start; under the user's own choice (Electron) the home folder too, as anything is readable. */
function readableRoots(ctx: BrowseContext): FolderListing['roots'] {
  const offered = [
    { label: 'workspace', path: ctx.workspace },
    ...(ctx.paths.allowed ?? []).map((p) => ({ label: basename(p) || p, path: p })),
    { label: 'shipped models', path: ctx.modelsDir },
    ...(ctx.paths.allowed === null ? [{ label: 'home', path: homedir() }] : []),
  ];
  const roots: FolderListing['roots'] = [];
  for (const root of offered) {
    try {
      const path = checkReadPath(ctx.paths, root.path, { base: ctx.workspace, what: 'root' });
      if (!roots.some((r) => r.path === path) && statSync(path).isDirectory()) roots.push({ label: root.label, path });
    } catch {
      // not readable under this policy, or not there: not offered
    }
  }
  return roots;
}
