// `sdtt serve`: browser mode. Parses the flags, checks the --allow folders, starts the browser-mode host
// (main/browserHost.ts, where its security model is described) and stops it on Ctrl+C after the runs checkpoint.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DEFAULT_RENDERER_DIR, NOT_BUILT, isLoopback, startServer } from '../main/browserHost.ts';
import { assertFolders, describePolicy, PathRefusedError } from '../main/pathPolicy.ts';
import { intFlag, listFlag, parseFlags, UsageError, type Flags } from './args.ts';

const FLAGS: Flags = {
  host: {
    type: 'string',
    help: 'address to bind; anything but loopback exposes the server to the network',
    default: '127.0.0.1',
  },
  port: { type: 'string', help: 'port; 0 = any free port', default: '0' },
  workspace: { type: 'string', help: 'folder that holds runs/', default: '.' },
  allow: {
    type: 'string',
    multiple: true,
    help: 'another folder requests may read and write (repeatable); by default only the workspace, and assets/ read-only',
  },
  token: { type: 'string', help: 'access token (default: 32 random bytes, printed in the URL)' },
};

export async function run(argv: string[]): Promise<number> {
  const f = parseFlags(
    argv,
    FLAGS,
    'usage: sdtt serve [--host 127.0.0.1] [--port 0] [--workspace .] [--allow DIR ...] [--token T]',
  );
  if (!f) return 0;
  const port = intFlag(f, 'port', 0)!;
  if (port > 65535) throw new UsageError(`--port must be <= 65535, got ${port}`);
  const host = String(f.host);
  const token = f.token === undefined ? undefined : String(f.token);
  if (token !== undefined && token.length < 16) throw new UsageError('--token must be at least 16 characters');
  if (!isLoopback(host)) {
    console.warn(
      `sdtt serve: WARNING: binding ${host}, not a loopback address: anyone who can reach this machine and learns the token can control runs and write exports. Prefer an SSH tunnel to 127.0.0.1.`,
    );
  }
  if (!existsSync(join(DEFAULT_RENDERER_DIR, 'index.html'))) console.warn(`sdtt serve: ${NOT_BUILT}`);
  const allow = listFlag(f, 'allow');
  try {
    assertFolders(allow);
  } catch (e) {
    if (e instanceof PathRefusedError) throw new UsageError(e.message);
    throw e;
  }
  const srv = await startServer({ host, port, workspace: String(f.workspace), allow, ...(token ? { token } : {}) });
  console.log(`sdtt serve: workspace ${resolve(String(f.workspace))}`);
  console.log(`sdtt serve: requests may ${describePolicy(srv.api.paths)}`);
  console.log(`sdtt serve: open ${srv.url}`);
  console.log('sdtt serve: press Ctrl+C to stop (running jobs checkpoint first)');

  await new Promise<void>((done) => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (stopping) {
        console.error(`sdtt serve: ${sig} again: exiting without waiting for the runs`);
        process.exit(130);
      }
      stopping = true;
      console.log(`sdtt serve: ${sig}: stopping (active runs checkpoint and stop)...`);
      void srv.close().then(done, (e) => {
        console.error(`sdtt serve: shutdown: ${(e as Error).message}`);
        done();
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  console.log('sdtt serve: stopped');
  return 0;
}
