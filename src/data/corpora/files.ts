// Reading corpus files as streams (spec §7): which files a path names (a file, a directory, or a glob
// in the last path component), JSON lines (plain or gzipped, detected by the gzip magic bytes) split
// into records one line at a time, Parquet read one row group at a time, and the diagnostics of bad
// input (a malformed record is counted and skipped with a warning, or fails under `strict`).
//
// Never a whole corpus in memory: a JSON-lines file is held one read chunk (64 KiB) plus one line at a
// time, a Parquet file one row group of the columns read.
//
// Non-UTF-8 bytes: a JSON line (or a Parquet string) that is not valid UTF-8 is a malformed record —
// counted in `skipped` and skipped with a warning (an error under `strict`) — rather than decoded with
// U+FFFD replacement characters, so that no text the tokenizer sees was invented by the loader.

import { createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';

/** A corpus input error: a missing path, a truncated shard, a malformed record under `strict`. */
export class CorpusError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorpusError';
  }
}

/** How a loader treats bad input. */
export interface LoadOptions {
  /** Fail on the first malformed record or empty shard instead of skipping it with a warning. */
  strict?: boolean;
  /** Receives each warning (default: none are shown). */
  onWarning?: (message: string) => void;
}

/** Counts skipped records and reports warnings; under `strict` a skip is an error instead. */
export class Diagnostics {
  /** Malformed records skipped. */
  skipped = 0;
  /** Warnings issued (skips and empty shards). */
  warnings = 0;
  readonly strict: boolean;
  private readonly onWarning: (message: string) => void;

  constructor(opts: LoadOptions = {}) {
    this.strict = opts.strict ?? false;
    this.onWarning = opts.onWarning ?? (() => {});
  }

  /** A malformed record at `where` (e.g. "shard.json.gz:12"): skipped and counted, or an error under strict. */
  skip(where: string, reason: string): void {
    if (this.strict) throw new CorpusError(`${where}: ${reason} (strict: not skipped)`);
    this.skipped++;
    this.warn(`${where}: ${reason}; record skipped`);
  }

  /** A shard without records: a warning, or an error under strict. */
  emptyShard(file: string): void {
    if (this.strict) throw new CorpusError(`${file}: empty shard, no records (strict)`);
    this.warn(`${file}: empty shard, no records`);
  }

  warn(message: string): void {
    this.warnings++;
    this.onWarning(message);
  }
}

/** A warning printer for the commands: shows the first `limit` warnings, then only counts them. */
export function limitedWarnings(write: (line: string) => void, limit = 20): { onWarning: (m: string) => void; summary: () => string | null } {
  let n = 0;
  return {
    onWarning: (m) => {
      n++;
      if (n <= limit) write(`warning: ${m}`);
      else if (n === limit + 1) write(`warning: further warnings are not shown`);
    },
    summary: () => (n > limit ? `${n - limit} more warnings not shown (${n} in all)` : null),
  };
}

// ------------------------------------------------------------------------------------------------
// Which files

const hasGlob = (s: string): boolean => /[*?]/.test(s);

function globToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${body}$`);
}

/**
 * The files `path` names, sorted by name: the file itself; the files of a directory for which `accept`
 * is true (not recursive); or the files matching a glob (`*` and `?` in the last path component, e.g.
 * `data/en/c4-train.*.json.gz`). Fails naming the path when it does not exist or names no file.
 */
export async function resolveInputs(path: string, accept: (name: string) => boolean, what: string): Promise<string[]> {
  if (hasGlob(basename(path))) {
    const dir = dirname(path);
    if (hasGlob(dir)) throw new CorpusError(`${path}: a glob may only be used in the last path component`);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      throw new CorpusError(`${path}: no such directory ${dir}`);
    }
    const re = globToRegExp(basename(path));
    const files = names.filter((n) => re.test(n)).sort().map((n) => join(dir, n));
    if (files.length === 0) throw new CorpusError(`${path}: no file matches`);
    return files;
  }
  let s;
  try {
    s = await stat(path);
  } catch {
    throw new CorpusError(`${path}: no such file or directory`);
  }
  if (s.isFile()) return [path];
  if (!s.isDirectory()) throw new CorpusError(`${path}: not a file or directory`);
  const names = (await readdir(path)).filter(accept).sort();
  if (names.length === 0) throw new CorpusError(`${path}: the directory holds no ${what}`);
  return names.map((n) => join(path, n));
}

/** JSON lines (`.json`, `.jsonl`, either gzipped) or Parquet, by name. */
export const isRecordFile = (name: string): boolean => /\.(jsonl?|jsonl?\.gz|parquet)$/i.test(name);
export const isParquet = (name: string): boolean => /\.parquet$/i.test(name);

// ------------------------------------------------------------------------------------------------
// Lines

/** One line of a file: its 1-based number, and its text (null when the bytes are not valid UTF-8). */
export interface Line {
  line: number;
  text: string | null;
}

async function isGzip(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const b = Buffer.alloc(2);
    const { bytesRead } = await fh.read(b, 0, 2, 0);
    return bytesRead === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/**
 * The lines of a text file, plain or gzipped (by its magic bytes), streamed. A trailing `\r` is
 * removed; the last line need not end in a newline. A truncated or corrupt gzip stream fails naming
 * the file and the last complete line; a file named `.gz` that is not gzip fails.
 */
export async function* readLines(file: string): AsyncGenerator<Line> {
  let gz: boolean;
  try {
    gz = await isGzip(file);
  } catch (e) {
    throw new CorpusError(`${file}: cannot read (${(e as Error).message})`);
  }
  if (!gz && /\.gz$/i.test(file)) {
    const size = (await stat(file)).size;
    if (size > 0) throw new CorpusError(`${file}: named .gz but is not gzip data`);
  }
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const src = createReadStream(file);
  const stream = gz ? pipeline(src, createGunzip(), () => {}) : src;
  let n = 0;
  let pending: Buffer[] = [];
  const emit = (bytes: Buffer): Line => {
    n++;
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === 0x0d) end--;
    let text: string | null;
    try {
      text = decoder.decode(bytes.subarray(0, end));
    } catch {
      text = null;
    }
    return { line: n, text };
  };
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let start = 0;
      for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, start)) {
        const piece = chunk.subarray(start, i);
        const bytes = pending.length ? Buffer.concat([...pending, piece]) : piece;
        pending = [];
        start = i + 1;
        yield emit(bytes);
      }
      if (start < chunk.length) pending.push(chunk.subarray(start));
    }
  } catch (e) {
    if (e instanceof CorpusError) throw e;
    const how = gz ? 'truncated or corrupt gzip shard' : 'read error';
    throw new CorpusError(`${file}: ${how}: ${n} complete line(s) read, record ${n + 1} cut off (${(e as Error).message})`);
  } finally {
    src.destroy();
  }
  if (pending.length) {
    const bytes = Buffer.concat(pending);
    if (bytes.length) yield emit(bytes);
  }
}

// ------------------------------------------------------------------------------------------------
// Records

/** One record of a corpus file: the wanted text field, the whole record, and where it came from. */
export interface TextRecord {
  text: string;
  fields: Record<string, unknown>;
  /** The file. */
  source: string;
  /** 1-based line (JSON lines) or row (Parquet) in `source`. */
  record: number;
}

const INVALID_UTF8 = Symbol('invalid UTF-8');

/**
 * The records of one JSON-lines or Parquet file whose `field` is a string. Blank lines are ignored; a
 * line that is not valid UTF-8, not JSON, not an object, or lacks a string `field` is skipped through
 * `diag`. A file without any record is an empty shard.
 */
export async function* readRecords(file: string, field: string, diag: Diagnostics, columns: readonly string[] = []): AsyncGenerator<TextRecord> {
  let any = false;
  if (isParquet(file)) {
    for await (const r of readParquetRecords(file, field, diag, columns)) {
      any = true;
      yield r;
    }
  } else {
    for await (const { line, text } of readLines(file)) {
      const where = `${file}:${line}`;
      if (text === null) {
        any = true;
        diag.skip(where, 'bytes that are not valid UTF-8');
        continue;
      }
      if (text.trim() === '') continue;
      any = true;
      let obj: unknown;
      try {
        obj = JSON.parse(text);
      } catch (e) {
        diag.skip(where, `not JSON (${(e as Error).message})`);
        continue;
      }
      if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
        diag.skip(where, 'not a JSON object');
        continue;
      }
      const v = (obj as Record<string, unknown>)[field];
      if (typeof v !== 'string') {
        diag.skip(where, v === undefined ? `no "${field}" field` : `"${field}" is not a string`);
        continue;
      }
      yield { text: v, fields: obj as Record<string, unknown>, source: file, record: line };
    }
  }
  if (!any) diag.emptyShard(file);
}

async function* readParquetRecords(file: string, field: string, diag: Diagnostics, columns: readonly string[]): AsyncGenerator<TextRecord> {
  let buf;
  let metadata;
  try {
    buf = await asyncBufferFromFile(file);
    metadata = await parquetMetadataAsync(buf);
  } catch (e) {
    throw new CorpusError(`${file}: not a readable Parquet file (${(e as Error).message})`);
  }
  const names = parquetSchema(metadata).children.map((c) => c.element.name);
  if (!names.includes(field)) throw new CorpusError(`${file}: Parquet file has no "${field}" column (columns: ${names.join(', ')})`);
  const wanted = [field, ...columns.filter((c) => c !== field && names.includes(c))];
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const stringFromBytes = (bytes: Uint8Array | undefined): unknown => {
    if (bytes === undefined) return undefined;
    try {
      return decoder.decode(bytes);
    } catch {
      return INVALID_UTF8;
    }
  };
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = await parquetReadObjects({ file: buf, metadata, columns: wanted, rowStart, rowEnd, parsers: { stringFromBytes: stringFromBytes as (b: Uint8Array) => string } });
    } catch (e) {
      throw new CorpusError(`${file}: corrupt Parquet row group at rows ${rowStart + 1}..${rowEnd} (${(e as Error).message})`);
    }
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const record = rowStart + i + 1;
      const where = `${file}: row ${record}`;
      const bad = Object.entries(row).find(([, v]) => v === INVALID_UTF8);
      if (bad) {
        diag.skip(where, `"${bad[0]}" holds bytes that are not valid UTF-8`);
        continue;
      }
      const v = row[field];
      if (typeof v !== 'string') {
        diag.skip(where, v === null || v === undefined ? `"${field}" is null` : `"${field}" is not a string`);
        continue;
      }
      yield { text: v, fields: row, source: file, record };
    }
    rowStart = rowEnd;
  }
}

/** Counts the Unicode code points of a string (Python's `len`, which the §7.2 buffer size counts). */
export function codePoints(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n;
}
