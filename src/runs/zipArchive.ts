// A small, strict zip reader for torch.save checkpoints (which are zip archives written by miniz). Only what such
// files need: stored and deflated entries, ZIP64 sizes and offsets, entries located through the central directory
// (never by scanning local headers, which a hostile file could fake). Reads are positioned, so a multi-GB checkpoint
// is never held in memory as a whole: callers read just the records they want.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import * as zlib from 'node:zlib';
import { CheckpointError } from './safetensors.ts';

/** Random access to the bytes of an archive: a file (positioned reads) or a buffer already in memory. */
export interface ByteSource {
  readonly size: number;
  /** Fills `into` with the bytes at [pos, pos + into.length). */
  readInto(pos: number, into: Uint8Array): void;
  close(): void;
}

export function bufferSource(buf: Uint8Array): ByteSource {
  return { size: buf.length, readInto: (pos, into) => into.set(buf.subarray(pos, pos + into.length)), close() {} };
}

export function fileSource(file: string): ByteSource {
  const fd = openSync(file, 'r');
  let size: number;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error('not a regular file');
    size = st.size;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return {
    size,
    readInto(pos, into) {
      let done = 0;
      while (done < into.length) {
        const n = readSync(fd, into, done, into.length - done, pos + done);
        if (n === 0) throw new CheckpointError(`${file}: file shrank while being read (at byte ${pos + done})`);
        done += n;
      }
    },
    close: () => closeSync(fd),
  };
}

