/**
 * `kindling start` (what `npm start` runs after bootstrapping): prints the adapter, runs the engine
 * self-check, then the `quick` experiment preset (src/experiments/presets/quick.yaml): the needle task
 * with no pretraining, k-Dyck pretraining and its shuffled control, scaled down for CPUs. Prints the
 * results table and where report.html is.
 *
 * Options: --out DIR (default runs/quick), --jobs N (default 2 on a software adapter with ≥ 2 CPUs, else 1),
 * --fresh (start over instead of resuming).
 * A previous run of the same preset in DIR is resumed (finished runs kept); a DIR holding anything
 * else is moved aside to DIR.old-<time> first.
 */
import { existsSync, readdirSync, renameSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Engine } from '../../engine/engine.ts';
import { runComputeCheck } from '../../engine/selfcheck.ts';
import { holdsExperiment, runExperiment } from '../experiments/runner.ts';
import { loadExperiment } from '../experiments/schema.ts';
import { formatHelp, parseCommand, type CommandSpec } from '../util/args.ts';
import { DEVICE_ENV } from './env.ts';

export const START_SPEC = {
  command: 'kindling start',
  summary:
    'Prints the adapter, checks the engine on it, then runs the `quick` experiment preset ' +
    '(src/experiments/presets/quick.yaml; kindling experiment quick): needle-in-a-haystack with no pretraining, ' +
    'k-Dyck pretraining and shuffled k-Dyck, two seeds each. Prints the results table; results.json and ' +
    'report.html go to DIR (default runs/quick).',
  options: {
    out: { type: 'string', default: 'runs/quick', metavar: 'DIR', doc: 'experiment directory. A previous quick run there is resumed; anything else there is moved aside to DIR.old-<time>' },
    jobs: {
      type: 'int',
      min: 1,
      metavar: 'N',
      doc: 'worker processes',
      defaultDoc: '2 on a software adapter with at least 2 CPUs (one run leaves a core idle: two side by side measured 1.59× the throughput), else 1',
    },
    fresh: { type: 'bool', default: false, doc: 'move a previous run aside and start over' },
  },
  env: DEVICE_ENV,
} as const satisfies CommandSpec;

/** Worker processes when --jobs is not given: 2 on a software adapter with ≥ 2 CPUs, else 1. */
export function defaultJobs(software: boolean, cpus = availableParallelism()): number {
  return software && cpus >= 2 ? 2 : 1;
}

export async function runStartCommand(argv: string[]): Promise<number> {
  const args = parseCommand(START_SPEC, argv);
  if (args.help) {
    process.stdout.write(formatHelp(START_SPEC));
    return 0;
  }
  const { out, fresh } = args.options;
  const { experiment, text } = loadExperiment('quick');
  const engine = await Engine.create();
  let selfCheck: boolean;
  try {
    const jobs = args.options.jobs ?? defaultJobs(engine.device.info.software);
    console.log(`kindling on ${engine.device.describe()}`);
    selfCheck = await runComputeCheck(engine.device);
    console.log(`engine self-check: ${selfCheck ? 'ok' : 'FAILED'}`);
    if (!selfCheck) return 1;

    let resume = false;
    if (existsSync(out) && readdirSync(out).length > 0) {
      if (!fresh && holdsExperiment(out, experiment)) {
        resume = true;
        console.log(`resuming the quick experiment in ${out} (finished runs are kept; --fresh starts over)`);
      } else {
        const aside = `${out}.old-${new Date().toISOString().replace(/[:.]/g, '-')}`;
        renameSync(out, aside);
        console.log(`${out} held ${fresh ? 'a previous run' : 'something else'}; moved it to ${aside}`);
      }
    }
    console.log(`running the quick experiment (${experiment.description}) in ${out}\n`);
    const r = await runExperiment({ experiment, text, dir: out, resume, jobs, engine: jobs > 1 ? undefined : engine });
    if (r.table) console.log(`\n${r.table}`);
    console.log(`\n${r.completed}/${r.planned} runs finished${r.html ? `; report: ${r.html} (results.json and results.md beside it)` : ''}`);
    for (const f of r.failed) console.error(`failed: ${f.arm} seed ${f.seed}: ${f.error}`);
    return r.failed.length || r.completed < r.planned ? 1 : 0;
  } finally {
    engine.destroy();
  }
}
