// Token shards: exact header bytes, uint16/uint32 round trips, positioned reads across shard
// boundaries, cursors, resumable streams and batch sources, and files that are not (whole) shards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  dtypeFor,
  MANIFEST_FILE,
  ShardFile,
  ShardFormatError,
  ShardSetWriter,
  TokenShards,
  writeShard,
} from '../../src/data/tokenizers/shards.ts';
import { gpt2Tokenizer } from '../../src/data/tokenizers/index.ts';

let dir: string;
let n = 0;
const fresh = (name: string) => join(dir, `${name}-${n++}`);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kindling-shards-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Deterministic tokens below `vocab`. */
function tokens(count: number, vocab: number, seed = 1): number[] {
  let x = seed;
  return Array.from({ length: count }, () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) % vocab));
}

/** A shard set of `all`, appended in uneven chunks, `perShard` tokens per file. */
function makeSet(all: number[], perShard: number, vocabSize = 50257, eot = 50256): string {
  const d = fresh('set');
  const w = new ShardSetWriter(d, { tokenizer: { name: 'test', vocabSize, eot }, tokensPerShard: perShard });
  for (let i = 0, k = 1; i < all.length; i += k, k = (k % 9) + 1) w.append(all.slice(i, i + k));
  w.close();
  return d;
}

describe('shard file', () => {
  it('has the documented header, then little-endian tokens', () => {
    const p = fresh('h16.bin');
    writeShard(p, [1, 258, 65535], 65536);
    const want = Buffer.concat([
      Buffer.from('KDLTOKEN', 'latin1'),
      Buffer.from([1, 0, 0, 0]), // version
      Buffer.from([2, 0, 0, 0]), // bytes per token
      Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]), // count
      Buffer.from([0, 0, 1, 0]), // vocab 65536
      Buffer.from([0, 0, 0, 0]),
      Buffer.from([1, 0, 2, 1, 0xff, 0xff]),
    ]);
    expect(readFileSync(p)).toEqual(want);
    const q = fresh('h32.bin');
    writeShard(q, [70000], 100000);
    expect([...readFileSync(q).subarray(12, 16)]).toEqual([4, 0, 0, 0]);
    expect([...readFileSync(q).subarray(32)]).toEqual([0x70, 0x11, 0x01, 0x00]); // 70000 = 0x011170
  });

  it('uses uint16 up to a vocabulary of 65536, uint32 above', () => {
    expect(dtypeFor(50257)).toBe('uint16');
    expect(dtypeFor(65536)).toBe('uint16');
    expect(dtypeFor(65537)).toBe('uint32');
    expect(() => dtypeFor(0)).toThrow(/vocabSize/);
  });

  for (const [dtype, vocab] of [['uint16', 50257], ['uint32', 100277]] as const) {
    it(`round-trips ${dtype} tokens, whole and by positioned reads`, () => {
      const all = tokens(1000, vocab);
      all[0] = vocab - 1;
      all[1] = 0;
      const p = fresh(`${dtype}.bin`);
      expect(writeShard(p, all, vocab)).toEqual({ dtype, count: 1000, vocabSize: vocab });
      const f = new ShardFile(p);
      try {
        expect(f.header.dtype).toBe(dtype);
        expect(Array.from(f.read(0, 1000))).toEqual(all);
        for (const [o, k] of [[0, 1], [999, 1], [123, 456], [500, 0]]) expect(Array.from(f.read(o, k))).toEqual(all.slice(o, o + k));
        expect(() => f.read(990, 11)).toThrow(/outside \[0, 1000\)/);
      } finally {
        f.close();
      }
    });
  }

  it('refuses tokens outside the vocabulary, naming the token', () => {
    expect(() => writeShard(fresh('bad.bin'), [1, 2, 50257], 50257)).toThrow(/token 50257 \(at 2\) outside the vocabulary \[0, 50257\)/);
  });
});

