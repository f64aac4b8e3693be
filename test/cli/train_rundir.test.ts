// `kindling train` as REAL processes on one run directory (a tiny model, a few steps): a second
// writer is refused while the first one trains, a lock left by a SIGKILLed run is retaken, a run
// directory that holds a run is refused without --resume/--overwrite, a resume with another config or
// a max_steps below the checkpoint is refused, and each refusal leaves the old run (checkpoints,
// best/, metrics) byte for byte as it was.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const tmp = mkdtempSync(join(tmpdir(), 'kindling-train-rundir-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

// 8 steps available (2 epochs × 4), 4 trained by default; checkpoints every 2 steps, two kept.
const TINY: Record<string, string> = {
  task: 'sort',
  gpt2_size: '1_1_8',
  vocab_size: '6',
  seq_length: '4',
  batch_size: '4',
  steps_per_epoch: '4',
  epochs: '2',
  max_steps: '4',
  save_every_steps: '2',
  save_total_limit: '2',
  warmup_steps: '0',
  dropout: '0',
  run_name: 'r',
};
/** The command line: TINY with `extra` (`--key value` replaces TINY's value; `--resume`, `--overwrite` are flags). */
function argv(saveDir: string, extra: string[]): string[] {
  const values: Record<string, string> = { ...TINY, save_dir: saveDir };
  const flags: string[] = [];
  for (let i = 0; i < extra.length; i++) {
    const key = extra[i]!.slice(2);
    if (key === 'resume' || key === 'overwrite') flags.push(extra[i]!);
    else values[key] = extra[++i]!;
  }
  return ['--import', 'tsx', 'src/cli/main.ts', 'train', ...Object.entries(values).flatMap(([k, v]) => [`--${k}`, v]), ...flags];
}

