// What ApiHost's getInfo reports about the host itself, kept apart from the request handling in apiHost.ts: the
// repository root, the app version (package.json), and nodeBackendProbe, which learns what backend 'auto' resolves
// to from a short-lived child process so that the host process never loads tfjs or onnxruntime.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BackendInfo {
  backend: string;
  device: string;
  /** Measured matmul throughput of that backend, GFLOP/s (absent when the probe could not measure it). */
  gflops?: number;
}

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function readVersion(): string {
  try {
    return String(
      (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version?: unknown }).version ?? '0.0.0',
    );
  } catch {
    return '0.0.0';
  }
}

/**
 * Asks a short-lived Node process (`sdtt backend`, cli/backend.ts) what backend 'auto' trains on and how fast it
 * multiplies matrices, so the host process never loads tfjs or onnxruntime. Works from Electron too
 * (ELECTRON_RUN_AS_NODE). Rejects after `timeoutMs` or when the child fails.
 */
export function nodeBackendProbe(opts: { timeoutMs?: number } = {}): () => Promise<BackendInfo> {
  return () =>
    new Promise((resolvePromise, reject) => {
      execFile(
        process.execPath,
        [join(REPO_ROOT, 'bin', 'sdtt.js'), 'backend'],
        {
          timeout: opts.timeoutMs ?? 60_000,
          env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
          maxBuffer: 1 << 20,
          cwd: REPO_ROOT,
        },
        (err, stdout, stderr) => {
          const line = String(stdout)
            .split('\n')
            .find((l) => l.startsWith('{'));
          if (!line)
            return reject(
              new Error(
                err ? `${err.message.split('\n')[0]} ${String(stderr).slice(-300)}` : 'the probe printed nothing',
              ),
            );
          try {
            const info = JSON.parse(line) as BackendInfo & { gflops?: unknown };
            if (typeof info.backend !== 'string' || typeof info.device !== 'string')
              throw new Error('malformed answer');
            const { gflops } = info;
            resolvePromise({
              backend: info.backend,
              device: info.device,
              ...(typeof gflops === 'number' && Number.isFinite(gflops) && gflops > 0 ? { gflops } : {}),
            });
          } catch (e) {
            reject(e as Error);
          }
        },
      );
    });
}
