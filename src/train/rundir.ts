/**
 * A run directory belongs to one run. Before anything is written into it, the writer takes the
 * directory's lock (`<runDir>/.lock`, the mkdir lock of src/experiments/lock.ts: owner pid and host,
 * heartbeat, retaken when its owner is gone) and holds it until it returns, also on error. Then:
 *
 *   - a directory that already holds a run (checkpoints `step-N/`, `best/`, `best-step-N/`,
 *     `metrics.jsonl`) is refused unless the caller resumes it or overwrites it;
 *   - overwrite removes exactly those entries first (and says so);
 *   - resume compares the training config stored in the latest checkpoint with the new one: keys
 *     outside the caller's `mayChange` list that differ are an error listing each
 *     `key: checkpoint value → new value`; a step budget below the checkpoint's step is an error;
 *     equal to it, the run is complete and nothing is trained.
 *
 * Errors are RunDirErrors carrying the exit status a command should return (1: the directory is in
 * use; 2: the command line asks for something the directory contradicts).
 */
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CheckpointEntry, latestCheckpoint, readSidecar, SIDECAR_FILE } from '../io/checkpoint.ts';
import { type Lock, lockOwner, tryLock } from '../experiments/lock.ts';
import type { EvalResult, StepLog } from './trainer.ts';

export const RUN_LOCK = '.lock';
export const METRICS_FILE = 'metrics.jsonl';

export class RunDirError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
    this.name = 'RunDirError';
  }
}

/** The entries of a run directory that belong to a run (what `overwrite` removes), sorted. */
export function runEntries(runDir: string): string[] {
  if (!existsSync(runDir)) return [];
  return readdirSync(runDir)
    .filter((n) => /^step-\d+$/.test(n) || n === 'best' || /^best-step-\d+$/.test(n) || n === METRICS_FILE)
    .sort((a, b) => {
      const sa = /^step-(\d+)$/.exec(a);
      const sb = /^step-(\d+)$/.exec(b);
      if (sa && sb) return Number(sa[1]) - Number(sb[1]);
      return a < b ? -1 : a > b ? 1 : 0;
    });
}

/**
 * Takes the run directory's lock, or throws a RunDirError (exit 1) naming the directory and the
 * owner's pid and host. A lock whose owner died (even by SIGKILL) is retaken.
 */
export function lockRunDir(runDir: string, what: string): Lock {
  const path = join(runDir, RUN_LOCK);
  let lock = tryLock(path);
  if (lock) return lock;
  let owner = lockOwner(path);
  if (!owner) {
    // Released between the two reads: try once more.
    lock = tryLock(path);
    if (lock) return lock;
    owner = lockOwner(path);
  }
  const who = owner ? `pid ${owner.pid} on host ${owner.host} (since ${owner.since})` : 'another process';
  throw new RunDirError(
    `run directory ${runDir} is in use by ${who}; a run directory takes one writer at a time. ` +
      `Wait for that run to finish, or choose another ${what} (lock: ${path}, removed when its owner exits; a lock left by a dead process is retaken)`,
    1,
  );
}

/** Keeps the metrics records of steps ≤ `step` (a resume drops what the killed run logged after its checkpoint). */
export function truncateMetrics(path: string, step: number): void {
  if (!existsSync(path)) return;
  const kept = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .filter((l) => {
      try {
        return (JSON.parse(l) as { step: number }).step <= step;
      } catch {
        return false; // a line cut by the kill
      }
    });
  writeFileSync(path, kept.map((l) => `${l}\n`).join(''));
}

export interface ResumeRules {
  /** Top-level config keys that may differ between the checkpoint and the resumed run. */
  mayChange: readonly string[];
  /** Steps the resumed run trains to (it must not be below the checkpoint's step). */
  maxSteps: number;
  /** The option or key that sets `maxSteps`, for messages (e.g. "max_steps"). */
  maxStepsKey: string;
  /** Extra differences the plain key comparison does not see (derived values), as lines. */
  derived?: (stored: Record<string, unknown>) => string[];
}

export interface OpenOptions {
  resume: boolean;
  overwrite: boolean;
  /** How to choose another directory, for messages (e.g. "save_dir or run_name"). */
  what: string;
  /** The run's training config (compared with the stored one on resume). */
  config: Record<string, unknown>;
  rules: ResumeRules;
  log: (s: string) => void;
  /** Spelling of the resume/overwrite options in messages (default `--resume` / `--overwrite`). */
  resumeFlag?: string;
  overwriteFlag?: string;
}

export interface OpenRunDir {
  runDir: string;
  lock: Lock;
  /** Releases the lock; a run directory this open created and nothing was written into is removed. */
  release(): void;
  /** The checkpoint to resume from (null: fresh start). */
  resumeFrom: CheckpointEntry | null;
  /** The checkpoint already reached the step budget: nothing to train. */
  complete: boolean;
}

/** What every stage-2 runner (algorithmic or semantic) takes: its run directory and its reporting hooks. */
export interface StageOptions {
  /** Run directory: checkpoints and metrics.jsonl. */
  runDir: string;
  /** Continue from the latest checkpoint in runDir (if any). */
  resume?: boolean;
  /** Delete the checkpoints and metrics already in runDir and start over (without it or `resume`, an existing run is refused). */
  overwrite?: boolean;
  /** The trainer's own progress bar (default false: callers show their own). */
  progress?: boolean;
  onLog?: (rec: StepLog) => void;
  onEval?: (step: number, r: EvalResult) => void;
  log?: (s: string) => void;
}

