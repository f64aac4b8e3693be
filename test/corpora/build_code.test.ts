// The code builder on a fake standard library folder, announced by a fake Python (a shell script
// answering the sysconfig query). The split of each file is checked against Python's own hashlib
// (the independent reference of the SHA-256 rule), the records against the files on disk.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { buildCode, pythonStdlib } from '../../src/data/corpora/build/index.ts';
import { codeparrotDocuments } from '../../src/data/corpora/index.ts';
import { main } from '../../src/cli/main.ts';

const root = mkdtempSync(join(tmpdir(), 'kindling-build-code-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const hasPython = spawnSync('python3', ['-c', 'pass']).status === 0;

const lib = join(root, 'lib', 'python3.99');
const files: Record<string, string | Buffer> = {
  'abc.py': 'def f():\n    return 1\n',
  'pkg/__init__.py': '',
  'pkg/blank.py': '\n   \n',
  'pkg/mod.py': '# é ünïcode\nX = "—"\n',
  'latin1.py': Buffer.from([0x23, 0x20, 0xe9, 0x0a]), // "# é" in Latin-1: not UTF-8
  'notes.txt': 'not python',
  '__pycache__/abc.cpython-399.py': 'cached = 1\n',
  'site-packages/thirdparty.py': 'x = 1\n',
  'lib-dynload/ext.py': 'x = 1\n',
  'config-3.99-x86_64-linux-gnu/python-config.py': 'x = 1\n',
  'test/test_abc.py': 'import abc\n',
  'idlelib/idle_test/test_x.py': 'pass\n',
  'idlelib/run.py': 'run = True\n',
};
for (let i = 0; i < 30; i++) files[`m${String(i).padStart(2, '0')}.py`] = `N = ${i}\n`;
for (const [p, c] of Object.entries(files)) {
  mkdirSync(join(lib, p, '..'), { recursive: true });
  writeFileSync(join(lib, p), c);
}
symlinkSync(join(lib, 'abc.py'), join(lib, 'link.py'));

const fakePython = join(root, 'python-fake');
writeFileSync(fakePython, `#!/bin/sh\necho '{"stdlib": "${lib}", "version": "3.99.1"}'\n`);
chmodSync(fakePython, 0o755);

/** The expected corpus files (paths relative to the stdlib) without the test folders. */
const kept = Object.keys(files)
  .filter((p) => p.endsWith('.py') && !/^(__pycache__|site-packages|lib-dynload|config-|test\/)|idle_test\//.test(p))
  .filter((p) => !['pkg/__init__.py', 'pkg/blank.py', 'latin1.py'].includes(p))
  .sort();

/** Python's verdict on the split rule: validation when int.from_bytes(sha256(path)[:4], 'big') % 10 == 0. */
function pythonValid(paths: string[]): Set<string> {
  const script = 'import hashlib, json, sys\npaths = json.load(sys.stdin)\nprint(json.dumps([p for p in paths if int.from_bytes(hashlib.sha256(p.encode()).digest()[:4], "big") % 10 == 0]))';
  return new Set(JSON.parse(execFileSync('python3', ['-c', script], { input: JSON.stringify(paths), encoding: 'utf8' })));
}

const records = (dir: string): Record<string, unknown>[] =>
  readdirSync(dir)
    .sort()
    .flatMap((f) => gunzipSync(readFileSync(join(dir, f))).toString('utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l)));

describe('buildCode', () => {
  it.skipIf(!hasPython)('writes CodeParrot records of every kept .py file, split by the SHA-256 of the path, read back by the loader', async () => {
    const out = join(root, 'out1');
    const r = await buildCode({ out, python: fakePython });
    const dir = join(out, 'codeparrot');
    const valid = pythonValid(kept.map((p) => `Lib/${p}`));
    expect(valid.size).toBeGreaterThan(0);
    expect(valid.size).toBeLessThan(kept.length);
    const train = records(join(dir, 'codeparrot-clean-train'));
    const validRecs = records(join(dir, 'codeparrot-clean-valid'));
    expect(validRecs.map((x) => x.path)).toEqual(kept.map((p) => `Lib/${p}`).filter((p) => valid.has(p)));
    expect(train.map((x) => x.path)).toEqual(kept.map((p) => `Lib/${p}`).filter((p) => !valid.has(p)));
    for (const rec of [...train, ...validRecs]) {
      const bytes = readFileSync(join(lib, (rec.path as string).slice(4)));
      expect(rec).toEqual({ repo_name: 'cpython-stdlib-3.99.1', path: rec.path, copies: '1', size: String(bytes.length), content: bytes.toString('utf8'), license: 'PSF-2.0' });
    }
    expect(readdirSync(join(dir, 'codeparrot-clean-train'))).toEqual(['file-000000000001.json.gz']);
    const docs = [];
    for await (const d of codeparrotDocuments(join(dir, 'codeparrot-clean-train'), { strict: true })) docs.push(d);
    expect(docs.map((d) => [d.repoName, d.path, d.text])).toEqual(train.map((x) => [x.repo_name, x.path, x.content]));
    expect(r.splits.train).toMatchObject({ files: 1, documents: train.length, characters: train.reduce((n, x) => n + [...(x.content as string)].length, 0) });
    expect(r.splits.valid!.documents).toBe(validRecs.length);
    expect(r.excluded).toEqual({ 'symbolic links': 1, 'test folders': 2, 'empty files': 2, 'files not valid UTF-8': 1 });
    expect(r.details).toMatchObject({ repo_name: 'cpython-stdlib-3.99.1', stdlib: lib });
  });

  it.skipIf(!hasPython)('--include-tests keeps the test folders; small shards are numbered from 1', async () => {
    const r = await buildCode({ out: join(root, 'out2'), python: fakePython, includeTests: true, shardChars: 1 });
    const all = [...records(join(root, 'out2', 'codeparrot', 'codeparrot-clean-train')), ...records(join(root, 'out2', 'codeparrot', 'codeparrot-clean-valid'))].map((x) => x.path);
    expect(all).toContain('Lib/test/test_abc.py');
    expect(all).toContain('Lib/idlelib/idle_test/test_x.py');
    expect(all.length).toBe(kept.length + 2);
    const n = r.splits.train!.documents;
    expect(readdirSync(join(root, 'out2', 'codeparrot', 'codeparrot-clean-train'))).toEqual(Array.from({ length: n }, (_, i) => `file-${String(i + 1).padStart(12, '0')}.json.gz`));
  });

  it('fails naming the Python when it cannot be run, answers nonsense or names a missing folder', () => {
    expect(() => pythonStdlib(join(root, 'no-python'))).toThrow(/cannot run .*no-python .*--python/);
    const liar = join(root, 'python-liar');
    writeFileSync(liar, `#!/bin/sh\necho '{"stdlib": "${join(root, 'gone')}", "version": "3.0.0"}'\n`);
    chmodSync(liar, 0o755);
    expect(() => pythonStdlib(liar)).toThrow(`${join(root, 'gone')}: the standard library folder of ${liar} does not exist`);
    const broken = join(root, 'python-broken');
    writeFileSync(broken, '#!/bin/sh\necho "Traceback: boom" >&2\nexit 3\n');
    chmodSync(broken, 0o755);
    expect(() => pythonStdlib(broken)).toThrow(/python-broken -c <sysconfig query> failed \(exit 3\): Traceback: boom/);
  });

  it.skipIf(!hasPython)("the machine's python3 names a standard library folder that holds os.py", () => {
    const s = pythonStdlib('python3');
    expect(existsSync(join(s.dir, 'os.py'))).toBe(true);
    expect(s.version).toMatch(/^3\.\d+\.\d+$/);
  });

  it.skipIf(!hasPython)('kindling corpora build code: one line of what was written, exit 1 naming a missing Python', async () => {
    let out = '';
    const w = process.stdout.write;
    process.stdout.write = ((c: string) => ((out += c), true)) as typeof process.stdout.write;
    const e = process.stderr.write;
    let err = '';
    process.stderr.write = ((c: string) => ((err += c), true)) as typeof process.stderr.write;
    const ce = console.error;
    console.error = (...a: unknown[]) => void (err += a.join(' ') + '\n');
    try {
      expect(await main(['corpora', 'build', 'code', '--out', join(root, 'cli'), '--python', fakePython])).toBe(0);
      expect(await main(['corpora', 'build', 'code', '--out', join(root, 'cli2'), '--python', join(root, 'none')])).toBe(1);
    } finally {
      process.stdout.write = w;
      process.stderr.write = e;
      console.error = ce;
    }
    expect(out.split('\n')[0]).toMatch(new RegExp(`^code: wrote ${join(root, 'cli', 'codeparrot')}: train 1 file\\(s\\), \\d+ documents, \\d+ characters; valid 1 file\\(s\\), \\d+ documents, \\d+ characters \\(0\\.0 MB on disk\\); left out: test folders 2, symbolic links 1, files not valid UTF-8 1, empty files 2$`));
    expect(err).toMatch(/cannot run .*none/);
  });
});
