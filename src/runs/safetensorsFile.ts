// Reading one safetensors file from disk for a loader: a broken symbolic link or a file too large to read is said in
// words naming the file (fs.existsSync and readFileSync say only "false" or a raw code), then the format is
// validated by decodeSafetensors.
import * as fs from 'node:fs';
import { describeFsError } from '../node/atomicFile.ts';
import {
  CheckpointError,
  MAX_HEADER_BYTES,
  decodeSafetensors,
  decodeSafetensorsHeader,
  type DecodedSafetensors,
} from './safetensors.ts';

/**
 * Why `p` cannot be opened although a directory entry of that name exists, in words: a symbolic link loop or a link
 * to a missing target (fs.existsSync says only "false" for both). undefined when `p` opens, or has no entry at all.
 */
export function brokenLinkReason(p: string): string | undefined {
  try {
    fs.statSync(p);
    return undefined;
  } catch (err) {
    let link: string;
    try {
      if (!fs.lstatSync(p).isSymbolicLink()) return undefined;
      link = fs.readlinkSync(p);
    } catch {
      return undefined;
    }
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') return `${p} is a symbolic link loop (it leads back to itself through '${link}')`;
    if (code === 'ENOENT' || code === 'ENOTDIR') return `${p} is a symbolic link to '${link}', which does not exist`;
    return `${p} is a symbolic link to '${link}', which cannot be opened (${code})`;
  }
}

/** A directory entry named `p` exists (a broken symbolic link counts: reading it then says why it fails). */
export function hasEntry(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Node's fs.readFileSync refuses files over 2 GiB - 1 byte (its single-read limit). */
const MAX_READ_BYTES = 2 ** 31 - 1;

export function readSafetensorsFile(file: string): DecodedSafetensors {
  const broken = brokenLinkReason(file);
  if (broken) throw new CheckpointError(broken);
  let buf: Buffer;
  try {
    const size = fs.statSync(file).size;
    // A file past the read limit is judged by its header alone: a corrupt (or sparse, all-zero) one says what is
    // wrong with it; a valid one is too large for one file here.
    if (size > MAX_READ_BYTES) {
      const head = readPrefix(file, Math.min(size, 8 + MAX_HEADER_BYTES));
      decodeSafetensorsHeader(head, file, size);
      throw new CheckpointError(
        `${file}: ${(size / 2 ** 30).toFixed(2)} GiB is more than one safetensors file can be here (2 GiB); shard it or store it as float16`,
      );
    }
    buf = fs.readFileSync(file);
  } catch (err) {
    if (err instanceof CheckpointError) throw err;
    throw new CheckpointError(`${file}: ${describeFsError(err, 'reading')}`);
  }
  return decodeSafetensors(buf, file);
}

function readPrefix(file: string, bytes: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const n = fs.readSync(fd, buf, 0, bytes, 0);
    return buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}
