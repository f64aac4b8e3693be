/**
 * Tokenised corpora on disk: binary token shards plus a manifest, read with positioned reads (never a
 * whole file), and a `{shard, offset}` cursor that a data stream records in checkpoints.
 *
 * Shard file (docs/data.md, "Tokenizers and token shards"), all integers little-endian:
 *   bytes 0–7    magic "KDLTOKEN"
 *   bytes 8–11   u32 format version (1)
 *   bytes 12–15  u32 bytes per token: 2 (uint16, vocab ≤ 65,536) or 4 (uint32)
 *   bytes 16–23  u64 token count
 *   bytes 24–27  u32 vocabulary size (every token is below it)
 *   bytes 28–31  u32 reserved, 0
 *   bytes 32–    the tokens
 * A shard set is a directory of `shard-NNNNN.bin` files and `index.json` (the manifest), which is
 * written last: a directory without one is an unfinished write.
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { writeTextAtomic } from '../../util/files.ts';
import { makeDirs } from '../../util/dirs.ts';
import type { Batch } from '../procedural/batch.ts';

export const SHARD_MAGIC = 'KDLTOKEN';
export const SHARD_VERSION = 1;
export const SHARD_HEADER_BYTES = 32;
export const MANIFEST_FILE = 'index.json';
export const MANIFEST_FORMAT = 'kindling-token-shards';

export type TokenDtype = 'uint16' | 'uint32';

/** uint16 when every id fits (vocab ≤ 65,536), else uint32. */
export function dtypeFor(vocabSize: number): TokenDtype {
  if (!Number.isInteger(vocabSize) || vocabSize < 1) throw new RangeError(`vocabSize must be a positive integer, got ${vocabSize}`);
  if (vocabSize > 2 ** 32) throw new RangeError(`vocabSize ${vocabSize} does not fit uint32 token ids`);
  return vocabSize <= 65536 ? 'uint16' : 'uint32';
}

const bytesPer = (d: TokenDtype): 2 | 4 => (d === 'uint16' ? 2 : 4);