export interface ZipEntry {
  name: string;
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_EOCD64_LOCATOR = 0x07064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const U32_MAX = 0xffffffff;

let CRC_TABLE: Uint32Array | undefined;

/** zlib.crc32 is native from Node 20.15 / 22.2; older Node 20 falls back to a table-driven loop. */
function crc32(data: Uint8Array): number {
  const native = (zlib as { crc32?: (d: Uint8Array) => number }).crc32;
  if (typeof native === 'function') return native(data) >>> 0;
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function u64(view: DataView, pos: number, what: string, fail: (m: string) => never): number {
  const v = view.getBigUint64(pos, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${v} is too large (corrupt zip)`);
  return Number(v);
}

export class ZipArchive {
  readonly entries = new Map<string, ZipEntry>();

  private constructor(
    private readonly src: ByteSource,
    readonly source: string,
  ) {}

  private fail(msg: string): never {
    throw new CheckpointError(`${this.source}: ${msg}`);
  }

  private bytes(pos: number, len: number): Uint8Array {
    if (pos < 0 || len < 0 || pos + len > this.src.size)
      this.fail(`zip structure points at bytes [${pos}, ${pos + len}) beyond the end of the file (truncated?)`);
    // allocUnsafeSlow: an own, 8-byte-aligned ArrayBuffer, so typed views over the result need no copy.
    const out = Buffer.allocUnsafeSlow(len);
    this.src.readInto(pos, out);
    return out;
  }

  /** Parses the central directory of `src`; `source` (the file name) prefixes every error message. */
  static open(src: ByteSource, source: string): ZipArchive {
    const zip = new ZipArchive(src, source);
    zip.readCentralDirectory();
    return zip;
  }

  private readCentralDirectory(): void {
    const fail = (m: string) => this.fail(m);
    // The end record is 22 bytes plus a comment of at most 65535 bytes, so it lies within the last 65557 bytes.
    const tailLen = Math.min(this.src.size, 22 + 0xffff + 20);
    const tailStart = this.src.size - tailLen;
    const tail = this.bytes(tailStart, tailLen);
    const tv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tv.getUint32(i, true) === SIG_EOCD && i + 22 + tv.getUint16(i + 20, true) <= tailLen) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) {
      const head = this.src.size >= 4 ? this.bytes(0, 4) : new Uint8Array(0);
      const looksZip = head.length === 4 && new DataView(head.buffer).getUint32(0, true) === SIG_LOCAL;
      fail(
        looksZip
          ? 'the file starts like a zip archive but has no end-of-central-directory record: ' +
              'it is truncated (incomplete download or interrupted save?)'
          : 'no zip end-of-central-directory record: not a zip archive, or truncated',
      );
    }
    let count = tv.getUint16(eocd + 10, true);
    let cdSize = tv.getUint32(eocd + 12, true);
    let cdOffset = tv.getUint32(eocd + 16, true);
    const loc = eocd - 20;
    if (loc >= 0 && tv.getUint32(loc, true) === SIG_EOCD64_LOCATOR) {
      const recPos = u64(tv, loc + 8, 'ZIP64 end record offset', fail);
      const rec = this.bytes(recPos, 56);
      const rv = new DataView(rec.buffer);
      if (rv.getUint32(0, true) !== SIG_EOCD64) fail(`no ZIP64 end-of-central-directory record at byte ${recPos}`);
      count = u64(rv, 32, 'entry count', fail);
      cdSize = u64(rv, 40, 'central directory size', fail);
      cdOffset = u64(rv, 48, 'central directory offset', fail);
    } else if (count === 0xffff || cdSize === U32_MAX || cdOffset === U32_MAX) {
      fail('the end record defers to a ZIP64 record that is missing (corrupt zip)');
    }
    const cd = this.bytes(cdOffset, cdSize);
    const cv = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cdSize || cv.getUint32(p, true) !== SIG_CENTRAL) fail(`central directory entry ${i} is corrupt`);
      const flags = cv.getUint16(p + 8, true);
      const nameLen = cv.getUint16(p + 28, true);
      const extraLen = cv.getUint16(p + 30, true);
      const commentLen = cv.getUint16(p + 32, true);
      if (p + 46 + nameLen + extraLen + commentLen > cdSize) fail(`central directory entry ${i} is truncated`);
      const name = Buffer.from(cd.subarray(p + 46, p + 46 + nameLen)).toString(flags & 0x800 ? 'utf8' : 'latin1');
      if (flags & 0x1) fail(`zip entry '${name}' is encrypted`);
      const e: ZipEntry = {
        name,
        method: cv.getUint16(p + 10, true),
        crc32: cv.getUint32(p + 16, true),
        compressedSize: cv.getUint32(p + 20, true),
        size: cv.getUint32(p + 24, true),
        localHeaderOffset: cv.getUint32(p + 42, true),
      };
      // ZIP64 extra field: 64-bit values for exactly those fields whose 32-bit slot holds 0xFFFFFFFF, in this order.
      const wide = (['size', 'compressedSize', 'localHeaderOffset'] as const).filter((k) => e[k] === U32_MAX);
      if (wide.length) {
        let x = p + 46 + nameLen;
        const end = x + extraLen;
        let found = false;
        while (x + 4 <= end) {
          const id = cv.getUint16(x, true);
          const len = cv.getUint16(x + 2, true);
          if (id === 0x0001) {
            if (len < 8 * wide.length) fail(`zip entry '${name}': ZIP64 extra field is too short`);
            wide.forEach((k, j) => (e[k] = u64(cv, x + 4 + 8 * j, `zip entry '${name}' ${k}`, fail)));
            found = true;
            break;
          }
          x += 4 + len;
        }
        if (!found) fail(`zip entry '${name}': sizes defer to a ZIP64 extra field that is missing`);
      }
      if (this.entries.has(name)) fail(`zip entry '${name}' appears twice in the central directory`);
      this.entries.set(name, e);
      p += 46 + nameLen + extraLen + commentLen;
    }
  }

  /** The entry's compressed bytes, located through its local header (whose extra field torch uses for padding). */
  private rawData(e: ZipEntry): { pos: number; len: number } {
    const lh = this.bytes(e.localHeaderOffset, 30);
    const lv = new DataView(lh.buffer);
    if (lv.getUint32(0, true) !== SIG_LOCAL)
      this.fail(`zip entry '${e.name}': no local header at byte ${e.localHeaderOffset} (corrupt zip)`);
    const pos = e.localHeaderOffset + 30 + lv.getUint16(26, true) + lv.getUint16(28, true);
    if (pos + e.compressedSize > this.src.size)
      this.fail(
        `zip entry '${e.name}' reaches beyond the end of the file (${this.src.size} bytes): the file is truncated`,
      );
    return { pos, len: e.compressedSize };
  }

  /** The whole (inflated) content of entry `name`, CRC-checked, in a fresh aligned buffer. */
  read(name: string): Uint8Array {
    const e = this.entries.get(name);
    if (!e) return this.fail(`zip entry '${name}' is missing`);
    const { pos, len } = this.rawData(e);
    let data: Uint8Array;
    if (e.method === 0) {
      if (e.compressedSize !== e.size) this.fail(`zip entry '${name}' is stored but its two sizes differ`);
      data = this.bytes(pos, len);
    } else if (e.method === 8) {
      let out: Buffer;
      try {
        out = zlib.inflateRawSync(this.bytes(pos, len), { maxOutputLength: Math.max(1, e.size) });
      } catch (err) {
        return this.fail(`zip entry '${name}' does not inflate (${(err as Error).message})`);
      }
      if (out.length !== e.size) this.fail(`zip entry '${name}' inflates to ${out.length} bytes, not ${e.size}`);
      data = out.byteOffset === 0 ? out : Buffer.allocUnsafeSlow(out.length).fill(out); // aligned for typed views
    } else {
      return this.fail(`zip entry '${name}' uses compression method ${e.method} (only stored and deflate are read)`);
    }
    if (crc32(data) !== e.crc32) this.fail(`zip entry '${name}' fails its CRC-32 check: the file is corrupt`);
    return data;
  }

  close(): void {
    this.src.close();
  }
}
