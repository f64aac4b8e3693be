/**
 * The safetensors file format (https://github.com/huggingface/safetensors), read and written in pure
 * TypeScript — no native module, no Python.
 *
 *   [8 bytes]  N, the header length, unsigned 64-bit little-endian
 *   [N bytes]  a UTF-8 JSON object: { "__metadata__"?: {string: string},
 *                                     "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, … }
 *              padded with spaces so that 8 + N is a multiple of 8
 *   [rest]     the raw little-endian tensor bytes; offsets are relative to the start of this section
 *
 * Writing follows the reference implementation (the Rust crate behind `safetensors.torch.save_file`):
 * `__metadata__` first, then the tensors sorted by dtype (widest/"largest" dtype first, in the crate's
 * `Dtype` order) and then by name (byte order), laid out back to back in that order, the header
 * serialised compactly and padded with spaces to a multiple of 8 bytes. We write F32 (Float32Array) and
 * I32 (Int32Array) tensors.
 *
 * Reading validates what the reference validates (header size limit, JSON object, known dtypes, byte
 * lengths matching shapes, offsets contiguous from 0 to the end of the file with no hole or overlap) and
 * converts every floating dtype (F32, F64, F16, BF16) to a Float32Array and every integer dtype that fits
 * (I32, I64, I16, I8, U8, U16, U32, U64, BOOL) to an Int32Array; an integer value outside int32 is an
 * error naming the tensor.
 *
 * Reading from a path streams each tensor straight from the file into its typed array (no whole-file
 * buffer), so multi-GB checkpoints load; `writeSafetensorsFile` streams the other way and hashes the
 * bytes as it writes them (sha256, for checkpoint checksums).
 *
 * Little-endian hosts only (every platform Node.js ships for); a big-endian host fails loudly.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { endianness } from 'node:os';

export type SafetensorsDtype =
  | 'BOOL'
  | 'U8'
  | 'I8'
  | 'I16'
  | 'U16'
  | 'F16'
  | 'BF16'
  | 'I32'
  | 'U32'
  | 'F32'
  | 'F64'
  | 'I64'
  | 'U64';

/** Bytes per element. */
export const DTYPE_SIZE: Readonly<Record<SafetensorsDtype, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

// The reference crate's `Dtype` declaration order (it derives Ord from it); tensors are written in
// descending order of this rank, then by name.
const DTYPE_RANK: Readonly<Record<SafetensorsDtype, number>> = {
  BOOL: 0,
  U8: 4,
  I8: 5,
  I16: 9,
  U16: 10,
  F16: 11,
  BF16: 12,
  I32: 13,
  U32: 14,
  F32: 15,
  F64: 17,
  I64: 18,
  U64: 19,
};

const FLOAT_DTYPES = new Set<SafetensorsDtype>(['F32', 'F64', 'F16', 'BF16']);

/** The reference's limit on the header size (100 MB). */
export const MAX_HEADER_SIZE = 100_000_000;

/** A tensor as read: its stored dtype and shape, and the data converted to f32 or i32. */
export interface SafeTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array | Int32Array;
}

/** A tensor to write: F32 for a Float32Array, I32 for an Int32Array. */
export interface TensorInput {
  shape: readonly number[];
  data: Float32Array | Int32Array;
}

export type TensorsInput = ReadonlyMap<string, TensorInput> | Readonly<Record<string, TensorInput>>;

export interface SafetensorsFile {
  tensors: Map<string, SafeTensor>;
  /** The `__metadata__` string map ({} when absent). */
  metadata: Record<string, string>;
}

export interface HeaderEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  /** [begin, end) in bytes, relative to the start of the data section. */
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  /** Entries in file (offset) order. */
  entries: Map<string, HeaderEntry>;
  metadata: Record<string, string>;
  /** Byte offset of the data section in the file (8 + N). */
  dataStart: number;
  /** Total size of the file in bytes. */
  fileSize: number;
}

export class SafetensorsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

function assertLittleEndian(): void {
  if (endianness() !== 'LE') throw new SafetensorsError('safetensors I/O here supports little-endian hosts only');
}

function numelOf(shape: readonly number[], what: string): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new SafetensorsError(`${what}: invalid shape [${shape.join(', ')}]`);
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw new SafetensorsError(`${what}: shape [${shape.join(', ')}] is too large`);
  return n;
}

function entriesOf(tensors: TensorsInput): [string, TensorInput][] {
  return tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors as Record<string, TensorInput>);
}

function dtypeOfInput(name: string, t: TensorInput): SafetensorsDtype {
  if (t.data instanceof Float32Array) return 'F32';
  if (t.data instanceof Int32Array) return 'I32';
  throw new SafetensorsError(`tensor "${name}": data must be a Float32Array or an Int32Array`);
}

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

