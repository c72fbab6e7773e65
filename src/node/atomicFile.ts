// Node-only (main, worker, CLI; never the renderer): the one way files that readers poll are written, and the one
// way an fs failure is told (describeFsError: "disk full while writing <file>", not a bare "ENOSPC ... write").
// Why src/node/: shared/ is the contract the renderer imports too, so it holds no Node module; main/ would not do
// because the engine writes these files as well and the engine must not import main; and the engine is the
// compute layer, not a home for host file handling that main and the CLI need. src/node/ is the Node-only layer
// below all three: engine, worker, main and CLI may import it; it imports only Node built-ins; shared/ and the
// renderer never import it.
import { appendFileSync, closeSync, fsyncSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';

/** Turns an fs error into a message a user can act on ("disk full while writing ..."). */
export function describeFsError(err: unknown, action: string): string {
  const e = err as NodeJS.ErrnoException;
  switch (e?.code) {
    case 'ENOSPC':
      return `disk full while ${action}`;
    case 'EDQUOT':
      return `disk quota exceeded while ${action}`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied while ${action}`;
    case 'EROFS':
      return `read-only file system while ${action}`;
    default:
      return `${action} failed: ${e?.message ?? String(err)}`;
  }
}

/** A failed write, told by describeFsError with the file named; `code` is the fs error's (ENOSPC, EACCES, ...). */
export class FileWriteError extends Error {
  readonly code?: string;
  constructor(action: string, cause: unknown) {
    super(describeFsError(cause, action), { cause });
    this.code = (cause as NodeJS.ErrnoException)?.code;
  }

  /** `err` as a FileWriteError for `action` (unchanged when it already is one). */
  static of(action: string, err: unknown): FileWriteError {
    return err instanceof FileWriteError ? err : new FileWriteError(action, err);
  }
}

/** Appends `text` (whole lines) to `file`; a failure is a FileWriteError naming the file. */
export function appendFileLines(file: string, text: string): void {
  try {
    appendFileSync(file, text);
  } catch (e) {
    throw FileWriteError.of(`writing ${file}`, e);
  }
}

/**
 * Writes `file` completely under a temporary name, fsyncs it, then renames it over the target: a reader (the UI
 * polling samples, a second process listing runs) never sees a torn file, and a crash or a full disk mid-write
 * leaves the previous content in place. The temp name carries the pid so two writers never share one; a failed
 * write removes its temp file and throws a FileWriteError that names `file` (describeFsError).
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
    throw FileWriteError.of(`writing ${file}`, e);
  }
}
