/**
 * `kindling experiment <file.yaml|quick|paper> [--out DIR] [--jobs N] [--stack N] [--shard i/n] [--resume]`
 * `kindling experiment report DIR`
 * `kindling experiment pool DIR... --out DIR [--steps N] [--name NAME]`
 *
 * Runs every arm × sweep point × seed of an experiment (docs/experiments.md), then writes
 * results.json, results.md and report.html and prints the table. Exit codes: 0 done, 1 a run failed or
 * runs are missing, 2 a bad experiment file or bad options.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { poolExperiments } from '../experiments/pool.ts';
import { isNeedle, jumpTable, tableMd, tasksOf, writeReports } from '../experiments/report.ts';
import { parseShard, readStoredExperiment, report, runExperiment, type Shard } from '../experiments/runner.ts';
import { ExperimentError, listPresets, loadExperiment } from '../experiments/schema.ts';
import { formatHelp, parseCommand, wantsHelp, type CommandSpec } from '../util/args.ts';
import { DEVICE_ENV } from './env.ts';

export const EXPERIMENT_SPEC = {
  command: 'kindling experiment',
  usage: ['kindling experiment report <dir>', 'kindling experiment pool <dir>... --out DIR [--steps N] [--name NAME]'],
  summary:
    'Runs every arm × sweep point × seed of an experiment (docs/experiments.md), then writes results.json, ' +
    'results.md and report.html and prints the table. Exit status: 0 done, 1 a run failed or runs are missing, ' +
    '2 a bad experiment file or bad options.',
  positionals: [{ name: 'experiment', required: true, doc: `a YAML file, or a preset: ${listPresets().join(', ')} (quick: needle, scaled down for 2 CPU cores; paper: the §6 protocol)` }],
  options: {
    out: { type: 'string', metavar: 'DIR', defaultDoc: 'runs/<name>', doc: 'experiment directory' },
    jobs: { type: 'int', default: 1, min: 1, metavar: 'N', doc: 'N worker processes on this machine' },
    stack: {
      type: 'int',
      default: 1,
      min: 1,
      metavar: 'N',
      doc: 'train up to N seeds of an arm (same sweep point) as one stacked model in one set of dispatches (algorithmic stage 2 without dropout or mixtures; the same curves as one by one to float32 rounding); 1: one by one',
    },
    shard: { type: 'string', metavar: 'i/n', doc: 'take only runs with index % n == i (n machines writing one shared DIR; then `kindling experiment report DIR` merges)' },
    arms: { type: 'list', metavar: 'NAME', doc: 'only the arms whose name matches (`*` wildcards; e.g. `needle-*` runs the needle part of paper); the report covers what has finished' },
    resume: { type: 'bool', default: false, doc: 'continue the experiment in DIR: finished runs are kept, partial ones resume from their latest checkpoint (without it, a non-empty DIR is refused)' },
    worker: { type: 'bool', default: false, hidden: true, doc: 'internal: a worker process started by --jobs' },
  },
  env: { ...DEVICE_ENV, KINDLING_TOKEN_CACHE: 'directory of the semantic token caches (default data/cache/tokens)' },
} as const satisfies CommandSpec;

export const REPORT_SPEC = {
  command: 'kindling experiment report',
  summary: 'Rebuilds results.json, results.md and report.html of an experiment directory from its finished runs (e.g. after shards) and prints the table.',
  positionals: [{ name: 'dir', required: true, doc: 'the experiment directory (holds experiment.json)' }],
  options: {},
} as const satisfies CommandSpec;

export const POOL_SPEC = {
  command: 'kindling experiment pool',
  summary:
    'Pools the runs of several experiment directories into one report (results.json, results.md, report.html in --out): ' +
    'an arm (name and task) pools only runs of one protocol (the same stage-1 and stage-2 settings and transfer but for seed, ' +
    'budget and saving); a seed run in two directories keeps the record that reaches further. Prints the table and, for the ' +
    'needle task, the seeds that jumped with Fisher\'s exact test against the baseline. Exit status: 0 done, 2 bad options or ' +
    'arms of different protocols.',
  positionals: [{ name: 'dir', required: true, variadic: true, doc: 'two or more experiment directories (each holds experiment.json)' }],
  options: {
    out: { type: 'string', required: true, metavar: 'DIR', doc: 'where the pooled reports go (not one of the pooled directories)' },
    steps: { type: 'int', min: 1, metavar: 'N', doc: 'read every run as stopped after N stage-2 steps (one budget for all; shorter runs count as unfinished)' },
    name: { type: 'string', metavar: 'NAME', defaultDoc: "the --out directory's name", doc: "the pooled report's title" },
  },
} as const satisfies CommandSpec;

export interface ExperimentArgs {
  target: string;
  out: string | null;
  jobs: number;
  stack: number;
  shard: Shard | null;
  arms: string[] | null;
  resume: boolean;
  worker: boolean;
}

/** The options of `kindling experiment <target>`; throws UsageError (or ExperimentError for a bad --shard). */
export function parseExperimentArgs(argv: readonly string[]): ExperimentArgs {
  const p = parseCommand(EXPERIMENT_SPEC, argv);
  const o = p.options;
  return { target: p.args.experiment as string, out: o.out ?? null, jobs: o.jobs, stack: o.stack, shard: o.shard === undefined ? null : parseShard(o.shard), arms: o.arms?.length ? [...o.arms] : null, resume: o.resume, worker: o.worker };
}

