// safetensors reader/writer: round trips, the reference layout, interop with files written by the
// Python writer of test/golden/make_golden.py (committed; no Python at test time), and every validation.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  encodeSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  sha256File,
  writeSafetensors,
  writeSafetensorsFile,
  type TensorInput,
} from '../../src/io/safetensors.ts';

const GOLDEN = path.join(import.meta.dirname, '..', 'golden');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kindling-st-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Deterministic pseudo-random floats (LCG), including awkward values. */
function floats(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 10 ** ((s % 13) - 6);
  }
  return out;
}

/** A file from a raw header object and data bytes (for malformed-input tests). */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), pad = true): Buffer {
  let json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  if (pad) json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, Buffer.from(data)]);
}

describe('writer', () => {
  const tensors = new Map<string, TensorInput>([
    ['z.last', { shape: [3, 17], data: floats(51, 1) }],
    ['a.first', { shape: [33], data: floats(33, 2) }],
    ['ids', { shape: [2, 3], data: Int32Array.from([0, -1, 2147483647, -2147483648, 5, 6]) }],
    ['scalar', { shape: [], data: Float32Array.of(-0) }],
    ['empty', { shape: [0, 4], data: new Float32Array(0) }],
    ['M.upper', { shape: [1, 1, 127], data: floats(127, 3) }],
  ]);

  it('round-trips F32 and I32 tensors of odd shapes bit for bit, with metadata', () => {
    const special = Float32Array.of(NaN, Infinity, -Infinity, -0, 1.4e-45, 3.4028234663852886e38);
    tensors.set('special', { shape: [6], data: special });
    const buf = encodeSafetensors(tensors, { format: 'pt', note: 'ü ✓' });
    const back = readSafetensors(buf);
    expect(back.metadata).toEqual({ format: 'pt', note: 'ü ✓' });
    expect([...back.tensors.keys()]).toEqual([...tensors.keys()].sort());
    for (const [name, t] of tensors) {
      const r = back.tensors.get(name)!;
      expect(r.shape).toEqual([...t.shape]);
      expect(r.dtype).toBe(t.data instanceof Int32Array ? 'I32' : 'F32');
      expect(r.data.constructor).toBe(t.data.constructor);
      expect(Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))).toBe(true);
    }
    tensors.delete('special');
  });

  it('writes the reference layout: padded header, __metadata__ first, F32 before I32, names in byte order', () => {
    const buf = encodeSafetensors(tensors, { format: 'pt' });
    const n = Number(buf.readBigUInt64LE(0));
    expect((8 + n) % 8).toBe(0);
    const text = buf.subarray(8, 8 + n).toString('utf8');
    expect(text.trimEnd().length).toBeGreaterThan(n - 8);
    expect(text.slice(text.trimEnd().length)).toMatch(/^ *$/);
    const header = JSON.parse(text) as Record<string, { data_offsets: [number, number] }>;
    const keys = Object.keys(header);
    expect(keys[0]).toBe('__metadata__');
    // Uppercase sorts before lowercase (byte order); the I32 tensor comes after every F32 one.
    expect(keys.slice(1)).toEqual(['M.upper', 'a.first', 'empty', 'scalar', 'z.last', 'ids']);
    let end = 0;
    for (const k of keys.slice(1)) {
      expect(header[k]!.data_offsets[0]).toBe(end);
      end = header[k]!.data_offsets[1];
    }
    expect(8 + n + end).toBe(buf.length);
    // Compact JSON with the field order dtype, shape, data_offsets.
    expect(text).toContain('"M.upper":{"dtype":"F32","shape":[1,1,127],"data_offsets":[0,508]}');
  });

  it('produces exactly the bytes of the Python writer (interop_layout.safetensors)', () => {
    const py = fs.readFileSync(path.join(GOLDEN, 'interop_layout.safetensors'));
    const back = readSafetensors(py);
    const again = new Map<string, TensorInput>([...back.tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data }]));
    expect(encodeSafetensors(again, back.metadata).equals(py)).toBe(true);
    expect(back.metadata).toEqual({ format: 'pt', note: 'layout check ü' });
    expect(back.tensors.get('b.ids')!.data).toEqual(Int32Array.from([3, 1, 4, 1, 5, 9]));
  });

  it('writeSafetensors / writeSafetensorsFile write the same bytes; the streamed sha256 is right', () => {
    const p1 = path.join(tmp, 'a.safetensors');
    const p2 = path.join(tmp, 'b.safetensors');
    const buf = writeSafetensors(p1, tensors);
    expect(writeSafetensors(null, tensors).equals(buf)).toBe(true);
    const rec = writeSafetensorsFile(p2, tensors, undefined, { fsync: true });
    expect(fs.readFileSync(p1).equals(buf)).toBe(true);
    expect(fs.readFileSync(p2).equals(buf)).toBe(true);
    expect(rec.bytes).toBe(buf.length);
    expect(rec.sha256).toBe(createHash('sha256').update(buf).digest('hex'));
    expect(sha256File(p2)).toBe(rec.sha256);
  });

  it('accepts a plain object, and rejects bad inputs with the tensor name', () => {
    expect(readSafetensors(encodeSafetensors({ x: { shape: [2], data: Float32Array.of(1, 2) } })).tensors.get('x')!.data).toEqual(Float32Array.of(1, 2));
    expect(() => encodeSafetensors({ w: { shape: [2, 3], data: new Float32Array(5) } })).toThrow(/tensor "w": shape \[2, 3\] holds 6 elements but the data has 5/);
    expect(() => encodeSafetensors({ w: { shape: [2, -1], data: new Float32Array(2) } })).toThrow(/tensor "w": invalid shape/);
    expect(() => encodeSafetensors({ __metadata__: { shape: [1], data: new Float32Array(1) } })).toThrow(/reserved/);
    expect(() => encodeSafetensors({ u: { shape: [1], data: new Uint32Array(1) as unknown as Float32Array } })).toThrow(/tensor "u": data must be/);
    expect(() => encodeSafetensors({}, { n: 3 as unknown as string })).toThrow(/metadata "n" must be a string/);
  });

  it('writes an empty file that reads back empty', () => {
    const buf = encodeSafetensors(new Map());
    expect(buf.length % 8).toBe(0);
    expect(readSafetensors(buf).tensors.size).toBe(0);
  });
});

