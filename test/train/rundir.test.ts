// Run directories (src/train/rundir.ts) on synthetic checkpoints, no GPU: the lock, the refusal of an
// existing run, --overwrite, and the resume checks. test/cli/train_rundir.test.ts drives the same
// rules through real `kindling train` processes.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { saveCheckpoint } from '../../src/io/checkpoint.ts';
import type { Engine } from '../../engine/engine.ts';
import { ALGORITHMIC_SCHEMA, type AlgorithmicConfig, ConfigError, loadConfig, PROCEDURAL_SCHEMA, type ProceduralConfig } from '../../src/train/config.ts';
import { runDownstream } from '../../src/train/downstream.ts';
import { openProceduralRun } from '../../src/train/procedural.ts';
import { configDifferences, openRunDir, type OpenOptions, RUN_LOCK, RunDirError, runEntries } from '../../src/train/rundir.ts';

const tmp = mkdtempSync(join(tmpdir(), 'kindling-rundir-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(tmp, `run-${n++}`);

const CONFIG = { task: 'sort', seed: 42, gpt2_size: '1_1_8', max_steps: 4, save_every_steps: 2, resume: false };

function checkpoint(dir: string, step: number, train: unknown = CONFIG): void {
  saveCheckpoint(dir, { config: { tied: false }, params: new Map([['w', new Float32Array([step, 1])]]), shapes: { w: [2] }, step, train }, { fsync: false });
}

/** A run directory as a finished run leaves it: step-2, step-4, best/, metrics.jsonl (+ a file of the caller's). */
function finishedRun(dir: string, train: unknown = CONFIG): void {
  checkpoint(join(dir, 'step-2'), 2, train);
  checkpoint(join(dir, 'step-4'), 4, train);
  checkpoint(join(dir, 'best'), 4, train);
  writeFileSync(join(dir, 'metrics.jsonl'), '{"step":2,"loss":1}\n{"step":4,"loss":0.5}\n');
  writeFileSync(join(dir, 'settings.json'), '{}');
}

/** sha256 of every file under dir (the lock excluded). */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (relative(dir, p) === RUN_LOCK) continue;
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

function options(o: Partial<OpenOptions> & { logs?: string[] } = {}): OpenOptions {
  const logs = o.logs ?? [];
  return {
    resume: false,
    overwrite: false,
    what: 'save_dir or run_name',
    config: { ...CONFIG },
    rules: { mayChange: ['max_steps', 'save_every_steps', 'resume'], maxSteps: 4, maxStepsKey: 'max_steps' },
    log: (s) => void logs.push(s),
    ...o,
  };
}

function refusal(f: () => unknown): RunDirError {
  try {
    f();
  } catch (e) {
    if (e instanceof RunDirError) return e;
    throw e;
  }
  throw new Error('expected a RunDirError');
}

describe('run directory lock', () => {
  it('is taken before anything is written, held while open, released after', () => {
    const dir = fresh();
    const o = openRunDir(dir, options());
    expect(readdirSync(dir)).toEqual([RUN_LOCK]);
    const owner = JSON.parse(readFileSync(join(dir, RUN_LOCK, 'owner.json'), 'utf8')) as { pid: number; host: string };
    expect(owner).toMatchObject({ pid: process.pid, host: hostname() });
    expect(o.resumeFrom).toBeNull();
    o.lock.release();
    expect(existsSync(join(dir, RUN_LOCK))).toBe(false);
  });

  it('refuses a second writer (exit 1) naming the directory, pid and host, and leaves the first one its lock', () => {
    const dir = fresh();
    finishedRun(dir);
    const before = snapshot(dir);
    const first = openRunDir(dir, options({ resume: true }));
    const e = refusal(() => openRunDir(dir, options({ resume: true })));
    expect(e.exitCode).toBe(1);
    expect(e.message).toContain(`run directory ${dir} is in use by pid ${process.pid} on host ${hostname()}`);
    expect(existsSync(join(dir, RUN_LOCK, 'owner.json'))).toBe(true); // still the first writer's
    // An overwrite is refused the same way before it deletes anything.
    expect(refusal(() => openRunDir(dir, options({ overwrite: true }))).exitCode).toBe(1);
    expect(snapshot(dir)).toEqual(before);
    first.lock.release();
  });

  it('retakes a lock whose owner process is gone', () => {
    const dir = fresh();
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    mkdirSync(join(dir, RUN_LOCK), { recursive: true });
    writeFileSync(join(dir, RUN_LOCK, 'owner.json'), JSON.stringify({ pid: dead, host: hostname(), since: new Date().toISOString() }));
    const o = openRunDir(dir, options());
    expect(JSON.parse(readFileSync(join(dir, RUN_LOCK, 'owner.json'), 'utf8')).pid).toBe(process.pid);
    o.lock.release();
  });
});

describe('existing runs', () => {
  it('are refused without resume or overwrite (exit 2, naming both), nothing touched', () => {
    const dir = fresh();
    finishedRun(dir);
    const before = snapshot(dir);
    expect(runEntries(dir)).toEqual(['best', 'metrics.jsonl', 'step-2', 'step-4']);
    const e = refusal(() => openRunDir(dir, options()));
    expect(e.exitCode).toBe(2);
    expect(e.message).toBe(
      `run directory ${dir} already holds a run (best, metrics.jsonl, step-2, step-4); pass --resume to continue it, --overwrite to delete it and start over, or choose another save_dir or run_name`,
    );
    expect(snapshot(dir)).toEqual(before);
    expect(existsSync(join(dir, RUN_LOCK))).toBe(false); // released on the refusal
  });

  it('overwrite removes the checkpoints, best/ and metrics (and says so), nothing else', () => {
    const dir = fresh();
    finishedRun(dir);
    checkpoint(join(dir, 'step-10'), 10); // numeric, not lexical, order in the message
    const logs: string[] = [];
    const o = openRunDir(dir, options({ overwrite: true, logs }));
    expect(readdirSync(dir).sort()).toEqual([RUN_LOCK, 'settings.json']);
    expect(logs).toEqual([`overwrite: removed best, metrics.jsonl, step-2, step-4, step-10 from ${dir}`]);
    expect(o.resumeFrom).toBeNull();
    o.lock.release();
  });

  it('resume and overwrite together are refused', () => {
    const e = refusal(() => openRunDir(fresh(), options({ resume: true, overwrite: true })));
    expect(e.exitCode).toBe(2);
    expect(e.message).toMatch(/^--resume and --overwrite exclude each other/);
  });
});

describe('resume', () => {
  it('continues from the latest complete checkpoint when the config matches up to the keys that may change', () => {
    const dir = fresh();
    finishedRun(dir);
    mkdirSync(join(dir, 'step-6')); // an interrupted save: no sidecar
    const o = openRunDir(dir, options({ resume: true, config: { ...CONFIG, max_steps: 8, save_every_steps: 4, resume: true }, rules: { ...options().rules, maxSteps: 8 } }));
    expect(o.resumeFrom?.name).toBe('step-4');
    expect(o.complete).toBe(false);
    o.lock.release();
  });

  it('names every key that differs, checkpoint value → new value (exit 2), nothing touched', () => {
    const dir = fresh();
    finishedRun(dir);
    const before = snapshot(dir);
    const e = refusal(() => openRunDir(dir, options({ resume: true, config: { ...CONFIG, task: 'reverse', seed: 7, gpt2_size: '1_1_16', max_steps: 6 }, rules: { ...options().rules, maxSteps: 6 } })));
    expect(e.exitCode).toBe(2);
    const lines = e.message.split('\n');
    expect(lines[0]).toBe(`cannot resume ${dir}: its checkpoint step-4 was trained with a different configuration (checkpoint → new):`);
    expect(lines.slice(1, 4)).toEqual(['  task: "sort" → "reverse"', '  seed: 42 → 7', '  gpt2_size: "1_1_8" → "1_1_16"']);
    expect(lines[4]).toMatch(/^Only these keys may change on resume: max_steps, save_every_steps, resume\. .*--overwrite/);
    expect(snapshot(dir)).toEqual(before);
    expect(existsSync(join(dir, RUN_LOCK))).toBe(false);
  });

  it('refuses a step budget below the checkpoint step naming both; equal means complete', () => {
    const dir = fresh();
    finishedRun(dir);
    const e = refusal(() => openRunDir(dir, options({ resume: true, rules: { ...options().rules, maxSteps: 3 } })));
    expect(e.exitCode).toBe(2);
    expect(e.message).toBe(`cannot resume ${dir}: max_steps 3 is below the checkpoint's step 4 (step-4); set max_steps to 4 or more to continue it`);
    const o = openRunDir(dir, options({ resume: true }));
    expect(o.complete).toBe(true);
    expect(o.resumeFrom?.step).toBe(4);
    o.lock.release();
  });

  it('resumes a checkpoint without a stored config, with a warning; unstored keys are warned about', () => {
    const dir = fresh();
    finishedRun(dir, null);
    const logs: string[] = [];
    const o = openRunDir(dir, options({ resume: true, logs, config: { ...CONFIG, seed: 7 } }));
    expect(o.resumeFrom?.name).toBe('step-4');
    expect(logs).toEqual([`warning: checkpoint ${join(dir, 'step-4')} stores no training configuration (kindling.json has none); resuming without checking that it is the same run`]);
    o.lock.release();

    const dir2 = fresh();
    const { seed: _seed, ...older } = CONFIG;
    finishedRun(dir2, older);
    const logs2: string[] = [];
    openRunDir(dir2, options({ resume: true, logs: logs2 })).lock.release();
    expect(logs2).toEqual([`warning: checkpoint ${join(dir2, 'step-4')} stores no value for seed (written by an older build); not checked`]);
  });

  it('drops the metrics of a run killed before its first checkpoint', () => {
    const dir = fresh();
    mkdirSync(dir);
    writeFileSync(join(dir, 'metrics.jsonl'), '{"step":1,"loss":2}\n');
    const o = openRunDir(dir, options({ resume: true }));
    expect(o.resumeFrom).toBeNull();
    expect(existsSync(join(dir, 'metrics.jsonl'))).toBe(false);
    o.lock.release();
  });

  it('configDifferences compares values as JSON and skips the keys that may change', () => {
    expect(configDifferences({ a: [1, 2], b: null, c: 1 }, { a: [1, 2], b: null, c: 2, d: 3 }, ['c'])).toEqual({ differ: [], notStored: ['d'] });
    expect(configDifferences({ a: [1, 2], b: 'x' }, { a: [2, 1], b: null }, [])).toEqual({ differ: ['a: [1,2] → [2,1]', 'b: "x" → null'], notStored: [] });
  });
});

describe('procedural resume rules (openProceduralRun)', () => {
  const load = (saveDir: string, argv: string[]) => loadConfig<ProceduralConfig>(PROCEDURAL_SCHEMA, { argv: ['--task', 'dyck', '--save_dir', saveDir, ...argv] }).values;

  it('for Dyck, max_steps may change under a constant schedule but not when it is a decaying schedule horizon', () => {
    const saveDir = fresh();
    const stored = load(saveDir, ['--run_name', 'r', '--max_steps', '100', '--lr_schedule', 'cosine']);
    checkpoint(join(saveDir, 'r', 'step-50'), 50, stored);
    const e = refusal(() => openProceduralRun(load(saveDir, ['--run_name', 'r', '--max_steps', '200', '--lr_schedule', 'cosine', '--resume']), () => undefined));
    expect(e.exitCode).toBe(2);
    expect(e.message.split('\n')[1]).toBe("  max_steps: 100 → 200 (for dyck it is the cosine schedule's horizon: 100 → 200 steps)");

    const saveDir2 = fresh();
    checkpoint(join(saveDir2, 'r', 'step-50'), 50, load(saveDir2, ['--run_name', 'r', '--max_steps', '100']));
    const o = openProceduralRun(load(saveDir2, ['--run_name', 'r', '--max_steps', '200', '--resume']), () => undefined);
    expect(o.resumeFrom?.step).toBe(50);
    o.lock.release();
  });

  it('resume and overwrite together are a config error naming both', () => {
    expect(() => load(fresh(), ['--resume', '--overwrite'])).toThrow(
      new ConfigError('resume and overwrite exclude each other: resume continues the run directory, overwrite deletes it (give one of them)'),
    );
  });

  it('a resume that finds no checkpoint under the default run name points to the run with another max_steps', () => {
    const saveDir = fresh();
    const stored = load(saveDir, ['--max_steps', '100']);
    checkpoint(join(saveDir, 'dyck-128-2_4_16-100steps', 'step-50'), 50, stored);
    const logs: string[] = [];
    const o = openProceduralRun(load(saveDir, ['--max_steps', '200', '--resume']), (s) => void logs.push(s));
    expect(o.resumeFrom).toBeNull();
    expect(logs).toEqual([
      `note: ${join(saveDir, 'dyck-128-2_4_16-100steps')} holds checkpoints of this task and size with another max_steps; the default run name includes max_steps, so to resume one of them with a new max_steps, pass its directory name as --run_name`,
    ]);
    o.lock.release();
  });
});

describe('stage-2 run directories (runDownstream)', () => {
  const load = (argv: string[]) => loadConfig<AlgorithmicConfig>(ALGORITHMIC_SCHEMA, { argv: ['--task', 'condattendstream_30', ...argv] }).values;
  // The run directory is taken before the engine is used: these refusals need no device.
  const noEngine = null as unknown as Engine;

  it('refuses an existing run without resume or overwrite, and a resume with another config', async () => {
    const dir = fresh();
    finishedRun(dir, load([]));
    const before = snapshot(dir);
    const e1 = await runDownstream(noEngine, load([]), { runDir: dir }).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(RunDirError);
    expect((e1 as RunDirError).message).toMatch(/already holds a run \(best, metrics\.jsonl, step-2, step-4\); pass resume to continue it, overwrite to delete it/);
    const e2 = await runDownstream(noEngine, load(['--seed', '3', '--output_dir', 'elsewhere']), { runDir: dir, resume: true }).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(RunDirError);
    expect((e2 as RunDirError).message.split('\n').slice(1, -1)).toEqual(['  seed: 42 → 3']);
    expect(snapshot(dir)).toEqual(before);
    expect(existsSync(join(dir, RUN_LOCK))).toBe(false);
  });
});
