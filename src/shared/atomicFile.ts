// Node-only (main, worker, CLI; never the renderer): the one way files that readers poll are written.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';

/**
 * Writes `file` completely under a temporary name, fsyncs it, then renames it over the target: a reader (the UI
 * polling samples, a second process listing runs) never sees a torn file, and a crash or a full disk mid-write
 * leaves the previous content in place. The temp name carries the pid so two writers never share one; a failed
 * write removes its temp file and rethrows.
 */
export function writeFileAtomic(file: string, content: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, content);
    const fd = openSync(tmp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
