/**
 * From run records to `results.json`: group the runs of an experiment by arm, and summarise each arm
 * over its seeds (mean, population standard deviation and best final accuracy, per-step curve
 * statistics, the stage-1 settings the seeds share). `readRunRecords` collects the `result.json` files
 * the runner writes under `<dir>/runs/`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ArmRole, ArmSummary, ExperimentResults, RunRecord, Stage1Record } from './types.ts';

const ROLES: readonly ArmRole[] = ['baseline', 'procedural', 'shuffled'];

/** Mean and population standard deviation of the finite values (NaN, NaN when there are none). */
export function meanStd(values: number[]): { mean: number; std: number } {
  const xs = values.filter(Number.isFinite);
  if (xs.length === 0) return { mean: NaN, std: NaN };
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.reduce((a, x) => a + (x - mean) * (x - mean), 0) / xs.length;
  return { mean, std: Math.sqrt(variance) };
}

/** Deep equality for JSON-like values (settings read back from YAML/JSON). */
function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && sameValue((a as any)[k], (b as any)[k]));
}

/** The arm-level stage-1 summary: shared settings, `learned` only if every seed learned, mean closing accuracy. */
function armStage1(stage1s: (Stage1Record | null)[]): ArmSummary['stage1'] {
  const present = stage1s.filter((s): s is Stage1Record => s !== null);
  if (present.length === 0) return null;
  const shared: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(present[0].settings ?? {})) {
    if (present.every((s) => s.settings && Object.prototype.hasOwnProperty.call(s.settings, key) && sameValue(s.settings[key], value))) {
      shared[key] = value;
    }
  }
  const closing = present.map((s) => s.closing_accuracy).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  const learned = present.length === stage1s.length && present.every((s) => s.learned === true);
  return {
    ...shared,
    learned,
    closing_accuracy: closing.length > 0 ? meanStd(closing).mean : null,
  };
}

/**
 * [step, mean, std, best] at each evaluation step that every seed reached (steps in increasing order).
 * A NaN accuracy is left out of that step's statistics; a step where no seed has a number is left out.
 */
function curveStats(curves: [number, number][][]): [number, number, number, number][] {
  if (curves.length === 0) return [];
  const maps = curves.map((c) => {
    const m = new Map<number, number>();
    for (const [step, acc] of c) m.set(step, acc);
    return m;
  });
  const steps = [...maps[0].keys()].filter((s) => maps.every((m) => m.has(s))).sort((a, b) => a - b);
  const out: [number, number, number, number][] = [];
  for (const step of steps) {
    const values = maps.map((m) => m.get(step)!).filter(Number.isFinite);
    if (values.length === 0) continue;
    const { mean, std } = meanStd(values);
    out.push([step, mean, std, Math.max(...values)]);
  }
  return out;
}

function summariseArm(records: RunRecord[]): ArmSummary {
  const runs = [...records].sort((a, b) => a.seed - b.seed);
  const first = runs[0];
  const finals = runs.map((r) => r.final_accuracy);
  const { mean, std } = meanStd(finals);
  // Best: highest final accuracy; ties go to the lowest seed (runs are sorted by seed, strict > keeps the first).
  let best = { seed: first.seed, final_accuracy: first.final_accuracy };
  let bestFinite = Number.isFinite(first.final_accuracy);
  for (const r of runs) {
    if (!Number.isFinite(r.final_accuracy)) continue;
    if (!bestFinite || r.final_accuracy > best.final_accuracy) {
      best = { seed: r.seed, final_accuracy: r.final_accuracy };
      bestFinite = true;
    }
  }
  return {
    name: first.arm,
    role: first.role,
    task: first.task,
    point: first.point ?? {},
    stage1: armStage1(runs.map((r) => r.stage1 ?? null)),
    seeds: runs.map((r) => ({
      seed: r.seed,
      final_accuracy: r.final_accuracy,
      curve: r.curve ?? [],
      loss_curve: r.loss_curve ?? [],
      eval_loss_curve: r.eval_loss_curve ?? [],
      stage1: r.stage1 ?? null,
      completed: r.completed,
    })),
    mean,
    std,
    best,
    curve_stats: curveStats(runs.map((r) => r.curve ?? [])),
  };
}

