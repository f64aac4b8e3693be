// A reader of the (gzipped) tar archives `npm pack` writes: POSIX ustar headers, with pax extended
// headers ('x', their `path` key) and GNU long names ('L') for names over 100 bytes. Only what the
// SOTU builder needs: the regular files of the archive, in archive order, read into memory.

import { gunzipSync } from 'node:zlib';
import { CorpusError } from '../files.ts';

export interface TarEntry {
  /** The path inside the archive, e.g. `package/data/1790_george_washington_n.json`. */
  name: string;
  data: Buffer;
}

const BLOCK = 512;

function cString(b: Buffer, start: number, len: number): string {
  const s = b.subarray(start, start + len);
  const z = s.indexOf(0);
  return s.subarray(0, z < 0 ? len : z).toString('utf8');
}

function octal(b: Buffer, start: number, len: number, what: string, where: string): number {
  const s = cString(b, start, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new CorpusError(`${where}: bad ${what} field ${JSON.stringify(s)} in a tar header`);
  return parseInt(s, 8);
}

/** The `path` of a pax extended header's records (`<len> <key>=<value>\n` …), if any. */
function paxPath(data: Buffer, where: string): string | undefined {
  let off = 0;
  let found: string | undefined;
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    if (sp < 0) break;
    const len = Number(data.subarray(off, sp).toString('ascii'));
    if (!Number.isInteger(len) || len <= 0 || off + len > data.length) throw new CorpusError(`${where}: malformed pax header record at byte ${off}`);
    const rec = data.subarray(sp + 1, off + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0 && rec.slice(0, eq) === 'path') found = rec.slice(eq + 1);
    off += len;
  }
  return found;
}

/**
 * The regular files of a tar archive (gunzipped first when it starts with the gzip magic bytes).
 * `where` names the archive in errors: a bad checksum, a truncated member, an unreadable gzip stream.
 */
export function readTar(archive: Buffer, where: string): TarEntry[] {
  let tar: Buffer;
  if (archive.length >= 2 && archive[0] === 0x1f && archive[1] === 0x8b) {
    try {
      tar = gunzipSync(archive);
    } catch (e) {
      throw new CorpusError(`${where}: truncated or corrupt gzip data (${(e as Error).message})`);
    }
  } else tar = archive;
  const out: TarEntry[] = [];
  let off = 0;
  let longName: string | undefined;
  let ended = false;
  while (off + BLOCK <= tar.length) {
    const h = tar.subarray(off, off + BLOCK);
    if (h.every((x) => x === 0)) {
      ended = true;
      break;
    }
    const stored = octal(h, 148, 8, 'checksum', where);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    if (sum !== stored) throw new CorpusError(`${where}: not a tar archive, or corrupt (header checksum mismatch at byte ${off})`);
    const size = octal(h, 124, 12, 'size', where);
    const type = String.fromCharCode(h[156]!);
    let name = cString(h, 0, 100);
    if (cString(h, 257, 6) === 'ustar') {
      const prefix = cString(h, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    const start = off + BLOCK;
    if (start + size > tar.length) throw new CorpusError(`${where}: truncated tar archive (member ${JSON.stringify(name)} needs ${size} bytes, ${tar.length - start} left)`);
    const data = tar.subarray(start, start + size);
    off = start + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'x') {
      longName = paxPath(data, where) ?? longName;
      continue;
    }
    if (type === 'L') {
      longName = cString(data, 0, data.length);
      continue;
    }
    if (type === 'g') continue;
    if (type === '0' || type === '\0' || type === '7') out.push({ name: longName ?? name, data: Buffer.from(data) });
    longName = undefined;
  }
  if (!ended && off < tar.length) throw new CorpusError(`${where}: truncated tar archive (a partial header at byte ${off})`);
  return out;
}
