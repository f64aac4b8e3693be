/**
 * Pooling the runs of several experiment directories into one report (`kindling experiment pool`):
 * the seeds of one protocol often come from several experiments (more seeds later, longer budgets,
 * the baselines run separately), and the needle effect is read per seed, so the counts want every
 * seed in one table.
 *
 *   const { results, notes } = poolExperiments(['runs/a', 'runs/b'], { name: 'pooled', steps: 2000 });
 *   writeReports('runs/pooled', results);
 *
 * An arm (name and downstream task) pools only runs of one protocol: every directory's resolved
 * plan (`planExperiment`, src/experiments/schema.ts) must give the arm the same stage-1
 * settings, stage-2 settings, transfer and mixture, but for the seed, the stage-2 budget
 * (`max_steps`) and what only says where and how often to save or log. A difference is refused,
 * naming the arm, both directories and the first differing key. A seed run in two directories (the
 * same run to two budgets) keeps the record that reaches further.
 *
 * `steps`: every run is read as if it had stopped there: its curves are cut after that step and
 * its final accuracy is the last evaluation at or before it; a run whose evaluations end before it
 * counts as unfinished at that budget (the jump table leaves it out unless it jumped). Without
 * `steps`, runs of different lengths are pooled as they are, and a note says so.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { aggregate } from './aggregate.ts';
import { collectRecords, readStoredExperiment } from './runner.ts';
import { ExperimentError, type PlannedRun, planExperiment } from './schema.ts';
import type { ExperimentResults, RunRecord } from './types.ts';

/** Settings that say where, how often or on what to save and log, or which seed: not the protocol. */
const STAGE1_IGNORED = new Set(['seed', 'save_every_steps', 'save_dir', 'run_name', 'save_total_limit', 'resume', 'overwrite', 'device', 'num_workers', 'wandb_enable', 'wandb_project', 'wandb_name', 'resume_run_id']);
const STAGE2_IGNORED = new Set(['seed', 'max_steps', 'save_steps', 'pretrained_model_path', 'save_total_limit', 'output_dir', 'logging_steps', 'device', 'wandb_project', 'random_str', 'experiment_config_path', 'save_dir', 'run_name']);

function without(o: object | null, ignored: Set<string>): Record<string, unknown> | null {
  if (!o) return null;
  return Object.fromEntries(Object.entries(o).filter(([k]) => !ignored.has(k)));
}

/** The protocol of a planned run, flattened to `path → JSON value` (for comparison and messages). */
function protocol(run: PlannedRun): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (prefix: string, v: unknown): void => {
    if (v && typeof v === 'object' && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) walk(prefix ? `${prefix}.${k}` : k, x);
    else out.set(prefix, JSON.stringify(v ?? null));
  };
  walk('role', run.role);
  walk('stage1', without(run.stage1?.config ?? null, STAGE1_IGNORED));
  walk('stage2', without(run.stage2 ?? run.semantic, STAGE2_IGNORED));
  walk('transfer', run.transfer);
  walk('mixture', run.mixture?.spec ?? null);
  return out;
}

/** The first key whose value differs (or exists on one side only), or null. */
function firstDifference(a: Map<string, string>, b: Map<string, string>): { key: string; a: string; b: string } | null {
  for (const key of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(key) ?? '(absent)';
    const y = b.get(key) ?? '(absent)';
    if (x !== y) return { key, a: x, b: y };
  }
  return null;
}

const lastStep = (curve: [number, number][]): number => (curve.length ? curve[curve.length - 1]![0] : 0);

/** The record as if its run had stopped after `steps` stage-2 steps. */
export function cutAt(r: RunRecord, steps: number): RunRecord {
  const curve = r.curve.filter(([s]) => s <= steps);
  return {
    ...r,
    curve,
    loss_curve: r.loss_curve.filter(([s]) => s <= steps),
    eval_loss_curve: r.eval_loss_curve.filter(([s]) => s <= steps),
    final_accuracy: curve.length ? curve[curve.length - 1]![1] : Number.NaN,
    completed: lastStep(r.curve) >= steps,
  };
}

