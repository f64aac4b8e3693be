// makeDirs (src/util/dirs.ts): creates missing components one plain mkdir at a time, and fails at
// once, naming the path, where fs.mkdirSync(…, { recursive: true }) spins (a path under /proc).
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DirectoryError, makeDirs } from '../../src/util/dirs.ts';

const root = mkdtempSync(join(tmpdir(), 'kindling-dirs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('makeDirs', () => {
  it('creates every missing component and accepts an existing directory', () => {
    const d = join(root, 'a', 'b', 'c');
    expect(existsSync(join(root, 'a'))).toBe(false);
    expect(makeDirs(d)).toBe(d);
    expect(statSync(d).isDirectory()).toBe(true);
    expect(makeDirs(d)).toBe(d);
  });

  it('a file in the way is named', () => {
    const f = join(root, 'file');
    writeFileSync(f, 'x');
    expect(() => makeDirs(join(f, 'sub'))).toThrow(DirectoryError);
    expect(() => makeDirs(join(f, 'sub'))).toThrow(`${f} exists and is not a directory`);
  });

  it.skipIf(!existsSync('/proc/self'))('a directory under /proc fails at once with the path', () => {
    const t0 = Date.now();
    let err: unknown;
    try {
      makeDirs('/proc/kindling-x/y');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DirectoryError);
    expect((err as Error).message).toBe('cannot create directory /proc/kindling-x/y: /proc does not accept new directories (ENOENT)');
    expect((err as DirectoryError).path).toBe('/proc/kindling-x');
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});