/** Group run records by (arm, task) in first-appearance order and summarise each group over its seeds. */
export function aggregate(records: RunRecord[], experiment: string): ExperimentResults {
  const groups = new Map<string, RunRecord[]>();
  for (const r of records) {
    const key = JSON.stringify([r.arm, r.task]);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(r);
  }
  const machines: string[] = [];
  for (const r of records) {
    const m = (r.machine ?? '').trim();
    if (m && !machines.includes(m)) machines.push(m);
  }
  return {
    experiment,
    arms: [...groups.values()].map(summariseArm),
    elapsed_s: records.reduce((a, r) => a + (Number.isFinite(r.elapsed_s) ? r.elapsed_s : 0), 0),
    machine: machines.join('; '),
    runs: { planned: records.length, completed: records.filter((r) => r.completed === true).length },
  };
}

// ---------------------------------------------------------------------------------------------------
// Reading result.json files

/** JSON writes NaN as null: read a number back, null → NaN. */
function num(v: unknown): number {
  return typeof v === 'number' ? v : NaN;
}

function pairs(v: unknown): [number, number][] {
  if (!Array.isArray(v)) return [];
  return v.filter((p) => Array.isArray(p) && p.length >= 2).map((p) => [num(p[0]), num(p[1])] as [number, number]);
}

/** Check the fields the aggregation relies on and turn JSON nulls back into NaN. */
function toRecord(raw: unknown, file: string): RunRecord {
  const fail = (why: string): never => {
    throw new Error(`${file}: not a run record (${why})`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('expected a JSON object');
  const r = raw as Record<string, any>;
  if (typeof r.arm !== 'string') fail('`arm` must be a string');
  if (typeof r.task !== 'string') fail('`task` must be a string');
  if (typeof r.seed !== 'number') fail('`seed` must be a number');
  if (!ROLES.includes(r.role)) fail(`\`role\` must be one of ${ROLES.join(', ')}`);
  if (r.final_accuracy !== null && typeof r.final_accuracy !== 'number') fail('`final_accuracy` must be a number');
  const stage1 = r.stage1 && typeof r.stage1 === 'object'
    ? {
        ...r.stage1,
        settings: r.stage1.settings && typeof r.stage1.settings === 'object' ? r.stage1.settings : {},
        closing_accuracy: r.stage1.closing_accuracy === null || r.stage1.closing_accuracy === undefined ? null : num(r.stage1.closing_accuracy),
        accuracy: num(r.stage1.accuracy),
      }
    : null;
  return {
    experiment: typeof r.experiment === 'string' ? r.experiment : '',
    arm: r.arm,
    role: r.role,
    task: r.task,
    seed: r.seed,
    point: r.point && typeof r.point === 'object' ? r.point : {},
    stage1,
    final_accuracy: num(r.final_accuracy),
    curve: pairs(r.curve),
    loss_curve: pairs(r.loss_curve),
    eval_loss_curve: pairs(r.eval_loss_curve),
    elapsed_s: num(r.elapsed_s),
    machine: typeof r.machine === 'string' ? r.machine : '',
    completed: r.completed === true,
  };
}

const byName = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

function findResultFiles(dir: string, out: string[]): void {
  for (const name of readdirSync(dir).sort(byName)) {
    const path = join(dir, name);
    const st = statSync(path);
    if (st.isDirectory()) findResultFiles(path, out);
    else if (name === 'result.json' && st.isFile()) out.push(path);
  }
}

/**
 * Every `result.json` under `<dir>/runs/` (any depth, directories in natural name order), parsed.
 * No `runs/` directory gives []. A file that is not JSON, or not a run record, throws an Error naming it.
 */
export function readRunRecords(dir: string): RunRecord[] {
  const runs = join(dir, 'runs');
  let isDir = false;
  try {
    isDir = statSync(runs).isDirectory();
  } catch {
    return [];
  }
  if (!isDir) return [];
  const files: string[] = [];
  findResultFiles(runs, files);
  return files.map((file) => {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new Error(`${file}: malformed JSON (${(e as Error).message})`);
    }
    return toRecord(raw, file);
  });
}