function train(saveDir: string, extra: string[] = []): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, argv(saveDir, extra), { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function start(saveDir: string, extra: string[] = []): { child: ChildProcess; done: Promise<{ code: number | null; signal: string | null; stderr: string }> } {
  const child = spawn(process.execPath, argv(saveDir, extra), { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; signal: string | null; stderr: string }>((res) => child.on('exit', (code, signal) => res({ code, signal, stderr })));
  return { child, done };
}

/** Waits until `pid` holds the run directory's lock. */
async function lockedBy(runDir: string, pid: number): Promise<void> {
  const owner = join(runDir, '.lock', 'owner.json');
  for (let i = 0; i < 600; i++) {
    try {
      if ((JSON.parse(readFileSync(owner, 'utf8')) as { pid: number }).pid === pid) return;
    } catch {
      /* not there yet */
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`pid ${pid} never took ${runDir}/.lock`);
}

/** sha256 of every file of the run directory (the lock excluded). */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (relative(dir, p) === '.lock') continue;
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

const lossSteps = (runDir: string) =>
  readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; loss?: number })
    .filter((r) => r.loss !== undefined)
    .map((r) => r.step);

describe('kindling train: one run per run directory', () => {
  const saveDir = join(tmp, 'a');
  const runDir = join(saveDir, 'r');
  let old: Record<string, string>;

  it('a fresh run trains and releases its lock', () => {
    const r = train(saveDir);
    expect(r.status, r.stderr).toBe(0);
    expect(readdirSync(runDir).sort()).toEqual(['best', 'metrics.jsonl', 'step-2', 'step-4']);
    old = snapshot(runDir);
  });

  it('a second run without --resume is refused (exit 2, naming --resume and --overwrite); the old run is unchanged', () => {
    const r = train(saveDir);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`kindling train: run directory ${runDir} already holds a run (best, metrics.jsonl, step-2, step-4); pass --resume to continue it, --overwrite to delete it and start over`);
    expect(snapshot(runDir)).toEqual(old);
  });

  it('--resume with another task, seed and size is refused naming each key; the old run is unchanged', () => {
    const r = train(saveDir, ['--resume', '--task', 'reverse', '--seed', '7', '--gpt2_size', '1_1_16']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`cannot resume ${runDir}: its checkpoint step-4 was trained with a different configuration (checkpoint → new):\n  task: "sort" → "reverse"\n  gpt2_size: "1_1_8" → "1_1_16"\n  seed: 42 → 7\n`);
    expect(r.stderr).toMatch(/Only these keys may change on resume: max_steps, save_every_steps, save_total_limit, patience, resume, overwrite, save_dir, run_name/);
    expect(snapshot(runDir)).toEqual(old);
  });

  it('--resume with max_steps below the checkpoint is refused naming both; equal is complete (exit 0)', () => {
    const below = train(saveDir, ['--resume', '--max_steps', '3']);
    expect(below.status).toBe(2);
    expect(below.stderr).toContain(`cannot resume ${runDir}: max_steps 3 is below the checkpoint's step 4 (step-4); set max_steps to 4 or more`);
    expect(below.stdout).not.toMatch(/undefined/);
    const equal = train(saveDir, ['--resume']);
    expect(equal.status, equal.stderr).toBe(0);
    expect(equal.stdout).toContain(`done: the run in ${runDir} is already complete (step-4 reached max_steps 4); nothing to train`);
    expect(snapshot(runDir)).toEqual(old);
  });

  it('a second writer is refused (exit 1, naming the directory and the owner pid/host) while the first trains; the first finishes intact', async () => {
    const first = start(saveDir, ['--resume', '--max_steps', '8']);
    await lockedBy(runDir, first.child.pid!);
    first.child.kill('SIGSTOP'); // hold the first writer mid-run (its pid stays alive) while the second tries
    let second;
    try {
      second = train(saveDir, ['--resume', '--max_steps', '8']);
    } finally {
      first.child.kill('SIGCONT');
    }
    expect(second.status).toBe(1);
    expect(second.stderr).toContain(`kindling train: run directory ${runDir} is in use by pid ${first.child.pid} on host ${hostname()}`);
    const f = await first.done;
    expect(f.code, f.stderr).toBe(0);
    expect(readdirSync(runDir).sort()).toEqual(['best', 'metrics.jsonl', 'step-6', 'step-8']);
    expect(lossSteps(runDir)).toEqual([2, 4, 6, 8]);
    expect(existsSync(join(runDir, '.lock'))).toBe(false);
  });

  it('two runs started at once: one trains, the other is refused; one clean run remains', async () => {
    const dir = join(tmp, 'b');
    const [x, y] = [start(dir), start(dir)];
    const results = await Promise.all([x.done, y.done]);
    const codes = results.map((r) => r.code).sort();
    expect(codes[0], results.map((r) => r.stderr).join('\n')).toBe(0);
    const loser = results.find((r) => r.code !== 0)!;
    // Refused by the lock while the winner trains (1), or, if the winner was already done, by its run (2).
    expect([1, 2]).toContain(loser.code);
    expect(loser.stderr).toMatch(loser.code === 1 ? /is in use by pid \d+ on host / : /already holds a run/);
    expect(readdirSync(join(dir, 'r')).sort()).toEqual(['best', 'metrics.jsonl', 'step-2', 'step-4']);
    expect(lossSteps(join(dir, 'r'))).toEqual([2, 4]);
  });

  it('a lock left by a SIGKILLed run is retaken by the next run', async () => {
    const dir = join(tmp, 'c');
    const killed = start(dir, ['--max_steps', '8']);
    await lockedBy(join(dir, 'r'), killed.child.pid!);
    killed.child.kill('SIGKILL');
    expect((await killed.done).signal).toBe('SIGKILL');
    expect(existsSync(join(dir, 'r', '.lock', 'owner.json'))).toBe(true); // left behind
    const r = train(dir, ['--resume', '--max_steps', '8']);
    expect(r.status, r.stderr).toBe(0);
    expect(lossSteps(join(dir, 'r')).at(-1)).toBe(8);
    expect(existsSync(join(dir, 'r', '.lock'))).toBe(false);
  });

  it('--overwrite deletes the old run, says so, and trains afresh', () => {
    const r = train(saveDir, ['--overwrite']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`overwrite: removed best, metrics.jsonl, step-6, step-8 from ${runDir}`);
    expect(readdirSync(runDir).sort()).toEqual(['best', 'metrics.jsonl', 'step-2', 'step-4']);
    expect(lossSteps(runDir)).toEqual([2, 4]);
    // Same config and seed as the first run: the same bytes of model again.
    expect(snapshot(runDir)['step-4/model.safetensors']).toBe(old['step-4/model.safetensors']);
  });

  it('--resume over a checkpoint without a stored config resumes with a warning', () => {
    const sidecar = join(runDir, 'step-4', 'kindling.json');
    writeFileSync(sidecar, JSON.stringify({ ...JSON.parse(readFileSync(sidecar, 'utf8')), train: null }));
    const r = train(saveDir, ['--resume', '--max_steps', '6', '--seed', '7']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`warning: checkpoint ${join(runDir, 'step-4')} stores no training configuration`);
    expect(r.stdout).toContain('resume: continuing from step 4');
    expect(lossSteps(runDir)).toEqual([2, 4, 6]);
  });
});

describe('kindling train: the final line', () => {
  it('names the closing-bracket accuracy for Dyck (the language gate of spec §14), and only for Dyck', () => {
    const dyck = train(join(tmp, 'dyck'), ['--task', 'dyck', '--k', '2', '--seq_length', '8']);
    expect(dyck.status, dyck.stderr).toBe(0);
    const m = /; closing-bracket accuracy (\d+\.\d\d)% \(final weights; near 100% once the language is learned\)\nrun directory: /.exec(dyck.stdout);
    expect(m, dyck.stdout).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(0);
    expect(Number(m![1])).toBeLessThanOrEqual(100);
    const sort = train(join(tmp, 'sort'));
    expect(sort.status, sort.stderr).toBe(0);
    expect(sort.stdout).toMatch(/; validation loss \d+\.\d{4}, accuracy \d+\.\d\d%\nrun directory: /);
    expect(sort.stdout).not.toContain('closing-bracket');
  });
});
