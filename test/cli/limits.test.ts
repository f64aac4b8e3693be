// Sizes, counts and hangs (docs/reliability.md): bad input exits non-zero within seconds with a
// message naming the key, the path or the numbers. The cases the issue names as commands run as real
// `kindling` processes; the streaming of long exports runs in-process with the chunks captured.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runDataCommand } from '../../src/cli/data.ts';
import { createTask, lossPositions } from '../../src/data/procedural/index.ts';

const bin = fileURLToPath(new URL('../../bin/kindling.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'kindling-limits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `kindling …` as a process; fails the test when it takes longer than `seconds`. */
function kindling(args: string[], seconds = 30, env: NodeJS.ProcessEnv = process.env): { code: number | null; out: string; err: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: seconds * 1000, env });
  return { code: r.status, out: r.stdout, err: r.stderr.split('\n').filter((l) => !l.startsWith('Warning: ')).join('\n'), ms: Date.now() - t0 };
}

const TRAIN = ['train', '--max_steps', '2', '--save_every_steps', '1', '--steps_per_epoch', '2'];

describe('kindling train: refused before work starts (real process)', () => {
  it.skipIf(!existsSync('/proc/self'))('--save_dir under /proc fails at once naming the path', () => {
    const r = kindling([...TRAIN, '--task', 'sort', '--save_dir', '/proc/kindling-x']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('kindling train: cannot create directory /proc/kindling-x/sort-20-2_4_16-2steps: /proc does not accept new directories (ENOENT)');
    expect(r.ms).toBeLessThan(20_000);
  }, 40_000);

  it('a model too large for this machine exits 2 with the numbers and a hint', () => {
    // 1024 layers of width 2048: every buffer fits a 128 MiB binding, but 51.6 billion parameters are
    // 206 GB of weights (and a checkpoint's host copy of 619 GB is refused on a hardware adapter too).
    const r = kindling([...TRAIN, '--task', 'sort', '--gpt2_size', '1024_16_2048', '--batch_size', '1', '--save_dir', dir]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^kindling train: model 1024_16_2048 \(vocab 23, context 41\), batch 1: /);
    expect(r.err).toContain('51,567,005,696'); // the parameters, in either the software or the hardware message
    expect(r.err).toMatch(/more than this machine's [\d.]+ GiB/);
    expect(r.err).toMatch(/gpt2_size|smaller model/);
    expect(r.ms).toBeLessThan(20_000);
    expect(existsSync(join(dir, 'sort-20-1024_16_2048-2steps'))).toBe(false);
  }, 40_000);

  it('a context whose activations exceed one buffer exits 2 naming the buffer', () => {
    const r = kindling([...TRAIN, '--task', 'dyck', '--seq_length', '67108864', '--save_dir', dir]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^kindling train: model 2_4_16 \(vocab 33, context 67108864\), batch 64: the largest buffer, the MLP hidden activations \[64·67108864, 64\], needs 1\.00 TiB, over this adapter's maxStorageBufferBindingSize of [\d.]+ [MG]iB; lower batch_size \(raise gradient_accumulation_steps to keep the effective batch\), seq_length or gpt2_size/);
  }, 40_000);

  it('a Dyck length of 1 (no loss position) is a configuration error', () => {
    const r = kindling([...TRAIN, '--task', 'dyck', '--seq_length', '1', '--save_dir', dir]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('kindling train: seq_length: the dyck task needs at least 2 to have any loss position (the loss is on positions 0..n-2, none for n = 1), got 1');
  }, 40_000);

  it('--batch-size 0 and --batch_size 0 name the key and its range', () => {
    for (const flag of ['--batch-size', '--batch_size']) {
      const r = kindling([...TRAIN, '--task', 'sort', flag, '0', '--save_dir', dir]);
      expect(r.code).toBe(2);
      expect(r.err).toContain('kindling train: batch_size: must be >= 1, got 0 (from --batch_size)');
    }
  }, 40_000);
});

describe('kindling experiment: both stages sized before either trains (real process)', () => {
  it('a stage-2 model over the limits fails every run at once, and no stage 1 is trained', () => {
    const file = join(dir, 'big-stage2.yaml');
    writeFileSync(
      file,
      [
        'name: big-stage2',
        'task: condattendstream_10',
        'seeds: [0]',
        'stage1: {task: dyck, k: 2, seq_length: 16, gpt2_size: 2_4_16, batch_size: 8, max_steps: 2, save_every_steps: 1}',
        // 1024 layers of width 2048: 51.6 billion parameters, over any machine's memory
        'stage2: {max_steps: 2, n_positions: 32, n_layer: 1024, n_head: 16, n_embd: 2048, per_device_train_batch_size: 4, per_device_eval_batch_size: 4, eval_steps: 1}',
        'arms:',
        '  - {name: none, role: baseline}',
        '  - {name: dyck, role: procedural}',
      ].join('\n'),
    );
    const out = join(dir, 'big-stage2');
    const r = kindling(['experiment', file, '--out', out]);
    expect(r.code).toBe(1);
    // "training needs about …" on a software adapter, "a checkpoint holds …" on a hardware one
    const why = String.raw`model 1024_16_2048 \(vocab 256, context 32\), batch 4: (training needs about|a checkpoint holds)`;
    expect(`${r.out}${r.err}`).toMatch(new RegExp(`failed: none seed 0: ${why}`));
    expect(`${r.out}${r.err}`).toMatch(new RegExp(`failed: dyck seed 0: ${why}`));
    expect(r.ms).toBeLessThan(20_000);
    expect(readdirSync(out).sort()).toEqual(['experiment.json', 'experiment.yaml', 'locks']);
  }, 40_000);

  // Workers that die before any run (here: no Vulkan driver, so no adapter) are failures, also when
  // --arms selects part of the experiment (where unfinished runs alone do not make the exit non-zero).
  it.skipIf(process.platform !== 'linux')('--jobs 2 --arms with workers that find no adapter exits 1 naming them', () => {
    const file = join(dir, 'no-adapter.yaml');
    writeFileSync(
      file,
      ['name: no-adapter', 'task: condattendstream_2', 'seeds: [0, 1]', 'stage2: {max_steps: 2, eval_steps: 1}', 'arms:', '  - {name: none, role: baseline}', '  - {name: none2, role: baseline}'].join('\n'),
    );
    const r = kindling(['experiment', file, '--out', join(dir, 'no-adapter'), '--jobs', '2', '--arms', 'none'], 60, { ...process.env, VK_DRIVER_FILES: join(dir, 'no-such-icd.json'), VK_ICD_FILENAMES: join(dir, 'no-such-icd.json') });
    expect(r.code, r.err).toBe(1);
    expect(r.err).toMatch(/failed: worker 0 \(pid \d+\) exited with code 1/);
    expect(r.err).toMatch(/failed: worker 1 \(pid \d+\) exited with code 1/);
    expect(r.out).toContain('0/4 runs finished');
  }, 70_000);
});

describe('kindling data export: counts against the format (real process)', () => {
  it('--count 1e11 --format bin: the header holds a u32', () => {
    const out = join(dir, 'big.bin');
    const r = kindling(['data', 'export', 'dyck', '--count', '1e11', '--format', 'bin', '--output', out]);
    expect(r.code).toBe(2);
    expect(r.err).toBe('kindling data: --count: the bin format holds at most 4294967295 samples (N is a u32 in its header), got 100000000000; use several files or --format json\n');
    expect(existsSync(out)).toBe(false);
  }, 40_000);

  it('seed + idx past 2^32 - 1 is refused before the first sample', () => {
    const r = kindling(['data', 'export', 'sort', '--seed', '4294967000', '--count', '1000']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('seed 4294967000 + start 0 + count 1000 - 1 = 4294967999');
  }, 40_000);
});

/** `kindling data …` in-process; every chunk handed to stdout is kept. */
async function capture(argv: string[]): Promise<{ code: number; chunks: Buffer[]; err: string }> {
  const chunks: Buffer[] = [];
  let err = '';
  const code = await runDataCommand(argv, {
    stdout: { write: (c: string | Uint8Array) => void chunks.push(Buffer.from(c)) },
    stderr: { write: (c: string) => void (err += c) },
  });
  return { code, chunks, err };
}

describe('kindling data export streams long output', () => {
  it('a long Dyck sample goes out as a JSON line in pieces, never built whole', async () => {
    const n = 400_000;
    const r = await capture(['export', 'dyck', '--length', String(n), '--k', '64', '--count', '1']);
    expect(r.code).toBe(0);
    const text = Buffer.concat(r.chunks).toString('utf8');
    expect(text.length).toBeGreaterThan(4_000_000);
    expect(Math.max(...r.chunks.map((c) => c.length))).toBeLessThan(300_000);
    const line = JSON.parse(text);
    const s = createTask('dyck', { length: n, k: 64 }).sample(0);
    expect(line.ids).toEqual(Array.from(s.ids));
    expect(line.targets).toEqual(Array.from(s.targets));
    expect(line.loss_positions).toEqual(lossPositions(s));
  });

  it('a bin export goes out in pieces of about 1 MiB, ids then masks, the same bytes a whole-buffer encoding gives', async () => {
    const r = await capture(['export', 'sort', '--count', '20000', '--format', 'bin']);
    expect(r.code).toBe(0);
    const b = Buffer.concat(r.chunks);
    const task = createTask('sort');
    const T = task.contextLength;
    const N = 20000;
    expect(b.length).toBe(32 + N * T * 5);
    expect(Math.max(...r.chunks.map((c) => c.length))).toBeLessThanOrEqual(1 << 20);
    expect(b.readUInt32LE(12)).toBe(N);
    expect(b.readUInt32LE(16)).toBe(T);
    for (const i of [0, 1, 6393, N - 1]) {
      const s = task.sample(i);
      const ids = Array.from({ length: T }, (_, p) => b.readInt32LE(32 + (i * T + p) * 4));
      expect(ids).toEqual(Array.from({ length: T }, (_, p) => (p < s.ids.length ? s.ids[p] : task.padId)));
      const mask = Array.from(b.subarray(32 + N * T * 4 + i * T, 32 + N * T * 4 + (i + 1) * T));
      expect(mask).toEqual(Array.from({ length: T }, (_, p) => (p < s.lossMask.length ? s.lossMask[p] : 0)));
    }
  });
});
