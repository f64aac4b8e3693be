/**
 * `kindling experiment <file.yaml|quick|paper> [--out DIR] [--jobs N] [--stack N] [--shard i/n] [--resume]`
 * `kindling experiment report DIR`
 *
 * Runs every arm × sweep point × seed of an experiment (docs/experiments.md), then writes
 * results.json, results.md and report.html and prints the table. Exit codes: 0 done, 1 a run failed or
 * runs are missing, 2 a bad experiment file or bad options.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseShard, readStoredExperiment, report, runExperiment, type Shard } from '../experiments/runner.ts';
import { ExperimentError, listPresets, loadExperiment } from '../experiments/schema.ts';
import { formatHelp, parseCommand, wantsHelp, type CommandSpec } from '../util/args.ts';
import { DEVICE_ENV } from './env.ts';

export const EXPERIMENT_SPEC = {
  command: 'kindling experiment',
  usage: ['kindling experiment report <dir>'],
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