export async function runExperimentCommand(argv: string[]): Promise<number> {
  if (argv[0] === 'report') {
    const p = parseCommand(REPORT_SPEC, argv.slice(1));
    if (p.help) {
      process.stdout.write(formatHelp(REPORT_SPEC));
      return 0;
    }
    const dir = p.args.dir as string;
    if (!existsSync(join(dir, 'experiment.json'))) {
      console.error(`kindling experiment report: ${dir} holds no experiment (no experiment.json)`);
      return 2;
    }
    const rep = report(dir, readStoredExperiment(dir));
    console.log(rep.table);
    console.log(`\n${rep.results.runs.completed}/${rep.results.runs.planned} runs finished; results.json and report.html in ${dir} (${rep.html})`);
    return 0;
  }
  if (argv[0] === 'pool') return poolCommand(argv.slice(1));
  if (argv.length === 0) {
    process.stderr.write(formatHelp(EXPERIMENT_SPEC));
    return 2;
  }
  if (wantsHelp(argv)) {
    process.stdout.write(formatHelp(EXPERIMENT_SPEC));
    return 0;
  }
  let args: ExperimentArgs;
  let loaded: ReturnType<typeof loadExperiment>;
  try {
    args = parseExperimentArgs(argv);
    loaded = loadExperiment(args.target);
  } catch (e) {
    if (e instanceof ExperimentError) {
      console.error(`kindling experiment: ${e.message}\n(see kindling experiment --help and docs/experiments.md)`);
      return 2;
    }
    throw e;
  }
  const dir = args.out ?? join('runs', loaded.experiment.name);
  // An ExperimentError from the run (e.g. a directory that already holds it) is reported by main.ts, exit 2.
  const r = await runExperiment({ experiment: loaded.experiment, text: loaded.text, dir, resume: args.resume, jobs: args.jobs, stack: args.stack, shard: args.shard, arms: args.arms, worker: args.worker });
  if (args.worker) return r.failed.length ? 1 : 0;
  if (r.table) console.log(`\n${r.table}`);
  console.log(`\n${r.completed}/${r.planned} runs finished${r.html ? `; results.json and report.html in ${dir} (${r.html})` : ''}`);
  for (const f of r.failed) console.error(`failed: ${f.arm} seed ${f.seed}: ${f.error}`);
  for (const w of r.crashedWorkers) console.error(`failed: ${w}`);
  const partial = Boolean(args.shard || args.arms);
  if (r.completed < r.planned) console.error(`${r.planned - r.completed} runs not finished${partial ? ' (outside this selection, or by other shards)' : ''}: rerun with --resume${partial ? ', or merge with `kindling experiment report DIR`' : ''}`);
  return r.failed.length || r.crashedWorkers.length || (r.completed < r.planned && !partial) ? 1 : 0;
}

function poolCommand(argv: string[]): number {
  const p = parseCommand(POOL_SPEC, argv);
  if (p.help) {
    process.stdout.write(formatHelp(POOL_SPEC));
    return 0;
  }
  const dirs = p.args.dir as string[];
  const out = p.options.out as string;
  if (dirs.some((d) => resolve(d) === resolve(out))) {
    console.error(`kindling experiment pool: --out ${out} is one of the pooled directories; its own reports would be overwritten`);
    return 2;
  }
  let pooled: ReturnType<typeof poolExperiments>;
  try {
    pooled = poolExperiments(dirs, { name: p.options.name ?? basename(resolve(out)), ...(p.options.steps !== undefined ? { steps: p.options.steps } : {}) });
  } catch (e) {
    if (e instanceof ExperimentError) {
      console.error(`kindling experiment ${e.message}`);
      return 2;
    }
    throw e;
  }
  const { table, html } = writeReports(out, pooled.results);
  writeFileSync(join(out, 'pool.json'), JSON.stringify({ dirs, steps: p.options.steps ?? null, notes: pooled.notes, runs: pooled.sources }, null, 2) + '\n');
  console.log(table);
  for (const task of tasksOf(pooled.results).filter(isNeedle)) console.log(`\n${task}: seeds that jumped (≥ 50%)\n\n${tableMd(jumpTable(pooled.results, task))}`);
  for (const n of pooled.notes) console.log(`note: ${n}`);
  console.log(`\n${pooled.results.runs.planned} runs from ${dirs.length} directories; results.json, results.md and report.html in ${out} (${html}), sources in pool.json`);
  return 0;
}