interface Planned {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array | Int32Array;
  begin: number;
  end: number;
}

/** Validates the inputs, orders them as the reference does, and builds the padded header. */
function plan(tensors: TensorsInput, metadata?: Readonly<Record<string, string>>): { header: Buffer; items: Planned[]; total: number } {
  const items: Planned[] = [];
  for (const [name, t] of entriesOf(tensors)) {
    if (name.length === 0) throw new SafetensorsError('a tensor name must not be empty');
    if (name === '__metadata__') throw new SafetensorsError('"__metadata__" is reserved and cannot name a tensor');
    const dtype = dtypeOfInput(name, t);
    const shape = Array.from(t.shape);
    const n = numelOf(shape, `tensor "${name}"`);
    if (n !== t.data.length) {
      throw new SafetensorsError(`tensor "${name}": shape [${shape.join(', ')}] holds ${n} elements but the data has ${t.data.length}`);
    }
    items.push({ name, dtype, shape, data: t.data, begin: 0, end: 0 });
  }
  items.sort((a, b) => DTYPE_RANK[b.dtype] - DTYPE_RANK[a.dtype] || byteCompare(a.name, b.name));
  let offset = 0;
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    const meta: Record<string, string> = {};
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new SafetensorsError(`metadata "${k}" must be a string, got ${typeof v}`);
      meta[k] = v;
    }
    header.__metadata__ = meta;
  }
  for (const it of items) {
    it.begin = offset;
    offset += it.data.byteLength;
    it.end = offset;
    header[it.name] = { dtype: it.dtype, shape: it.shape, data_offsets: [it.begin, it.end] };
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  const out = Buffer.alloc(8 + padded, 0x20);
  out.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(out, 8);
  return { header: out, items, total: out.length + offset };
}