describe('bad files', () => {
  const good = () => {
    const p = fresh('good.bin');
    writeShard(p, tokens(100, 50257), 50257);
    return p;
  };

  it('a truncated shard fails naming the file', () => {
    const p = good();
    truncateSync(p, 32 + 2 * 100 - 1);
    expect(() => new ShardFile(p)).toThrow(ShardFormatError);
    expect(() => new ShardFile(p)).toThrow(`${p}: truncated: header says 100 tokens (232 bytes), file has 231 bytes`);
    truncateSync(p, 10);
    expect(() => new ShardFile(p)).toThrow(`${p}: not a token shard: 10 bytes`);
  });

  it('a foreign file, a newer version, a bad width and trailing bytes fail naming the file', () => {
    const png = fresh('image.png');
    writeFileSync(png, Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(100)]));
    expect(() => new ShardFile(png)).toThrow(new RegExp(`^${png}: not a token shard: magic`));
    const patched = (at: number, value: number) => {
      const p = good();
      const b = readFileSync(p);
      b.writeUInt32LE(value, at);
      writeFileSync(p, b);
      return p;
    };
    const v2 = patched(8, 2);
    expect(() => new ShardFile(v2)).toThrow(`${v2}: token shard version 2, this build reads version 1`);
    const w3 = patched(12, 3);
    expect(() => new ShardFile(w3)).toThrow(`${w3}: bytes per token 3`);
    const tail = good();
    appendFileSync(tail, Buffer.from([0]));
    expect(() => new ShardFile(tail)).toThrow(`${tail}: 1 bytes after the 100 tokens`);
    const missing = join(dir, 'absent.bin');
    expect(() => new ShardFile(missing)).toThrow(`${missing}: cannot open token shard (ENOENT)`);
  });

  it('a shard set without a manifest, with a foreign one, or one that disagrees with its shards fails naming the file', () => {
    const empty = fresh('empty');
    mkdirSync(empty);
    expect(() => TokenShards.open(empty)).toThrow(`${join(empty, MANIFEST_FILE)}: missing`);
    const d = makeSet(tokens(30, 50257), 10);
    const mpath = join(d, MANIFEST_FILE);
    const m = JSON.parse(readFileSync(mpath, 'utf8'));
    writeFileSync(mpath, JSON.stringify({ vocab_size: 50257 }));
    expect(() => TokenShards.open(d)).toThrow(`${mpath}: not a shard manifest: "format"`);
    writeFileSync(mpath, JSON.stringify({ ...m, shards: [m.shards[0], { ...m.shards[1], tokens: 11 }, m.shards[2]] }));
    expect(() => TokenShards.open(d)).toThrow(`${join(d, 'shard-00001.bin')}: holds 10 tokens, index.json says 11`);
    writeFileSync(mpath, JSON.stringify(m));
    truncateSync(join(d, 'shard-00002.bin'), 40);
    expect(() => TokenShards.open(d)).toThrow(`${join(d, 'shard-00002.bin')}: truncated`);
  });
});

describe('shard sets', () => {
  const all = tokens(103, 50257, 7);
  let s: TokenShards;
  beforeAll(() => {
    s = TokenShards.open(makeSet(all, 10));
  });
  afterAll(() => s.close());

  it('split into files of tokensPerShard with a manifest', () => {
    expect(s.manifest.shards.map((x) => x.tokens)).toEqual([10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 3]);
    expect(s.manifest.dtype).toBe('uint16');
    expect(s.total).toBe(103);
  });

  it('read any window, across shard boundaries', () => {
    for (let start = 0; start <= 103; start++) {
      for (const k of [0, 1, 9, 10, 11, 25, 103 - start]) {
        if (start + k > 103) continue;
        expect(Array.from(s.read(start, k)), `[${start}, +${k})`).toEqual(all.slice(start, start + k));
      }
    }
    expect(() => s.read(100, 4)).toThrow(/outside \[0, 103\)/);
  });

  it('map offsets to {shard, offset} cursors and back', () => {
    expect(s.cursorAt(0)).toEqual({ shard: 0, offset: 0 });
    expect(s.cursorAt(9)).toEqual({ shard: 0, offset: 9 });
    expect(s.cursorAt(10)).toEqual({ shard: 1, offset: 0 });
    expect(s.cursorAt(102)).toEqual({ shard: 10, offset: 2 });
    expect(s.cursorAt(103)).toEqual({ shard: 11, offset: 0 });
    for (let p = 0; p <= 103; p++) expect(s.offsetOf(s.cursorAt(p))).toBe(p);
    expect(s.offsetOf({ shard: 0, offset: 10 })).toBe(10); // the end of shard 0 is the start of shard 1
    expect(() => s.offsetOf({ shard: 10, offset: 4 })).toThrow(/cursor \{"shard":10,"offset":4\} is not a position/);
    expect(() => s.offsetOf({ shard: 12, offset: 0 })).toThrow(/not a position/);
  });

  it('documents end with the end-of-text id, and a GPT-2 set decodes back to the text', () => {
    const gpt2 = gpt2Tokenizer();
    const docs = ['First document.', 'Second one, with 12 numbers and a café ☕.', 'def f():\n    return 1\n'];
    const d = fresh('docs');
    const w = new ShardSetWriter(d, { tokenizer: gpt2, tokensPerShard: 8, meta: { corpus: 'test' } });
    for (const t of docs) w.appendDocument(gpt2.encode(t));
    const m = w.close();
    expect(m.tokenizer).toEqual({ name: 'gpt2', vocabSize: 50257, eot: 50256 });
    const r = TokenShards.open(d);
    try {
      const ids = r.read(0, r.total);
      expect(gpt2.decode(ids)).toBe(docs.map((t) => t + '<|endoftext|>').join(''));
      expect(ids.filter((t) => t === 50256).length).toBe(3);
      expect(r.manifest.meta).toEqual({ corpus: 'test' });
    } finally {
      r.close();
    }
  });
});