describe('reader', () => {
  it('reads every dtype of the Python-written interop file exactly (F16/BF16/F64 → f32, ints → i32)', () => {
    const expected = JSON.parse(fs.readFileSync(path.join(GOLDEN, 'interop_python.json'), 'utf8')) as {
      metadata: Record<string, string>;
      tensors: Record<string, { dtype: string; shape: number[]; values: number[] }>;
    };
    const file = path.join(GOLDEN, 'interop_python.safetensors');
    for (const src of [file, fs.readFileSync(file)]) {
      const got = readSafetensors(src);
      expect(got.metadata).toEqual(expected.metadata);
      expect([...got.tensors.keys()].sort()).toEqual(Object.keys(expected.tensors).sort());
      for (const [name, e] of Object.entries(expected.tensors)) {
        const t = got.tensors.get(name)!;
        expect(t.dtype, name).toBe(e.dtype);
        expect(t.shape, name).toEqual(e.shape);
        expect(t.data instanceof Float32Array, name).toBe(['F32', 'F64', 'F16', 'BF16'].includes(e.dtype));
        expect(t.data.length, name).toBe(e.values.length);
        e.values.forEach((v, i) => expect(Object.is(t.data[i], v), `${name}[${i}]: ${t.data[i]} vs ${v}`).toBe(true));
      }
    }
  });

  it('converts F16 specials (subnormal, inf, NaN) and BF16 bit patterns', () => {
    const f16 = Buffer.alloc(12);
    [0x0001, 0x3c00, 0x7c00, 0xfc00, 0x7e00, 0x8000].forEach((h, i) => f16.writeUInt16LE(h, 2 * i));
    const bf = Buffer.alloc(4);
    bf.writeUInt16LE(0x3f80, 0); // 1.0
    bf.writeUInt16LE(0xc049, 2); // -3.140625
    const buf = rawFile(
      { h: { dtype: 'F16', shape: [6], data_offsets: [0, 12] }, b: { dtype: 'BF16', shape: [2], data_offsets: [12, 16] } },
      Buffer.concat([f16, bf]),
    );
    const r = readSafetensors(buf).tensors;
    const h = Array.from(r.get('h')!.data);
    expect(h[0]).toBe(Math.fround(2 ** -24));
    expect(h.slice(1, 4)).toEqual([1, Infinity, -Infinity]);
    expect(h[4]).toBeNaN();
    expect(Object.is(h[5], -0)).toBe(true);
    expect(Array.from(r.get('b')!.data)).toEqual([1, -3.140625]);
  });

  it('reads only the requested names, from a path without loading the whole file', () => {
    const p = path.join(GOLDEN, 'gpt_tied.safetensors');
    const header = readSafetensorsHeader(p);
    expect(header.fileSize).toBe(fs.statSync(p).size);
    expect(header.entries.get('logits')!.shape).toEqual([3, 33, 101]);
    const some = readSafetensors(p, { names: ['ids', 'mask'] });
    expect([...some.tensors.keys()]).toEqual(['ids', 'mask']);
    expect(some.tensors.get('ids')!.data).toBeInstanceOf(Int32Array);
    const byFn = readSafetensors(p, { names: (n) => n.startsWith('grad.') });
    expect(byFn.tensors.size).toBe(2 + 2 * 12 + 2);
    expect(() => readSafetensors(p, { names: ['nope'] })).toThrow(/no tensor "nope"/);
  });

  it('reads the golden files, whose sha256 match their JSON', () => {
    for (const v of ['tied', 'untied']) {
      const meta = JSON.parse(fs.readFileSync(path.join(GOLDEN, `gpt_${v}.json`), 'utf8')) as { safetensors_sha256: string; param_names: string[] };
      const p = path.join(GOLDEN, `gpt_${v}.safetensors`);
      expect(sha256File(p)).toBe(meta.safetensors_sha256);
      const t = readSafetensors(p).tensors;
      for (const n of meta.param_names) for (const k of ['init', 'grad', 'final']) expect(t.has(`${k}.${n}`), `${k}.${n}`).toBe(true);
      expect(meta.param_names.includes('lm_head.weight')).toBe(v === 'untied');
    }
  });

  it('rejects malformed files with a clear message', () => {
    const good = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
    const data = new Uint8Array(8);
    expect(() => readSafetensors(new Uint8Array(4))).toThrow(/too short/);
    const huge = Buffer.alloc(16);
    huge.writeBigUInt64LE(200_000_000n);
    expect(() => readSafetensors(huge)).toThrow(/exceeds/);
    const past = Buffer.alloc(16);
    past.writeBigUInt64LE(100n);
    expect(() => readSafetensors(past)).toThrow(/runs past the end/);
    expect(() => readSafetensors(rawFile('[1, 2]   '))).toThrow(/does not start with '\{'/);
    expect(() => readSafetensors(rawFile('{"a": '))).toThrow(/not valid JSON/);
    expect(() => readSafetensors(rawFile(good, data.subarray(0, 4)))).toThrow(/cover 8 bytes but the data section holds 4/);
    expect(() => readSafetensors(rawFile(good, new Uint8Array(12)))).toThrow(/trailing/);
    expect(() => readSafetensors(rawFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, data))).toThrow(/tensor "a": F32 \[3\] needs 12 bytes/);
    expect(() => readSafetensors(rawFile({ a: { dtype: 'Q4', shape: [2], data_offsets: [0, 8] } }, data))).toThrow(/tensor "a": unsupported dtype "Q4"/);
    expect(() => readSafetensors(rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, data))).toThrow(/invalid data_offsets/);
    expect(() => readSafetensors(rawFile({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 8] } }, data))).toThrow(/invalid shape/);
    const overlap = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } };
    expect(() => readSafetensors(rawFile(overlap, data))).toThrow(/tensor "b": data starts at 4, expected 8/);
    const hole = { a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } };
    expect(() => readSafetensors(rawFile(hole, data))).toThrow(/hole or overlap/);
    expect(() => readSafetensors(rawFile({ __metadata__: { n: 1 } }))).toThrow(/must be a string/);
    const i64 = Buffer.alloc(8);
    i64.writeBigInt64LE(2n ** 40n);
    expect(() => readSafetensors(rawFile({ big: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, i64))).toThrow(/tensor "big": I64 value 1099511627776 does not fit in int32/);
    const bad = Buffer.concat([rawFile(good).subarray(0, 8), Buffer.from([0xff, 0xfe, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20])]);
    bad.writeBigUInt64LE(8n);
    expect(() => readSafetensors(bad)).toThrow(/not valid UTF-8/);
  });

  it('accepts an unpadded header and a null __metadata__ (other writers)', () => {
    const t = readSafetensors(rawFile({ __metadata__: null, a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8), false));
    expect(t.metadata).toEqual({});
    expect(t.tensors.get('a')!.data).toEqual(new Float32Array(2));
  });

  it('reports a truncated file on disk by name', () => {
    const p = path.join(tmp, 'trunc.safetensors');
    const buf = encodeSafetensors({ w: { shape: [64], data: floats(64, 9) } });
    fs.writeFileSync(p, buf.subarray(0, buf.length - 4));
    expect(() => readSafetensors(p)).toThrow(new RegExp(`safetensors file ${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: tensors cover 256 bytes`));
  });
});
