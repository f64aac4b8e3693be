/**
 * From run records to `results.json`: group the runs of an experiment by arm, and summarise each arm
 * over its seeds (mean, population standard deviation and best final accuracy, per-step curve
 * statistics, the stage-1 settings the seeds share). `readRunRecords` collects the `result.json` files
 * the runner writes under `<dir>/runs/`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ArmRole, ArmSummary, DataSaved, DataSavedArm, ExperimentResults, RunRecord, SemanticRun, Stage1Record } from './types.ts';

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

/** The first step of an accuracy curve ([step, accuracy], any order) whose accuracy is ≥ `threshold`; null if none. */
export function firstStepAtLeast(curve: readonly (readonly [number, number])[], threshold: number): number | null {
  let first: number | null = null;
  for (const [step, acc] of curve) if (Number.isFinite(acc) && acc >= threshold && (first === null || step < first)) first = step;
  return first;
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
      steps_to_half: r.semantic ? null : firstStepAtLeast(r.curve ?? [], 0.5),
      loss_curve: r.loss_curve ?? [],
      eval_loss_curve: r.eval_loss_curve ?? [],
      stage1: r.stage1 ?? null,
      completed: r.completed,
      ...(r.semantic ? { semantic: r.semantic } : {}),
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
  const arms = [...groups.values()].map(summariseArm);
  const saved = dataSaved(arms);
  return {
    experiment,
    arms,
    elapsed_s: records.reduce((a, r) => a + (Number.isFinite(r.elapsed_s) ? r.elapsed_s : 0), 0),
    machine: machines.join('; '),
    runs: { planned: records.length, completed: records.filter((r) => r.completed === true).length },
    ...(saved.length ? { data_saved: saved } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------
// Data saved (spec §7.4)

/**
 * The tokens at which a validation-loss curve ([tokens, loss] by increasing tokens) first reaches
 * `target` (loss ≤ target): `interpolated` between the evaluation before and the first one at or below
 * the target, linearly in tokens; `firstEval` the tokens of that evaluation (the paper's reading).
 * Both null when no evaluation reaches it. Non-finite losses are skipped.
 */
export function tokensToReach(curve: readonly (readonly [number, number])[], target: number): { interpolated: number | null; firstEval: number | null } {
  const pts = curve.filter(([t, l]) => Number.isFinite(t) && Number.isFinite(l));
  for (let i = 0; i < pts.length; i++) {
    const [t, l] = pts[i]!;
    if (l > target) continue;
    if (i === 0) return { interpolated: t, firstEval: t };
    const [t0, l0] = pts[i - 1]!;
    return { interpolated: t0 + ((l0 - target) / (l0 - l)) * (t - t0), firstEval: t };
  }
  return { interpolated: null, firstEval: null };
}

/** [tokens, loss] of a semantic run. */
const lossByTokens = (s: SemanticRun): [number, number][] => s.evals.map((e) => [e[1], e[2]]);

/** The mean over seeds at every tokens value all seeds evaluated. */
function meanCurve(curves: [number, number][][]): [number, number][] {
  return curveStats(curves).map(([t, mean]) => [t, mean]);
}

/**
 * For every semantic task with a baseline arm: the baseline's mean final validation loss is the target;
 * each other arm's mean curve (and each seed's) gives the tokens to reach it, and the data saved.
 */
export function dataSaved(arms: readonly ArmSummary[]): DataSaved[] {
  const out: DataSaved[] = [];
  const tasks = [...new Set(arms.filter((a) => a.seeds.some((s) => s.semantic)).map((a) => a.task))];
  for (const task of tasks) {
    const of = arms.filter((a) => a.task === task);
    const base = of.find((a) => a.role === 'baseline');
    if (!base) continue;
    const baseRuns = base.seeds.map((s) => s.semantic).filter((x): x is SemanticRun => !!x);
    if (baseRuns.length === 0) continue;
    const target = meanStd(baseRuns.map((r) => r.final_loss)).mean;
    const baseTokens = Math.max(...baseRuns.map((r) => (r.evals.length ? r.evals[r.evals.length - 1]![1] : NaN)));
    const saved = (t: number | null) => (t === null || !(baseTokens > 0) ? null : 1 - t / baseTokens);
    const result: DataSavedArm[] = [];
    for (const a of of) {
      if (a === base) continue;
      const runs = a.seeds.filter((s) => s.semantic);
      if (runs.length === 0) continue;
      const curve = meanCurve(runs.map((s) => lossByTokens(s.semantic!)));
      const reach = tokensToReach(curve, target);
      const proc = meanStd(runs.map((s) => s.semantic!.procedural_tokens)).mean;
      result.push({
        arm: a.name,
        role: a.role,
        procedural_tokens: proc,
        tokens_to_reach: reach.interpolated,
        tokens_to_reach_first_eval: reach.firstEval,
        data_saved: saved(reach.interpolated),
        data_saved_with_procedural: reach.interpolated === null ? null : saved(reach.interpolated + proc),
        seeds: runs.map((s) => {
          const t = tokensToReach(lossByTokens(s.semantic!), target).interpolated;
          return { seed: s.seed, tokens_to_reach: t, data_saved: saved(t) };
        }),
        final_loss: meanStd(runs.map((s) => s.semantic!.final_loss)).mean,
      });
    }
    out.push({ task, baseline: base.name, target_loss: target, baseline_tokens: baseTokens, arms: result });
  }
  return out;
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

function toSemantic(raw: Record<string, any>, fail: (why: string) => never): SemanticRun {
  if (!Array.isArray(raw.evals)) fail('`semantic.evals` must be a list');
  return {
    tokens_per_step: num(raw.tokens_per_step),
    procedural_tokens: num(raw.procedural_tokens),
    evals: (raw.evals as unknown[]).filter(Array.isArray).map((e) => {
      const x = e as unknown[];
      return [num(x[0]), num(x[1]), num(x[2]), num(x[3]), x[4] === null || x[4] === undefined ? null : num(x[4])];
    }),
    final_loss: num(raw.final_loss),
    final_perplexity: num(raw.final_perplexity),
  };
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
    ...(r.semantic && typeof r.semantic === 'object' ? { semantic: toSemantic(r.semantic, fail) } : {}),
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
