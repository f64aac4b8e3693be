// `kindling data export|preview <downstream id>` (src/cli/data.ts): one real process through
// bin/kindling.js, the rest driven in-process with captured streams.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runData as run } from '../helpers/data_cli.ts';

const NEEDLE_42 = [
  147, 76, 142, 36, 138, 104, 152, 112, 155, 1, 134, 98, 133, 104, 140, 21, 139, 90, 143, 55, 137, 44, 154, 36, 148, 20, 150, 28, 144,
  123, 156, 98, 129, 44, 141, 14, 146, 12, 130, 49, 145, 13, 184, 36, ...new Array(19).fill(0),
];
const golden = JSON.parse(readFileSync(new URL('./golden.json', import.meta.url), 'utf8')) as {
  samples: Record<string, Record<string, { ids: number[]; wanted: number[]; wanted_fixed: number[] }[]>>;
};


describe('kindling data export <downstream id> (real process)', () => {
  it('the first needle line is the §11 vector', () => {
    const bin = fileURLToPath(new URL('../../bin/kindling.js', import.meta.url));
    const r = spawnSync(process.execPath, [bin, 'data', 'export', 'condattendstream_30', '--seed', '42', '--count', '3'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(3);
    expect(lines[0]).toEqual({ ids: NEEDLE_42, loss_positions: [42] });
  }, 30_000);
});

describe('kindling data export <downstream id>', () => {
  it('matches the Python reference for every family (seed 7, 5 lines), with and without --fix-quirks', async () => {
    for (const [id, perSeed] of Object.entries(golden.samples)) {
      const want = perSeed['7']!;
      const r = await run(['export', id, '--seed', '7', '--count', '5']);
      expect(r.code, id).toBe(0);
      const lines = r.out.trimEnd().split('\n').map((l) => JSON.parse(l));
      expect(lines).toEqual(want.map((g) => ({ ids: g.ids, loss_positions: g.wanted })));
      const f = await run(['export', id, '--seed', '7', '--count', '5', '--fix-quirks']);
      expect(f.out.trimEnd().split('\n').map((l) => JSON.parse(l).loss_positions)).toEqual(want.map((g) => g.wanted_fixed));
    }
  });

  it('--start I skips I gen_single() calls; seed defaults to 42', async () => {
    const all = await run(['export', 'forwardaddition_5', '--count', '4']);
    const tail = await run(['export', 'forwardaddition_5', '--start', '2', '--count', '2']);
    expect(JSON.parse(all.out.split('\n')[0]!).ids).toEqual([1, 3, 2, 7, 8, 10, 4, 2, 0, 9, 8, 11, 25, 25, 23, 27, 26, 30, 12]);
    expect(tail.out).toBe(all.out.split('\n').slice(2, 4).join('\n') + '\n');
  });

  it('--format bin: fixed row length, vocab, PAD and wanted mask', async () => {
    const r = await run(['export', 'multiplication_5', '--format', 'bin']);
    const b = r.bytes;
    expect(b.subarray(0, 8).toString('ascii')).toBe('KDPROC01');
    expect([8, 12, 16, 20].map((o) => b.readUInt32LE(o))).toEqual([32, 1, 29, 31]);
    expect(b.readInt32LE(24)).toBe(12);
    expect(Array.from({ length: 29 }, (_, i) => b.readInt32LE(32 + 4 * i))).toEqual(golden.samples.multiplication_5!['42']![0]!.ids);
    const mask = Array.from(b.subarray(32 + 29 * 4));
    expect(mask.flatMap((m, p) => (m ? [p] : []))).toEqual([12, 13, 14, 15, 16, 17, 18, 19, 20, 21]);
  });

  it('errors exit 2: bad family, bad N, procedural options, --fix-quirks on a procedural task', async () => {
    for (const argv of [
      ['export', 'needle_30'],
      ['export', 'condattendstream_0'],
      ['export', 'condattendstream_65'],
      ['export', 'sort_10', '--seq-length', '4'],
      ['export', 'additionstream_10', '--shuffled'],
      ['export', 'sort', '--fix-quirks'],
      ['preview', 'multiplication_x'],
    ]) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err, argv.join(' ')).toMatch(/^kindling data: /);
      expect(r.out).toBe('');
    }
    expect((await run(['export', 'needle_30'])).err).toContain('condattendstream, additionstream, forwardaddition, multiplication, sort');
  });
});

describe('kindling data preview <downstream id>, help, list', () => {
  it('marks the tokens predicted at wanted positions', async () => {
    const r = await run(['preview', 'additionstream_10', '--count', '1']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('model vocab size 31, row length 34, PAD 12');
    expect(r.out).toContain('11 wanted positions: 22..32');
    expect(r.out).toContain('1 6 9 4 5 3 7 9 6 9 + 2 1 5 2 0 8 1 5 0 2 = 3 [7] [4] [7] [5] [1] [9] [4] [7] [1] [1] [$]');
    const fixed = await run(['preview', 'additionstream_10', '--count', '1', '--fix-quirks']);
    expect(fixed.out).toContain('12 wanted positions: 21..32');
    expect(fixed.out).toContain('= [3] [7] [4]');
    const needle = await run(['preview', 'condattendstream_30', '--count', '1']);
    expect(needle.out).toContain('k19 76 k14 36');
    expect(needle.out).toContain('q26 [36] _');
  });

  it('help states the loss_positions convention; list shows the downstream tasks', async () => {
    const help = await run(['export', '--help']);
    expect(help.out).toContain('loss_positions lists every 0-based position p whose output is trained to predict ids[p+1]');
    expect(help.out).toContain('--fix-quirks');
    expect((await run(['list'])).out).toContain('multiplication_5');
    expect((await run(['--help'])).out).toContain('condattendstream_30');
  });
});
