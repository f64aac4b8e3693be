// C4 and CodeParrot loaders (src/data/corpora/text.ts, files.ts) on fixtures in the real formats,
// written by the test into a temp dir: gzipped JSON-lines shards named like allenai/c4's, plain JSON
// lines, and Parquet (hyparquet-writer) with several row groups; then bad input.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, describe, expect, it } from 'vitest';
import { CorpusError, Diagnostics, c4Documents, codeparrotDocuments, readLines, type LoadOptions } from '../../src/data/corpora/index.ts';

const root = mkdtempSync(join(tmpdir(), 'kindling-corpora-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let dirCount = 0;
function dir(): string {
  const d = join(root, `d${dirCount++}`);
  mkdirSync(d);
  return d;
}
const jsonl = (rows: unknown[]): string => rows.map((r) => JSON.stringify(r) + '\n').join('');
const c4row = (text: string, i: number) => ({ text, timestamp: `2019-04-2${i}T10:00:00Z`, url: `https://example.com/${i}` });

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
function capture(opts: LoadOptions = {}): { diag: Diagnostics; warnings: string[] } {
  const warnings: string[] = [];
  return { diag: new Diagnostics({ ...opts, onWarning: (m) => warnings.push(m) }), warnings };
}

describe('C4 loader', () => {
  it('reads gzipped shards of a directory in name order, with text, timestamp, url, shard and record', async () => {
    const d = dir();
    writeFileSync(join(d, 'c4-train.00001-of-00002.json.gz'), gzipSync(jsonl([c4row('third', 3)])));
    writeFileSync(join(d, 'c4-train.00000-of-00002.json.gz'), gzipSync(jsonl([c4row('first', 1), c4row('second\nline', 2)])));
    writeFileSync(join(d, 'README.md'), 'not a shard');
    const docs = await all(c4Documents(d));
    expect(docs).toEqual([
      { text: 'first', timestamp: '2019-04-21T10:00:00Z', url: 'https://example.com/1', source: join(d, 'c4-train.00000-of-00002.json.gz'), record: 1 },
      { text: 'second\nline', timestamp: '2019-04-22T10:00:00Z', url: 'https://example.com/2', source: join(d, 'c4-train.00000-of-00002.json.gz'), record: 2 },
      { text: 'third', timestamp: '2019-04-23T10:00:00Z', url: 'https://example.com/3', source: join(d, 'c4-train.00001-of-00002.json.gz'), record: 1 },
    ]);
  });

  it('a glob in the last path component selects shards; maxDocuments stops early', async () => {
    const d = dir();
    writeFileSync(join(d, 'c4-train.00000-of-00001.json.gz'), gzipSync(jsonl([c4row('t1', 1), c4row('t2', 2)])));
    writeFileSync(join(d, 'c4-validation.00000-of-00001.json.gz'), gzipSync(jsonl([c4row('v1', 1), c4row('v2', 2), c4row('v3', 3)])));
    expect((await all(c4Documents(join(d, 'c4-validation.*.json.gz')))).map((x) => x.text)).toEqual(['v1', 'v2', 'v3']);
    expect((await all(c4Documents(join(d, 'c4-*.json.gz'), { maxDocuments: 3 }))).map((x) => x.text)).toEqual(['t1', 't2', 'v1']);
    expect((await all(c4Documents(join(d, 'c4-train.0000?-of-00001.json.gz')))).map((x) => x.text)).toEqual(['t1', 't2']);
  });

  it('streams a shard bigger than one read chunk: lines cut across chunks, CRLF endings, no final newline', async () => {
    const d = dir();
    const texts = Array.from({ length: 3000 }, (_, i) => `document ${i} ` + 'é'.repeat(i % 97));
    const body = texts.map((t, i) => JSON.stringify(c4row(t, i % 10))).join('\r\n'); // ~300 KB, no trailing newline
    writeFileSync(join(d, 'c4-train.00000-of-00001.json.gz'), gzipSync(body));
    const docs = await all(c4Documents(d));
    expect(docs.length).toBe(3000);
    expect(docs.map((x) => x.text)).toEqual(texts);
    expect(docs[2999]!.record).toBe(3000);
  });

  it('reads the same records from Parquet, one row group at a time; a null text is a skipped record', async () => {
    const d = dir();
    const texts = ['p1', 'p2', null, 'p4', 'p5'];
    const buf = parquetWriteBuffer({
      columnData: [
        { name: 'text', data: texts, type: 'STRING' },
        { name: 'timestamp', data: texts.map((_, i) => `2019-0${i + 1}-01`), type: 'STRING' },
        { name: 'url', data: texts.map((_, i) => `u${i}`), type: 'STRING' },
      ],
      rowGroupSize: 2,
    });
    writeFileSync(join(d, '0000.parquet'), Buffer.from(buf));
    const { diag, warnings } = capture();
    const docs = await all(c4Documents(d, { diagnostics: diag }));
    expect(docs.map((x) => [x.text, x.timestamp, x.url, x.record])).toEqual([
      ['p1', '2019-01-01', 'u0', 1],
      ['p2', '2019-02-01', 'u1', 2],
      ['p4', '2019-04-01', 'u3', 4],
      ['p5', '2019-05-01', 'u4', 5],
    ]);
    expect(diag.skipped).toBe(1);
    expect(warnings).toEqual([`${join(d, '0000.parquet')}: row 3: "text" is null; record skipped`]);
  });
});

describe('CodeParrot loader', () => {
  it('reads `content` from plain JSON lines, gzipped JSON lines and Parquet', async () => {
    const d = dir();
    const rec = (content: string, i: number) => ({ repo_name: `r/${i}`, path: `f${i}.py`, copies: '1', size: String(content.length), content, license: 'mit' });
    writeFileSync(join(d, 'file-000000000001.json.gz'), gzipSync(jsonl([rec('import os\n', 1), rec('x = 1\n', 2)])));
    writeFileSync(join(d, 'file-000000000002.jsonl'), jsonl([rec('def f():\n    return 2\n', 3)]));
    const buf = parquetWriteBuffer({ columnData: [{ name: 'content', data: ['print(1)\n'], type: 'STRING' }, { name: 'path', data: ['p.py'], type: 'STRING' }] });
    writeFileSync(join(d, 'file-000000000003.parquet'), Buffer.from(buf));
    const docs = await all(codeparrotDocuments(d));
    expect(docs.map((x) => [x.text, x.repoName, x.path, x.record])).toEqual([
      ['import os\n', 'r/1', 'f1.py', 1],
      ['x = 1\n', 'r/2', 'f2.py', 2],
      ['def f():\n    return 2\n', 'r/3', 'f3.py', 1],
      ['print(1)\n', undefined, 'p.py', 1],
    ]);
  });

  it('a record without `content` is skipped (C4 records are not CodeParrot records)', async () => {
    const d = dir();
    writeFileSync(join(d, 'a.jsonl'), jsonl([{ text: 'c4 text' }, { content: 'code' }, { content: 7 }]));
    const { diag, warnings } = capture();
    expect((await all(codeparrotDocuments(d, { diagnostics: diag }))).map((x) => x.text)).toEqual(['code']);
    expect(diag.skipped).toBe(2);
    expect(warnings).toEqual([`${join(d, 'a.jsonl')}:1: no "content" field; record skipped`, `${join(d, 'a.jsonl')}:3: "content" is not a string; record skipped`]);
  });
});

describe('bad input', () => {
  it('malformed lines are counted and skipped with a warning; --strict fails naming file and line', async () => {
    const d = dir();
    const f = join(d, 'c4-train.00000-of-00001.json.gz');
    writeFileSync(f, gzipSync(`${JSON.stringify({ text: 'ok1' })}\n{"text": "cut\n[1,2]\n\n${JSON.stringify({ text: 'ok2' })}\n{"url":"x"}\n`));
    const { diag, warnings } = capture();
    expect((await all(c4Documents(d, { diagnostics: diag }))).map((x) => x.text)).toEqual(['ok1', 'ok2']);
    expect(diag.skipped).toBe(3); // line 2 not JSON, line 3 not an object, line 6 no text; the blank line 4 is not a record
    expect(warnings[0]).toMatch(new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: not JSON \\(`));
    expect(warnings.slice(1)).toEqual([`${f}:3: not a JSON object; record skipped`, `${f}:6: no "text" field; record skipped`]);
    await expect(all(c4Documents(d, { strict: true }))).rejects.toThrow(new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: not JSON .*\\(strict: not skipped\\)$`));
  });

  it('a truncated gzip shard fails naming the shard and the last complete record', async () => {
    const d = dir();
    const f = join(d, 'c4-train.00000-of-00001.json.gz');
    const rows = Array.from({ length: 2000 }, (_, i) => c4row(`row ${i} ${'x'.repeat(i % 50)}`, i % 10));
    const gz = gzipSync(jsonl(rows), { level: 0 }); // stored blocks: a byte cut lands in the same line
    const cut = gz.subarray(0, Math.floor(gz.length / 2));
    writeFileSync(f, cut);
    const plain = Buffer.from(jsonl(rows));
    const seen: string[] = [];
    const err = await (async () => {
      try {
        for await (const doc of c4Documents(f)) seen.push(doc.text);
      } catch (e) {
        return e as Error;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(CorpusError);
    const n = seen.length;
    expect(n).toBeGreaterThan(100);
    expect(seen).toEqual(rows.slice(0, n).map((r) => r.text));
    expect(err!.message).toBe(`${f}: truncated or corrupt gzip shard: ${n} complete line(s) read, record ${n + 1} cut off (unexpected end of file)`);
    // Stored blocks: the kept bytes are the plain text less a few header bytes (10 + 5 per 64 KiB block).
    const lines = (b: Buffer): number => b.toString('latin1').split('\n').length - 1;
    expect(n).toBeLessThanOrEqual(lines(plain.subarray(0, cut.length)));
    expect(n).toBeGreaterThanOrEqual(lines(plain.subarray(0, cut.length - 100)));
  });

  it('a missing path, a glob matching nothing, a directory without shards fail naming them', async () => {
    const d = dir();
    await expect(all(c4Documents(join(d, 'nope')))).rejects.toThrow(`${join(d, 'nope')}: no such file or directory`);
    await expect(all(c4Documents(join(d, 'c4-*.json.gz')))).rejects.toThrow(`${join(d, 'c4-*.json.gz')}: no file matches`);
    await expect(all(c4Documents(join(d, 'nodir', 'c4-*.json.gz')))).rejects.toThrow(`no such directory ${join(d, 'nodir')}`);
    writeFileSync(join(d, 'notes.txt'), 'x');
    await expect(all(codeparrotDocuments(d))).rejects.toThrow(`${d}: the directory holds no CodeParrot files`);
  });

  it('an empty shard (0 bytes, or a gzip of nothing) warns, and fails under strict', async () => {
    const d = dir();
    writeFileSync(join(d, 'c4-train.00000-of-00003.json.gz'), Buffer.alloc(0));
    writeFileSync(join(d, 'c4-train.00001-of-00003.json.gz'), gzipSync(''));
    writeFileSync(join(d, 'c4-train.00002-of-00003.json.gz'), gzipSync(jsonl([c4row('only', 0)])));
    const { diag, warnings } = capture();
    expect((await all(c4Documents(d, { diagnostics: diag }))).map((x) => x.text)).toEqual(['only']);
    expect(diag.skipped).toBe(0);
    expect(warnings).toEqual([`${join(d, 'c4-train.00000-of-00003.json.gz')}: empty shard, no records`, `${join(d, 'c4-train.00001-of-00003.json.gz')}: empty shard, no records`]);
    await expect(all(c4Documents(d, { strict: true }))).rejects.toThrow(`${join(d, 'c4-train.00000-of-00003.json.gz')}: empty shard, no records (strict)`);
  });

  it('a line with bytes that are not UTF-8 is a skipped record (never decoded with replacement characters)', async () => {
    const d = dir();
    const f = join(d, 'c4-train.00000-of-00001.json.gz');
    const bad = Buffer.concat([Buffer.from('{"text":"caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]); // Latin-1 é
    writeFileSync(f, gzipSync(Buffer.concat([Buffer.from(jsonl([c4row('café ok', 1)])), bad, Buffer.from(jsonl([c4row('after', 2)]))])));
    const { diag, warnings } = capture();
    expect((await all(c4Documents(d, { diagnostics: diag }))).map((x) => x.text)).toEqual(['café ok', 'after']);
    expect(diag.skipped).toBe(1);
    expect(warnings).toEqual([`${f}:2: bytes that are not valid UTF-8; record skipped`]);
    // the same in Parquet
    const p = join(dir(), 'x.parquet');
    writeFileSync(p, Buffer.from(parquetWriteBuffer({ columnData: [{ name: 'text', data: [new Uint8Array([0x61, 0xff]), new TextEncoder().encode('fine')], type: 'STRING' }] })));
    const c = capture();
    expect((await all(c4Documents(p, { diagnostics: c.diag }))).map((x) => x.text)).toEqual(['fine']);
    expect(c.warnings).toEqual([`${p}: row 1: "text" holds bytes that are not valid UTF-8; record skipped`]);
  });

  it('a .gz name without gzip data, a Parquet file without the column, and a corrupt Parquet file fail', async () => {
    const d = dir();
    writeFileSync(join(d, 'a.json.gz'), jsonl([{ text: 'plain' }]));
    await expect(all(c4Documents(join(d, 'a.json.gz')))).rejects.toThrow(`${join(d, 'a.json.gz')}: named .gz but is not gzip data`);
    writeFileSync(join(d, 'b.parquet'), Buffer.from(parquetWriteBuffer({ columnData: [{ name: 'body', data: ['x'], type: 'STRING' }] })));
    await expect(all(c4Documents(join(d, 'b.parquet')))).rejects.toThrow(`${join(d, 'b.parquet')}: Parquet file has no "text" column (columns: body)`);
    writeFileSync(join(d, 'c.parquet'), 'PAR1 not really');
    await expect(all(c4Documents(join(d, 'c.parquet')))).rejects.toThrow(`${join(d, 'c.parquet')}: not a readable Parquet file`);
  });

  it('readLines numbers lines and reports invalid UTF-8 as null text', async () => {
    const f = join(dir(), 'l.txt');
    writeFileSync(f, Buffer.concat([Buffer.from('a\r\n\n'), Buffer.from([0xc3, 0x28]), Buffer.from('\nlast')]));
    expect(await all(readLines(f))).toEqual([
      { line: 1, text: 'a' },
      { line: 2, text: '' },
      { line: 3, text: null },
      { line: 4, text: 'last' },
    ]);
  });
});