/** `openRunDir` for a stage-2 run: its options spelled as the experiment file's keys (`resume`, `overwrite`). */
export function openStageRunDir(o: StageOptions, config: Record<string, unknown>, rules: ResumeRules, log: (s: string) => void): OpenRunDir {
  return openRunDir(o.runDir, {
    resume: o.resume ?? false,
    overwrite: o.overwrite ?? false,
    resumeFlag: 'resume',
    overwriteFlag: 'overwrite',
    what: 'run directory',
    config,
    log,
    rules,
  });
}

const show = (v: unknown): string => (v === undefined ? '(not stored)' : JSON.stringify(v));

/** `key: checkpoint → new` for every key outside `mayChange` whose value differs; keys the checkpoint lacks are listed apart. */
export function configDifferences(stored: Record<string, unknown>, current: Record<string, unknown>, mayChange: readonly string[]): { differ: string[]; notStored: string[] } {
  const allowed = new Set(mayChange);
  const differ: string[] = [];
  const notStored: string[] = [];
  const keys = [...new Set([...Object.keys(stored), ...Object.keys(current)])];
  for (const k of keys) {
    if (allowed.has(k)) continue;
    if (!(k in stored)) {
      notStored.push(k);
      continue;
    }
    if (JSON.stringify(stored[k] ?? null) !== JSON.stringify(current[k] ?? null)) differ.push(`${k}: ${show(stored[k])} → ${show(current[k])}`);
  }
  return { differ, notStored };
}

/**
 * Checks a resume against the latest checkpoint of `runDir` (see the module comment). Returns the
 * checkpoint and whether the run is already complete; throws RunDirError (exit 2).
 */
export function checkResume(runDir: string, o: Pick<OpenOptions, 'config' | 'rules' | 'log' | 'what' | 'overwriteFlag'>): { entry: CheckpointEntry | null; complete: boolean } {
  const entry = latestCheckpoint(runDir);
  if (!entry) return { entry: null, complete: false };
  const sidecar = readSidecar(entry.path);
  const stored = sidecar.train;
  const overwrite = o.overwriteFlag ?? '--overwrite';
  if (stored === null || typeof stored !== 'object' || Array.isArray(stored)) {
    o.log(`warning: checkpoint ${entry.path} stores no training configuration (${SIDECAR_FILE} has none); resuming without checking that it is the same run`);
  } else {
    const { differ, notStored } = configDifferences(stored as Record<string, unknown>, o.config, o.rules.mayChange);
    differ.push(...(o.rules.derived?.(stored as Record<string, unknown>) ?? []));
    if (differ.length) {
      throw new RunDirError(
        `cannot resume ${runDir}: its checkpoint ${entry.name} was trained with a different configuration (checkpoint → new):\n` +
          differ.map((d) => `  ${d}`).join('\n') +
          `\nOnly these keys may change on resume: ${o.rules.mayChange.join(', ')}. ` +
          `Resume with the checkpoint's values, start the run over with ${overwrite}, or choose another ${o.what}.`,
        2,
      );
    }
    if (notStored.length) o.log(`warning: checkpoint ${entry.path} stores no value for ${notStored.join(', ')} (written by an older build); not checked`);
  }
  const { maxSteps, maxStepsKey } = o.rules;
  if (maxSteps < entry.step) {
    throw new RunDirError(
      `cannot resume ${runDir}: ${maxStepsKey} ${maxSteps} is below the checkpoint's step ${entry.step} (${entry.name}); ` +
        `set ${maxStepsKey} to ${entry.step} or more to continue it`,
      2,
    );
  }
  return { entry, complete: maxSteps === entry.step };
}

/**
 * Takes the run directory for one run: lock, then refuse / overwrite / check a resume. The caller
 * calls `release()` when it is done writing (also on error). On a throw, it is released here.
 */
export function openRunDir(runDir: string, o: OpenOptions): OpenRunDir {
  const resumeFlag = o.resumeFlag ?? '--resume';
  const overwriteFlag = o.overwriteFlag ?? '--overwrite';
  if (o.resume && o.overwrite) throw new RunDirError(`${resumeFlag} and ${overwriteFlag} exclude each other: resume continues the run in ${runDir}, overwrite deletes it`, 2);
  const created = !existsSync(runDir);
  const lock = lockRunDir(runDir, o.what);
  const release = (): void => {
    lock.release();
    if (!created) return;
    try {
      rmdirSync(runDir); // only when empty: a run that wrote anything keeps its directory
    } catch {
      /* not empty, or gone */
    }
  };
  try {
    const entries = runEntries(runDir);
    if (o.overwrite) {
      if (entries.length) {
        for (const e of entries) rmSync(join(runDir, e), { recursive: true, force: true });
        o.log(`overwrite: removed ${entries.join(', ')} from ${runDir}`);
      }
      return { runDir, lock, release, resumeFrom: null, complete: false };
    }
    if (!o.resume) {
      if (entries.length) {
        throw new RunDirError(
          `run directory ${runDir} already holds a run (${entries.join(', ')}); pass ${resumeFlag} to continue it, ` +
            `${overwriteFlag} to delete it and start over, or choose another ${o.what}`,
          2,
        );
      }
      return { runDir, lock, release, resumeFrom: null, complete: false };
    }
    const { entry, complete } = checkResume(runDir, { ...o, overwriteFlag });
    if (!entry && existsSync(join(runDir, METRICS_FILE))) {
      // A run killed before its first checkpoint: its metrics describe steps that will be retrained.
      rmSync(join(runDir, METRICS_FILE), { force: true });
    }
    return { runDir, lock, release, resumeFrom: entry, complete };
  } catch (e) {
    release();
    throw e;
  }
}
