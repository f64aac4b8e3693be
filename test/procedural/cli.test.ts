// `kindling data` (src/cli/data.ts), driven directly with captured output streams.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runData as run } from '../helpers/data_cli.ts';


describe('kindling data export', () => {
  it('writes one JSON line per sample with ids, targets and loss positions (§11 vectors)', async () => {
    const r = await run(['export', 'sort', '--seq-length', '8', '--vocab-size', '10', '--seed', '42', '--start', '0', '--count', '2']);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    const lines = r.out.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    expect(Object.keys(lines[0])).toEqual(['ids', 'targets', 'loss_positions']);
    expect(lines[0].ids).toEqual([7, 4, 8, 5, 7, 3, 7, 8, 10, 3, 4, 5, 7, 7, 7, 8, 8]);
    expect(lines[0].targets).toEqual([4, 8, 5, 7, 3, 7, 8, 10, 3, 4, 5, 7, 7, 7, 8, 8, 11]);
    expect(lines[0].loss_positions).toEqual([8, 9, 10, 11, 12, 13, 14, 15]);
    expect(lines[1].ids).toEqual([5, 1, 2, 6, 1, 4, 2, 3, 10, 1, 1, 2, 2, 3, 4, 5, 6]);
  });

  it('--start I selects RandomState(seed + I)', async () => {
    const r = await run(['export', 'delete', '--seq-length=8', '--vocab-size=10', '--seed', '41', '--start', '2']);
    expect(JSON.parse(r.out).ids).toEqual([5, 1, 2, 6, 1, 4, 2, 3, 10, 8, 10, 5, 1, 2, 6, 1, 4, 2, 3]);
    expect(JSON.parse(r.out).loss_positions).toEqual([10, 11, 12, 13, 14, 15, 16, 17]);
  });

  it('dyck: one stream, --start skips generator calls', async () => {
    const r = await run(['export', 'dyck', '--k', '4', '--length', '24', '--seed', '42', '--start', '1', '--count', '1']);
    const line = JSON.parse(r.out);
    expect(line.ids).toEqual([0, 0, 2, 6, 4, 4, 0, 4, 3, 2, 6, 7, 2, 6, 0, 1, 5, 4, 1, 5, 3, 2, 6, 7]);
    expect(line.targets.at(-1)).toBe(8);
    expect(line.loss_positions).toHaveLength(23);
    const s = await run(['export', 'dyck_shuffle', '--k', '4', '--length', '24', '--max-depth', '16', '--p-open', '0.5']);
    expect(JSON.parse(s.out).ids).toEqual([0, 2, 1, 6, 4, 5, 0, 1, 4, 5, 1, 2, 5, 6, 3, 1, 2, 3, 2, 5, 6, 7, 2, 7]);
  });

  it('--shuffled and eca options', async () => {
    const r = await run(['export', 'sort', '--seq-length', '8', '--vocab-size', '10', '--shuffled']);
    expect(JSON.parse(r.out).ids).toEqual([10, 3, 8, 8, 5, 7, 4, 7, 4, 8, 3, 7, 7, 8, 7, 5, 7]);
    const e = await run(['export', 'eca', '--seq-length', '12', '--rule', '30', '--burn-in', '5', '--rows', '2', '--start', '2']);
    expect(JSON.parse(e.out).ids).toEqual([1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 1, 1, 2, 0, 0, 1, 0, 1, 1, 1, 0, 0, 1, 0, 0]);
  });

  it('--format bin: header, int32 LE ids padded to the context length, loss-mask bytes', async () => {
    const r = await run(['export', 'stack', '--seq-length', '8', '--vocab-size', '10', '--count', '2', '--format', 'bin']);
    expect(r.code).toBe(0);
    const b = r.bytes;
    expect(b.subarray(0, 8).toString('ascii')).toBe('KDPROC01');
    const [hdr, n, t, vocab] = [8, 12, 16, 20].map((o) => b.readUInt32LE(o));
    expect([hdr, n, t, vocab, b.readInt32LE(24), b.readUInt32LE(28)]).toEqual([32, 2, 17, 12, 11, 1]);
    expect(b.length).toBe(32 + 2 * 17 * 4 + 2 * 17);
    const ids = Array.from({ length: 17 }, (_, i) => b.readInt32LE(32 + i * 4));
    expect(ids).toEqual([7, 4, 0, 3, 0, 5, 0, 3, 10, 3, 7, 11, 11, 11, 11, 11, 11]);
    const mask = Array.from(b.subarray(32 + 2 * 17 * 4, 32 + 2 * 17 * 4 + 17));
    expect(mask).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
    const tty = await run(['export', 'sort', '--format', 'bin'], true);
    expect(tty.code).not.toBe(0);
  });

  it('--output FILE', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kindling-data-'));
    try {
      const file = join(dir, 'out.jsonl');
      const r = await run(['export', 'union', '--seq-length', '8', '--vocab-size', '10', '--count', '3', '--output', file]);
      expect(r.code).toBe(0);
      expect(r.out).toBe('');
      const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
      expect(lines).toHaveLength(3);
      expect(JSON.parse(lines[0]).ids).toEqual([7, 4, 8, 5, 10, 7, 3, 7, 8, 10, 7, 4, 8, 5, 3, 11, 11, 11]);
      expect(JSON.parse(lines[0]).loss_positions).toEqual([9, 10, 11, 12, 13]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('errors: unknown task, unknown option, option of another task, bad value, missing task', async () => {
    for (const argv of [
      ['export', 'quicksort'],
      ['export', 'sort', '--bogus', '1'],
      ['export', 'sort', '--k', '4'],
      ['export', 'dyck', '--seq-length', '4'],
      ['export', 'sort', '--seq-length', 'ten'],
      ['export', 'sort', '--seq-length', '0'],
      ['export', 'sort', '--format', 'csv'],
      ['export', 'sort', '--count'],
      ['export'],
      ['frobnicate'],
    ]) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).not.toBe(0);
      expect(r.err, argv.join(' ')).toMatch(/^kindling data: /);
      expect(r.out).toBe('');
    }
  });
});

describe('kindling data preview / list / help', () => {
  it('preview marks the loss targets with brackets off a TTY and reports vocab/context', async () => {
    const r = await run(['preview', 'sort', '--seq-length', '8', '--vocab-size', '10', '--count', '1']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('model vocab size 12, context length (n_positions) 17');
    expect(r.out).toContain('7 4 8 5 7 3 7 8 | [3] [4] [5] [7] [7] [7] [8] [8]');
    expect(r.out).toContain('8 loss positions: 8..15');
  });

  it('preview colours on a TTY', async () => {
    const r = await run(['preview', 'stack', '--seq-length', '8', '--vocab-size', '10', '--count', '1'], true);
    expect(r.out).toContain('\x1b[1;32m3\x1b[0m');
    const plain = await run(['preview', 'stack', '--seq-length', '8', '--vocab-size', '10', '--count', '1', '--no-color'], true);
    expect(plain.out).not.toContain('\x1b[');
    expect(plain.out).toContain('| [3] [7] _');
  });

  it('help texts and list', async () => {
    for (const argv of [['--help'], ['preview', '--help'], ['export', '--help'], ['list']]) {
      const r = await run(argv);
      expect(r.code).toBe(0);
      expect(r.out.length).toBeGreaterThan(100);
    }
    expect((await run(['export', '--help'])).out).toContain('--format bin');
    expect((await run(['list'])).out).toContain('dyck_shuffle');
  });
});
