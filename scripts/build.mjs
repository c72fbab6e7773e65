// Builds what the desktop app runs: the renderer (vite) and bundles of the Electron main process, the preload
// (CommonJS: sandboxed preloads cannot be ES modules) and the worker with its gradient threads. npm packages stay
// external (tfjs-wasm reads its .wasm files from node_modules at run time).
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';

const vite = spawnSync(process.execPath, ['node_modules/vite/bin/vite.js', 'build'], { stdio: 'inherit' });
if (vite.status !== 0) process.exit(vite.status ?? 1);

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  logLevel: 'info',
};
await build({
  ...common,
  format: 'esm',
  entryPoints: {
    'main/index': 'src/main/electronMain.ts',
    'worker/index': 'src/worker/index.ts',
    'worker/gradWorker': 'src/engine/model/gradWorker.ts',
  },
  outdir: 'out',
  outExtension: { '.js': '.js' },
});
await build({
  ...common,
  format: 'cjs',
  entryPoints: { 'preload/index': 'src/preload/index.cts' },
  outdir: 'out',
  outExtension: { '.js': '.cjs' },
  external: ['electron'],
});
