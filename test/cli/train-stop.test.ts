/**
 * `kindling train` stopped, as real processes: the first SIGINT/SIGTERM finishes the step in flight,
 * writes a `step-N` checkpoint, names it and exits 130 (SIGINT) / 143 (SIGTERM); the checkpoint loads
 * and `--resume true` continues from it; a second SIGINT exits at once. `--lr 1e30` exits 1 naming
 * the non-finite step and writes no non-finite checkpoint; a bad `nonfinite` value exits 2.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../src/io/checkpoint.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'kindling-signals-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A tiny run long enough to be interrupted: it logs (and checkpoints) every 10 steps. */
const args = (dir: string, extra: string[] = [], keys: Record<string, string> = {}) => [
  '--import', 'tsx', 'src/cli/main.ts', 'train',
  ...Object.entries({ task: 'sort', gpt2_size: '1_2_16', seq_length: '4', vocab_size: '6', batch_size: '4', max_steps: '100000', save_every_steps: '10', dropout: '0', save_dir: dir, run_name: 'run', ...keys })
    .flatMap(([k, v]) => [`--${k}`, v]),
  ...extra,
];

const metricLines = (run: string): number => (existsSync(join(run, 'metrics.jsonl')) ? readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').filter((l) => l.includes('"loss"')).length : 0);

/**
 * Start the run, wait until `ready(stdout)` holds and metrics.jsonl has more training lines than it
 * had at the start (the run is in its loop), send `signals` and wait for the exit. Each signal after
 * the first is sent once the run has printed that it caught the one before (two standard signals
 * pending at once merge into one, and a loaded machine may not schedule the child for a while).
 */
async function interrupt(dir: string, extra: string[], signals: NodeJS.Signals[], keys: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  const run = join(dir, 'run');
  const before = metricLines(run);
  const child = spawn(process.execPath, args(dir, extra, keys), { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (err += c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (metricLines(run) <= before) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the run never logged:\n${out}\n${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const [i, s] of signals.entries()) {
    if (i) {
      while (!err.includes(`kindling train: ${signals[i - 1]}: finishing the step in flight`)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the run did not acknowledge ${signals[i - 1]}:\n${out}\n${err}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    child.kill(s);
  }
  return { code: await exited, out, err };
}

const stepDirs = (run: string) => readdirSync(run).filter((n) => n.startsWith('step-'));

describe('kindling train under signals (real processes)', () => {
  it('SIGINT writes a step-N checkpoint, names it and exits 130; SIGTERM on the resumed run continues from it and exits 143', async () => {
    const dir = join(tmp, 'int');
    const run = join(dir, 'run');
    const a = await interrupt(dir, [], ['SIGINT']);
    expect(a.code, a.err).toBe(130);
    expect(a.err).toContain('kindling train: SIGINT: finishing the step in flight and writing a checkpoint');
    const m = a.err.match(/kindling train: interrupted by SIGINT at step (\d+): checkpoint (\S+); continue with the same options and --resume true/);
    expect(m, a.err).not.toBeNull();
    const step = Number(m![1]);
    expect(step).toBeGreaterThanOrEqual(10);
    expect(m![2]).toBe(join(run, `step-${step}`));
    const ck = loadCheckpoint(m![2]!);
    expect(ck.step).toBe(step);
    expect(ck.optimizer).toBeTruthy();
    for (const [name, x] of ck.params) expect(x.every(Number.isFinite), name).toBe(true);

    const b = await interrupt(dir, ['--resume', 'true'], ['SIGTERM']);
    expect(b.code, b.err).toBe(143);
    expect(b.out).toContain(`resume: continuing from step ${step}`);
    const m2 = b.err.match(/interrupted by SIGTERM at step (\d+): checkpoint (\S+);/);
    expect(m2, b.err).not.toBeNull();
    expect(Number(m2![1])).toBeGreaterThan(step);
    expect(loadCheckpoint(m2![2]!).step).toBe(Number(m2![1]));
    // The resumed run continued from the checkpoint: its logged steps carry on, none is replayed.
    const steps = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => 'loss' in r).map((r) => r.step as number);
    expect(steps.every((s, i) => i === 0 || s > steps[i - 1]!), steps.join(' ')).toBe(true);
    expect(steps[steps.length - 1]).toBeGreaterThan(step);
  }, 120_000);

  it('a second SIGINT exits at once with 130 and says so', async () => {
    const dir = join(tmp, 'twice');
    // A model whose step and checkpoint write take far longer than the test's reaction to the first
    // signal's message, so the second arrives while the first is still being honoured.
    const r = await interrupt(dir, [], ['SIGINT', 'SIGINT'], { gpt2_size: '2_4_128', seq_length: '32', vocab_size: '64', batch_size: '64' });
    expect(r.code, r.err).toBe(130);
    expect(r.err).toContain('second signal (SIGINT): exiting at once');
    expect(r.err).not.toContain('interrupted by SIGINT at step');
    // Whatever checkpoints exist are complete ones the run wrote before.
    for (const n of stepDirs(join(dir, 'run'))) expect(loadCheckpoint(join(dir, 'run', n)).step).toBe(Number(n.slice(5)));
  }, 60_000);
});

describe('kindling train with non-finite steps (real processes)', () => {
  it('--lr 1e30 exits 1 naming the step, the values and the checkpoint state; no checkpoint holds a non-finite weight', () => {
    const dir = join(tmp, 'lr');
    const r = spawnSync(process.execPath, args(dir, [], { lr: '1e30', warmup_steps: '0', lr_schedule: 'constant', save_every_steps: '1', max_steps: '20' }), { cwd: root, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/kindling train: non-finite training (at|by) step \d+.*training stopped, (last checkpoint: \S+|no checkpoint was written)/);
    expect(r.stdout).not.toContain('done:');
    const run = join(dir, 'run');
    for (const n of readdirSync(run).filter((x) => x.startsWith('step-') || x === 'best'))
      for (const [name, x] of loadCheckpoint(join(run, n)).params) expect(x.every(Number.isFinite), `${n} ${name}`).toBe(true);
  }, 60_000);

  it('an unknown nonfinite policy exits 2 naming the key and its values', () => {
    const r = spawnSync(process.execPath, args(join(tmp, 'bad'), ['--nonfinite', 'ignore']), { cwd: root, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/nonfinite/);
    expect(r.stderr).toMatch(/stop/);
    expect(r.stderr).toMatch(/skip/);
  }, 30_000);
});
