// A browser-mode ApiHost for tests of the read policy (inspectModel, browseFolder): a temporary base folder holding
// the workspace, one --allow folder and a folder outside both, and a host that never spawns a worker.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunStore } from '../../src/runs/runStore.ts';
import { RunManager } from '../../src/main/runManager.ts';
import { ApiHost, type ApiHostOptions } from '../../src/main/apiHost.ts';
import { confinedPolicy } from '../../src/main/pathPolicy.ts';

export interface PolicyFolders {
  base: string;
  ws: string;
  allowed: string;
  outside: string;
  done(): void;
}

/** `<tmp>/<prefix>XXXX/{ws, allowed, outside}`, created empty. */
export function policyFolders(prefix: string): PolicyFolders {
  const base = mkdtempSync(join(tmpdir(), prefix));
  const f = { base, ws: join(base, 'ws'), allowed: join(base, 'allowed'), outside: join(base, 'outside') };
  for (const d of [f.ws, f.allowed, f.outside]) mkdirSync(d);
  return { ...f, done: () => rmSync(base, { recursive: true, force: true }) };
}

/** The host on `f.ws`: confined to the workspace and `f.allowed` (browser mode), or the user's own choice. */
export function policyHost(
  f: PolicyFolders,
  { confined = true, ...opts }: Partial<ApiHostOptions> & { confined?: boolean } = {},
): ApiHost {
  const manager = new RunManager(new RunStore(f.ws), {
    spawn: () => {
      throw new Error('no workers in this test');
    },
    onWarning: () => {},
  });
  return new ApiHost({
    manager,
    workspace: f.ws,
    host: 'browser',
    probeBackend: null,
    warn: () => {},
    ...(confined ? { paths: confinedPolicy(f.ws, [f.allowed]) } : {}),
    ...opts,
  });
}
