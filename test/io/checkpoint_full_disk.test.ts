// A checkpoint saved onto a full disk: every file of a directory named `full-disk` is opened on
// /dev/full (node:fs mocked for this file only), so each write fails with ENOSPC as on a full disk.
// The save must fail naming the file and ENOSPC, leave no temporary files, and not touch another
// directory's checkpoint.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const openSync = (p: import('node:fs').PathLike, flags?: import('node:fs').OpenMode, mode?: import('node:fs').Mode): number =>
    /[/\\]full-disk[/\\]/.test(String(p)) && flags === 'w' ? fs.openSync('/dev/full', 'w') : fs.openSync(p, flags ?? 'r', mode);
  return { ...fs, default: { ...fs, openSync }, openSync };
});

const { CheckpointError, loadCheckpoint, saveCheckpoint } = await import('../../src/io/checkpoint.ts');

const tmp = mkdtempSync(join(tmpdir(), 'kindling-full-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const ckpt = {
  config: { tied: false },
  params: new Map([['w', Float32Array.from([1, 2, 3, 4])]]),
  shapes: { w: [2, 2] },
  step: 3,
};

describe.runIf(existsSync('/dev/full'))('saveCheckpoint on a full disk', () => {
  it('throws a CheckpointError naming the file and ENOSPC, and leaves no temporary files', () => {
    const dir = join(tmp, 'full-disk');
    let err: unknown = null;
    try {
      saveCheckpoint(dir, ckpt, { fsync: false });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toBe(`cannot write checkpoint file ${join(dir, 'model.safetensors')}: ENOSPC: no space left on device, write`);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a save elsewhere still works and loads back', () => {
    const dir = join(tmp, 'disk');
    saveCheckpoint(dir, ckpt, { fsync: false });
    expect(Array.from(loadCheckpoint(dir).params.get('w')!)).toEqual([1, 2, 3, 4]);
  });
});