function bytesOf(data: Float32Array | Int32Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** The whole file in memory. Prefer `writeSafetensorsFile` for models of several GB. */
export function encodeSafetensors(tensors: TensorsInput, metadata?: Readonly<Record<string, string>>): Buffer {
  assertLittleEndian();
  const { header, items, total } = plan(tensors, metadata);
  const out = Buffer.allocUnsafe(total);
  header.copy(out, 0);
  for (const it of items) bytesOf(it.data).copy(out, header.length + it.begin);
  return out;
}

/**
 * Encodes the tensors; when `path` is given, also writes the bytes there (plain write, not atomic — see
 * src/io/checkpoint.ts for atomic saves). Returns the encoded file.
 */
export function writeSafetensors(path: string | null, tensors: TensorsInput, metadata?: Readonly<Record<string, string>>): Buffer {
  const buf = encodeSafetensors(tensors, metadata);
  if (path !== null) fs.writeFileSync(path, buf);
  return buf;
}

export interface WriteFileOptions {
  /** fsync the file before closing it (default false). */
  fsync?: boolean;
}

/**
 * Streams the file to `path` tensor by tensor (no whole-file buffer) and returns its size and sha256.
 * Same bytes as `encodeSafetensors`.
 */
export function writeSafetensorsFile(
  path: string,
  tensors: TensorsInput,
  metadata?: Readonly<Record<string, string>>,
  opts: WriteFileOptions = {},
): { bytes: number; sha256: string } {
  assertLittleEndian();
  const { header, items, total } = plan(tensors, metadata);
  const hash = createHash('sha256');
  const fd = fs.openSync(path, 'w');
  try {
    writeAll(fd, header);
    hash.update(header);
    for (const it of items) {
      const b = bytesOf(it.data);
      writeAll(fd, b);
      hash.update(b);
    }
    if (opts.fsync) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return { bytes: total, sha256: hash.digest('hex') };
}

const IO_CHUNK = 1 << 30;

function writeAll(fd: number, buf: Uint8Array): void {
  let off = 0;
  while (off < buf.length) {
    off += fs.writeSync(fd, buf, off, Math.min(IO_CHUNK, buf.length - off));
  }
}

function readAll(fd: number, target: Uint8Array, position: number, what: string): void {
  let off = 0;
  while (off < target.length) {
    const n = fs.readSync(fd, target, off, Math.min(IO_CHUNK, target.length - off), position + off);
    if (n === 0) throw new SafetensorsError(`${what}: unexpected end of file`);
    off += n;
  }
}

// ------------------------------------------------------------------------------------------------
// Reading

/** A byte source: an in-memory buffer or an open file. */
interface Source {
  size: number;
  read(position: number, length: number, what: string): Uint8Array;
  readInto(position: number, target: Uint8Array, what: string): void;
  label: string;
}

function bufferSource(buf: Uint8Array): Source {
  return {
    size: buf.length,
    label: 'buffer',
    read: (pos, len) => buf.subarray(pos, pos + len),
    readInto: (pos, target) => target.set(buf.subarray(pos, pos + target.length)),
  };
}

function withFileSource<T>(path: string, fn: (src: Source) => T): T {
  const fd = fs.openSync(path, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    return fn({
      size,
      label: path,
      read: (pos, len, what) => {
        const b = Buffer.allocUnsafe(len);
        readAll(fd, b, pos, what);
        return b;
      },
      readInto: (pos, target, what) => readAll(fd, target, pos, what),
    });
  } finally {
    fs.closeSync(fd);
  }
}

function isDtype(s: unknown): s is SafetensorsDtype {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_SIZE, s);
}

function parseHeader(src: Source): SafetensorsHeader {
  const where = src.label === 'buffer' ? 'safetensors' : `safetensors file ${src.label}`;
  if (src.size < 8) throw new SafetensorsError(`${where}: too short (${src.size} bytes) to hold the header length`);
  const lenBytes = src.read(0, 8, where);
  const n64 = Buffer.from(lenBytes.buffer, lenBytes.byteOffset, 8).readBigUInt64LE(0);
  if (n64 > BigInt(MAX_HEADER_SIZE)) throw new SafetensorsError(`${where}: header length ${n64} exceeds the ${MAX_HEADER_SIZE}-byte limit`);
  const n = Number(n64);
  if (8 + n > src.size) throw new SafetensorsError(`${where}: header length ${n} runs past the end of the file (${src.size} bytes)`);
  const raw = src.read(8, n, where);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    throw new SafetensorsError(`${where}: header is not valid UTF-8`);
  }
  if (!text.startsWith('{')) throw new SafetensorsError(`${where}: header does not start with '{'`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`${where}: header is not valid JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new SafetensorsError(`${where}: header is not a JSON object`);
  const dataStart = 8 + n;
  const dataSize = src.size - dataStart;
  const metadata: Record<string, string> = {};
  const list: [string, HeaderEntry][] = [];
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (value === null) continue;
      if (typeof value !== 'object' || Array.isArray(value)) throw new SafetensorsError(`${where}: __metadata__ must be an object of strings`);
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new SafetensorsError(`${where}: __metadata__["${k}"] must be a string`);
        metadata[k] = v;
      }
      continue;
    }
    const info = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (info === null || typeof info !== 'object') throw new SafetensorsError(`${where}: tensor "${name}": entry is not an object`);
    if (!isDtype(info.dtype)) throw new SafetensorsError(`${where}: tensor "${name}": unsupported dtype ${JSON.stringify(info.dtype)}`);
    if (!Array.isArray(info.shape) || !info.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(`${where}: tensor "${name}": invalid shape ${JSON.stringify(info.shape)}`);
    }
    const off = info.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((x) => Number.isSafeInteger(x) && x >= 0) || off[0] > off[1]) {
      throw new SafetensorsError(`${where}: tensor "${name}": invalid data_offsets ${JSON.stringify(off)}`);
    }
    const shape = info.shape as number[];
    const nbytes = numelOf(shape, `${where}: tensor "${name}"`) * DTYPE_SIZE[info.dtype];
    if (off[1] - off[0] !== nbytes) {
      throw new SafetensorsError(
        `${where}: tensor "${name}": ${info.dtype} [${shape.join(', ')}] needs ${nbytes} bytes but data_offsets span ${off[1] - off[0]}`,
      );
    }
    list.push([name, { dtype: info.dtype, shape, dataOffsets: [off[0], off[1]] }]);
  }
  // Offsets must tile [0, dataSize) exactly, as the reference checks.
  list.sort((a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0] || a[1].dataOffsets[1] - b[1].dataOffsets[1]);
  let expected = 0;
  for (const [name, e] of list) {
    if (e.dataOffsets[0] !== expected) {
      throw new SafetensorsError(`${where}: tensor "${name}": data starts at ${e.dataOffsets[0]}, expected ${expected} (hole or overlap)`);
    }
    expected = e.dataOffsets[1];
  }
  if (expected !== dataSize) {
    throw new SafetensorsError(`${where}: tensors cover ${expected} bytes but the data section holds ${dataSize} (truncated or trailing bytes)`);
  }
  return { entries: new Map(list), metadata, dataStart, fileSize: src.size };
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

function convert(name: string, e: HeaderEntry, bytes: Uint8Array, where: string): Float32Array | Int32Array {
  const n = bytes.length / DTYPE_SIZE[e.dtype];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (FLOAT_DTYPES.has(e.dtype)) {
    const out = new Float32Array(n);
    switch (e.dtype) {
      case 'F64':
        for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
        break;
      case 'F16':
        for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
        break;
      case 'BF16': {
        const bits = new Uint32Array(out.buffer);
        for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true) << 16;
        break;
      }
      default:
        throw new Error('unreachable');
    }
    return out;
  }
  const out = new Int32Array(n);
  const bad = (v: number | bigint): never => {
    throw new SafetensorsError(`${where}: tensor "${name}": ${e.dtype} value ${v} does not fit in int32`);
  };
  switch (e.dtype) {
    case 'BOOL':
    case 'U8':
      for (let i = 0; i < n; i++) out[i] = view.getUint8(i);
      break;
    case 'I8':
      for (let i = 0; i < n; i++) out[i] = view.getInt8(i);
      break;
    case 'I16':
      for (let i = 0; i < n; i++) out[i] = view.getInt16(2 * i, true);
      break;
    case 'U16':
      for (let i = 0; i < n; i++) out[i] = view.getUint16(2 * i, true);
      break;
    case 'U32':
      for (let i = 0; i < n; i++) {
        const v = view.getUint32(4 * i, true);
        if (v > 0x7fffffff) bad(v);
        out[i] = v;
      }
      break;
    case 'I64':
      for (let i = 0; i < n; i++) {
        const v = view.getBigInt64(8 * i, true);
        if (v > 2147483647n || v < -2147483648n) bad(v);
        out[i] = Number(v);
      }
      break;
    case 'U64':
      for (let i = 0; i < n; i++) {
        const v = view.getBigUint64(8 * i, true);
        if (v > 2147483647n) bad(v);
        out[i] = Number(v);
      }
      break;
    default:
      throw new Error('unreachable');
  }
  return out;
}

function readTensor(src: Source, header: SafetensorsHeader, name: string, e: HeaderEntry): SafeTensor {
  const where = src.label === 'buffer' ? 'safetensors' : `safetensors file ${src.label}`;
  const pos = header.dataStart + e.dataOffsets[0];
  const nbytes = e.dataOffsets[1] - e.dataOffsets[0];
  let data: Float32Array | Int32Array;
  if (e.dtype === 'F32' || e.dtype === 'I32') {
    // Straight into the typed array's own (aligned) memory.
    data = e.dtype === 'F32' ? new Float32Array(nbytes / 4) : new Int32Array(nbytes / 4);
    src.readInto(pos, new Uint8Array(data.buffer), `${where}: tensor "${name}"`);
  } else {
    const tmp = new Uint8Array(nbytes);
    src.readInto(pos, tmp, `${where}: tensor "${name}"`);
    data = convert(name, e, tmp, where);
  }
  return { dtype: e.dtype, shape: [...e.shape], data };
}

export type NameFilter = Iterable<string> | ((name: string) => boolean);

function filterOf(names: NameFilter | undefined): (name: string) => boolean {
  if (names === undefined) return () => true;
  if (typeof names === 'function') return names;
  const set = new Set(names);
  return (n) => set.has(n);
}

/** Parses and validates the header only (cheap: reads 8 + N bytes of a file). */
export function readSafetensorsHeader(src: Uint8Array | string): SafetensorsHeader {
  assertLittleEndian();
  return typeof src === 'string' ? withFileSource(src, parseHeader) : parseHeader(bufferSource(src));
}

/**
 * Reads a safetensors buffer or file. `opts.names` restricts the tensors read (the header is always
 * validated whole); a name asked for but absent is an error.
 */
export function readSafetensors(src: Uint8Array | string, opts: { names?: NameFilter } = {}): SafetensorsFile {
  assertLittleEndian();
  const run = (source: Source): SafetensorsFile => {
    const header = parseHeader(source);
    const keep = filterOf(opts.names);
    if (opts.names !== undefined && typeof opts.names !== 'function') {
      for (const n of opts.names) {
        if (!header.entries.has(n)) throw new SafetensorsError(`${source.label === 'buffer' ? 'safetensors' : source.label}: no tensor "${n}"`);
      }
    }
    // Return tensors in name order (stable, independent of the writer's layout).
    const names = [...header.entries.keys()].filter(keep).sort(byteCompare);
    const tensors = new Map<string, SafeTensor>();
    for (const name of names) tensors.set(name, readTensor(source, header, name, header.entries.get(name)!));
    return { tensors, metadata: header.metadata };
  };
  return typeof src === 'string' ? withFileSource(src, run) : run(bufferSource(src));
}

/** sha256 (hex) of a file, streamed in 16 MiB chunks. */
export function sha256File(path: string): string {
  const hash = createHash('sha256');
  const fd = fs.openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(16 << 20);
    let pos = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}