export interface PoolOptions {
  /** The pooled experiment's name (results.md's title). */
  name: string;
  /** Read every run as stopped after this many stage-2 steps. */
  steps?: number;
}

export interface PoolResult {
  results: ExperimentResults;
  /** What was merged or dropped, one line each (duplicates, budgets). */
  notes: string[];
  /** Per pooled run: arm, seed and the directory its record came from. */
  sources: { arm: string; task: string; seed: number; dir: string }[];
}

export function poolExperiments(dirs: readonly string[], opts: PoolOptions): PoolResult {
  if (dirs.length < 2) throw new ExperimentError('pool: give at least two experiment directories');
  if (opts.steps !== undefined && !(Number.isInteger(opts.steps) && opts.steps > 0)) throw new ExperimentError(`pool: --steps must be a positive integer, got ${opts.steps}`);
  const seen = new Set<string>();
  const arms = new Map<string, { protocol: Map<string, string>; dir: string }>();
  const kept = new Map<string, { record: RunRecord; dir: string }>();
  const notes: string[] = [];
  for (const dir of dirs) {
    const abs = resolve(dir);
    if (seen.has(abs)) throw new ExperimentError(`pool: ${dir} is given twice`);
    seen.add(abs);
    if (!existsSync(join(dir, 'experiment.json'))) throw new ExperimentError(`pool: ${dir} holds no experiment (no experiment.json)`);
    const plan = planExperiment(readStoredExperiment(dir));
    const records = collectRecords(dir, plan);
    if (!records.length) throw new ExperimentError(`pool: ${dir} has no finished or partial run (no runs/*/seed-*/result.json)`);
    for (const rec of records) {
      const run = plan.find((p) => p.arm === rec.arm && p.seed === rec.seed && p.task === rec.task)!;
      if (opts.steps !== undefined && run.semantic) throw new ExperimentError(`pool: --steps cuts algorithmic runs only; ${dir} arm ${rec.arm} is semantic (${rec.task})`);
      const armKey = `${rec.arm}\u0000${rec.task}`;
      const p = protocol(run);
      const known = arms.get(armKey);
      if (!known) arms.set(armKey, { protocol: p, dir });
      else {
        const d = firstDifference(known.protocol, p);
        if (d) throw new ExperimentError(`pool: arm ${rec.arm} (${rec.task}) differs between ${known.dir} and ${dir}: ${d.key} is ${d.a} there and ${d.b} here; give the arms different names if both belong in one report`);
      }
      const record = opts.steps === undefined ? rec : cutAt(rec, opts.steps);
      const runKey = `${armKey}\u0000${rec.seed}`;
      const prev = kept.get(runKey);
      if (!prev) kept.set(runKey, { record, dir });
      else {
        const further = lastStep(record.curve) > lastStep(prev.record.curve);
        const [keep, drop] = further ? [{ record, dir }, prev] : [prev, { record, dir }];
        kept.set(runKey, keep);
        notes.push(`${rec.arm} seed ${rec.seed}: in ${prev.dir} and ${dir}; kept ${keep.dir} (evaluated to step ${lastStep(keep.record.curve)}, the other to ${lastStep(drop.record.curve)})`);
      }
    }
  }
  const records = [...kept.values()].map((k) => k.record);
  if (opts.steps === undefined) {
    const ends = [...new Set(records.filter((r) => r.completed).map((r) => lastStep(r.curve)))].sort((a, b) => a - b);
    if (ends.length > 1) notes.push(`finished runs end at ${ends.join(', ')} steps: --steps N reads them all at one budget`);
  } else {
    const short = records.filter((r) => !r.completed).length;
    if (short) notes.push(`${short} run(s) evaluated to fewer than ${opts.steps} steps: counted as unfinished (left out of the jump counts unless they jumped)`);
  }
  const results = aggregate(records, opts.name);
  results.runs = { planned: records.length, completed: records.filter((r) => r.completed).length };
  const sources = [...kept.values()].map((k) => ({ arm: k.record.arm, task: k.record.task, seed: k.record.seed, dir: k.dir }));
  return { results, notes, sources };
}