/** A file that is not a token shard, or is truncated or inconsistent; the message names the file. */
export class ShardFormatError extends Error {
  constructor(
    readonly path: string,
    what: string,
  ) {
    super(`${path}: ${what}`);
    this.name = 'ShardFormatError';
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface ShardHeader {
  dtype: TokenDtype;
  count: number;
  vocabSize: number;
}

function encodeHeader(h: ShardHeader): Buffer {
  const b = Buffer.alloc(SHARD_HEADER_BYTES);
  b.write(SHARD_MAGIC, 0, 'latin1');
  b.writeUInt32LE(SHARD_VERSION, 8);
  b.writeUInt32LE(bytesPer(h.dtype), 12);
  b.writeBigUInt64LE(BigInt(h.count), 16);
  b.writeUInt32LE(h.vocabSize === 2 ** 32 ? 0 : h.vocabSize, 24);
  return b;
}

function decodeHeader(path: string, b: Buffer, fileBytes: number): ShardHeader {
  if (fileBytes < SHARD_HEADER_BYTES) throw new ShardFormatError(path, `not a token shard: ${fileBytes} bytes, shorter than the ${SHARD_HEADER_BYTES}-byte header`);
  const magic = b.toString('latin1', 0, 8);
  if (magic !== SHARD_MAGIC) throw new ShardFormatError(path, `not a token shard: magic ${JSON.stringify(magic)}, expected ${JSON.stringify(SHARD_MAGIC)}`);
  const version = b.readUInt32LE(8);
  if (version !== SHARD_VERSION) throw new ShardFormatError(path, `token shard version ${version}, this build reads version ${SHARD_VERSION}`);
  const width = b.readUInt32LE(12);
  if (width !== 2 && width !== 4) throw new ShardFormatError(path, `bytes per token ${width}, expected 2 or 4`);
  const count = Number(b.readBigUInt64LE(16));
  const vocabRaw = b.readUInt32LE(24);
  const vocabSize = vocabRaw === 0 ? 2 ** 32 : vocabRaw;
  const dtype: TokenDtype = width === 2 ? 'uint16' : 'uint32';
  if (width === 2 && vocabSize > 65536) throw new ShardFormatError(path, `uint16 tokens with vocabulary size ${vocabSize} > 65536`);
  const expected = SHARD_HEADER_BYTES + count * width;
  if (fileBytes < expected) throw new ShardFormatError(path, `truncated: header says ${count} tokens (${expected} bytes), file has ${fileBytes} bytes`);
  if (fileBytes > expected) throw new ShardFormatError(path, `${fileBytes - expected} bytes after the ${count} tokens the header declares`);
  return { dtype, count, vocabSize };
}

/** One shard file, open for positioned reads. */
export class ShardFile {
  readonly header: ShardHeader;
  private fd: number | null;

  constructor(readonly path: string) {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw new ShardFormatError(path, `cannot open token shard (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    try {
      const head = Buffer.alloc(SHARD_HEADER_BYTES);
      readSync(fd, head, 0, SHARD_HEADER_BYTES, 0);
      this.header = decodeHeader(path, head, fstatSync(fd).size);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    this.fd = fd;
  }

  get count(): number {
    return this.header.count;
  }

  /** Tokens [offset, offset+n) into out[at…]. */
  read(offset: number, n: number, out: Uint32Array = new Uint32Array(n), at = 0): Uint32Array {
    if (this.fd === null) throw new Error(`${this.path}: read after close`);
    if (!Number.isInteger(offset) || !Number.isInteger(n) || offset < 0 || n < 0 || offset + n > this.count) {
      throw new RangeError(`${this.path}: tokens [${offset}, ${offset + n}) outside [0, ${this.count})`);
    }
    if (n === 0) return out;
    const w = bytesPer(this.header.dtype);
    const buf = Buffer.alloc(n * w); // fresh allocation: offset 0, aligned for the typed view
    let got = 0;
    while (got < buf.length) {
      const r = readSync(this.fd, buf, got, buf.length - got, SHARD_HEADER_BYTES + offset * w + got);
      if (r === 0) throw new ShardFormatError(this.path, `truncated while reading tokens [${offset}, ${offset + n})`);
      got += r;
    }
    if (!LITTLE_ENDIAN) w === 2 ? buf.swap16() : buf.swap32();
    const view = w === 2 ? new Uint16Array(buf.buffer, buf.byteOffset, n) : new Uint32Array(buf.buffer, buf.byteOffset, n);
    out.set(view, at);
    return out;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** Write one shard file in one go (tests, small corpora). */
export function writeShard(path: string, tokens: ArrayLike<number>, vocabSize: number): ShardHeader {
  const w = new ShardWriter(path, vocabSize);
  w.write(tokens);
  return w.close();
}

/** Streams tokens into one shard file (`path.tmp`, renamed to `path` by close). */
class ShardWriter {
  private fd: number;
  private count = 0;
  private readonly dtype: TokenDtype;
  private readonly tmp: string;

  constructor(
    readonly path: string,
    readonly vocabSize: number,
  ) {
    this.dtype = dtypeFor(vocabSize);
    this.tmp = `${path}.tmp`;
    this.fd = openSync(this.tmp, 'w');
    writeSync(this.fd, encodeHeader({ dtype: this.dtype, count: 0, vocabSize }), 0, SHARD_HEADER_BYTES, 0);
  }

  write(tokens: ArrayLike<number>): void {
    const n = tokens.length;
    if (n === 0) return;
    const arr = this.dtype === 'uint16' ? new Uint16Array(n) : new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const t = tokens[i];
      if (!(Number.isInteger(t) && t >= 0 && t < this.vocabSize)) throw new RangeError(`${this.path}: token ${t} (at ${this.count + i}) outside the vocabulary [0, ${this.vocabSize})`);
      arr[i] = t;
    }
    const buf = Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength);
    if (!LITTLE_ENDIAN) this.dtype === 'uint16' ? buf.swap16() : buf.swap32();
    const pos = SHARD_HEADER_BYTES + this.count * bytesPer(this.dtype);
    let done = 0;
    while (done < buf.length) done += writeSync(this.fd, buf, done, buf.length - done, pos + done);
    this.count += n;
  }

  get tokens(): number {
    return this.count;
  }

  close(): ShardHeader {
    const h = { dtype: this.dtype, count: this.count, vocabSize: this.vocabSize };
    writeSync(this.fd, encodeHeader(h), 0, SHARD_HEADER_BYTES, 0);
    closeSync(this.fd);
    renameSync(this.tmp, this.path);
    return h;
  }
}

// ---------------------------------------------------------------------------------------------------
// Shard sets: a directory of shards and a manifest.

export interface ShardManifest {
  format: typeof MANIFEST_FORMAT;
  version: number;
  /** Tokenizer name (`gpt2`, `hf:<path>`), vocabulary size and end-of-text id. */
  tokenizer: { name: string; vocabSize: number; eot: number };
  dtype: TokenDtype;
  /** Shard files in order, relative to the directory, with their token counts. */
  shards: { file: string; tokens: number }[];
  tokens: number;
  /** Free-form description of the source (corpus, split, documents). */
  meta?: Record<string, unknown>;
}

export interface ShardSetWriterOptions {
  tokenizer: { name: string; vocabSize: number; eot: number };
  /** Start a new shard file after this many tokens (default 2^26). */
  tokensPerShard?: number;
  meta?: Record<string, unknown>;
}

/** Writes a shard set: `append` tokens (or documents), `close` writes the manifest. */
export class ShardSetWriter {
  private readonly perShard: number;
  private current: ShardWriter | null = null;
  private readonly done: { file: string; tokens: number }[] = [];
  private total = 0;
  private closed = false;

  constructor(
    readonly dir: string,
    readonly o: ShardSetWriterOptions,
  ) {
    this.perShard = o.tokensPerShard ?? 2 ** 26;
    if (!Number.isInteger(this.perShard) || this.perShard < 1) throw new RangeError(`tokensPerShard must be a positive integer, got ${o.tokensPerShard}`);
    dtypeFor(o.tokenizer.vocabSize);
    makeDirs(dir);
    if (existsSync(join(dir, MANIFEST_FILE))) throw new Error(`${join(dir, MANIFEST_FILE)} exists: ${dir} already holds a shard set`);
  }

  append(tokens: ArrayLike<number>): void {
    if (this.closed) throw new Error(`${this.dir}: append after close`);
    let i = 0;
    while (i < tokens.length) {
      if (!this.current) this.current = new ShardWriter(join(this.dir, shardName(this.done.length)), this.o.tokenizer.vocabSize);
      const take = Math.min(tokens.length - i, this.perShard - this.current.tokens);
      this.current.write(i === 0 && take === tokens.length ? tokens : sliceOf(tokens, i, i + take));
      i += take;
      this.total += take;
      if (this.current.tokens === this.perShard) this.finishShard();
    }
  }

  /** A document's tokens followed by the end-of-text id. */
  appendDocument(tokens: ArrayLike<number>): void {
    this.append(tokens);
    this.append([this.o.tokenizer.eot]);
  }

  get tokens(): number {
    return this.total;
  }

  private finishShard(): void {
    if (!this.current) return;
    const h = this.current.close();
    this.done.push({ file: shardName(this.done.length), tokens: h.count });
    this.current = null;
  }

  close(): ShardManifest {
    if (this.closed) throw new Error(`${this.dir}: closed twice`);
    this.finishShard();
    this.closed = true;
    const m: ShardManifest = {
      format: MANIFEST_FORMAT,
      version: SHARD_VERSION,
      tokenizer: { name: this.o.tokenizer.name, vocabSize: this.o.tokenizer.vocabSize, eot: this.o.tokenizer.eot },
      dtype: dtypeFor(this.o.tokenizer.vocabSize),
      shards: this.done,
      tokens: this.total,
      ...(this.o.meta ? { meta: this.o.meta } : {}),
    };
    const path = join(this.dir, MANIFEST_FILE);
    writeTextAtomic(path, JSON.stringify(m, null, 1) + '\n');
    return m;
  }
}

const shardName = (i: number) => `shard-${String(i).padStart(5, '0')}.bin`;

function sliceOf(a: ArrayLike<number>, lo: number, hi: number): ArrayLike<number> {
  if (Array.isArray(a)) return a.slice(lo, hi);
  if (ArrayBuffer.isView(a)) return (a as unknown as Uint32Array).subarray(lo, hi);
  return Array.from({ length: hi - lo }, (_, i) => a[lo + i]);
}

/** Position in a shard set: token `offset` of shard `shard`. JSON-safe, saved in checkpoints. */
export interface TokenCursor {
  shard: number;
  offset: number;
}

/** A shard set opened for reading; every shard's header is checked against the manifest at open. */
export class TokenShards {
  readonly files: ShardFile[];
  /** starts[i] = global offset of shard i's first token; starts[n] = total. */
  private readonly starts: number[];

  private constructor(
    readonly dir: string,
    readonly manifest: ShardManifest,
  ) {
    this.files = [];
    this.starts = [0];
    try {
      for (const s of manifest.shards) {
        const f = new ShardFile(join(dir, s.file));
        this.files.push(f);
        if (f.count !== s.tokens) throw new ShardFormatError(f.path, `holds ${f.count} tokens, ${MANIFEST_FILE} says ${s.tokens}`);
        if (f.header.dtype !== manifest.dtype) throw new ShardFormatError(f.path, `dtype ${f.header.dtype}, ${MANIFEST_FILE} says ${manifest.dtype}`);
        if (f.header.vocabSize !== manifest.tokenizer.vocabSize) throw new ShardFormatError(f.path, `vocabulary size ${f.header.vocabSize}, ${MANIFEST_FILE} says ${manifest.tokenizer.vocabSize}`);
        this.starts.push(this.starts[this.starts.length - 1] + f.count);
      }
    } catch (e) {
      this.close();
      throw e;
    }
    if (this.total !== manifest.tokens) throw new ShardFormatError(join(dir, MANIFEST_FILE), `shards hold ${this.total} tokens, "tokens" says ${manifest.tokens}`);
  }

  static open(dir: string): TokenShards {
    const path = join(dir, MANIFEST_FILE);
    if (!existsSync(path)) throw new ShardFormatError(path, `missing: ${dir} is not a token shard set (or its write did not finish)`);
    let m: unknown;
    try {
      m = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new ShardFormatError(path, `not a shard manifest (${(e as Error).message})`);
    }
    return new TokenShards(dir, checkManifest(path, m));
  }

  get total(): number {
    return this.starts[this.starts.length - 1];
  }

  get vocabSize(): number {
    return this.manifest.tokenizer.vocabSize;
  }

  /** Cursor of global token offset `pos` (0 ≤ pos ≤ total; `total` is the end, {shards.length, 0}). */
  cursorAt(pos: number): TokenCursor {
    if (!Number.isInteger(pos) || pos < 0 || pos > this.total) throw new RangeError(`token offset ${pos} outside [0, ${this.total}]`);
    let lo = 0;
    let hi = this.files.length; // find the last shard whose start ≤ pos and that is non-empty at pos
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= pos) lo = mid;
      else hi = mid - 1;
    }
    return { shard: lo, offset: pos - this.starts[lo] };
  }

  /** Global token offset of a cursor; throws naming the cursor when it is not inside this set. */
  offsetOf(c: TokenCursor): number {
    const ok = c && Number.isInteger(c.shard) && Number.isInteger(c.offset) && c.shard >= 0 && c.offset >= 0;
    if (!ok || c.shard > this.files.length || (c.shard === this.files.length ? c.offset !== 0 : c.offset > this.files[c.shard].count)) {
      throw new RangeError(`cursor ${JSON.stringify(c)} is not a position in ${this.dir} (${this.files.length} shards)`);
    }
    return this.starts[c.shard] + c.offset;
  }

  /** Tokens [start, start+n) of the concatenated shards, across shard boundaries. */
  read(start: number, n: number, out: Uint32Array = new Uint32Array(n), at = 0): Uint32Array {
    if (!Number.isInteger(start) || !Number.isInteger(n) || start < 0 || n < 0 || start + n > this.total) {
      throw new RangeError(`${this.dir}: tokens [${start}, ${start + n}) outside [0, ${this.total})`);
    }
    let pos = start;
    let k = at;
    while (pos < start + n) {
      const c = this.cursorAt(pos);
      const f = this.files[c.shard];
      const take = Math.min(f.count - c.offset, start + n - pos);
      f.read(c.offset, take, out, k);
      pos += take;
      k += take;
    }
    return out;
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}

function checkManifest(path: string, m: unknown): ShardManifest {
  const bad = (what: string) => new ShardFormatError(path, `not a shard manifest: ${what}`);
  if (typeof m !== 'object' || m === null) throw bad('not a JSON object');
  const r = m as Record<string, unknown>;
  if (r.format !== MANIFEST_FORMAT) throw bad(`"format" is ${JSON.stringify(r.format)}, expected ${JSON.stringify(MANIFEST_FORMAT)}`);
  if (r.version !== SHARD_VERSION) throw bad(`"version" is ${JSON.stringify(r.version)}, this build reads ${SHARD_VERSION}`);
  const t = r.tokenizer as Record<string, unknown> | undefined;
  if (!t || typeof t.name !== 'string' || !Number.isInteger(t.vocabSize) || !Number.isInteger(t.eot)) throw bad('"tokenizer" needs name, vocabSize, eot');
  if (r.dtype !== 'uint16' && r.dtype !== 'uint32') throw bad(`"dtype" is ${JSON.stringify(r.dtype)}`);
  if (!Array.isArray(r.shards) || !r.shards.every((s) => s && typeof s.file === 'string' && Number.isInteger(s.tokens))) throw bad('"shards" must be a list of {file, tokens}');
  if (!Number.isInteger(r.tokens)) throw bad('"tokens" is not an integer');
  return r as unknown as ShardManifest;
}
