/**
 * `kindling experiment <file.yaml|quick|paper> [--out DIR] [--jobs N] [--shard i/n] [--resume]`
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

const USAGE = `usage: kindling experiment <file.yaml | ${listPresets().join(' | ')}> [--out DIR] [--jobs N] [--shard i/n] [--resume]
       kindling experiment report DIR

  --out DIR     experiment directory (default runs/<name>)
  --jobs N      N worker processes on this machine (default 1)
  --shard i/n   take only runs with index % n == i (n machines writing one shared DIR; then
                \`kindling experiment report DIR\` merges)
  --resume      continue the experiment in DIR: finished runs are kept, partial ones resume from
                their latest checkpoint (without it, a non-empty DIR is refused)

Presets: quick (needle, scaled down for 2 CPU cores), paper (the §6 protocol). See docs/experiments.md.`;

export interface ExperimentArgs {
  target: string;
  out: string | null;
  jobs: number;
  shard: Shard | null;
  resume: boolean;
  worker: boolean;
}

export function parseExperimentArgs(argv: readonly string[]): ExperimentArgs {
  const a: ExperimentArgs = { target: '', out: null, jobs: 1, shard: null, resume: false, worker: false };
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [name, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v.startsWith('--')) throw new ExperimentError(`${name} needs a value`);
      return v;
    };
    switch (name) {
      case '--out':
        a.out = value();
        break;
      case '--jobs': {
        const v = value();
        a.jobs = Number(v);
        if (!Number.isInteger(a.jobs) || a.jobs < 1) throw new ExperimentError(`--jobs: expected a positive integer, got "${v}"`);
        break;
      }
      case '--shard':
        a.shard = parseShard(value());
        break;
      case '--resume':
        a.resume = true;
        break;
      case '--worker':
        a.worker = true;
        break;
      default:
        if (arg.startsWith('--')) throw new ExperimentError(`unknown option ${arg}`);
        positional.push(arg);
    }
  }
  if (positional.length !== 1) throw new ExperimentError(positional.length ? `expected one experiment, got ${positional.join(' ')}` : 'which experiment? (a YAML file or a preset)');
  a.target = positional[0]!;
  return a;
}

export async function runExperimentCommand(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return argv.length === 0 ? 2 : 0;
  }
  if (argv[0] === 'report') {
    const dir = argv[1];
    if (!dir || argv.length > 2) {
      console.error(`kindling experiment report: expected one directory\n\n${USAGE}`);
      return 2;
    }
    if (!existsSync(join(dir, 'experiment.json'))) {
      console.error(`kindling experiment report: ${dir} holds no experiment (no experiment.json)`);
      return 2;
    }
    const rep = report(dir, readStoredExperiment(dir));
    console.log(rep.table);
    console.log(`\n${rep.results.runs.completed}/${rep.results.runs.planned} runs finished; results.json and report.html in ${dir} (${rep.html})`);
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
  let r;
  try {
    r = await runExperiment({ experiment: loaded.experiment, text: loaded.text, dir, resume: args.resume, jobs: args.jobs, shard: args.shard, worker: args.worker });
  } catch (e) {
    if (e instanceof ExperimentError) {
      console.error(`kindling experiment: ${e.message}`);
      return 2;
    }
    throw e;
  }
  if (args.worker) return r.failed.length ? 1 : 0;
  if (r.table) console.log(`\n${r.table}`);
  console.log(`\n${r.completed}/${r.planned} runs finished${r.html ? `; results.json and report.html in ${dir} (${r.html})` : ''}`);
  for (const f of r.failed) console.error(`failed: ${f.arm} seed ${f.seed}: ${f.error}`);
  if (r.completed < r.planned) console.error(`${r.planned - r.completed} runs not finished${args.shard ? ' by this shard' : ''}: rerun with --resume${args.shard ? ', or merge the shards with `kindling experiment report DIR`' : ''}`);
  return r.failed.length || (r.completed < r.planned && !args.shard) ? 1 : 0;
}
